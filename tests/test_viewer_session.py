"""The viewer's Qt-free state owner: opening, pairing ground truth, results, thresholds, stop, failures,
what runs next, the words on screen, and the model list."""
from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import json
import shutil
from pathlib import Path

import numpy as np

import pytest

from paipviewer.core.imageio import ImageReadError, read_mask
from paipviewer.core.inference import InferenceError, Prediction
from paipviewer.core.metrics import confusion
from paipviewer.core.modelfile import ModelFileError
from paipviewer.core.scoring import levels_of
from paipviewer.viewer import describe
from paipviewer.viewer import events as ev
from paipviewer.viewer.catalog import ModelCatalog
from paipviewer.viewer.images import Result, expand_paths, load_pixels
from paipviewer.viewer import jobs
from paipviewer.viewer.jobs import ImageLoaded, ModelRan, Scored
from paipviewer.viewer.plan import Job, wanted
from paipviewer.viewer.session import Session
from ui_fixtures import SAMPLES, copy_samples

CARD = {"format": "paipviewer-model-card/1", "architecture": "elunet", "filters": 4, "depth": 4, "params": 1,
        "threshold": 0.35}


def test_folder_opens_with_ground_truth_paired(tmp_path):
    folder = copy_samples(tmp_path / "set", 3)
    session = Session()
    opened = session.add([folder])
    assert len(opened.images) == 3 and not opened.models and not opened.failures
    for e in opened.images:
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
    opened = session.add([good, tmp_path / "notes.txt", tmp_path / "missing.png", tmp_path / "empty"])
    assert len(opened.images) == 2
    reasons = {f.path.name: f.reason for f in opened.failures}
    assert "not an image" in reasons["notes.txt"]
    assert "no such file" in reasons["missing.png"]
    assert "no images found" in reasons["empty"]
    assert {n.source for n in session.notices} == {"notes.txt", "missing.png", "empty"}  # each also a notice


def test_reopening_does_not_duplicate(tmp_path):
    folder = copy_samples(tmp_path / "set", 2)
    session = Session()
    session.add([folder])
    assert session.add([folder]).images == [] and len(session.entries) == 2


def test_one_file_through_other_paths_and_links_is_listed_once(tmp_path):
    folder = copy_samples(tmp_path / "set", 1)
    image = next((folder / "images").glob("*.png"))
    (tmp_path / "link.png").symlink_to(image)
    os.link(image, tmp_path / "hard.png")
    session = Session()
    opened = session.add([image, folder / "images" / ".." / "images" / image.name, tmp_path / "link.png",
                          tmp_path / "hard.png"])
    assert [e.path for e in opened.images] == [image] and len(session.entries) == 1


def test_catalog_lists_a_model_once_through_links(tmp_path):
    (tmp_path / "m.json").write_text(json.dumps(CARD))
    (tmp_path / "m.keras").write_bytes(b"PK")
    (tmp_path / "linked.keras").symlink_to(tmp_path / "m.keras")
    os.link(tmp_path / "m.keras", tmp_path / "hard.keras")
    catalog = ModelCatalog()
    first = catalog.add(tmp_path / "m.keras")
    assert catalog.add(tmp_path / "linked.keras") is first and catalog.add(tmp_path / "hard.keras") is first
    assert catalog.add(tmp_path / "sub" / ".." / "m.keras") is first and len(catalog.models) == 1


def test_catalog_lists_the_shipped_models_by_size_not_by_spelling():
    from paipviewer.viewer.paths import shipped_models_dir

    catalog = ModelCatalog()
    catalog.scan(shipped_models_dir())
    stems = [m.path.stem for m in catalog.usable()]
    assert stems == ["elunet_4_4", "elunet_8_4", "elunet_8_5", "elunet_16_4", "elunet_16_5", "unet_32_5"]


def test_wrong_size_mask_keeps_the_image(tmp_path):
    folder = copy_samples(tmp_path / "set", 1)
    name = next((folder / "images").glob("*.png")).name
    mask = read_mask(folder / "masks" / name)
    from paipviewer.core.imageio import write_png_atomic
    write_png_atomic(folder / "masks" / name, mask[:100, :120].astype(np.uint8))
    image, truth, error = load_pixels(folder / "images" / name, folder / "masks" / name)
    assert image.shape == (256, 256, 3) and truth is None and "120 x 100" in error


