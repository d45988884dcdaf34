"""The main window on real tiles with real (untrained) models: opening, dropping, running, overlays,
threshold, side by side, images without ground truth, stop, nothing stale, problems, bring your own
model, reading aids, fitting the screen, shortcuts, settings and closing."""
from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
import pytest

from paipviewer.core.metrics import confusion
from paipviewer.core.inference import Cancelled
from paipviewer.core.scoring import levels_of
from paipviewer.ui.app import build_window
from paipviewer.ui.settings import Settings
from paipviewer.viewer import jobs
from paipviewer.viewer.images import Result, load_pixels
from paipviewer.viewer.jobs import ModelRan
from paipviewer.viewer.layers import PALETTE, compose
from paipviewer.ui.shortcuts import SHORTCUTS, ShortcutsDialog
from helpers import huge_png, make_model_file
from ui_fixtures import copy_samples, drop_event

TIMEOUT = 120_000  # the first run imports TensorFlow on two busy cores


@pytest.fixture
def samples(tmp_path):
    return copy_samples(tmp_path / "tiles", 3)


def make_window(qtbot, tmp_path, models, cache, settings=None):
    w = build_window([], model=str(models[0]), models_dir=str(models[0].parent),
                     settings=settings or Settings(tmp_path / "settings.ini"), background_scoring=False, cache=cache)
    qtbot.addWidget(w)
    w.show()
    return w


@pytest.fixture
def window(qtbot, tmp_path, models, cache):
    w = make_window(qtbot, tmp_path, models, cache)
    yield w
    w.close()


def wait_done(qtbot, w, model=None):
    model = model or w.model_key
    # bool(): pytest-qt takes a callback that returns None for one that passed
    qtbot.waitUntil(lambda: bool(w.is_idle() and w.current_entry() is not None
                                 and (model in w.current_entry().results or w.current_entry().error)),
                    timeout=TIMEOUT)


def expected_overlay(w, entry):
    a = w.session.mask(entry, w.model_key)
    b = w.session.mask(entry, w.compare_key) if w.compare_key else None
    return compose(entry.image.shape[:2], w.session.layers(entry), a, entry.truth, b)


def test_open_runs_model_and_shows_scores(window, qtbot, samples):
    with qtbot.waitSignal(window.opened):
        window.open_paths([samples])
    wait_done(qtbot, window)
    entry = window.current_entry()
    assert entry.truth is not None and entry.image.shape == (256, 256, 3)
    c = confusion(entry.results[window.model_key].prediction.probability >= 0.5, entry.truth)
    assert window.metrics_panel.value(0, "jaccard") == f"{c.jaccard:.3f}"
    assert window.metrics_panel.value(0, "tp") == f"{c.tp:,}"
    assert float(window.metrics_panel.value(0, "inference")) >= 0
    assert window.metrics_panel.value(0, "runtime") == "Keras"  # the tests' models have no .onnx
    assert np.array_equal(window.view.overlay_array(), expected_overlay(window, entry))
    assert f"ELU-Net 4/3: J {c.jaccard:.3f}" in window.image_list.item_of(entry.key).text()  # names its model
    assert "mean per-tile Jaccard" in window.metrics_panel.summary.text()
    assert window.layers_panel.legend_keys() == ["tp", "fp", "fn"]


def test_drop_of_folder_and_files(window, qtbot, samples, tmp_path):
    (tmp_path / "notes.txt").write_text("not an image")
    window.dropEvent(drop_event([samples, tmp_path / "notes.txt"]))  # as QWidget::event delivers it
    assert len(window.session.entries) == 3
    texts = [window.image_list.item(i).text() for i in range(window.image_list.count())]
    assert any("notes.txt" in t and "not an image" in t for t in texts)
    assert any("not an image" in m for m in window.notifications.messages())
    wait_done(qtbot, window)
    window.dropEvent(drop_event(text="just some text"))
    assert "Nothing to open" in window.notifications.messages()[0] and len(window.session.entries) == 3


