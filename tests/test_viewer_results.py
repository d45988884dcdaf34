"""Nuclei as objects in the viewer's state, the results table and its summary, the plots' data and the
export, without Qt: on MoNuSeg sample tiles with their instance maps, checked against
``evidence.assess`` and ``paipviewer score`` computed directly on the same maps."""
from __future__ import annotations

import csv
import io
import json
import shutil

import cv2
import numpy as np
import pytest

from paipviewer.core.evidence import assess, truth_labels
from paipviewer.core.imageio import read_labels
from paipviewer.core.inference import Prediction
from paipviewer.core.metrics import confusion, pooled
from paipviewer.core.objects import ObjectSettings, match_nuclei
from paipviewer.core.scoring import GRID, levels_of
from paipviewer.core.stats import wilcoxon
from paipviewer.viewer import describe, export, results
from paipviewer.viewer.catalog import ModelCatalog
from paipviewer.viewer.images import Result
from paipviewer.viewer.jobs import ModelRan
from paipviewer.viewer.layers import PALETTE, LayerState, compose, legend, object_codes
from paipviewer.viewer.plan import Job, wanted
from paipviewer.viewer.session import Session
from scoring_fixtures import copy_tiles, drive, quiet, run_job

CARD = {"format": "paipviewer-model-card/1", "architecture": "elunet", "filters": 4, "depth": 4, "params": 1}


@pytest.fixture(scope="module")
def scored(samples256, models, cache, tmp_path_factory):
    """Four sample tiles scored by both (untrained) test models at thresholds that cut their maps
    somewhere in the middle, every nucleus assessment done: the session, and the tiles' folder."""
    folder = copy_tiles(samples256, tmp_path_factory.mktemp("tiles"), 4)
    catalog = ModelCatalog()
    keys = [catalog.add(m).key for m in models]
    s = Session(catalog)
    s.add([folder])
    s.set_model(keys[0])
    s.set_compare(keys[1])
    drive(s, cache)
    for key in keys:  # an untrained map is close to 0.5 everywhere: cut where it varies
        probs = np.concatenate([e.results[key].prediction.probability.ravel() for e in s.entries])
        s.set_threshold(key, float(GRID[int(np.searchsorted(GRID, np.quantile(probs, 0.8)))]))
    drive(s, cache)
    return s, folder


def test_rows_and_summary_are_what_evidence_assess_says(scored):
    s, folder = scored
    columns = [c.key for c in results.columns(s)]
    assert columns[:2] == ["image", "nuclei_true"] and "aji@1" in columns and len(columns) == 2 + 2 * 7
    rows = results.rows(s)
    assert [r.name for r in rows] == sorted(p.name for p in (folder / "images").glob("*.png"))
    expected = {}
    for e, r in zip(s.entries, rows):
        truth = read_labels(folder / "masks_instance" / e.name)  # the instance map, not the binary mask's parts
        assert np.array_equal(e.truth_labels, truth) and np.array_equal(e.truth, truth > 0)
        assert r.cells["nuclei_true"].value == len(np.unique(truth)) - 1
        for side, model in enumerate((s.model_key, s.compare_key)):
            prob = e.results[model].prediction.probability
            a = assess(prob, s.threshold(model), truth_labels(e.mask_path, prob.shape), ObjectSettings())
            o = a.objects.scores
            expected[(e.key, model)] = a
            for key, value in (("dice", a.pixels.dice), ("jaccard", a.pixels.jaccard), ("aji", o.aji),
                               ("pq", o.pq), ("det_f1", o.f1), ("nuclei_pred", a.nuclei_pred)):
                cell = r.cells[f"{key}@{side}"]
                assert cell.value == pytest.approx(value, abs=1e-12), (e.name, key)
                assert cell.text == (f"{value:,}" if key == "nuclei_pred" else f"{value:.3f}")
            assert np.array_equal(s.assessment(e, model).nuclei, a.nuclei)
            assert r.cells[f"seconds@{side}"].value == e.results[model].prediction.timing["total"]
    for model in (s.model_key, s.compare_key):
        mine = [expected[(e.key, model)] for e in s.entries]
        m = results.model_summary(s, model)
        assert m.scored == m.with_truth == m.assessed == 4 and m.pending == 0
        assert m.jaccard_mean == pytest.approx(np.mean([a.pixels.jaccard for a in mine]))
        assert m.dice_mean == pytest.approx(np.mean([a.pixels.dice for a in mine]))
        assert m.dice_pooled == pytest.approx(pooled([a.pixels for a in mine]).dice)
        assert m.aji_mean == pytest.approx(np.mean([a.objects.scores.aji for a in mine]))
        assert m.pq_mean == pytest.approx(np.mean([a.objects.scores.pq for a in mine]))
        assert m.nuclei_pred == sum(a.nuclei_pred for a in mine)
        assert m.nuclei_true == sum(a.objects.scores.n_true for a in mine)
    dice = [[expected[(e.key, m)].pixels.dice for e in s.entries] for m in (s.model_key, s.compare_key)]
    test = results.comparison(s, "dice")
    assert test.paired == wilcoxon(*dice) and test.n == 4
    assert test.mean_difference == pytest.approx(np.mean(np.subtract(*dice)))
    lines = results.summary_lines(s)
    a, b = s.label(s.model_key), s.label(s.compare_key)
    assert lines[0].startswith(f"{a} @ {s.threshold(s.model_key):.2f}: 4 scored, 4 with ground truth: mean Jaccard")
    assert any(line.startswith(f"Dice, {a} − {b}") and wilcoxon(*dice).verdict(a, b) in line for line in lines)
    # the metrics panel says the same as the table
    column = describe.metric_column(s, s.entries[0], s.model_key)
    first = expected[(s.entries[0].key, s.model_key)].objects.scores
    found = s.assessment(s.entries[0], s.model_key)
    assert column["aji"] == f"{first.aji:.3f}" and column["nuclei"] == f"{found.nuclei_pred:,} / {first.n_true:,}"