@pytest.fixture
def session(tmp_path):
    """Two models (real cards beside placeholder files: nothing here runs them) and three sample tiles
    loaded, with probability-like maps from their ground truth plus noise; a fourth tile unloaded."""
    catalog = ModelCatalog()
    for stem, threshold in (("m", 0.35), ("n", 0.5)):
        (tmp_path / f"{stem}.json").write_text(json.dumps({**CARD, "threshold": threshold}))
        (tmp_path / f"{stem}.keras").write_bytes(b"PK")
        catalog.add(tmp_path / f"{stem}.keras")
    s = Session(catalog)
    s.add([copy_samples(tmp_path / "set", 4)])
    s.m, s.n = (str((tmp_path / f"{x}.keras").resolve()) for x in "mn")
    s.set_model(s.m)
    rng = np.random.default_rng(0)
    for e in s.entries[:3]:
        s.apply(ImageLoaded(e.key, *load_pixels(e.path, e.mask_path)))
        for model in (s.m, s.n):
            prob = np.clip(e.truth * 0.6 + rng.random(e.truth.shape) * 0.5, 0, 1).astype(np.float32)
            s.apply(ModelRan(e.key, model, Result(Prediction(prob), levels_of(prob))))
    return s


def settle_objects(s):
    """Run the nucleus assessments the state asks for, as the task layer would, until none is wanted."""
    while wanting := [j for j in wanted(s) if j.kind == "objects"]:
        for j in wanting:
            e = s.find(j.image_key)
            s.apply(jobs.assess_objects(e.key, j.model_key, e.results[j.model_key], e.truth_labels, j.threshold,
                                        s.object_settings(j.model_key), progress=lambda *_: None,
                                        cancelled=lambda: False))


def test_scores_follow_the_threshold_and_summary_is_mean_per_tile(session):
    e = session.entries[0]
    assert session.threshold(session.m) == 0.35  # the card's
    for t in (0.3, 0.375, 0.8):  # 0.375 is off the 0.01 grid: scored from the map itself
        session.set_threshold(session.m, t)
        prob = e.results[session.m].prediction.probability
        assert session.confusion(e, session.m) == confusion(prob >= t, e.truth)
        assert np.array_equal(session.mask(e, session.m), prob >= t)
    summary = session.summary(session.m)
    per_tile = [session.confusion(x, session.m).jaccard for x in session.entries[:3]]
    assert summary["count"] == 3 and np.isclose(summary["jaccard_mean"], np.mean(per_tile))
    assert session.next_unscored(session.m) is session.entries[3]


def test_the_summary_follows_threshold_and_model(session):
    """The stale-summary case: every figure is derived from the state when asked, never kept."""
    before = describe.summary_lines(session)[0]
    session.set_threshold(session.m, 0.81)
    after = describe.summary_lines(session)[0]
    assert before != after and "@ 0.81" in after
    c = session.confusion(session.entries[0], session.m)
    assert f"J {c.jaccard:.3f}" in describe.row_lines(session, session.entries[0])[1]
    session.set_model(session.n)
    assert describe.summary_lines(session)[0].startswith(session.label(session.n) + " @ 0.50")


def test_every_change_is_announced(session):
    heard = []
    for name in (ev.IMAGES, ev.CURRENT, ev.ENTRY, ev.MODELS, ev.THRESHOLD, ev.LAYERS, ev.RUNNING, ev.NOTICE):
        session.events.connect(name, lambda *args, n=name: heard.append((n, *args)))
    e = session.entries[1]
    session.select(e.key)
    session.set_threshold(session.m, 0.6)
    session.set_threshold(session.m, 0.6)  # no change, no announcement
    session.set_compare(session.n)
    session.set_layer("truth", True)
    session.stop()
    session.resume()
    assert [h[0] for h in heard] == [ev.CURRENT, ev.THRESHOLD, ev.MODELS, ev.LAYERS, ev.RUNNING, ev.RUNNING]
    assert heard[1] == (ev.THRESHOLD, session.m)


def test_models_start_at_their_cards_and_never_compare_with_themselves(session):
    session.set_compare(session.n)
    assert session.threshold(session.n) == 0.5 and session.compare_key == session.n
    session.set_compare(session.m)  # the primary itself
    assert session.compare_key == ""
    session.set_compare(session.n)
    session.set_model(session.n)  # the compared model becomes primary: no self-comparison
    assert session.model_key == session.n and session.compare_key == ""