def test_stale_result_is_never_drawn_on_another_image(window, qtbot, samples, cache):
    window.open_paths([samples])
    a, b = window.session.entries[:2]
    window.select(b.key)  # leave A before its load or inference is done
    wait_done(qtbot, window)
    assert window.current_key == b.key
    assert np.array_equal(window.view.overlay_array(), expected_overlay(window, b))
    # A's result arriving late (its task long replaced) is kept for A but not drawn.
    image, _, _ = load_pixels(a.path, a.mask_path)
    late = jobs.run_model(cache, window.model_key, image, progress=lambda *_: None, cancelled=lambda: False)
    before = window.view.overlay_array().copy()
    window.session.apply(ModelRan(a.key, window.model_key, late))
    assert np.array_equal(window.view.overlay_array(), before)
    assert a.results[window.model_key] is late and window.current_key == b.key


def test_layer_toggles_opacity_and_outline(window, qtbot, samples):
    window.open_paths([samples])
    wait_done(qtbot, window)
    entry = window.current_entry()
    window.actions["toggle_errors"].trigger()
    assert not window.session.layers().errors and not window.view.overlay_array()[..., 3].any()
    window.actions["toggle_truth"].trigger()
    overlay = window.view.overlay_array()
    assert (overlay[entry.truth, :3] == PALETTE["truth"]).all() and not overlay[~entry.truth, 3].any()
    window.actions["toggle_outline"].trigger()
    assert window.view.overlay_array()[..., 3].sum() < overlay[..., 3].sum()
    window.actions["toggle_probability"].trigger()
    assert np.array_equal(window.view.overlay_array(), expected_overlay(window, entry))
    result = entry.results[window.model_key]
    assert np.array_equal(window.view.probability_array()[..., 3] > 0, result.prediction.probability >= 0.06)
    assert window.layers_panel.colour_bar.isVisibleTo(window.layers_panel)
    window.layers_panel.opacity.setValue(25)  # what dragging does, one step at a time
    assert window.view.overlay_item.opacity() == pytest.approx(0.25)


def test_threshold_recomputes_mask_and_metrics_without_rerunning(window, qtbot, samples):
    window.open_paths([samples])
    wait_done(qtbot, window)
    entry = window.current_entry()
    result = entry.results[window.model_key]
    prob = result.prediction.probability
    value = int(np.clip(np.median(prob) * 100, 1, 99))
    window.layers_panel.threshold.setValue(value)
    c = confusion(prob >= value / 100, entry.truth)
    assert window.metrics_panel.value(0, "jaccard") == f"{c.jaccard:.3f}"
    assert window.metrics_panel.value(0, "fp") == f"{c.fp:,}"
    assert not window.scheduler.running and entry.results[window.model_key] is result


def test_each_model_is_cut_at_its_cards_threshold_until_the_slider_moves(qtbot, tmp_path, cache, samples):
    folder = tmp_path / "calibrated"
    folder.mkdir()
    a = make_model_file(folder, "elunet", 4, 3, threshold=0.45)
    b = make_model_file(folder, "unet", 4, 3, threshold=0.12)  # its untrained probabilities lie near 0.15
    w = make_window(qtbot, tmp_path, (a, b), cache)
    assert w.layers_panel.threshold_label.text() == "0.45"
    w.open_paths([samples])
    wait_done(qtbot, w)
    key_a, key_b = w.model_key, str(b.resolve())
    w.model_panel.select(key_b, compare=True)
    wait_done(qtbot, w, key_b)
    entry = w.current_entry()
    differs = []
    for key, t in ((key_a, 0.45), (key_b, 0.12)):
        prob = entry.results[key].prediction.probability
        assert w.session.confusion(entry, key) == confusion(prob >= t, entry.truth)
        differs.append(confusion(prob >= t, entry.truth) != confusion(prob >= 0.5, entry.truth))
    assert any(differs)  # the check can fail: at 0.5 some figure would be different
    c = w.session.confusion(entry, key_a)
    assert w.metrics_panel.value(0, "jaccard") == f"{c.jaccard:.3f}"
    w.layers_panel.threshold.setValue(60)  # the user's choice moves the primary model only
    assert w.session.threshold(key_a) == 0.6 and w.session.threshold(key_b) == 0.12
    w.model_panel.select("", compare=True)
    w.model_panel.select(key_b)
    assert w.layers_panel.threshold_label.text() == "0.12"
    w.model_panel.select(key_a)
    assert w.layers_panel.threshold_label.text() == "0.60"  # kept while the session lasts
    w.close()