def test_plot_data_come_from_the_same_figures(scored):
    s, _ = scored
    per_image = results.dice_per_image(s)
    assert [len(x.x) for x in per_image] == [4, 4] and list(per_image[0].x) == [1, 2, 3, 4]
    assert per_image[1].y[2] == pytest.approx(s.confusion(s.entries[2], s.compare_key).dice)
    s.select(s.entries[1].key)
    curves = {(kind, model): series for kind, model, series in results.dice_curves(s)}
    assert set(curves) == {(k, m) for k in ("image", "folder") for m in (s.model_key, s.compare_key)}
    k = int(round(s.threshold(s.model_key) * 100))
    assert all(len(c.x) == 101 for c in curves.values())
    assert curves[("image", s.model_key)].y[k] == pytest.approx(s.confusion(s.entries[1], s.model_key).dice)
    assert curves[("folder", s.model_key)].y[k] == pytest.approx(results.model_summary(s, s.model_key).dice_pooled)
    prob = s.entries[1].results[s.model_key].prediction.probability
    assert curves[("image", s.model_key)].y[30] == pytest.approx(confusion(prob >= GRID[30], s.entries[1].truth).dice)
    counts = results.nucleus_counts(s)
    assert [len(c.x) for c in counts] == [4, 4]
    assert counts[0].y[0] == s.assessment(s.entries[0], s.model_key).nuclei_pred


@pytest.fixture
def synthetic(samples256, tmp_path):
    """Two models (cards beside placeholder files: nothing runs them) and three tiles with maps made
    from their ground truth plus noise."""
    catalog = ModelCatalog()
    for stem, threshold in (("m", 0.4), ("n", 0.5)):
        (tmp_path / f"{stem}.json").write_text(json.dumps({**CARD, "threshold": threshold}))
        (tmp_path / f"{stem}.keras").write_bytes(b"PK")
        catalog.add(tmp_path / f"{stem}.keras")
    s = Session(catalog, background=False)
    s.add([copy_tiles(samples256, tmp_path / "tiles", 3)])
    s.m, s.n = (str((tmp_path / f"{x}.keras").resolve()) for x in "mn")
    s.set_model(s.m)
    rng = np.random.default_rng(1)
    for e in s.entries:
        run_job(s, None, Job("load", "load", e.key, ""))
        prob = np.clip(np.roll(e.truth, 2, axis=1) * 0.6 + rng.random(e.truth.shape) * 0.5, 0, 1).astype(np.float32)
        s.apply(ModelRan(e.key, s.m, Result(Prediction(prob, {"total": 0.1}), levels_of(prob))))
    return s


