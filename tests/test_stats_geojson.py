"""The paired test between two models, and nuclei as QuPath GeoJSON."""
from __future__ import annotations

import json

import numpy as np
import pytest

from paipviewer.core import geojson
from paipviewer.core.geojson import features, polygons
from paipviewer.core.imageio import read_labels
from paipviewer.core.stats import wilcoxon


def test_wilcoxon_worked_by_hand():
    """Five images, model A better on every one: of the 2**5 sign patterns only "all +" and "all -"
    are as extreme, so the two-sided exact p is 2/32."""
    r = wilcoxon([0.9, 0.8, 0.85, 0.7, 0.75], [0.8, 0.75, 0.82, 0.69, 0.6])
    assert (r.n, r.statistic, r.method) == (5, 0.0, "exact")
    assert r.p_value == pytest.approx(2 / 32)
    assert "is better" not in r.verdict("A", "B")  # 0.0625: not below 0.05
    same = wilcoxon([0.5, 0.6], [0.5, 0.6])
    assert same.n == 0 and same.p_value == 1.0


def test_wilcoxon_agrees_with_scipy():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    for n, decimals in ((8, None), (14, None), (40, None), (60, 1)):
        a = rng.random(n)
        b = a + rng.normal(0.02, 0.05, n)
        if decimals:
            a, b = a.round(decimals), b.round(decimals)  # ties and zero differences
        ours, theirs = wilcoxon(a, b), stats.wilcoxon(a, b)
        assert ours.statistic == pytest.approx(float(theirs.statistic))
        assert ours.p_value == pytest.approx(float(theirs.pvalue), rel=1e-6)


def inside(ring, shape):
    """Pixels whose centre lies inside a polygon (even-odd rule), computed here from scratch."""
    ys, xs = np.mgrid[0:shape[0], 0:shape[1]]
    px, py = xs + 0.5, ys + 0.5
    out = np.zeros(shape, bool)
    for (x0, y0), (x1, y1) in zip(ring[:-1], ring[1:]):
        crosses = (y0 > py) != (y1 > py)
        with np.errstate(divide="ignore", invalid="ignore"):
            x_at = x0 + (py - y0) * (x1 - x0) / (y1 - y0)
        out ^= crosses & (px < x_at)
    return out


def test_polygons_cover_exactly_the_pixels_of_each_nucleus(monuseg):
    labels = read_labels(sorted((monuseg / "test" / "masks_instance").glob("*.png"))[0])[:300, :300]
    rings = polygons(labels)
    ids = set(np.unique(labels)) - {0}
    assert set(rings) == ids
    for lab in sorted(ids)[:60]:
        ring = rings[lab]
        assert ring[0] == ring[-1] and len(ring) >= 5
        area = sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(ring[:-1], ring[1:])) / 2
        assert area > 0  # counter-clockwise in x-right, y-up terms, as RFC 7946 asks
        piece = labels == lab
        assert np.array_equal(inside(ring, labels.shape), piece) and area == piece.sum()


def test_written_collection_is_qupath_detections(tmp_path):
    labels = np.zeros((30, 30), np.int32)
    labels[2:6, 3:9] = 1
    labels[20:25, 20:22] = 2
    prob = np.where(labels > 0, 0.9, 0.1).astype(np.float32)
    assert geojson.write(tmp_path / "a.geojson", features(labels, prob)) == 2
    fc = json.loads((tmp_path / "a.geojson").read_text())
    assert fc["type"] == "FeatureCollection" and len(fc["features"]) == 2
    f = fc["features"][0]
    assert f["type"] == "Feature" and f["geometry"]["type"] == "Polygon"
    assert f["properties"]["objectType"] == "detection"
    assert f["properties"]["classification"]["name"] == "Nucleus"
    assert f["properties"]["measurements"]["Area px^2"] == 24
    assert f["properties"]["measurements"]["Mean probability"] == pytest.approx(0.9)
    ring = f["geometry"]["coordinates"][0]
    assert sorted({tuple(p) for p in ring}) == [(3, 2), (3, 6), (9, 2), (9, 6)]  # the box's corners


