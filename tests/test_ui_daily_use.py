"""The viewer as a pathologist uses it every day: images without ground truth, Stop that stops,
figures that never go stale, a model brought without a card, reading aids, a small screen."""
from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import shutil

import numpy as np
import pytest

from paipviewer.core.metrics import confusion
from paipviewer.core.modelfile import card_path
from paipviewer.core.objects import label_nuclei
from paipviewer.ui.app import build_window
from paipviewer.ui.settings import Settings
from paipviewer.viewer import jobs
from paipviewer.viewer.layers import PALETTE
from ui_fixtures import SAMPLES, copy_samples, drop_event

TIMEOUT = 120_000


def open_window(qtbot, tmp_path, models, cache, background=False, compare=None):
    w = build_window([], model=str(models[0]), compare=compare, models_dir=str(models[0].parent),
                     settings=Settings(tmp_path / "settings.ini"), background_scoring=background, cache=cache)
    qtbot.addWidget(w)
    w.show()
    return w


def done(w, model=None):
    model = model or w.model_key
    entry = w.current_entry()
    return bool(w.is_idle() and entry is not None and (model in entry.results or entry.error))


def test_an_image_without_ground_truth_shows_the_prediction_and_counts_nuclei(qtbot, tmp_path, models, cache):
    src = sorted((SAMPLES / "images").glob("*.png"))[4]
    (tmp_path / "mine").mkdir()
    shutil.copy(src, tmp_path / "mine" / "slide_region.png")
    w = open_window(qtbot, tmp_path, models, cache)
    w.open_paths([tmp_path / "mine" / "slide_region.png"])
    qtbot.waitUntil(lambda: done(w), timeout=TIMEOUT)
    entry = w.current_entry()
    mask = w.session.mask(entry, w.model_key)
    overlay = w.view.overlay_array()
    assert mask.any() and entry.truth is None
    assert (overlay[..., 3] > 0).any() and (overlay[overlay[..., 3] > 0, :3] == PALETTE["prediction"]).all()
    assert w.layers_panel.legend_keys() == ["prediction"]
    assert w.metrics_panel.value(0, "nuclei") == f"{int(label_nuclei(mask).max()):,}"
    assert f"({int(mask.sum()):,} px)" in w.metrics_panel.value(0, "area")
    assert "no ground truth" in w.metrics_panel.value(0, "jaccard")
    assert "1/1 images scored" in w.metrics_panel.summary.text()
    w.layers_panel.threshold.setValue(60)  # while dragging the count waits; once the slider rests it follows
    prob = entry.results[w.model_key].prediction.probability
    assert w.metrics_panel.value(0, "nuclei") in ("…", f"{int(label_nuclei(prob >= 0.6).max()):,}")
    qtbot.waitUntil(lambda: w.metrics_panel.value(0, "nuclei") == f"{int(label_nuclei(prob >= 0.6).max()):,}", timeout=2000)
    assert f"{int(label_nuclei(prob >= 0.6).max()):,} nuclei" in w.view.title.text
    w.actions["toggle_probability"].trigger()  # the probability map on one key
    assert w.view.probability_array() is not None
    w.close()


def test_stop_means_stop_until_the_user_asks_again(qtbot, tmp_path, models, cache):
    w = open_window(qtbot, tmp_path, models, cache, background=True)
    w.open_paths([copy_samples(tmp_path / "tiles", 6)])
    qtbot.waitUntil(lambda: bool(w.scheduler.running), timeout=TIMEOUT)
    w.actions["cancel"].trigger()  # Esc
    assert w.session.stopped and not w.scheduler.running
    qtbot.wait(800)  # background scoring must not start again by itself
    assert not w.scheduler.running and "Stopped" in w.status.text()
    scored = [e.key for e in w.session.entries if w.model_key in e.results]
    if w.model_key not in w.current_entry().results:
        assert "Stopped" in w.view.message_text()
    w.actions["cancel"].trigger()  # a second Esc changes nothing and raises nothing
    assert w.session.stopped
    # clicking the selected row asks again: the image runs, then background scoring goes on
    item = w.image_list.item_of(w.current_key)
    w.image_list.itemClicked.emit(item)
    assert not w.session.stopped and "Stopped" not in w.view.message_text()
    qtbot.waitUntil(lambda: all(w.model_key in e.results for e in w.session.entries), timeout=TIMEOUT)
    assert len(scored) < len(w.session.entries)
    w.close()


def test_every_figure_follows_the_threshold_and_the_models(qtbot, tmp_path, models, cache):
    a, b = (str(m.resolve()) for m in models)
    w = open_window(qtbot, tmp_path, models, cache, background=True, compare=b)
    w.open_paths([copy_samples(tmp_path / "tiles", 4)])
    qtbot.waitUntil(lambda: all(a in e.results and b in e.results for e in w.session.entries), timeout=TIMEOUT)
    entry = w.current_entry()
    w.layers_panel.threshold.setValue(81)  # the left model only
    c = confusion(entry.results[a].prediction.probability >= 0.81, entry.truth)
    assert w.metrics_panel.value(0, "jaccard") == f"{c.jaccard:.3f}"
    assert "@ 0.81" in w.view.title.text and f"Jaccard {c.jaccard:.3f}" in w.view.title.text
    assert "@ 0.50" in w.compare_view.title.text  # the compared model keeps its own
    assert "@ 0.81" in w.summary_label.text()
    per_tile = np.mean([w.session.confusion(e, a).jaccard for e in w.session.entries])
    assert f"mean per-tile Jaccard {per_tile:.3f}" in w.metrics_panel.summary.text()
    qtbot.waitUntil(lambda: f"J {c.jaccard:.3f}" in w.image_list.item_of(entry.key).text(), timeout=2000)
    # switching the main model: the summary names it, and background scoring finishes with it
    w.model_panel.select(b)
    assert w.summary_label.text().startswith("U-Net 4/3")
    assert w.compare_key == "" and w.model_panel.compare_box.findData(b) == -1
    qtbot.waitUntil(lambda: all(b in e.results for e in w.session.entries), timeout=TIMEOUT)
    w.close()


