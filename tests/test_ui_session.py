"""Qt-free parts of the viewer: opening paths, pairing ground truth, overlays, the model list."""
from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import json
import shutil

import numpy as np

from paipviewer.core.imageio import read_mask
from paipviewer.core.inference import Prediction
from paipviewer.core.metrics import confusion
from paipviewer.ui.catalog import ModelCatalog
from paipviewer.ui.overlay_colors import PALETTE, LayerState, compose, outline_of
from paipviewer.ui.session import Result, Session, expand_paths, load_pixels
from ui_fixtures import SAMPLES, copy_samples


def test_folder_opens_with_ground_truth_paired(tmp_path):
    folder = copy_samples(tmp_path / "set", 3)
    session = Session()
    added, models, failures = session.add([folder])
    assert len(added) == 3 and not models and not failures
    for e in added:
        assert e.mask_path == folder / "masks" / e.path.name


def test_suffixed_mask_pairs_and_is_not_opened_as_an_image(tmp_path):
    src = sorted((SAMPLES / "images").glob("*.png"))[0]
    shutil.copy(src, tmp_path / "tile.png")
    shutil.copy(SAMPLES / "masks" / src.name, tmp_path / "tile_mask.png")
    pairs, _, failures = expand_paths([tmp_path / "tile.png", tmp_path / "tile_mask.png"])
    assert pairs == [(tmp_path / "tile.png", tmp_path / "tile_mask.png")] and not failures


def test_unreadable_files_are_listed_with_a_reason_and_the_rest_open(tmp_path):
    good = copy_samples(tmp_path / "set", 2)
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "empty").mkdir()
    session = Session()
    added, _, failures = session.add([good, tmp_path / "notes.txt", tmp_path / "missing.png", tmp_path / "empty"])
    assert len(added) == 2
    reasons = {f.path.name: f.reason for f in failures}
    assert "not an image" in reasons["notes.txt"]
    assert "no such file" in reasons["missing.png"]
    assert "no images found" in reasons["empty"]


def test_reopening_does_not_duplicate(tmp_path):
    folder = copy_samples(tmp_path / "set", 2)
    session = Session()
    session.add([folder])
    added, _, _ = session.add([folder])
    assert added == [] and len(session.entries) == 2


def test_one_file_through_other_paths_and_links_is_listed_once(tmp_path):
    folder = copy_samples(tmp_path / "set", 1)
    image = next((folder / "images").glob("*.png"))
    (tmp_path / "link.png").symlink_to(image)
    os.link(image, tmp_path / "hard.png")
    session = Session()
    added, _, _ = session.add([image, folder / "images" / ".." / "images" / image.name, tmp_path / "link.png",
                               tmp_path / "hard.png"])
    assert [e.path for e in added] == [image] and len(session.entries) == 1


def test_catalog_lists_a_model_once_through_links(tmp_path):
    card = {"format": "paipviewer-model-card/1", "architecture": "elunet", "filters": 4, "depth": 4, "params": 1}
    (tmp_path / "m.json").write_text(json.dumps(card))
    (tmp_path / "m.keras").write_bytes(b"PK")
    (tmp_path / "linked.keras").symlink_to(tmp_path / "m.keras")
    os.link(tmp_path / "m.keras", tmp_path / "hard.keras")
    catalog = ModelCatalog()
    first = catalog.add(tmp_path / "m.keras")
    assert catalog.add(tmp_path / "linked.keras") is first and catalog.add(tmp_path / "hard.keras") is first
    assert catalog.add(tmp_path / "sub" / ".." / "m.keras") is first and len(catalog.models) == 1


def test_wrong_size_mask_keeps_the_image(tmp_path):
    folder = copy_samples(tmp_path / "set", 1)
    name = next((folder / "images").glob("*.png")).name
    mask = read_mask(folder / "masks" / name)
    from paipviewer.core.imageio import write_png_atomic
    write_png_atomic(folder / "masks" / name, mask[:100, :120].astype(np.uint8))
    image, truth, error = load_pixels(folder / "images" / name, folder / "masks" / name)
    assert image.shape == (256, 256, 3) and truth is None and "120 x 100" in error