def test_geojson_read_back_gives_the_same_nuclei(monuseg, tmp_path):
    """What QuPath would import from our export, drawn back: the same pixels, nucleus by nucleus; and
    a drawn annotation with a hole, and junk features, read as a user would expect."""
    from paipviewer.core.geojson import GeoJSONError, read_labels_geojson

    labels = read_labels(sorted((monuseg / "test" / "masks_instance").glob("*.png"))[0])
    geojson.write(tmp_path / "a.geojson", features(labels))
    back = read_labels_geojson(tmp_path / "a.geojson", labels.shape)
    ids = np.array([0] + [f["properties"]["label"] for f in features(labels)])
    assert np.array_equal(ids[back], labels)

    ring = [[2, 2], [12, 2], [12, 12], [2, 12], [2, 2]]
    hole = [[5, 5], [5, 8], [8, 8], [8, 5], [5, 5]]
    drawn = [{"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring, hole]}, "properties": {}},
             {"type": "Feature", "geometry": {"type": "Point", "coordinates": [1, 1]}, "properties": {}}]
    (tmp_path / "b.geojson").write_text(json.dumps(drawn))  # QuPath's plain list of features
    b = read_labels_geojson(tmp_path / "b.geojson", (15, 15))
    assert b.sum() == 100 - 9 and b[6, 6] == 0 and b[2, 2] == 1
    (tmp_path / "c.geojson").write_text('{"type": "FeatureCollection", "features": 3}')
    with pytest.raises(GeoJSONError, match="c.geojson"):
        read_labels_geojson(tmp_path / "c.geojson", (5, 5))


def test_a_slides_polygons_are_drawn_into_a_mapped_file_that_is_not_left_behind(tmp_path):
    """A whole slide's drawn nuclei may not fit in memory: with a spill folder they go to a memory-mapped
    file, the same labels as in memory, with progress, a cancel, and no file left once mapped."""
    from conftest import _data

    from paipviewer.core.evidence import truth_labels
    from paipviewer.core.inference import Cancelled

    labels = read_labels(_data("slides") / "mosaic_20x_instances.png")
    geojson.write(tmp_path / "slide.geojson", features(labels))
    size = (tmp_path / "slide.geojson").stat().st_size // 1024
    told = []
    mapped = truth_labels(tmp_path / "slide.geojson", labels.shape, tmp_path / "spill",
                          progress=lambda done, total: told.append((done, total)))
    assert isinstance(mapped, np.memmap) and mapped.dtype == np.int32
    assert np.array_equal(mapped > 0, labels > 0) and mapped.max() == labels.max() == 6697
    assert np.array_equal(mapped, truth_labels(tmp_path / "slide.geojson", labels.shape))
    assert len(told) == 7 and all(total == size for _, total in told)  # every 1000 nuclei, in kilobytes read
    assert told[0][0] < told[1][0] < told[-1][0] < size
    assert not list((tmp_path / "spill").iterdir())
    with pytest.raises(Cancelled):
        truth_labels(tmp_path / "slide.geojson", labels.shape, tmp_path / "spill", cancelled=lambda: True)


def test_features_are_read_one_at_a_time_from_any_layout_json_allows(tmp_path, monkeypatch):
    """The streaming reader against ``json.load`` on what other tools write: pretty-printed with a byte
    order mark, members after "features", a lone Feature, and numbers cut by a block boundary; and
    broken files refused with the file's name, never read half."""
    from paipviewer.core.geojson import GeoJSONError, read

    monkeypatch.setattr(geojson._Text, "BLOCK", 7)  # every value crosses blocks
    labels = np.zeros((40, 40), np.int32)
    labels[2:9, 3:12], labels[20:31, 5:9], labels[30:38, 30:39] = 1, 2, 3
    written = list(features(labels, np.full(labels.shape, 0.123456)))
    docs = {
        "pretty.geojson": "\ufeff" + json.dumps({"features": written, "type": "FeatureCollection",
                                                  "bbox": [0, 0, 40.5, 40]}, indent=4),
        "list.geojson": json.dumps(written, indent=1),
        "one.geojson": json.dumps(written[1]),
        "empty.geojson": '{"type": "FeatureCollection", "features": [ ]}',
    }
    for name, text in docs.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
        got = [f for f, _, _ in read(tmp_path / name)]
        whole = json.loads(text.lstrip("\ufeff"))
        assert got == (whole.get("features", [whole]) if isinstance(whole, dict) else whole), name
    for name, text in {"cut.geojson": json.dumps(written)[:-30], "extra.geojson": json.dumps(written) + "]",
                       "key.geojson": '{"features": [], 3: 4}', "number.geojson": "12"}.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(GeoJSONError, match=name):
            list(read(tmp_path / name))


def test_a_qupath_export_of_all_objects_gives_the_nuclei_not_the_regions_or_cells(monuseg, tmp_path):
    """QuPath's "export all objects": the annotation the nuclei were detected in comes first and covers
    them all, cells carry their outline as geometry and the nucleus as ``nucleusGeometry``. The truth is
    the nuclei; annotations count only in a file of annotations alone (nuclei drawn by hand)."""
    import cv2

    from paipviewer.core.geojson import read_labels_geojson

    labels = read_labels(sorted((monuseg / "test" / "masks_instance").glob("*.png"))[1])[:300, :300]
    nuclei = list(features(labels))
    region = {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [300, 0], [300, 300],
                                                                               [0, 300], [0, 0]]]},
              "properties": {"objectType": "annotation", "classification": {"name": "Tumor"}}}
    exported = [region]
    for k, f in enumerate(nuclei):
        if k % 2:
            lab = f["properties"]["label"]
            outline = cv2.dilate((labels == lab).astype(np.uint8), np.ones((7, 7), np.uint8))
            cell = next(iter(polygons(outline).values()))
            f = {**f, "geometry": {"type": "Polygon", "coordinates": [cell]}, "nucleusGeometry": f["geometry"],
                 "properties": {**f["properties"], "objectType": "cell"}}
        exported.append(f)
    (tmp_path / "all.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": exported}))
    got = read_labels_geojson(tmp_path / "all.geojson", labels.shape)
    ids = np.array([0] + [f["properties"]["label"] for f in nuclei])
    assert np.array_equal(ids[got], labels)

    drawn = [{**f, "properties": {"objectType": "annotation"}} for f in nuclei]  # by hand, in QuPath 0.4
    (tmp_path / "drawn.geojson").write_text(json.dumps(drawn))
    assert np.array_equal(ids[read_labels_geojson(tmp_path / "drawn.geojson", labels.shape)], labels)
    two = {"type": "Feature", "properties": {"object_type": "detection"},  # QuPath 0.2's key
           "geometry": {"type": "MultiPolygon", "coordinates": [[[[1, 1], [4, 1], [4, 4], [1, 4], [1, 1]]],
                                                                [[[20, 20], [22, 20], [22, 22], [20, 22], [20, 20]]]]}}
    (tmp_path / "two.geojson").write_text(json.dumps([region, two]))
    both = read_labels_geojson(tmp_path / "two.geojson", (30, 30))
    assert both.sum() == 9 + 4 and both.max() == 1