def test_side_by_side_linked_views_and_disagreement(window, qtbot, samples, models):
    window.open_paths([samples])
    wait_done(qtbot, window)
    other = str(models[1].resolve())
    window.model_panel.select(other, compare=True)
    assert window.compare_view.isVisible()
    wait_done(qtbot, window, other)
    entry = window.current_entry()
    a, b = window.session.mask(entry, window.model_key), window.session.mask(entry, other)
    assert window.metrics_panel.value(1, "jaccard") == f"{confusion(b, entry.truth).jaccard:.3f}"
    assert window.metrics_panel.table.horizontalHeaderItem(1).text() == "U-Net 4/3"
    window.layers_panel.boxes["errors"].setChecked(False)
    window.actions["toggle_disagree"].trigger()
    assert window.session.layers().disagree
    overlay = window.view.overlay_array()
    assert (overlay[..., 3] > 0).sum() == (a != b).sum()
    assert window.model_panel.compare_box.findData(window.model_key) == -1  # never compared with itself
    qtbot.waitUntil(lambda: abs(window.view.width() - window.compare_view.width()) <= 1)  # each its share
    assert "@ 0.50" in window.compare_view.title.text  # each view shows its own threshold
    window.view.viewbox.setRange(xRange=(10, 60), yRange=(20, 70), padding=0)
    (x0, x1), (y0, y1) = window.compare_view.viewbox.viewRange()
    # linked means the same centre at the same zoom
    assert ((x0 + x1) / 2, (y0 + y1) / 2) == pytest.approx((35, 45), abs=1)
    assert window.compare_view.zoom() == pytest.approx(window.view.zoom(), rel=1e-3)


def test_changing_model_reruns_current_image(window, qtbot, samples, models):
    window.open_paths([samples])
    wait_done(qtbot, window)
    other = str(models[1].resolve())
    window.model_panel.select(other)
    assert window.model_key == other
    wait_done(qtbot, window, other)
    assert window.metrics_panel.table.horizontalHeaderItem(0).text() == "U-Net 4/3"


def test_bad_input_is_reported_and_everything_else_works(window, qtbot, samples, tmp_path, models):
    (tmp_path / "corrupt.png").write_bytes(b"GIF89a truncated, renamed to .png" * 10)
    huge_png(tmp_path / "huge.png")
    window.open_paths([tmp_path / "corrupt.png", tmp_path / "huge.png", samples])
    corrupt, huge = window.session.entries[:2]
    window.select(corrupt.key)
    qtbot.waitUntil(lambda: corrupt.error is not None, timeout=TIMEOUT)
    assert "not a readable" in corrupt.error and "not a readable" in window.image_list.item_of(corrupt.key).text()
    window.select(huge.key)
    qtbot.waitUntil(lambda: huge.error is not None, timeout=TIMEOUT)
    assert "too large" in huge.error
    window.step(1)
    wait_done(qtbot, window)
    good = window.current_entry()
    assert good.error is None and window.model_key in good.results
    # a mask of the wrong size chosen by hand is refused, the old ground truth stays
    truth = good.truth
    assert "too large" in window.set_truth(good, tmp_path / "huge.png")
    assert good.truth is truth and "too large" in window.notifications.messages()[0]
    names = [window.notifications.topLevelItem(i).text(1) for i in range(window.notifications.topLevelItemCount())]
    assert {"corrupt.png", "huge.png"} <= set(names)
    for i in range(window.notifications.topLevelItemCount()):  # a message never repeats its file's name
        item = window.notifications.topLevelItem(i)
        assert item.text(1) not in item.text(2)