def test_scores_follow_the_threshold_and_summary_is_mean_per_tile():
    session = Session()
    session.add([SAMPLES])
    rng = np.random.default_rng(0)
    for e in session.entries[:3]:
        e.image, e.truth, _ = load_pixels(e.path, e.mask_path)
        # a real probability-like map: the ground truth blurred with noise, no model needed here
        prob = np.clip(e.truth * 0.7 + rng.random(e.truth.shape) * 0.4, 0, 1).astype(np.float32)
        e.results["m"] = Result(Prediction(prob), 0.0)
    e = session.entries[0]
    for t in (0.3, 0.8):
        session.thresholds["m"] = t
        prob = e.results["m"].prediction.probability
        assert session.confusion(e, "m") == confusion(prob >= t, e.truth)
    summary = session.summary("m")
    per_tile = [session.confusion(x, "m").jaccard for x in session.entries[:3]]
    assert summary["images"] == 3 and np.isclose(summary["mean_jaccard"], np.mean(per_tile))
    assert session.next_unscored("m") is session.entries[3]


def test_overlay_colours_each_error_class():
    truth = np.zeros((8, 8), bool)
    pred = np.zeros((8, 8), bool)
    truth[:4, :4] = True
    pred[2:6, 2:6] = True
    rgba = compose((8, 8), LayerState(errors=True), pred, truth)
    assert tuple(rgba[2, 2, :3]) == PALETTE["tp"]
    assert tuple(rgba[5, 5, :3]) == PALETTE["fp"]
    assert tuple(rgba[0, 0, :3]) == PALETTE["fn"]
    assert rgba[7, 7, 3] == 0
    off = compose((8, 8), LayerState(errors=False, disagree=False), pred, truth)
    assert not off[..., 3].any()


def test_outline_is_the_boundary_only():
    mask = np.zeros((10, 10), bool)
    mask[2:8, 2:8] = True
    edge = outline_of(mask)
    assert edge[2, 2] and edge[7, 5] and not edge[5, 5] and not edge[0, 0]
    rgba = compose((10, 10), LayerState(errors=False, prediction=True, outline=True), mask, None)
    assert rgba[2, 4, 3] == 255 and rgba[5, 5, 3] == 0


def test_disagreement_layer_marks_where_models_differ():
    a = np.zeros((4, 4), bool)
    b = a.copy()
    b[1, 1] = True
    rgba = compose((4, 4), LayerState(errors=False, disagree=True), a, None, None, b)
    assert tuple(rgba[1, 1, :3]) == PALETTE["disagree"] and rgba[0, 0, 3] == 0


def test_catalog_reads_cards_without_keras_and_lists_broken_files(tmp_path):
    card = {"format": "paipviewer-model-card/1", "architecture": "elunet", "filters": 8, "depth": 5,
            "params": 123, "training": {"data": "PAIP 2023 train", "learning_rate": 5e-4, "loss": "bce_dice",
                                        "batch_size": 8, "augment": True, "device": "NVIDIA H200"},
            "metrics": {"validation": {"tiles": 96, "dice_mean": 0.7912, "jaccard_mean": 0.657}}}
    (tmp_path / "elunet_8_5.json").write_text(json.dumps(card))
    (tmp_path / "elunet_8_5.keras").write_bytes(b"PK")
    (tmp_path / "aaa.keras").write_bytes(b"x")  # no card beside it
    catalog = ModelCatalog()
    catalog.scan(tmp_path)
    assert catalog.default().path.stem == "elunet_8_5"
    broken = catalog.find(str((tmp_path / "aaa.keras").resolve()))
    assert broken.card is None and "no model card" in broken.error
    text = catalog.default().describe()
    assert "ELU-Net 8/5" in text and "123 parameters" in text and "PAIP 2023 train" in text
    assert "Adam 0.0005, bce_dice, batch 8, augmented, on NVIDIA H200" in text
    assert "validation Dice 0.791 (96 tiles)" in text


def test_main_module_does_not_import_tensorflow():
    import subprocess
    import sys
    code = ("import sys, paipviewer.__main__, paipviewer.ui.app; "
            "sys.exit(any(m.split('.')[0] in ('tensorflow', 'keras') for m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], env={"QT_QPA_PLATFORM": "offscreen",
                                                            "PATH": "/usr/bin"}).returncode == 0


def test_model_layer_of_the_viewer_never_imports_qt():
    import subprocess
    import sys
    code = ("import sys, paipviewer.ui.session, paipviewer.ui.catalog, paipviewer.ui.overlay_colors; "
            "sys.exit(any(m.split('.')[0] in ('PySide6', 'pyqtgraph', 'tensorflow') for m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
