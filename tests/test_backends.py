"""Model backends: the .onnx and the .keras of a model give the same maps, the viewer's path runs
without TensorFlow, and a damaged file is refused clearly."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from paipviewer.core.imageio import read_image
from paipviewer.core.inference import predict_image
from paipviewer.core.modelfile import ModelFileError, card_path, load_model, save_model
from paipviewer.viewer.paths import shipped_models_dir

SHIPPED = sorted(p.stem for p in shipped_models_dir().glob("*.json"))  # every model the app ships


def sample_images(samples256, n=4):
    return [read_image(p) for p in sorted((samples256 / "images").glob("*.png"))[:n]]


@pytest.mark.parametrize("stem", SHIPPED)
def test_shipped_onnx_and_keras_agree_on_real_tiles(samples256, stem):
    onnx = load_model(shipped_models_dir() / f"{stem}.onnx", backend="onnx")
    keras_ = load_model(shipped_models_dir() / f"{stem}.json", backend="keras")
    assert onnx.backend == "onnx" and keras_.backend == "keras" and onnx.card == keras_.card
    assert onnx.card.files == [f"{stem}.keras", f"{stem}.onnx"]
    for image in sample_images(samples256, 2):
        a = predict_image(onnx.model, image, onnx.card.equalize).probability
        b = predict_image(keras_.model, image, keras_.card.equalize).probability
        assert np.abs(a - b).max() <= 1e-4
        t = onnx.card.threshold  # the masks may differ only on a pixel within that 1e-4 of the threshold
        flipped = (a >= t) != (b >= t)
        assert not flipped[np.abs(a - t) > 1e-4].any() and flipped.sum() <= 2


def test_the_default_backend_is_the_fastest_and_openvino_agrees(samples256):
    from paipviewer.core.backends import openvino_precision

    default = load_model(shipped_models_dir() / "elunet_8_5.keras")  # any file of the model will do
    assert default.backend == ("openvino" if openvino_precision() else "onnx")
    # OpenVINO in this CPU's precision (bf16 where native, else fp32) against exact fp32
    vino = load_model(shipped_models_dir() / "elunet_8_5.onnx", backend="openvino")
    onnx = load_model(shipped_models_dir() / "elunet_8_5.onnx", backend="onnx")
    t = onnx.card.threshold
    for image in sample_images(samples256, 3):
        a = predict_image(vino.model, image, "rgb").probability
        b = predict_image(onnx.model, image, "rgb").probability
        assert np.abs(a - b).max() <= (0.1 if vino.model.precision == "bf16" else 1e-4)
        assert np.mean((a >= t) == (b >= t)) >= 0.999


def test_save_model_writes_the_onnx_beside_and_lists_it(tmp_path, samples256):
    from helpers import make_model_file

    plain = make_model_file(tmp_path, "elunet", 4, 3)
    keras_ = load_model(plain)
    assert keras_.backend == "keras" and not plain.with_suffix(".onnx").exists()  # tests' models skip it
    out = save_model(keras_.model, keras_.card, tmp_path / "both" / "m.keras", onnx=True)
    card = json.loads(card_path(out).read_text())
    assert card["files"] == ["m.keras", "m.onnx"]
    fast = load_model(out.with_suffix(".onnx"), backend="onnx")
    assert fast.backend == "onnx" and fast.path.suffix == ".onnx"
    image = sample_images(samples256, 1)[0]
    a = predict_image(fast.model, image, "rgb").probability
    b = predict_image(keras_.model, image, "rgb").probability
    assert np.abs(a - b).max() <= 1e-4
    # saving again without ONNX removes the older export rather than leave it beside new weights
    save_model(keras_.model, keras_.card, out, overwrite=True)
    assert not out.with_suffix(".onnx").exists() and load_model(out).backend == "keras"


def test_a_damaged_onnx_is_refused_clearly(tmp_path):
    card = card_path(shipped_models_dir() / "elunet_8_5.keras").read_text()
    (tmp_path / "m.json").write_text(card)
    (tmp_path / "m.onnx").write_bytes(b"\x08\x07not a protobuf of a graph" * 20)
    with pytest.raises(ModelFileError, match="m.onnx: cannot load the ONNX model"):
        load_model(tmp_path / "m.onnx")
    with pytest.raises(ModelFileError, match="no .keras file"):
        load_model(tmp_path / "m.onnx", backend="keras")


def test_two_threads_starting_openvino_together_do_not_hang():
    """Unguarded, 7 of 10 such processes hung (benchmarks/openvino_threads.py); three in a row pass by
    chance about 3% of the time."""
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "openvino_threads.py"
    for _ in range(3):
        done = subprocess.run([sys.executable, str(script), "--child", "guarded"], capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]


BLOCK_TENSORFLOW = """
import importlib.abc, sys
class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('tensorflow', 'keras', 'tf2onnx'):
            raise ImportError(f'{name} is blocked: the viewer must run without it')
sys.meta_path.insert(0, Blocker())
from paipviewer.__main__ import main
code = main(sys.argv[1:])
assert not any(m.split('.')[0] in ('tensorflow', 'keras') for m in sys.modules)
sys.exit(code)
"""


def test_the_viewer_runs_and_compares_without_tensorflow(tmp_path, samples256):
    tile = sorted((samples256 / "images").glob("*.png"))[0]
    out = tmp_path / "fig.png"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": str(tmp_path)}
    run = subprocess.run([sys.executable, "-c", BLOCK_TENSORFLOW, str(tile), "--model", "elunet_8_5",
                          "--compare", "unet_32_5", "--snapshot", str(out), "--snapshot-timeout", "200"],
                         env=env, capture_output=True, text=True, timeout=300)  # a hang ends at 260 s with every stack
    assert run.returncode == 0, run.stderr[-2000:]
    assert out.is_file() and "blocked" not in run.stderr
