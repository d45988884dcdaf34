"""The slide window: the pyramid streamed at the zoom's level, the scale bar, the overview, and a run on
the field of view whose overlay lands block by block; scores after a whole-slide run."""
from __future__ import annotations

import numpy as np
import pytest

from paipviewer.ui.slide_window import SlideWindow


@pytest.fixture()
def window(qtbot, cache, tmp_path, monkeypatch):
    from conftest import _data

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # runs resume from the cache: start clean
    w = SlideWindow(_data("slides") / "mosaic_20x.svs", model="elunet_8_5", cache=cache)
    qtbot.addWidget(w)
    w.resize(1366, 768)
    w.show()
    qtbot.waitExposed(w)
    yield w
    w.close()


def test_streams_the_level_that_fits_and_shows_microns(window, qtbot):
    view = window.view
    qtbot.waitUntil(lambda: bool(view.items), timeout=5000)
    assert {k.level for k in view.items} == {max(k.level for k in view.items)}  # whole slide: a coarse level
    assert view.scale_bar.isVisible() and view.scale_bar.label.endswith(("µm", "mm"))
    whole_bar = view.scale_bar.label
    view.viewbox.setRange(xRange=(1000, 1400), yRange=(1000, 1300), padding=0)
    qtbot.waitUntil(lambda: any(k.level == 0 for k in view.items), timeout=5000)
    assert all(k.level == 0 for k in view.items) and view.scale_bar.label != whole_bar
    assert view.cache.bytes <= view.cache.max_bytes
    assert "0.5 um/px (slide)" in window.info.text() and "resampled x2" in window.info.text()


def test_a_run_on_the_view_overlays_it_block_by_block(window, qtbot):
    view = window.view
    view.viewbox.setRange(xRange=(600, 1100), yRange=(600, 1000), padding=0)
    qtbot.waitUntil(lambda: any(k.level == 0 for k in view.items), timeout=5000)
    blocks = []
    window._blocks.done.connect(blocks.append)
    with qtbot.waitSignal(window.finished, timeout=60000) as done:
        window.run(view.view_rect())
    result = done.args[0]
    assert not isinstance(result, Exception), result
    assert blocks and result.nuclei > 20 and result.region is not None
    assert result.scale.factor == 2.0
    assert view.overlay_items and all(i.image is not None for i in view.overlay_items.values())
    x, y, w, h = view.view_rect()
    inside = result.prediction.probability[y:y + h, x:x + w]
    assert inside.max() > 200  # nuclei were found where the user looked
    assert "Scores against the ground truth need the whole slide" in window.scores.text()


def test_a_drawn_region_is_what_runs(window, qtbot):
    window.region_box.setChecked(True)
    assert window.run_view.text() == "Run on region"
    window.roi.setPos((300, 400))
    window.roi.setSize((400, 300))
    assert window.region() == (300, 400, 400, 300)
    with qtbot.waitSignal(window.finished, timeout=60000) as done:
        window.run_view.click()
    result = done.args[0]
    assert result.region == (300, 400, 400, 300)
    prob = result.prediction.probability
    assert prob[400:700, 300:700].max() > 200 and prob[:350].max() == 0  # only the region was run
    window.region_box.setChecked(False)
    assert window.region() is None and window.run_view.text() == "Run on view"


def test_a_region_runs_with_8_views_when_asked(window, qtbot):
    window.region_box.setChecked(True)
    window.roi.setPos((300, 400))
    window.roi.setSize((200, 200))
    maps = []
    for eight in (False, True):
        window.views.setChecked(eight)
        with qtbot.waitSignal(window.finished, timeout=300000) as done:
            window.run_view.click()
        result = done.args[0]
        assert result.prediction.views == (8 if eight else 1) and result.prediction.resumed == 0
        maps.append(np.asarray(result.prediction.probability[400:600, 300:500], dtype=int))
    assert maps[0].max() > 200 and maps[1].max() > 200
    assert 0 < np.abs(maps[0] - maps[1]).mean() < 10  # the same nuclei, a little steadier


