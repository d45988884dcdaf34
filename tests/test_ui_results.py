"""The Results and Plots docks, nuclei as objects on screen, Score all / Score folder and File >
Export results, in the real window on MoNuSeg sample tiles with real (untrained) models."""
from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import csv
import xml.etree.ElementTree as ET

import cv2
import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from paipviewer.core.evidence import assess
from paipviewer.ui.app import build_window
from paipviewer.ui.settings import Settings
from paipviewer.viewer import results
from paipviewer.viewer.layers import compose
from paipviewer.viewer.plan import wanted
from scoring_fixtures import copy_tiles

TIMEOUT = 120_000


def open_window(qtbot, tmp_path, models, cache, background=True, compare=True):
    w = build_window([], model=str(models[0]), compare=str(models[1]) if compare else None,
                     models_dir=str(models[0].parent), settings=Settings(tmp_path / "settings.ini"),
                     background_scoring=background, cache=cache)
    qtbot.addWidget(w)
    w.show()
    return w


def settled(w) -> bool:
    """Nothing runs and nothing is wanted: every image scored (as asked) and its nuclei known."""
    return bool(not w.scheduler.running and not [j for j in wanted(w.session) if j.kind != "probe"])


def scored_everywhere(w) -> bool:
    s = w.session
    models = [m for m in (s.model_key, s.compare_key) if m]
    return settled(w) and all(m in e.results for e in s.entries for m in models)


@pytest.fixture
def window(qtbot, tmp_path, models, cache, samples256):
    w = open_window(qtbot, tmp_path, models, cache)
    w.open_paths([copy_tiles(samples256, tmp_path / "tiles", 4)])
    qtbot.waitUntil(lambda: scored_everywhere(w), timeout=TIMEOUT)
    w.refresh_tables()
    yield w
    w.close()


def test_results_table_sorts_and_a_click_selects_the_image(window, qtbot):
    w, s = window, window.session
    panel = w.results_panel
    assert w.docks["results"].isVisible() and panel.model.rowCount() == 4
    expected = {r.key: r for r in results.rows(s)}
    for e in s.entries:
        c = s.confusion(e, s.model_key)
        assert panel.text(e.key, "dice@0") == f"{c.dice:.3f}" == expected[e.key].cells["dice@0"].text
        assert panel.text(e.key, "aji@1") == expected[e.key].cells["aji@1"].text != "…"
    assert panel.row_keys() == [e.key for e in s.entries]  # the list's order until a header is clicked
    column = panel.column_index("nuclei_pred@0")
    panel.table.sortByColumn(column, Qt.DescendingOrder)
    counts = [s.nuclei(s.find(k), s.model_key) for k in panel.row_keys()]
    assert counts == sorted(counts, reverse=True)  # as numbers, not as text ("98" after "153")
    panel.table.sortByColumn(panel.column_index("dice@1"), Qt.AscendingOrder)
    dice = [s.confusion(s.find(k), s.compare_key).dice for k in panel.row_keys()]
    assert dice == sorted(dice)
    # a click on a row makes its image the current one
    row = next(i for i, key in enumerate(panel.row_keys()) if key != w.current_key)
    target = panel.row_keys()[row]
    rect = panel.table.visualRect(panel.proxy.index(row, 3))
    QTest.mouseClick(panel.table.viewport(), Qt.LeftButton, pos=rect.center())
    assert w.current_key == target
    qtbot.waitUntil(lambda: w.is_idle(), timeout=TIMEOUT)
    w.refresh_tables()
    assert panel.table.selectionModel().selectedRows()[0].data(Qt.UserRole + 2) == target
    # the footer under the same columns: means per image (the study's Jaccard), pooled and totals
    mean, total = panel.footer_model.rows
    for side, model in enumerate((s.model_key, s.compare_key)):
        m = results.model_summary(s, model)
        assert mean.cells[f"jaccard@{side}"].text == f"{m.jaccard_mean:.3f}"
        assert total.cells[f"dice@{side}"].text == f"{m.dice_pooled:.3f}"
        assert mean.cells[f"aji@{side}"].text == f"{m.aji_mean:.3f}"
        assert total.cells[f"nuclei_pred@{side}"].text == f"{m.nuclei_pred:,}"
    assert panel.footer.columnWidth(3) == panel.table.columnWidth(3)  # aligned with the table's columns
    # then the two models compared, and the whole summary in words on hovering
    dice = results.comparison(s, "dice")
    assert panel.summary.text().endswith(dice.paired.verdict(s.label(s.model_key), s.label(s.compare_key)))
    assert "mean Jaccard" in panel.summary.toolTip()