def test_dropped_broken_model_is_listed_with_its_reason_but_not_selected(window, qtbot, samples, tmp_path, models):
    window.open_paths([samples])
    wait_done(qtbot, window)
    working = window.model_key
    broken = tmp_path / "broken.keras"  # its card is fine, the file is not a model
    broken.write_bytes(b"not a zip")
    broken.with_suffix(".json").write_text(models[0].with_suffix(".json").read_text())
    window.dropEvent(drop_event([broken]))
    info = window.session.catalog.find(str(broken.resolve()))
    qtbot.waitUntil(lambda: info.error is not None, timeout=TIMEOUT)
    assert window.model_key == working and "not a Keras model file" in window.notifications.messages()[0]
    assert str(broken.resolve()) not in window.settings.model_files  # not offered again next start
    window.step(1)  # scoring goes on with the working model
    wait_done(qtbot, window, working)
    # a model that loads is selected once it has
    window.dropEvent(drop_event([models[1]]))
    qtbot.waitUntil(lambda: window.model_key == str(models[1].resolve()), timeout=TIMEOUT)
    wait_done(qtbot, window)


def test_a_broken_primary_model_hands_over_to_the_previous_one(window, qtbot, samples, tmp_path, models):
    window.open_paths([samples])
    wait_done(qtbot, window)
    working = window.model_key
    broken = tmp_path / "late.keras"
    broken.write_bytes(b"not a zip")
    broken.with_suffix(".json").write_text(models[0].with_suffix(".json").read_text())
    key = window.session.catalog.add(broken).key  # listed by its card; the file is only tried when it runs
    window.set_model(key)
    qtbot.waitUntil(lambda: window.session.catalog.find(key).error is not None, timeout=TIMEOUT)
    assert window.model_key == working and "using" in window.notifications.messages()[0]
    window.step(1)
    wait_done(qtbot, window, working)


def test_unreadable_image_in_background_scoring_is_the_images_fault(qtbot, tmp_path, models, cache, samples,
                                                                     monkeypatch):
    from helpers import make_unreadable

    images = sorted((samples / "images").glob("*.png"))
    make_unreadable(images[1], monkeypatch)
    w = build_window([], model=str(models[0]), models_dir=str(models[0].parent),
                     settings=Settings(tmp_path / "settings.ini"), background_scoring=True, cache=cache)
    qtbot.addWidget(w)
    w.open_paths([samples])
    locked = w.session.find(str(images[1]))
    others = [e for e in w.session.entries if e is not locked]
    qtbot.waitUntil(lambda: all(w.model_key in e.results for e in others), timeout=TIMEOUT)
    assert "cannot read the file" in locked.error and "Permission denied" in locked.error
    info = w.session.catalog.find(w.model_key)
    assert info.card is not None and info.error is None
    assert "cannot read" in w.image_list.item_of(locked.key).text()
    w.close()


def test_close_during_inference_cancels_and_waits(window, qtbot, samples):
    window.open_paths([samples])
    wait_done(qtbot, window)
    window.select(window.session.entries[2].key)
    qtbot.waitUntil(lambda: bool(window.scheduler.running), timeout=TIMEOUT)
    window.close()  # while loading or running: cancels, waits, closes
    assert window.scheduler.pool.active() == 0