def test_a_keras_model_without_a_card_is_set_up_by_the_user(qtbot, tmp_path, models, cache, monkeypatch):
    from paipviewer.ui import card_dialog

    own = tmp_path / "lab" / "our_unet.keras"
    own.parent.mkdir()
    shutil.copy(models[1], own)  # a real Keras model, without its card
    chosen = {"save": False}

    def accept(dialog):
        dialog.equalize.setCurrentIndex(dialog.equalize.findData("luma"))
        dialog.threshold.setValue(0.42)
        dialog.save.setChecked(chosen["save"])
        return True

    monkeypatch.setattr(card_dialog.CardDialog, "exec", accept)
    w = open_window(qtbot, tmp_path, models, cache)
    w.open_paths([copy_samples(tmp_path / "tiles", 1)])
    qtbot.waitUntil(lambda: done(w), timeout=TIMEOUT)
    w.dropEvent(drop_event([own]))
    key = str(own.resolve())
    qtbot.waitUntil(lambda: w.model_key == key, timeout=TIMEOUT)
    card = w.session.catalog.find(key).card
    assert card.architecture == "custom" and card.equalize == "luma" and card.threshold == 0.42
    assert card.params > 0 and w.session.threshold(key) == 0.42
    assert not card_path(own).exists()  # stored beside it only if the user asks
    qtbot.waitUntil(lambda: done(w, key), timeout=TIMEOUT)
    assert w.metrics_panel.table.horizontalHeaderItem(0).text() == "Custom model"
    # asked to save: the card is written beside the model
    other = tmp_path / "lab" / "second.keras"
    shutil.copy(models[0], other)
    chosen["save"] = True
    w.open_paths([other])
    qtbot.waitUntil(lambda: w.model_key == str(other.resolve()), timeout=TIMEOUT)
    assert card_path(other).is_file() and '"custom"' in card_path(other).read_text()
    w.close()


def test_a_model_of_the_wrong_shape_without_a_card_is_refused_clearly(qtbot, tmp_path, models, cache,
                                                                      monkeypatch):
    import keras

    from paipviewer.ui import card_dialog

    inputs = keras.Input((None, None, 3))
    bad = keras.Model(inputs, keras.layers.Conv2D(2, 1)(inputs))  # two channels out
    path = tmp_path / "two_channels.keras"
    bad.save(path)
    monkeypatch.setattr(card_dialog.CardDialog, "exec", lambda dialog: True)
    w = open_window(qtbot, tmp_path, models, cache)
    working = w.model_key
    w.open_paths([path])
    info = w.session.catalog.find(str(path.resolve()))
    qtbot.waitUntil(lambda: info.error is not None and not w.session.pending_models, timeout=TIMEOUT)
    assert w.model_key == working and "one-channel" in info.error
    assert "one-channel" in w.notifications.messages()[0]
    w.close()


def test_reading_aids(qtbot, tmp_path, models, cache):
    w = open_window(qtbot, tmp_path, models, cache)
    w.open_paths([copy_samples(tmp_path / "tiles", 1)])
    qtbot.waitUntil(lambda: done(w), timeout=TIMEOUT)
    w.zoom_100()
    assert w.view.zoom() == pytest.approx(1.0, rel=0.02) and w.zoom_label.text() == "100%"
    w.view.hovered.emit(10, 20)  # what moving the mouse over pixel (10, 20) sends
    p = w.current_entry().results[w.model_key].prediction.probability[20, 10]
    assert w.cursor_label.text() == f"x 10, y 20  p {p:.2f} (ELU-Net 4/3)"
    w.close()


@pytest.mark.parametrize("size", [(1280, 720), (1366, 768)])
def test_the_window_fits_a_small_screen(qtbot, tmp_path, models, cache, size):
    w = open_window(qtbot, tmp_path, models, cache, compare=str(models[1].resolve()))
    w.resize(*size)
    w.open_paths([copy_samples(tmp_path / "tiles", 2)])
    qtbot.waitUntil(lambda: done(w) and done(w, w.compare_key), timeout=TIMEOUT)
    assert w.width() <= size[0] and w.height() <= size[1]
    assert w.statusBar().isVisible() and w.stop_button.parent() is not None
    for name, dock in w.docks.items():
        assert dock.isVisible() == (name != "problems")  # no problem yet: its dock waits
    w.open_paths([tmp_path / "missing.png"])
    assert w.docks["problems"].isVisible() and w.problems_button.text() == "1 problem"
    table = w.metrics_panel.table
    assert table.height() >= sum(table.rowHeight(r) for r in range(table.rowCount()))  # no row clipped
    assert w.view.width() > 250 and w.compare_view.width() > 250
    w.close()


def test_the_last_geometry_comes_back(qtbot, tmp_path, models, cache):
    w = open_window(qtbot, tmp_path, models, cache)
    w.resize(700, 520)  # within the offscreen platform's 800 x 600 screen
    w.docks["problems"].hide()
    w.close()
    w2 = open_window(qtbot, tmp_path, models, cache)
    assert (w2.width(), w2.height()) == (700, 520) and not w2.docks["problems"].isVisible()
    w2.close()
