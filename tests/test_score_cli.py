"""``paipviewer score`` on real MoNuSeg test images with the shipped models, checked against its own files."""
from __future__ import annotations

import csv
import json
import os

import cv2
import numpy as np
import pytest

from paipviewer.__main__ import main
from paipviewer.core.evidence import COLUMNS
from paipviewer.core.imageio import read_labels, read_mask
from paipviewer.core.metrics import confusion
from paipviewer.core.objects import match_nuclei

STEMS = ("TCGA-2Z-A9J9-01A-01-TS1", "TCGA-HT-8564-01Z-00-DX1")


@pytest.fixture(scope="module")
def folder(monuseg, tmp_path_factory):
    """Two MoNuSeg test images in their layout, plus a picture without ground truth."""
    root = tmp_path_factory.mktemp("data")
    for sub, suffix in (("images", ".tif"), ("masks", ".png"), ("masks_instance", ".png")):
        (root / sub).mkdir()
        for stem in STEMS:
            os.symlink(monuseg / "test" / sub / f"{stem}{suffix}", root / sub / f"{stem}{suffix}")
    image = cv2.imread(str(monuseg / "test" / "images" / f"{STEMS[0]}.tif"))
    cv2.imwrite(str(root / "images" / "no truth.png"), image[:300, :400])
    return root