def test_no_misses_are_drawn_where_the_model_did_not_run(window, qtbot):
    from paipviewer.viewer.layers import PALETTE

    qtbot.waitUntil(lambda: window.truth is not None, timeout=10000)
    view = window.view
    view.viewbox.setRange(xRange=(200, 1000), yRange=(200, 800), padding=0)
    qtbot.waitUntil(lambda: any(k.level == 0 for k in view.items), timeout=5000)
    window.region_box.setChecked(True)
    window.roi.setPos((500, 400))
    window.roi.setSize((300, 200))
    with qtbot.waitSignal(window.finished, timeout=60000):
        window.run_view.click()
    missed = np.array(PALETTE["fn"], np.uint8)
    inside = outside = 0
    for key, item in view.overlay_items.items():
        rgba, rect = item.image, item.mapRectToParent(item.boundingRect())
        ys, xs = np.nonzero((rgba[..., :3] == missed).all(axis=2) & (rgba[..., 3] > 0))
        px = rect.x() + (xs + 0.5) * rect.width() / rgba.shape[1]
        py = rect.y() + (ys + 0.5) * rect.height() / rgba.shape[0]
        hit = (px >= 500) & (px < 800) & (py >= 400) & (py < 600)
        inside += int(hit.sum())
        outside += int((~hit).sum())
    assert inside > 0 and outside == 0


def test_a_run_asked_for_while_drawn_truth_is_read_waits_for_it(qtbot, cache, tmp_path, monkeypatch):
    """Ground truth drawn in QuPath beside a slide is read off the UI thread into a mapped file; a run
    asked for meanwhile starts once it is read, so its overlay can show the misses."""
    import shutil

    from conftest import _data

    from paipviewer.core import geojson
    from paipviewer.core.imageio import read_labels

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    shutil.copy(_data("slides") / "mosaic_20x.svs", tmp_path / "mosaic_20x.svs")
    labels = read_labels(_data("slides") / "mosaic_20x_instances.png")
    geojson.write(tmp_path / "mosaic_20x.geojson", geojson.features(labels))
    w = SlideWindow(tmp_path / "mosaic_20x.svs", model="elunet_8_5", cache=cache)
    qtbot.addWidget(w)
    assert w.truth_path.name == "mosaic_20x.geojson" and "Reading the ground truth" in w.scores.text()
    w.run((500, 400, 300, 200))
    assert w.task is None and "once the ground truth is read" in w.scores.text()
    with qtbot.waitSignal(w.finished, timeout=60000) as done:
        pass
    assert not isinstance(done.args[0], Exception), done.args[0]
    assert isinstance(w.truth, np.memmap) and np.array_equal(w.truth > 0, labels > 0)
    assert done.args[0].region == (500, 400, 300, 200) and w.view.truth is w.truth
    w.close()


def test_a_second_model_runs_into_a_linked_view_beside_the_first(window, qtbot):
    from pathlib import Path

    # The truth arrives before its reading task ends; a run asked for in between waits for that end, and
    # the views would not be locked yet when looked at below.
    qtbot.waitUntil(lambda: window.truth is not None and window._truth_task is None, timeout=10000)
    box = window.compare_box
    box.setCurrentIndex(next(i for i in range(1, box.count()) if Path(box.itemData(i)).stem == "elunet_4_4"))
    second = window.view2
    assert second is not None and window.splitter.count() == 2
    assert window.view.title.text == window.model_box.currentText() and second.title.text == box.currentText()
    assert window._threshold_label.text() == "Threshold, left"
    window.view.viewbox.setRange(xRange=(200, 1000), yRange=(200, 800), padding=0)
    assert np.allclose(second.viewbox.viewRange(), window.view.viewbox.viewRange())  # linked: same place
    window.region_box.setChecked(True)
    window.roi.setPos((300, 400))
    window.roi.setSize((300, 200))
    with qtbot.waitSignal(window.finished, timeout=120000) as done:
        window.run_view.click()
        assert not box.isEnabled()  # the views stay as they are while models run into them
    first, other = done.args[0], window.result2
    assert (first.model, other.model) == ("elunet_8_5", "elunet_4_4") and other.region == first.region
    assert other.threshold == window._card(box).threshold != window.threshold.value()
    a = np.asarray(first.prediction.probability[400:600, 300:600], dtype=int)
    b = np.asarray(other.prediction.probability[400:600, 300:600], dtype=int)
    assert a.max() > 200 and b.max() > 200 and np.abs(a - b).mean() > 1  # two models, two maps
    assert second.probability is other.prediction.probability and second.overlay_items
    assert "elunet_8_5" in window.scores.text() and "elunet_4_4" in window.scores.text() and box.isEnabled()

    from paipviewer.viewer.layers import PALETTE

    def disagreeing(view) -> int:  # pixels painted white, the disagreement colour, in a view's overlay
        white = np.array(PALETTE["disagree"], np.uint8)
        return sum(int(((i.image[..., :3] == white).all(axis=2) & (i.image[..., 3] > 0)).sum())
                   for i in view.overlay_items.values())

    assert disagreeing(window.view) == 0 and window.disagree.isEnabled()
    window.disagree.setChecked(True)
    assert disagreeing(window.view) > 0 and disagreeing(second) > 0
    before = disagreeing(second)
    window.threshold.setValue(0.99)  # the left model finds almost nothing: the two disagree more
    assert second.other_threshold == 0.99 and disagreeing(second) > 1.5 * before
    box.setCurrentIndex(0)
    assert window.view.other is None and not window.disagree.isEnabled()
    assert window.view2 is None and window.splitter.count() == 1 and window.view.title.text == "mosaic_20x.svs"
    assert window._threshold_label.text() == "Threshold"


