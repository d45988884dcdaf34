"""Model files: round trip with the card, safe loading, clear errors for broken or foreign files."""
from __future__ import annotations

import json
import shutil

import keras
import numpy as np
import pytest

from paipviewer.core.imageio import read_image
from paipviewer.core.inference import Cancelled, predict_image
from paipviewer.core.modelfile import ModelCard, ModelFileError, card_path, load_model, read_card, save_model


def test_roundtrip_keeps_weights_and_card(tiny_model_file, samples256):
    loaded = load_model(tiny_model_file)
    card = loaded.card
    assert (card.architecture, card.filters, card.depth, card.params) == ("elunet", 4, 4, 40377)
    assert card.equalize == "rgb" and card.threshold == 0.5 and card.created and card.project_version
    assert card.label == "ELU-Net 4/4"
    assert read_card(tiny_model_file) == card
    assert loaded.file_bytes == tiny_model_file.stat().st_size
    image = read_image(next((samples256 / "images").glob("*.png")))
    a = predict_image(loaded.model, image, card.equalize)
    b = predict_image(load_model(tiny_model_file).model, image, card.equalize)
    np.testing.assert_array_equal(a.probability, b.probability)
    assert a.probability.shape == image.shape[:2] and a.tiles == 4
    assert set(a.timing) == {"preprocess", "inference", "total"}


def test_prediction_on_odd_size_image(tiny_model_file, monuseg):
    image = read_image(next((monuseg / "test" / "images").glob("*.tif")))[:300, :517]
    progress = []
    pred = predict_image(load_model(tiny_model_file).model, image, "rgb", overlap=32,
                         progress=lambda done, total: progress.append((done, total)))
    assert pred.probability.shape == (300, 517)
    assert progress[-1] == (pred.tiles, pred.tiles)


def test_cancel_between_batches(tiny_model_file, samples256):
    image = read_image(next((samples256 / "images").glob("*.png")))
    with pytest.raises(Cancelled):
        predict_image(load_model(tiny_model_file).model, image, "rgb", batch=1, cancelled=lambda: True)


def test_refuses_to_overwrite(tiny_model_file):
    model = load_model(tiny_model_file).model
    before = tiny_model_file.read_bytes()
    with pytest.raises(FileExistsError):
        save_model(model, read_card(tiny_model_file), tiny_model_file)
    assert tiny_model_file.read_bytes() == before
    assert not list(tiny_model_file.parent.glob("*.part"))



@pytest.mark.parametrize("failing", ["card", "onnx"])
def test_a_failed_save_leaves_the_folder_as_it_was(tiny_model_file, tmp_path, monkeypatch, failing):
    """A full disk while the card is written, or an export that fails, must not leave new weights
    without their card, nor new weights beside the old card."""
    import errno

    from paipviewer.core import backends
    folder = tmp_path / "m"
    folder.mkdir()
    old = folder / "m.keras"
    shutil.copy(tiny_model_file, old)
    shutil.copy(card_path(tiny_model_file), card_path(old))
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    loaded = load_model(old)
    if failing == "card":
        def full_disk(self):
            raise OSError(errno.ENOSPC, "No space left on device")
        monkeypatch.setattr(ModelCard, "to_json", full_disk)
    else:
        def broken_export(keras_path, path, tile=256):
            raise ModelFileError(f"{path.name}: the ONNX export failed (test)")
        monkeypatch.setattr(backends, "export_onnx", broken_export)
    card = read_card(old)
    card.threshold = 0.4
    for target in (old, folder / "new.keras"):
        with pytest.raises((OSError, ModelFileError)):
            save_model(loaded.model, card, target, overwrite=True, onnx=True)
        assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # nothing new, nothing half-made

def test_truncated_file(tiny_model_file, tmp_path):
    broken = tmp_path / "broken.keras"
    broken.write_bytes(tiny_model_file.read_bytes()[:5000])
    shutil.copy(card_path(tiny_model_file), card_path(broken))
    with pytest.raises(ModelFileError, match="damaged"):
        load_model(broken)


def test_missing_or_bad_card(tiny_model_file, tmp_path):
    lone = tmp_path / "lone.keras"
    shutil.copy(tiny_model_file, lone)
    with pytest.raises(ModelFileError, match="no model card"):
        load_model(lone)
    card_path(lone).write_text("{not json")
    with pytest.raises(ModelFileError, match="unreadable model card"):
        load_model(lone)
    card = json.loads(card_path(tiny_model_file).read_text())
    card_path(lone).write_text(json.dumps({**card, "params": 12}))
    with pytest.raises(ModelFileError, match="card says 12 parameters"):
        load_model(lone)
    card_path(lone).write_text(json.dumps({**card, "equalize": "sepia"}))
    with pytest.raises(ModelFileError, match="invalid"):
        load_model(lone)