def test_shortcuts_bind_from_the_table(window, qtbot, samples):
    from PySide6.QtCore import Qt
    for s in SHORTCUTS:
        assert window.actions[s.action].shortcut().toString() == s.key
    window.open_paths([samples])
    window.activateWindow()
    qtbot.keyClick(window, Qt.Key_1)
    assert not window.session.layers().errors
    qtbot.keyClick(window.image_list, Qt.Key_O)
    assert window.session.layers().outline
    first = window.current_key
    qtbot.keyClick(window, Qt.Key_PageDown)
    assert window.current_key == window.session.entries[1].key
    qtbot.keyClick(window, Qt.Key_PageUp)
    assert window.current_key == first
    wait_done(qtbot, window)
    dialog = ShortcutsDialog(window)
    assert dialog.table.rowCount() == len(SHORTCUTS)
    assert dialog.table.item(0, 0).text() == SHORTCUTS[0].key


def test_settings_persist(qtbot, tmp_path, models, cache, samples):
    path = tmp_path / "settings.ini"
    w = make_window(qtbot, tmp_path, models, cache, Settings(path))
    w.layers_panel.opacity.setValue(30)
    w.open_paths([samples])
    w.layers_panel.boxes["outline"].setChecked(True)  # for images with ground truth, as these
    wait_done(qtbot, w)
    w.close()
    s = Settings(path)
    assert s.opacity == pytest.approx(0.3) and s.layer_set("annotated").outline and not s.layer_set("plain").errors
    assert s.model == w.model_key or s.model == ""
    assert s.last_folder.endswith("images")
    w2 = make_window(qtbot, tmp_path, models, cache, s)
    assert w2.layers_panel.opacity.value() == 30 and w2.session.layer_sets["annotated"].outline
    w2.open_paths([samples])
    assert w2.layers_panel.outline.isChecked()  # shown for the image's kind
    w2.close()


def test_any_image_size_is_tiled_and_stitched(window, qtbot, samples, tmp_path):
    from paipviewer.core.imageio import read_image, read_mask, write_png_atomic
    tiles = [read_image(p) for p in sorted((samples / "images").glob("*.png"))[:2]]
    odd = np.concatenate(tiles, axis=1)[:200, :450]  # 450 x 200: not a multiple of the tile size
    write_png_atomic(tmp_path / "odd.png", odd)
    window.open_paths([tmp_path / "odd.png"])
    wait_done(qtbot, window)
    entry = window.current_entry()
    assert entry.truth is None and entry.results[window.model_key].prediction.probability.shape == (200, 450)
    assert window.metrics_panel.value(0, "jaccard") == "no ground truth"
    window.session.set_layer("errors", True)  # so both kinds show TP/FP/FN once there is ground truth
    assert window.view.overlay_array().shape == (200, 450, 4)
    # ground truth chosen by hand: a mask of the right size pairs, and the scores appear
    masks = [read_mask(p) for p in sorted((samples / "masks").glob("*.png"))[:2]]
    write_png_atomic(tmp_path / "odd_truth.png", np.concatenate(masks, axis=1)[:200, :450].astype(np.uint8))
    assert window.set_truth(entry, tmp_path / "odd_truth.png") is None
    c = confusion(window.session.mask(entry, window.model_key), entry.truth)
    assert window.metrics_panel.value(0, "jaccard") == f"{c.jaccard:.3f}"
    # the same nuclei drawn in QuPath (GeoJSON) pair alike
    from paipviewer.core import geojson
    from paipviewer.core.imageio import read_labels
    drawn = read_labels(tmp_path / "odd_truth.png")
    geojson.write(tmp_path / "odd_truth.geojson", geojson.features(drawn))
    assert window.set_truth(entry, tmp_path / "odd_truth.geojson") is None
    assert np.array_equal(entry.truth, drawn > 0) and entry.mask_path.suffix == ".geojson"
    assert window.metrics_panel.value(0, "jaccard") == f"{c.jaccard:.3f}"