def test_nuclei_land_only_for_their_own_threshold_and_image(synthetic):
    s = synthetic
    first, second = s.entries[:2]
    s.select(first.key)
    job = wanted(s)[0]
    assert job == Job("objects", "objects", first.key, s.m, 0.4)
    from paipviewer.viewer import jobs

    def compute(entry, threshold):
        return jobs.assess_objects(entry.key, s.m, entry.results[s.m], entry.truth_labels, threshold, ObjectSettings(),
                                   **quiet())

    late = compute(first, 0.4)
    s.set_threshold(s.m, 0.6)  # the user moved on before it landed
    s.apply(late)
    assert s.assessment(first, s.m) is None  # never shown as the 0.6 figure
    assert describe.metric_column(s, first, s.m)["aji"] == "…"
    assert wanted(s)[0] == Job("objects", "objects", first.key, s.m, 0.6)
    s.apply(compute(first, 0.6))
    prob = first.results[s.m].prediction.probability
    direct = assess(prob, 0.6, first.truth_labels)
    assert s.assessment(first, s.m).objects.scores == direct.objects.scores
    assert describe.metric_column(s, first, s.m)["aji"] == f"{direct.objects.scores.aji:.3f}"
    s.set_threshold(s.m, 0.4)  # back: the earlier result is this threshold's, kept
    assert s.assessment(first, s.m).threshold == 0.4
    # a result for an image the user left is that image's, and does not touch the current one
    s.select(second.key)
    s.apply(compute(first, 0.4))
    assert s.assessment(second, s.m) is None and s.assessment(first, s.m) is not None
    # computed from a run that has since been replaced: dropped
    stale = compute(second, 0.4)
    prob2 = np.zeros_like(prob)
    s.apply(ModelRan(second.key, s.m, Result(Prediction(prob2), levels_of(prob2))))
    s.apply(stale)
    assert s.assessment(second, s.m) is None and s.wants_assessment(second, s.m)
    # a failure is that threshold's only: the metrics say so, the plan does not retry it
    s.fail(Job("objects", "objects", second.key, s.m, 0.4), ValueError("odd labels"))
    assert describe.metric_column(s, second, s.m)["nuclei"] == "failed" and s.m in second.results
    assert not any(j.kind == "objects" and j.image_key == second.key for j in wanted(s))


def test_background_work_finds_the_nuclei_of_every_scored_image(synthetic):
    s = synthetic
    s.select(s.entries[0].key)
    drive(s, None)
    assert all(s.assessment(e, s.m) is not None for e in s.entries)
    s.set_threshold(s.m, 0.55)  # every image's nuclei follow the threshold, as its Dice does
    assert [j.slot for j in wanted(s)] == ["objects"]
    run_job(s, None, wanted(s)[0])
    assert [(j.slot, j.image_key) for j in wanted(s)] == [("objects_background", s.entries[1].key)]
    assert results.model_summary(s, s.m).pending == 2
    assert "still being split" in results.summary_lines(s)[0]
    s.stop()
    assert wanted(s) == []