def test_foreign_model_shapes_are_refused(tmp_path):
    inp = keras.Input((None, None, 3))
    out = keras.layers.Conv2D(2, 1)(inp)
    model = keras.Model(inp, out)
    path = tmp_path / "two_channels.keras"
    save_model(model, ModelCard("unet", 1, 1, int(model.count_params())), path)
    with pytest.raises(ModelFileError, match="one-channel"):
        load_model(path)


def test_lambda_layer_never_runs(tmp_path):
    """A model with a Lambda layer carries Python bytecode; safe mode must refuse it, not run it."""
    marker = tmp_path / "ran"
    inp = keras.Input((None, None, 3))
    payload = eval(f"lambda x: (__import__('pathlib').Path({str(marker)!r}).touch(), x[..., :1])[1]")
    out = keras.layers.Lambda(payload)(inp)
    model = keras.Model(inp, out)
    marker.unlink(missing_ok=True)
    path = tmp_path / "lambda.keras"
    save_model(model, ModelCard("unet", 1, 1, 0), path)
    marker.unlink(missing_ok=True)
    with pytest.raises(ModelFileError, match="cannot load"):
        load_model(path)
    assert not marker.exists()


def test_written_files_have_ordinary_permissions(tiny_model_file):
    import os
    umask = os.umask(0)
    os.umask(umask)
    for path in (tiny_model_file, card_path(tiny_model_file)):
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_a_zip_bomb_model_is_refused_from_its_directory(tmp_path):
    import time
    import zipfile

    from paipviewer.viewer.paths import shipped_models_dir
    bomb = tmp_path / "bomb.keras"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("config.json", "{}")
        with archive.open("model.weights.h5", "w", force_zip64=True) as member:
            for _ in range(256):  # 256 MiB of zeros, stored in about 250 kB
                member.write(bytes(2**20))
    (tmp_path / "bomb.json").write_text((shipped_models_dir() / "elunet_8_5.json").read_text())
    t0 = time.perf_counter()
    with pytest.raises(ModelFileError, match="bomb.keras: model.weights.h5 unpacks .* times larger"):
        load_model(bomb, backend="keras")
    assert time.perf_counter() - t0 < 1.0 and bomb.stat().st_size < 2**20
    # the shipped models pass the same check
    for stem in ("elunet_8_5", "unet_32_5"):
        load_model(shipped_models_dir() / f"{stem}.keras", backend="keras")


@pytest.mark.parametrize("card, message", [
    ("[" * 5000 + "]" * 5000, "nested too deeply"),
    ('{"format": "paipviewer-model-card/1", "architecture": ["elunet"], "filters": 8, "depth": 5, "params": 1}',
     "architecture is list, not str"),
    ('{"format": "paipviewer-model-card/1", "architecture": "elunet", "filters": true, "depth": 5, "params": 1}',
     "filters is bool, not int"),
    ('{"format": "paipviewer-model-card/1", "architecture": "elunet", "filters": 8, "depth": 5, "params": 1, '
     '"training": "yesterday"}', "training is str, not dict"),
])
def test_hostile_cards_are_messages(tmp_path, card, message):
    (tmp_path / "m.keras").write_bytes(b"PK")
    (tmp_path / "m.json").write_text(card)
    with pytest.raises(ModelFileError, match=message):
        read_card(tmp_path / "m.keras")


def test_a_huge_card_is_not_read(tmp_path):
    (tmp_path / "m.json").write_text(" " * 2_000_000 + "{}")
    with pytest.raises(ModelFileError, match="too large for a model card"):
        read_card(tmp_path / "m.keras")


@pytest.mark.parametrize("make, message", [
    (lambda keras: keras.Sequential([keras.Input((None, None, 3)), keras.layers.Conv2D(1, 3, padding="valid",
                                                                                        activation="sigmoid")]),
     r"a 256 x 256 tile gives an output of shape \(254, 254, 1\)"),
    (lambda keras: keras.Sequential([keras.Input((64, 64, 3)), keras.layers.Conv2D(1, 1, activation="sigmoid")]),
     "takes 64 x 64 inputs; the viewer feeds 256 x 256 tiles"),
])
def test_a_model_that_breaks_the_tiling_contract_is_refused_at_load(tmp_path, make, message):
    import keras

    from paipviewer.core.modelfile import custom_card
    model = make(keras)
    path = tmp_path / "odd.keras"
    model.save(path)
    with pytest.raises(ModelFileError, match=message):
        load_model(path, card=custom_card("rgb", 0.5))