def test_what_runs_next(session):
    s = session
    fourth = s.entries[3]
    s.select(fourth.key)
    assert wanted(s) == [Job("load", "load", fourth.key, "")]
    s.apply(ImageLoaded(fourth.key, *load_pixels(fourth.path, fourth.mask_path)))
    s.set_compare(s.n)
    assert wanted(s) == [Job("primary", "run", fourth.key, s.m), Job("compare", "run", fourth.key, s.n)]
    prob = np.zeros((256, 256), np.float32)
    s.apply(ModelRan(fourth.key, s.m, Result(Prediction(prob), levels_of(prob))))
    s.apply(ModelRan(fourth.key, s.n, Result(Prediction(prob), levels_of(prob))))
    # then each model's nuclei on it at its threshold, before any background work
    assert wanted(s) == [Job("objects", "objects", fourth.key, s.m, 0.35),
                         Job("objects_compare", "objects", fourth.key, s.n, 0.5)]
    settle_objects(s)
    assert wanted(s) == []  # everything is scored, and its nuclei known
    s.entries[0].results.clear()
    assert wanted(s) == [Job("background", "score", s.entries[0].key, s.m)]
    s.stop()  # Esc: nothing runs, not even in the background, until the user asks again
    assert wanted(s) == []
    s.select(s.entries[0].key)  # choosing an image is asking
    first = s.entries[0].key
    assert not s.stopped and wanted(s) == [Job("primary", "run", first, s.m), Job("compare", "run", first, s.n)]
    s.background = False
    s.select(fourth.key)
    assert wanted(s) == []


def test_failures_are_reported_against_what_failed(session):
    s = session
    s.set_model(s.n)
    s.set_model(s.m)  # n was used before m
    second = s.entries[1]
    # a model that cannot load: listed with its reason, and the work goes on with the previous model
    s.fail(Job("primary", "run", second.key, s.m), ModelFileError("m.keras: not a Keras model file"))
    assert s.model_key == s.n and not s.usable(s.m) and "not a Keras model file" in s.catalog.find(s.m).error
    assert s.notices[-1].source == "m.keras" and "m.keras" not in s.notices[-1].message  # named once
    # an unreadable image is the image's fault; the model stays usable and scoring moves on
    fourth = s.entries[3]
    s.fail(Job("background", "score", fourth.key, s.n), ImageReadError(f"{fourth.name}: cannot read the file"))
    assert fourth.error == "cannot read the file" and s.usable(s.n)
    assert s.next_unscored(s.n) is None
    # a model failing on one image is that pair's failure, not the model's or the image's
    second.results.pop(s.n)
    s.fail(Job("background", "score", second.key, s.n), InferenceError("N failed on this image: odd size"))
    assert second.failures[s.n] and second.error is None and s.usable(s.n) and s.next_unscored(s.n) is None
    assert "failed" in describe.row_lines(s, second)[1]
    s.select(second.key)  # asking again retries it
    assert s.n not in second.failures and wanted(s) == [Job("primary", "run", second.key, s.n)]


def plain_tile(tmp_path) -> Path:
    """A sample tile alone in a folder: an image without ground truth."""
    (tmp_path / "plain").mkdir()
    src = sorted((SAMPLES / "images").glob("*.png"))[5]
    shutil.copy(src, tmp_path / "plain" / src.name)
    return tmp_path / "plain" / src.name


def test_layer_sets_are_per_kind_of_image(session, tmp_path):
    s = session
    annotated = s.entries[0]
    plain = s.add([plain_tile(tmp_path)]).images[0]
    assert plain.kind == "plain" and annotated.kind == "annotated"
    s.apply(ImageLoaded(plain.key, *load_pixels(plain.path, None)))
    assert s.layers(plain).prediction and s.layers(plain).outline and not s.layers(plain).errors
    assert s.layers(annotated).errors and not s.layers(annotated).prediction
    s.select(plain.key)
    s.set_layer("probability", True)  # for images like this one only
    assert s.layers(plain).probability and not s.layers(annotated).probability