def test_object_layer_colours_a_hand_made_case():
    truth = np.zeros((40, 60), np.int32)
    truth[5:15, 5:15] = 1      # found (matched)
    truth[5:15, 30:40] = 2     # missed
    pred = np.zeros((40, 60), np.int32)
    pred[6:15, 5:15] = 1       # IoU 0.9 with true 1
    pred[25:35, 5:12] = 2      # nothing true there: false
    pred[25:35, 12:20] = 3     # touching 2: another false nucleus, kept apart
    matching = match_nuclei(truth, pred)
    codes = object_codes(pred, truth, matching)
    layers = LayerState(errors=False, objects=True)
    rgba = compose(truth.shape, layers, pred > 0, truth > 0, None, codes)
    assert tuple(rgba[10, 10, :3]) == PALETTE["matched"] and rgba[10, 10, 3] == 255
    assert tuple(rgba[10, 35, :3]) == PALETTE["missed"]
    assert tuple(rgba[30, 8, :3]) == PALETTE["false"] and tuple(rgba[30, 16, :3]) == PALETTE["false"]
    assert rgba[30, 11, 3] == 0 and rgba[30, 12, 3] == 0  # a gap where two nuclei meet
    assert rgba[2, 2, 3] == 0 and rgba[20, 50, 3] == 0  # background stays clear
    outlined = compose(truth.shape, LayerState(errors=False, objects=True, outline=True), pred > 0, truth > 0,
                       None, codes)
    assert tuple(outlined[6, 10, :3]) == PALETTE["matched"] and outlined[10, 10, 3] == 0  # edge, not inside
    assert tuple(outlined[30, 11, :3]) == PALETTE["false"]  # each nucleus its own outline
    # over the pixel layer: where the objects layer draws, it wins
    both = compose(truth.shape, LayerState(errors=True, objects=True), pred > 0, truth > 0, None, codes)
    assert tuple(both[10, 35, :3]) == PALETTE["missed"] and tuple(both[5, 10, :3]) == PALETTE["fn"]
    assert legend(layers, {"pred": True, "truth": True, "objects": True}) == ["matched", "false", "missed"]
    assert legend(layers, {"pred": True, "truth": False, "objects": True}) == ["nucleus"]
    assert legend(layers, {"pred": True, "truth": True, "objects": False}) == []
    plain = compose(truth.shape, layers, pred > 0, None, None, object_codes(pred))
    assert tuple(plain[30, 8, :3]) == PALETTE["nucleus"]


def test_export_writes_what_paipviewer_score_writes(scored, models, cache, tmp_path):
    from paipviewer.__main__ import main

    s, folder = scored
    for model in (s.model_key, s.compare_key):
        s.set_threshold(model, 0.5)  # the command line takes one threshold for both
    drive(s, cache)  # the viewer's own assessments at 0.5 are what gets written
    plan = export.plan(s)
    assert all(item.assessment is not None for item in plan.items)
    assert len(plan.items) == 8 and plan.unscored == 0
    ours = tmp_path / "viewer"
    done = export.export(ours, plan.items, **quiet())
    assert not done.errors and len(done.rows) == 8 and len(done.files) == 1 + 8 * 3
    theirs = tmp_path / "cli"
    assert main(["score", str(folder), "--model", str(models[0]), "--compare", str(models[1]), "--out", str(theirs),
                 "--threshold", "0.5"]) == 0

    def table(root):
        rows = list(csv.DictReader(io.StringIO((root / "scores.csv").read_text())))
        return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]

    assert table(ours) == table(theirs)
    written = sorted(p.relative_to(ours) for p in ours.rglob("*") if p.is_file())
    assert written == sorted(p.relative_to(theirs) for p in theirs.rglob("*") if p.is_file())
    for rel in written:
        if rel.suffix == ".png":
            a, b = (cv2.imread(str(root / rel), cv2.IMREAD_UNCHANGED) for root in (ours, theirs))
            assert np.array_equal(a, b), rel
        elif rel.suffix == ".geojson":
            assert (ours / rel).read_text() == (theirs / rel).read_text(), rel
    # planned paths are exactly what was written, so the window can refuse to overwrite them
    assert sorted(export.planned_paths(ours, plan.items)) == sorted(ours / p for p in written)


def test_export_goes_on_past_a_file_it_cannot_write(scored, tmp_path):
    s, _ = scored
    plan = export.plan(s)
    out = tmp_path / "out"
    blocked = out / "masks" / export.model_names(s)[s.model_key]
    blocked.parent.mkdir(parents=True)
    blocked.write_text("a file where a folder must go")
    done = export.export(out, plan.items, **quiet())
    assert len(done.errors) == 4 and all(path.suffix == ".png" for path, _ in done.errors)
    assert len(done.rows) == 4  # the compare model's files and rows are all there
    rows = list(csv.DictReader(io.StringIO((out / "scores.csv").read_text())))
    assert {r["model"] for r in rows} == {export.model_names(s)[s.compare_key]}
    shutil.rmtree(out)
