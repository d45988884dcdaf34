"""``paipviewer --snapshot``: open, run, write a figure of the views with titles and legend, exit;
never overwrite; with nothing to open, exit at once."""
from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import subprocess
import sys

import cv2

from helpers import make_model_file
from ui_fixtures import copy_samples


def run_cli(*args, timeout=240):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": args[-1]}
    return subprocess.run([sys.executable, "-m", "paipviewer", *args[:-1]], env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_snapshot_side_by_side_writes_png_and_refuses_to_overwrite(tmp_path):
    tiles = copy_samples(tmp_path / "tiles", 2)
    a = make_model_file(tmp_path / "models", "elunet", 4, 3)
    b = make_model_file(tmp_path / "models", "unet", 4, 3)
    out = tmp_path / "fig.png"
    done = run_cli(str(tiles), "--model", str(a), "--compare", str(b), "--snapshot", str(out), str(tmp_path))
    assert done.returncode == 0, done.stderr[-2000:]
    shot = cv2.imread(str(out))
    assert shot is not None and shot.shape[1] == 2 * 256 + 8 and shot.std() > 10  # two views at the image's size
    again = run_cli(str(tiles), "--model", str(a), "--snapshot", str(out), str(tmp_path))
    assert again.returncode == 2 and "exists" in again.stderr


def test_snapshot_of_an_image_without_ground_truth_shows_the_prediction(tmp_path):
    import shutil
    import time

    import numpy as np

    from paipviewer.viewer.layers import PALETTE
    tile = sorted((copy_samples(tmp_path / "tiles", 1) / "images").glob("*.png"))[0]
    alone = tmp_path / "mine" / "region.png"
    alone.parent.mkdir()
    shutil.copy(tile, alone)
    out = tmp_path / "fig.png"
    t0 = time.perf_counter()
    done = run_cli(str(alone), "--model", "elunet_8_5", "--snapshot", str(out), "--snapshot-scale", "2",
                   str(tmp_path))
    assert done.returncode == 0, done.stderr[-2000:]
    assert not [line for line in done.stderr.splitlines() if "cuda" in line.lower() or "I0000" in line]
    shot = cv2.cvtColor(cv2.imread(str(out)), cv2.COLOR_BGR2RGB).astype(int)
    assert shot.shape[1] == 512  # --snapshot-scale 2 of a 256 px tile
    tissue = cv2.resize(cv2.cvtColor(cv2.imread(str(alone)), cv2.COLOR_BGR2RGB), None, fx=2, fy=2,
                        interpolation=cv2.INTER_NEAREST).astype(int)
    # the picture sits under the title: where the tissue shows through unchanged
    top = max(range(shot.shape[0] - 512), key=lambda y: (shot[y:y + 512] == tissue).all(axis=2).sum())
    picture = shot[top:top + 512]
    drawn = ~(picture == tissue).all(axis=2)
    outline = 0.4 * tissue + 0.6 * np.array(PALETTE["prediction"])  # the default opacity, 0.6
    assert 0.005 < drawn.mean() < 0.5, f"no prediction outline in the figure ({time.perf_counter() - t0:.1f} s)"
    assert np.abs(picture[drawn] - outline[drawn]).max() <= 2  # and every drawn pixel is the outline colour


def test_nothing_to_open_exits_at_once_with_the_reason(tmp_path):
    import time

    (tmp_path / "notes.txt").write_text("not an image")
    t0 = time.perf_counter()
    done = run_cli(str(tmp_path / "notes.txt"), str(tmp_path / "missing.png"), "--snapshot", str(tmp_path / "x.png"),
                   str(tmp_path), timeout=60)
    assert done.returncode == 2 and "nothing to snapshot" in done.stderr
    assert "notes.txt: not an image" in done.stderr and "missing.png: no such file" in done.stderr
    assert time.perf_counter() - t0 < 30 and not (tmp_path / "x.png").exists()


def test_unknown_model_name_is_a_clear_error(tmp_path):
    done = run_cli("--model", "no_such_model", "--snapshot", str(tmp_path / "x.png"), str(tmp_path))
    assert done.returncode != 0 and "no model 'no_such_model'" in done.stderr


def test_unknown_layer_is_refused_before_anything_opens(tmp_path):
    done = run_cli("--layers", "errors,nuclei", "--snapshot", str(tmp_path / "x.png"), str(tmp_path), timeout=60)
    assert done.returncode != 0 and "unknown layer(s) nuclei" in done.stderr and not (tmp_path / "x.png").exists()


def test_a_snapshot_waits_no_longer_than_its_timeout(tmp_path, monuseg):
    import time

    image = sorted((monuseg / "test" / "images").glob("*"))[0]  # 1000x1000: U-Net 32/5 takes seconds on it
    t0 = time.perf_counter()
    done = run_cli(str(image), "--model", "unet_32_5", "--snapshot", str(tmp_path / "x.png"),
                   "--snapshot-timeout", "1", str(tmp_path), timeout=120)
    took = time.perf_counter() - t0
    assert "timed out waiting for inference; writing what there is" in done.stderr, done.stderr[-2000:]
    # what there is: the image without the model's layers, or, if it had not loaded yet, the reason
    assert (done.returncode == 0) == (tmp_path / "x.png").is_file() and took < 60
    assert run_cli("--snapshot-timeout", "0", "--snapshot", str(tmp_path / "y.png"), str(tmp_path),
                   timeout=60).returncode != 0
