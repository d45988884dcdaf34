"""``paipviewer --snapshot``: open, run, render the window to a PNG, exit; never overwrite."""
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
    assert shot is not None and shot.shape[1] >= 1000 and shot.std() > 10
    again = run_cli(str(tiles), "--model", str(a), "--snapshot", str(out), str(tmp_path))
    assert again.returncode == 2 and "exists" in again.stderr


def test_unknown_model_name_is_a_clear_error(tmp_path):
    done = run_cli("--model", "no_such_model", "--snapshot", str(tmp_path / "x.png"), str(tmp_path))
    assert done.returncode != 0 and "no model 'no_such_model'" in done.stderr


def test_unknown_layer_is_refused_before_anything_opens(tmp_path):
    done = run_cli("--layers", "errors,nuclei", "--snapshot", str(tmp_path / "x.png"), str(tmp_path), timeout=60)
    assert done.returncode != 0 and "unknown layer(s) nuclei" in done.stderr and not (tmp_path / "x.png").exists()