@pytest.fixture(scope="module")
def scored(folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("out") / "results"
    rc = main(["score", str(folder), "--model", "elunet_8_5", "--compare", "unet_32_5", "--out", str(out)])
    return rc, out


def rows_of(out):
    with open(out / "scores.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_writes_a_row_and_three_files_per_image_and_model(scored):
    rc, out = scored
    assert rc == 0
    rows = rows_of(out)
    assert len(rows) == 3 * 2
    assert list(rows[0]) == ["image", "model", "threshold", "dice", "jaccard", "precision", "recall", "tp", "fp",
                             "fn", "nuclei_pred", "nuclei_true", "det_f1", "aji", "pq", "seconds", "mpp", "scale", "views"]
    assert {r["views"] for r in rows} == {"1"}
    for r in rows:
        stem = r["image"].rsplit(".", 1)[0]
        for kind, suffix in (("masks", ".png"), ("overlays", ".png"), ("geojson", ".geojson")):
            assert (out / kind / r["model"] / f"{stem}{suffix}").is_file()
    plain = [r for r in rows if r["image"] == "no truth.png"]
    assert len(plain) == 2 and all(r["dice"] == "" and r["aji"] == "" and int(r["nuclei_pred"]) > 50 for r in plain)


def test_scores_agree_with_the_written_masks_and_the_ground_truth(scored, folder):
    _, out = scored
    for r in rows_of(out):
        stem = r["image"].rsplit(".", 1)[0]
        labels = read_labels(out / "masks" / r["model"] / f"{stem}.png")
        assert labels.max() == int(r["nuclei_pred"])
        if not r["dice"]:
            continue
        truth = read_labels(folder / "masks_instance" / f"{stem}.png")
        assert int(r["nuclei_true"]) == len(np.unique(truth)) - 1
        # The label PNG leaves out specks under min_area pixels; Dice counts every predicted pixel.
        assert confusion(labels > 0, truth > 0).dice == pytest.approx(float(r["dice"]), abs=0.005)
        objects = match_nuclei(truth, labels).scores
        assert objects.aji == pytest.approx(float(r["aji"]), abs=1e-4)
        assert objects.f1 == pytest.approx(float(r["det_f1"]), abs=1e-4)
        assert float(r["dice"]) > 0.7  # the shipped models on MoNuSeg test images


def test_geojson_has_one_closed_polygon_per_nucleus(scored):
    _, out = scored
    for r in rows_of(out):
        stem = r["image"].rsplit(".", 1)[0]
        fc = json.loads((out / "geojson" / r["model"] / f"{stem}.geojson").read_text())
        assert fc["type"] == "FeatureCollection"
        assert len(fc["features"]) == int(r["nuclei_pred"])
        labels = {f["properties"]["label"] for f in fc["features"]}
        assert labels == set(range(1, int(r["nuclei_pred"]) + 1))
        for f in fc["features"][:50]:
            ring = f["geometry"]["coordinates"][0]
            assert ring[0] == ring[-1] and len(ring) >= 5
            assert f["properties"]["objectType"] == "detection"


def test_overlay_is_the_image_size_and_shows_the_errors(scored, folder):
    _, out = scored
    overlay = cv2.imread(str(out / "overlays" / "elunet_8_5" / f"{STEMS[0]}.png"))[:, :, ::-1]
    image = cv2.imread(str(folder / "images" / f"{STEMS[0]}.tif"))[:, :, ::-1]
    assert overlay.shape == image.shape
    truth = read_mask(folder / "masks" / f"{STEMS[0]}.png")
    # Background far from any nucleus is the tissue unchanged; nuclei are tinted.
    far = cv2.dilate(truth.astype(np.uint8), np.ones((25, 25), np.uint8)) == 0
    changed = np.abs(overlay.astype(int) - image).sum(axis=2) > 0
    assert changed[truth].mean() > 0.9 and changed[far].mean() < 0.1


def test_never_overwrites_without_being_told(scored, folder):
    _, out = scored
    before = (out / "scores.csv").read_bytes()
    assert main(["score", str(folder), "--model", "elunet_8_5", "--out", str(out)]) == 2
    assert (out / "scores.csv").read_bytes() == before


def test_views_average_dihedral_views_and_are_recorded(samples256, tmp_path, capsys):
    """--views 8 gives the map of predict_image(views=8) for the tile and says so in the log and the row."""
    from paipviewer.core.evidence import assess, truth_labels
    from paipviewer.core.imageio import read_image
    from paipviewer.core.inference import predict_image
    from paipviewer.core.modelfile import load_model
    from paipviewer.viewer.paths import shipped_models_dir

    tile = sorted((samples256 / "images").glob("*.png"))[3]
    assert main(["score", str(tile), "--model", "elunet_4_4", "--out", str(tmp_path / "out"), "--views", "8"]) == 0
    assert "8 views a tile" in capsys.readouterr().out
    (r,) = rows_of(tmp_path / "out")
    loaded = load_model(shipped_models_dir() / "elunet_4_4.onnx")
    image = read_image(tile)
    probability = predict_image(loaded.model, image, loaded.card.equalize, views=8).probability
    expected = assess(probability, loaded.card.threshold, truth_labels(samples256 / "masks" / tile.name,
                                                                       image.shape[:2]))
    assert r["views"] == "8" and float(r["dice"]) == pytest.approx(expected.pixels.dice, abs=1e-4)
    assert int(r["nuclei_pred"]) == expected.nuclei_pred
    with pytest.raises(SystemExit):
        main(["score", str(tile), "--model", "elunet_4_4", "--out", str(tmp_path / "x"), "--views", "5"])


def test_a_bad_input_is_reported_and_the_rest_scored(samples256, tmp_path, capsys):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    tile = sorted((samples256 / "images").glob("*.png"))[0]
    rc = main(["score", str(broken), str(tile), str(tmp_path / "nothing.png"), "--model", "elunet_8_5",
               "--out", str(tmp_path / "out")])
    assert rc == 1
    err = capsys.readouterr().out
    assert "broken.png" in err and "nothing.png" in err
    rows = rows_of(tmp_path / "out")
    assert [r["image"] for r in rows] == [tile.name] and rows[0]["dice"] != ""


def test_truth_named_by_hand_scores_one_image_as_its_paired_mask_would(samples256, tmp_path, capsys):
    """``--truth``: a tile's mask copied under another name (and as QuPath GeoJSON) gives the scores its
    own pairing gives; with more than one image it is refused before any work."""
    import shutil

    from paipviewer.core import geojson

    tile = sorted((samples256 / "images").glob("*.png"))[0]
    shutil.copy(tile, tmp_path / "tile.png")
    mask = next((samples256 / "masks_instance").glob(f"{tile.stem}.*"))  # what the pairing finds
    shutil.copy(mask, tmp_path / "drawn by Anna.png")
    geojson.write(tmp_path / "drawn.geojson", geojson.features(read_labels(mask)))
    runs = {}
    alone = str(tmp_path / "tile.png")
    for name, args in (("paired", [str(tile)]), ("png", [alone, "--truth", str(tmp_path / "drawn by Anna.png")]),
                       ("geojson", [alone, "--truth", str(tmp_path / "drawn.geojson")]), ("none", [alone])):
        assert main(["score", *args, "--model", "elunet_8_5", "--out", str(tmp_path / name)]) == 0
        (runs[name],) = rows_of(tmp_path / name)
    keys = ("dice", "aji", "nuclei_true", "det_f1")
    assert [runs["png"][k] for k in keys] == [runs["paired"][k] for k in keys] == [runs["geojson"][k] for k in keys]
    assert runs["none"]["dice"] == "" and float(runs["paired"]["dice"]) > 0.6
    assert main(["score", str(tile), str(tmp_path / "tile.png"), "--truth", str(mask), "--model", "elunet_8_5",
                 "--out", str(tmp_path / "two")]) == 2
    assert "--truth is one image's ground truth, but 2 images" in capsys.readouterr().err


def test_unusable_model_or_output_stops_before_any_work(samples256, tmp_path, capsys):
    tile = str(sorted((samples256 / "images").glob("*.png"))[0])
    assert main(["score", tile, "--model", "no_such_model", "--out", str(tmp_path / "a")]) == 2
    assert "no_such_model" in capsys.readouterr().err and not (tmp_path / "a").exists()
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["score", tile, "--model", "elunet_8_5", "--out", str(blocker)]) == 2
    assert "is a file" in capsys.readouterr().err


LOADED = {}


@pytest.fixture
def elunet_once(monkeypatch):
    """The shipped model loaded once for this module's fault tests (about a second each time on 2 cores)."""
    import paipviewer.score as score_module

    real = score_module.load_model

    def load_once(path, *args, **kwargs):
        if str(path) not in LOADED:
            LOADED[str(path)] = real(path, *args, **kwargs)
        return LOADED[str(path)]

    monkeypatch.setattr(score_module, "load_model", load_once)


def complete(path) -> bool:
    """A result file that is whole: a PNG that decodes, GeoJSON and CSV that parse to their end."""
    if path.suffix == ".png":
        return cv2.imread(str(path), cv2.IMREAD_UNCHANGED) is not None
    if path.suffix == ".geojson":
        return json.loads(path.read_text())["type"] == "FeatureCollection"
    text = path.read_text()
    return text.endswith("\n") and all(len(r) == len(COLUMNS) for r in csv.reader(text.splitlines()))


@pytest.mark.parametrize("fail_at", range(1, 9))
def test_a_full_disk_is_reported_and_what_was_written_stays_whole(fail_at, samples256, tmp_path, capsys, monkeypatch,
                                                                  elunet_once):
    """Two images, one model: eight writes (mask, overlay, GeoJSON, then scores.csv, per image); the disk
    fills at each in turn. The run stops with the reason (exit 2); every file written before is whole,
    scores.csv lists exactly the images whose files were all written, and no temporary is left."""
    from helpers import full_disk_after

    tiles = sorted((samples256 / "images").glob("*.png"))[:2]
    out = tmp_path / "out"
    tried = full_disk_after(fail_at, monkeypatch)
    code = main(["score", *map(str, tiles), "--model", "elunet_8_5", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and len(tried) == fail_at and "Traceback" not in err
    image = tiles[(fail_at - 1) // 4]
    done = (fail_at - 1) // 4  # images whose four writes all went through
    kept = f"the {done} rows before it are kept in {out / 'scores.csv'}" if done else "no rows were written"
    assert err == (f"paipviewer score: error: cannot write the results for {image.name} (No space left on device); "
                   f"{kept}\n")
    written = tried[:-1]
    assert sorted(p for p in out.rglob("*") if p.is_file()) == sorted(set(written))  # no temporary, nothing else
    assert all(complete(p) for p in written)
    if done:
        assert [r["image"] for r in rows_of(out)] == [t.name for t in tiles[:done]]


def test_a_read_only_output_folder_is_refused_before_any_work(samples256, tmp_path, capsys, monkeypatch):
    import paipviewer.score as score_module
    from helpers import make_read_only

    def refuse(*_, **__):
        raise AssertionError("an image was scored before the output folder was checked")

    monkeypatch.setattr(score_module, "score_image", refuse)
    tile = str(sorted((samples256 / "images").glob("*.png"))[0])
    for out in (make_read_only(tmp_path / "shared", monkeypatch), tmp_path / "shared" / "results"):
        assert main(["score", tile, "--model", "elunet_8_5", "--out", str(out)]) == 2
        assert capsys.readouterr().err == (f"paipviewer score: error: --out {out}: cannot write there "
                                           "(Permission denied)\n")
    assert list((tmp_path / "shared").iterdir()) == []