def test_inference_cancels_between_batches_of_a_large_image(samples, models, cache):
    from paipviewer.core.imageio import read_image
    tiles = [read_image(p) for p in sorted((samples / "images").glob("*.png"))]
    big = np.concatenate([np.concatenate(tiles, axis=1)] * 3, axis=0)  # 768 x 768: many tiles, many batches
    seen = []

    def cancelled():
        return len(seen) >= 1  # the user pressed Cancel after the first batch

    with pytest.raises(Cancelled):
        jobs.run_model(cache, str(models[0].resolve()), big, progress=lambda d, t: seen.append((d, t)),
                       cancelled=cancelled)
    assert len(seen) == 1 and seen[0][1] > seen[0][0]


def test_wheel_zoom_is_bounded_both_ways(window, qtbot, samples):
    from PySide6.QtCore import QPoint, QPointF, Qt
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QApplication

    from paipviewer.ui.image_view import MIN_RANGE_PX
    window.open_paths([samples])
    wait_done(qtbot, window)
    viewport = window.view.viewport()
    centre = QPointF(viewport.width() / 2, viewport.height() / 2)

    def wheel(delta, steps):
        for _ in range(steps):
            QApplication.sendEvent(viewport, QWheelEvent(centre, viewport.mapToGlobal(centre), QPoint(),
                                                         QPoint(0, delta), Qt.NoButton, Qt.NoModifier,
                                                         Qt.NoScrollPhase, False))

    wheel(120, 400)  # far past any useful zoom: pyqtgraph alone reached [nan, nan] and raised
    (x0, x1), (y0, y1) = window.view.viewbox.viewRange()
    assert min(x1 - x0, y1 - y0) >= MIN_RANGE_PX * 0.99
    wheel(-120, 800)
    (x0, x1), (y0, y1) = window.view.viewbox.viewRange()
    assert max(x1 - x0, y1 - y0) <= 10 * 256 * 1.01
    wait_done(qtbot, window)


def test_a_dropped_slide_opens_in_its_own_window(window, qtbot, tmp_path):
    from conftest import _data

    from paipviewer.ui import app

    slide = _data("slides") / "mosaic_20x.svs"
    before = len(app._SLIDE_WINDOWS)
    window.dropEvent(drop_event([slide]))
    assert len(app._SLIDE_WINDOWS) == before + 1 and not window.session.entries  # not "not an image"
    opened = app._SLIDE_WINDOWS.pop()
    qtbot.addWidget(opened)
    assert opened.path == slide and opened.isVisible()
    opened.close()


def test_average_8_views_runs_again_with_test_time_augmentation_and_is_kept(qtbot, tmp_path, models, cache, samples):
    from paipviewer.core.inference import predict_image

    path = tmp_path / "settings.ini"
    w = make_window(qtbot, tmp_path, models, cache, Settings(path))
    w.open_paths([samples])
    wait_done(qtbot, w)
    entry = w.current_entry()
    one = entry.results[w.model_key].prediction
    assert one.views == 1 and w.metrics_panel.value(0, "runtime") == "Keras"
    action = w.actions["views"]
    assert action.isCheckable() and not action.isChecked() and action in w.menuBar().actions()[2].menu().actions()
    action.setChecked(True)
    assert w.model_key not in entry.results  # the one-view map is gone at once, never shown as the new one
    wait_done(qtbot, w)
    eight = entry.results[w.model_key].prediction
    assert eight.views == 8 and w.metrics_panel.value(0, "runtime") == "Keras, 8 views"
    loaded, _ = cache.get(w.model_key)
    expected = predict_image(loaded.model, entry.image, loaded.card.equalize, views=8).probability
    np.testing.assert_allclose(eight.probability, expected, atol=1e-5)
    c = confusion(eight.probability >= w.session.threshold(w.model_key), entry.truth)
    assert w.metrics_panel.value(0, "jaccard") == f"{c.jaccard:.3f}"
    w.close()
    assert Settings(path).views == 8
    w2 = make_window(qtbot, tmp_path, models, cache, Settings(path))
    assert w2.session.views == 8 and w2.actions["views"].isChecked()
    w2.actions["views"].setChecked(False)
    assert w2.session.views == 1 and Settings(path).views == 1
    w2.close()