def test_images_without_ground_truth_show_nuclei_and_area(session, tmp_path):
    s = session
    plain = s.add([plain_tile(tmp_path)]).images[0]
    image, _, _ = load_pixels(plain.path, None)
    s.apply(ImageLoaded(plain.key, image, None, None))
    truth = read_mask(SAMPLES / "masks" / plain.name)  # only to make a realistic map
    prob = np.where(truth, 0.9, 0.1).astype(np.float32)
    s.apply(ModelRan(plain.key, s.m, Result(Prediction(prob), levels_of(prob))))
    mask = prob >= s.threshold(s.m)
    assert describe.metric_column(s, plain, s.m)["nuclei"] == "…"  # counted off the UI thread
    assert "% of area" in describe.view_title(s, plain, s.m, False)  # until then, the area
    settle_objects(s)
    column = describe.metric_column(s, plain, s.m)
    from paipviewer.core.objects import label_nuclei
    assert column["jaccard"] == describe.NO_TRUTH and column["nuclei"] == f"{int(label_nuclei(mask).max()):,}"
    assert not column.get("aji") and not column.get("pq")  # blank without ground truth
    assert column["area"].endswith(f"({int(mask.sum()):,} px)")
    assert f"{int(label_nuclei(mask).max()):,} nuclei" in describe.view_title(s, plain, s.m, False)
    assert "% of area" in describe.row_lines(s, plain)[1]


def test_a_wrong_size_mask_says_so_everywhere(session, tmp_path):
    s = session
    e = s.entries[3]
    image, _, _ = load_pixels(e.path, None)
    error = f"{e.mask_path.name}: mask is 120 x 100 but the image is 256 x 256"
    s.apply(ImageLoaded(e.key, image, None, error))
    note = describe.truth_note(e)
    assert note == "ground truth not used: mask is 120 x 100 but the image is 256 x 256"
    assert note in describe.row_lines(s, e) and "is not used" in describe.row_tooltip(e)
    assert s.notices[-1].source == e.mask_path.name and e.mask_path.name not in s.notices[-1].message


def test_background_results_fill_unloaded_images(session):
    s = session
    fourth = s.entries[3]
    loaded = ImageLoaded(fourth.key, *load_pixels(fourth.path, fourth.mask_path))
    prob = np.zeros((256, 256), np.float32)
    s.apply(Scored(loaded, ModelRan(fourth.key, s.m, Result(Prediction(prob), levels_of(prob)))))
    assert fourth.loaded and fourth.truth is not None and s.m in fourth.results


def test_catalog_reads_cards_without_keras_and_lists_broken_files(tmp_path):
    card = {"format": "paipviewer-model-card/1", "architecture": "elunet", "filters": 8, "depth": 5,
            "params": 123, "training": {"data": "PAIP 2023 train", "learning_rate": 5e-4, "loss": "bce_dice",
                                        "batch_size": 8, "augment": True, "stain_augment": True,
                                        "device": "NVIDIA H200"},
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
    assert "Adam 0.0005, bce_dice, batch 8, augmented, HED stain jitter, on NVIDIA H200" in text
    assert "validation Dice 0.791 (96 tiles)" in text


def test_main_module_does_not_import_tensorflow():
    import subprocess
    import sys
    code = ("import sys, paipviewer.__main__, paipviewer.ui.app; "
            "sys.exit(any(m.split('.')[0] in ('tensorflow', 'keras') for m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], env={"QT_QPA_PLATFORM": "offscreen",
                                                            "PATH": "/usr/bin"}).returncode == 0


def test_changing_the_views_drops_every_result_and_plans_runs_with_the_new_views(session):
    s = session
    s.set_compare(s.n)
    first = s.entries[0]
    s.select(first.key)
    truth_count = s.truth_count(first)
    assert s.views == 1 and first.results and not [j for j in wanted(s) if j.kind == "run"]
    seen = []
    s.events.connect(ev.MODELS, lambda: seen.append("models"))
    s.set_views(8)
    assert s.views == 8 and seen == ["models"]
    assert all(not e.results and not any(len(k) > 1 for k in e.derived) for e in s.entries)
    assert s.truth_count(first) == truth_count  # the ground truth did not change
    runs = [j for j in wanted(s) if j.kind == "run"]
    assert {(j.model_key, j.views) for j in runs} == {(s.m, 8), (s.n, 8)}
    # A run that started with one view and finishes now is another way of predicting: not kept.
    prob = np.full((256, 256), 0.9, np.float32)
    s.apply(ModelRan(first.key, s.m, Result(Prediction(prob, views=1), levels_of(prob))))
    assert s.m not in first.results
    s.apply(ModelRan(first.key, s.m, Result(Prediction(prob, views=8), levels_of(prob))))
    assert s.m in first.results and "8 views" in describe.metric_column(s, first, s.m)["runtime"]
    with pytest.raises(ValueError, match="views must be one of"):
        s.set_views(3)
    seen.clear()
    s.set_views(8)
    assert seen == [] and s.m in first.results  # the same views again changes nothing