def test_a_slide_opens_comparing_when_asked(qtbot, cache, tmp_path, monkeypatch):
    """`paipviewer slide.svs --compare unet_32_5`, or a slide opened while the main window compares."""
    from conftest import _data

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    w = SlideWindow(_data("slides") / "mosaic_20x.svs", model="elunet_8_5", cache=cache, compare="unet_32_5")
    qtbot.addWidget(w)
    assert w.view2 is not None and w.compare_box.currentData().endswith("unet_32_5.keras")
    assert w.view2.title.text == w.compare_box.currentText() and w.model_box.currentData().endswith("elunet_8_5.keras")
    w.close()


def test_ground_truth_chosen_after_a_run_scores_it(qtbot, cache, tmp_path, monkeypatch):
    """A slide with no truth beside it, run whole; then its nuclei chosen by hand (a label TIFF): the
    run is scored against them without predicting again. A file that is not this slide's is refused and
    the window goes on without truth."""
    import shutil

    from conftest import _data

    from paipviewer.core.imageio import read_labels
    from paipviewer.core.slide_run import write_label_pyramid

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    shutil.copy(_data("slides") / "mosaic_20x.svs", tmp_path / "slide.svs")
    labels = read_labels(_data("slides") / "mosaic_20x_instances.png")
    write_label_pyramid(labels.astype(np.uint32), tmp_path / "nuclei.tif", 0.5)
    w = SlideWindow(tmp_path / "slide.svs", model="elunet_8_5", cache=cache)
    qtbot.addWidget(w)
    assert w.truth_path is None and "No ground truth" in w.info.text()
    with qtbot.waitSignal(w.finished, timeout=120000) as first:
        w.run(None)
    assert not isinstance(first.args[0], Exception) and first.args[0].pixels is None
    with qtbot.waitSignal(w.finished, timeout=120000) as scored:
        w.set_truth(tmp_path / "nuclei.tif")
    result = scored.args[0]
    assert not isinstance(result, Exception), result
    assert isinstance(w.truth, np.memmap) and "Ground truth: nuclei.tif" in w.info.text()
    assert result.pixels.dice > 0.78 and result.objects.scores.n_true == 6697  # as `score` measures it
    assert result.prediction.blocks_run == 0 and result.prediction.resumed == first.args[0].prediction.blocks_run
    (tmp_path / "other.tif").write_bytes((tmp_path / "nuclei.tif").read_bytes()[:4000])
    w.set_truth(tmp_path / "other.tif")
    qtbot.waitUntil(lambda: bool(w._truth_task is None), timeout=10000)
    assert "Ground truth not used: other.tif" in w.scores.text() and w.truth is None
    assert "No ground truth" in w.info.text() and w.truth_button.isEnabled() and w.run_all.isEnabled()
    w.close()