def test_nuclei_follow_the_threshold_in_metrics_and_the_objects_layer(window, qtbot):
    w, s = window, window.session
    entry = w.current_entry()

    def middle(model):  # an untrained map is close to 0.5 everywhere: a threshold where it varies
        return int(round(100 * np.quantile(entry.results[model].prediction.probability, 0.8)))

    s.set_threshold(s.compare_key, middle(s.compare_key) / 100)
    step = middle(s.model_key)
    step += step == round(100 * s.threshold(s.model_key))  # a threshold other than the one now
    w.layers_panel.threshold.setValue(step)  # the left model's threshold
    assert w.metrics_panel.value(0, "aji") in ("…", "")  # never the figure of the threshold before
    prob = entry.results[s.model_key].prediction.probability
    direct = assess(prob, step / 100, entry.truth_labels).objects.scores
    qtbot.waitUntil(lambda: w.metrics_panel.value(0, "aji") == f"{direct.aji:.3f}", timeout=TIMEOUT)
    assert w.metrics_panel.value(0, "det_f1") == f"{direct.f1:.3f}"
    assert w.metrics_panel.value(0, "nuclei").endswith(f" / {direct.n_true:,}")  # predicted / true
    qtbot.waitUntil(lambda: w.is_idle(), timeout=TIMEOUT)
    assert w.metrics_panel.value(1, "pq") != "…"  # the compared model, at its own threshold
    w.actions["toggle_objects"].trigger()  # key 6
    assert w.session.layers().objects
    assert w.layers_panel.legend_keys()[-3:] == ["matched", "false", "missed"]
    for view, model, other in ((w.view, s.model_key, s.compare_key), (w.compare_view, s.compare_key, s.model_key)):
        expected = compose(entry.image.shape[:2], s.layers(entry), s.mask(entry, model), entry.truth,
                           s.mask(entry, other), s.object_codes(entry, model))
        assert np.array_equal(view.overlay_array(), expected)
    assert not np.array_equal(w.view.overlay_array(), w.compare_view.overlay_array())  # each view its own model's


def test_plots_have_a_point_per_image_and_export_png_and_svg(window, tmp_path, monkeypatch):
    w, s = window, window.session
    plots = w.plots_panel
    assert plots.points("dice") == []  # behind the Metrics tab: not drawn for nothing
    w.docks["plots"].raise_()
    w.refresh_tables()
    assert plots.points("dice") == [4, 4]
    assert plots.points("threshold") == [101, 101, 101, 101]  # this image and the folder, per model
    assert plots.points("counts") == [4, 4]
    for name in ("dice", "threshold", "counts"):
        png, svg = plots.export(name, tmp_path / f"{name}.png"), plots.export(name, tmp_path / f"{name}.svg")
        assert png.stat().st_size > 1000 and cv2.imread(str(png)).shape[1] == 1600
        assert ET.parse(svg).getroot().tag.endswith("svg")
    assert not list(tmp_path.glob(".*part*"))  # no temporary left behind
    # a name typed without its suffix is not replaced without asking
    from PySide6.QtWidgets import QFileDialog, QMessageBox

    before = (tmp_path / "dice.png").read_bytes()
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(tmp_path / "dice"), "PNG image (*.png)"))
    asked = []
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: asked.append(a) or QMessageBox.No)
    assert plots.export_dialog("dice") is None and asked
    assert (tmp_path / "dice.png").read_bytes() == before


def test_export_results_writes_what_score_writes_and_asks_before_replacing(window, qtbot, tmp_path):
    w, s = window, window.session
    out = tmp_path / "export"
    with qtbot.waitSignal(w.exported, timeout=TIMEOUT) as done:
        assert w.export_results(out)
    exported = done.args[0]
    assert not exported.errors and len(exported.rows) == 8
    rows = list(csv.DictReader((out / "scores.csv").open()))
    assert len(rows) == 8 and {r["image"] for r in rows} == {e.name for e in s.entries}
    first = next(r for r in rows if r["image"] == s.entries[0].name and r["model"] == models_stem(s.model_key))
    assert first["aji"] == f"{s.assessment(s.entries[0], s.model_key).objects.scores.aji:.4f}"
    for kind in ("masks", "overlays", "geojson"):
        assert len(list((out / kind).rglob("*.*"))) == 8
    stamp = (out / "scores.csv").stat().st_mtime_ns
    w.confirm = lambda *_: False  # the user says no: nothing is replaced
    assert not w.export_results(out)
    assert (out / "scores.csv").stat().st_mtime_ns == stamp and "Not exported" in w.status.text()
    w.confirm = lambda *_: True
    (out / "masks" / models_stem(s.compare_key)).rename(out / "moved")
    (out / "masks" / models_stem(s.compare_key)).write_text("in the way")  # one model's masks cannot be written
    with qtbot.waitSignal(w.exported, timeout=TIMEOUT) as again:
        assert w.export_results(out)
    assert len(again.args[0].errors) == 4 and len(again.args[0].rows) == 4
    assert sum("not exported" in m for m in w.notifications.messages()) == 4  # each in the Problems panel
    assert w.docks["problems"].isVisible()
    assert "4 not written" in w.status.text()


def models_stem(key: str) -> str:
    from pathlib import Path

    return Path(key).stem


def test_score_all_and_score_folder(qtbot, tmp_path, models, cache, samples256, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    w = open_window(qtbot, tmp_path, models, cache, background=False, compare=False)
    w.open_paths([copy_tiles(samples256, tmp_path / "a", 3)])
    qtbot.waitUntil(lambda: settled(w), timeout=TIMEOUT)
    assert sum(w.model_key in e.results for e in w.session.entries) == 1  # only the image on screen
    w.actions["score_all"].trigger()
    qtbot.waitUntil(lambda: scored_everywhere(w), timeout=TIMEOUT)
    more = copy_tiles(samples256, tmp_path / "b", 6)  # other files, though three have the same names
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(more))
    w.actions["score_folder"].trigger()
    qtbot.waitUntil(lambda: scored_everywhere(w), timeout=TIMEOUT)
    assert len(w.session.entries) == 9
    w.refresh_tables()
    assert w.results_panel.model.rowCount() == 9 and "9 scored" in w.results_panel.summary.toolTip()
    w.close()
