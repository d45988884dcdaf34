"""Labelled nuclei as GeoJSON that QuPath imports (File > Import objects, or drag and drop).

QuPath's format (its GeoJSON export, v0.4 and later): a FeatureCollection whose Features carry a
Polygon geometry in image pixel coordinates (x right, y down, origin at the top-left corner of
the top-left pixel) and properties ``objectType`` ("detection" for cell-like objects),
``classification`` {name, color [r, g, b]} and ``measurements`` (a name -> number object).

Each nucleus is traced along its outer pixel edges (holes are filled), so the polygon covers
exactly the pixels of its label: :func:`polygons` upsamples the label's mask 2x so OpenCV's
contour, which runs through pixel centres, runs through the original pixels' corners. Rings are
closed (first point repeated) and counter-clockwise as RFC 7946 asks.
"""
from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

import cv2
import numpy as np

NUCLEUS = {"name": "Nucleus", "color": [240, 228, 66]}  # the viewer's prediction yellow


def polygons(labels: np.ndarray) -> dict[int, list[list[float]]]:
    """Outer ring (closed list of [x, y]) of each label's largest connected piece, by label id."""
    rings = {}
    labels = np.asarray(labels)
    boxes = _boxes(labels)
    for lab, (y0, y1, x0, x1) in boxes.items():
        piece = (labels[y0:y1, x0:x1] == lab).astype(np.uint8)
        # Each pixel becomes 2x2, padded by one: contour points at 2-pixel steps are pixel corners.
        big = np.pad(np.repeat(np.repeat(piece, 2, axis=0), 2, axis=1), 1)
        contours, _ = cv2.findContours(big, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        if not contours:
            continue
        c = max(contours, key=cv2.contourArea).reshape(-1, 2).astype(float)
        pts = _snap_corners(c)
        pts[:, 0] += x0
        pts[:, 1] += y0
        ring = _dedupe(pts.tolist())
        if len(ring) < 3:
            continue
        if _signed_area(ring) < 0:
            ring.reverse()
        rings[int(lab)] = ring + [ring[0]]
    return rings


def _snap_corners(c: np.ndarray) -> np.ndarray:
    """Points of a contour traced on the 2x-upsampled, 1-padded mask, as corners of original pixels.

    In the upsampled grid original pixel i covers cells 2i+1 and 2i+2 (after the pad). A contour
    through cell 2i+1 runs along the pixel's low side (corner i), through 2i+2 along its high side
    (corner i+1): both are ``cell // 2``.
    """
    return np.floor(c / 2)


def _boxes(labels: np.ndarray) -> dict[int, tuple[int, int, int, int]]:
    """(y0, y1, x0, x1) bounding box of each label, from one pass over the array."""
    ys, xs = np.nonzero(labels)
    if not len(ys):
        return {}
    ids = labels[ys, xs]
    order = np.argsort(ids, kind="stable")
    ids, ys, xs = ids[order], ys[order], xs[order]
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    out = {}
    for s, e in zip(starts, np.r_[starts[1:], len(ids)]):
        out[int(ids[s])] = (int(ys[s:e].min()), int(ys[s:e].max()) + 1, int(xs[s:e].min()), int(xs[s:e].max()) + 1)
    return out


def _dedupe(points: list) -> list:
    out = []
    for p in points:
        if not out or p != out[-1]:
            out.append(p)
    while len(out) > 1 and out[0] == out[-1]:
        out.pop()
    return out


def _signed_area(ring: list) -> float:
    x = np.array([p[0] for p in ring])
    y = np.array([p[1] for p in ring])
    return float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y)) / 2


def features(labels: np.ndarray, probability: np.ndarray | None = None) -> Iterator[dict]:
    """One QuPath detection per labelled nucleus, with its area (and mean probability), in label order."""
    rings = polygons(labels)
    areas = np.bincount(np.asarray(labels).ravel().astype(np.int64))
    means = None
    if probability is not None:
        sums = np.bincount(np.asarray(labels).ravel().astype(np.int64), weights=np.asarray(probability, float).ravel())
        means = sums / np.maximum(areas, 1)
    for lab, ring in rings.items():
        measurements = {"Area px^2": int(areas[lab])}
        if means is not None:
            measurements["Mean probability"] = round(float(means[lab]), 4)
        yield {
            "type": "Feature",
            "id": str(uuid.UUID(int=lab)),  # stable across runs: the label id, in QuPath's UUID form
            "geometry": {"type": "Polygon", "coordinates": [ring]},
            "properties": {"objectType": "detection", "classification": dict(NUCLEUS),
                           "isLocked": False, "label": lab, "measurements": measurements},
        }


def write(path, items: Iterable[dict]) -> int:
    """Write ``items`` as a FeatureCollection to ``path`` atomically, one feature at a time, so a whole
    slide's nuclei never sit in memory as one document; the number written."""
    from .atomic import write_atomic

    count = 0

    def body(fh) -> None:
        nonlocal count
        fh.write(b'{"type":"FeatureCollection","features":[')
        for item in items:
            fh.write((b"," if count else b"") + json.dumps(item, separators=(",", ":")).encode("utf-8"))
            count += 1
        fh.write(b"]}\n")

    write_atomic(path, body)
    return count


# Memory does not grow with the file (it is parsed feature by feature): this only turns away a file no
# annotation could be; 4 GB is some 3.5 million nuclei as this module writes them.
MAX_GEOJSON_BYTES = 4 * 2**30


class GeoJSONError(ValueError):
    """A GeoJSON file that cannot be used as ground truth; the message says why."""


def read_labels_geojson(path, shape: tuple[int, int], out: np.ndarray | None = None, *,
                        progress=None, cancelled=None) -> np.ndarray:
    """Ground truth drawn by hand (QuPath's export: a FeatureCollection, or a list of Features) as int32
    labels of ``shape``: each Polygon or MultiPolygon feature one nucleus, numbered in file order,
    holes cut out; a pixel belongs to a polygon when its centre lies inside, the rule :func:`polygons`
    traces by, so labels written here and read back are the same pixels. A cell is its
    ``nucleusGeometry``; annotations (the regions an export of all objects holds) are nuclei only in a
    file without detections or cells, where they were drawn by hand, and are held until the end.

    The file is parsed one feature at a time (:func:`read`), and ``out``, a zeroed int32 array of
    ``shape``, takes the labels instead of a new array in memory: a whole slide's labels go to a
    memory-mapped file, and each polygon touches only its own box. ``progress(done, total)`` is told
    the kilobytes read every 1000 features; ``cancelled()`` true raises ``Cancelled``.
    """
    from .inference import Cancelled

    if out is not None and (out.shape != tuple(shape) or out.dtype != np.int32):
        raise ValueError(f"out must be int32 of shape {tuple(shape)}, got {out.dtype} {out.shape}")
    labels = np.zeros(shape, np.int32) if out is None else out
    lab, regions, objects_seen = 0, [], False
    for k, (feature, done, total) in enumerate(read(path)):
        if k % 1000 == 0:
            if cancelled is not None and cancelled():
                raise Cancelled()
            if progress is not None:
                progress(done // 1024, total // 1024)  # kilobytes: a progress bar counts in 32 bits
        polys = _polygons_of(feature)
        if polys is None:
            continue
        if _object_type(feature) == "annotation":
            if not objects_seen:
                regions.append(polys)
            continue
        objects_seen, regions = True, []
        lab += 1
        _draw(labels, polys, lab, path)
    for polys in regions:  # annotations are the nuclei only where the file has no detections or cells
        lab += 1
        _draw(labels, polys, lab, path)
    return labels


def _object_type(feature: dict) -> str | None:
    props = feature.get("properties")
    if not isinstance(props, dict):
        return None
    return props.get("objectType") or props.get("object_type")  # QuPath 0.4 on; 0.2-0.3


def _polygons_of(feature) -> list | None:
    """A feature's nucleus as a list of polygons (each a list of rings), or None if it has none: a
    cell's ``nucleusGeometry`` (QuPath draws the cell's outline as its geometry), else its geometry."""
    if not isinstance(feature, dict):
        return None
    geometry = feature.get("nucleusGeometry") or feature.get("geometry")
    if not isinstance(geometry, dict) or geometry.get("type") not in ("Polygon", "MultiPolygon"):
        return None
    polys = geometry.get("coordinates") or []
    return [polys] if geometry["type"] == "Polygon" else polys


def _draw(labels: np.ndarray, polys: list, lab: int, path) -> None:
    try:
        for poly in polys:  # one polygon at a time: each touches only its own box
            _fill_even_odd(labels, [np.asarray(r, float)[:, :2] for r in poly], lab)
    except (ValueError, TypeError, IndexError) as exc:
        raise GeoJSONError(f"{Path(path).name}: feature {lab} has malformed coordinates ({exc})") from None


def read(path) -> Iterator[tuple[object, int, int]]:
    """The features of a GeoJSON file (a FeatureCollection, a list of Features or one Feature), parsed one
    at a time, each with the characters read so far and the file's size, so memory holds one feature
    and a block of text rather than the whole document (a slide's export is hundreds of MB, and
    ``json.load`` would hold several times that as Python objects). Raises GeoJSONError."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_GEOJSON_BYTES:
            raise GeoJSONError(f"{path.name}: {size / 2**30:.1f} GB is too large for a GeoJSON")
        with open(path, encoding="utf-8-sig") as fh:
            text = _Text(fh)
            for item in _top_level(text, path.name):
                yield item, min(text.done, size), size
    except GeoJSONError:
        raise
    except (OSError, ValueError, RecursionError) as exc:
        raise GeoJSONError(f"{path.name}: not readable GeoJSON ({exc})") from None


def _top_level(text: "_Text", name: str) -> Iterator[object]:
    first = text.peek()
    if first == "[":
        yield from text.array()
    elif first == "{":
        members, streamed = {}, False
        for key in text.members():
            if key == "features" and text.peek() == "[":
                yield from text.array()
                streamed = True
            else:
                members[key] = text.value()
        if not streamed and members.get("type") == "Feature":
            yield members
        elif not streamed:
            raise GeoJSONError(f"{name}: no features (expected a FeatureCollection or a list of Features)")
    else:
        raise GeoJSONError(f"{name}: no features (expected a FeatureCollection or a list of Features)")
    if text.peek():
        raise ValueError(f"extra data at character {text.done}")


_SPACE = re.compile(r"[ \t\n\r]*")


class _Text:
    """A JSON text read in blocks, decoded value by value (``json.JSONDecoder.raw_decode``)."""

    BLOCK = 1 << 22

    def __init__(self, fh):
        self.fh, self.buf, self.pos, self.before, self.eof = fh, "", 0, 0, False
        self.decoder = json.JSONDecoder()

    @property
    def done(self) -> int:
        return self.before + self.pos

    def _more(self) -> bool:
        # At least as much again as is left: a feature larger than a block (one MultiPolygon of a whole
        # slide) is parsed O(its size) times over in all, not once per block.
        block = "" if self.eof else self.fh.read(max(self.BLOCK, len(self.buf) - self.pos))
        self.eof = not block
        if block:
            self.before += self.pos
            self.buf, self.pos = self.buf[self.pos:] + block, 0
        return bool(block)

    def peek(self) -> str:
        """The next character that is not white space ('' at the end), not consumed."""
        while True:
            self.pos = _SPACE.match(self.buf, self.pos).end()
            if self.pos < len(self.buf) or not self._more():
                return self.buf[self.pos:self.pos + 1]

    def expect(self, char: str) -> None:
        if self.peek() != char:
            raise ValueError(f"expected {char!r} at character {self.done}")
        self.pos += 1

    def value(self):
        self.peek()
        while True:
            try:
                value, end = self.decoder.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError:
                if self._more():  # the value runs on into the next block
                    continue
                raise
            # A number that ends the block may go on in the next one ("12" of "125").
            if end < len(self.buf) or not self._more():
                self.pos = end
                return value

    def array(self) -> Iterator[object]:
        self.expect("[")
        if self.peek() == "]":
            self.pos += 1
            return
        while True:
            yield self.value()
            if self.peek() == ",":
                self.pos += 1
                continue
            self.expect("]")
            return

    def members(self) -> Iterator[str]:
        """The keys of an object, each left for the caller to read its value."""
        self.expect("{")
        if self.peek() == "}":
            self.pos += 1
            return
        while True:
            key = self.value()
            if not isinstance(key, str):
                raise ValueError(f"an object key must be a string, at character {self.done}")
            self.expect(":")
            yield key
            if self.peek() == ",":
                self.pos += 1
                continue
            self.expect("}")
            return


def _fill_even_odd(labels: np.ndarray, rings: list[np.ndarray], lab: int) -> None:
    """Set to ``lab`` the still-empty pixels whose centre lies inside the rings (even-odd: holes cut out)."""
    points = np.concatenate(rings)
    if not len(points) or not np.isfinite(points).all():
        raise ValueError("no finite coordinates")
    h, w = labels.shape
    y0, y1 = max(int(np.floor(points[:, 1].min())), 0), min(int(np.ceil(points[:, 1].max())), h)
    x0, x1 = max(int(np.floor(points[:, 0].min())), 0), min(int(np.ceil(points[:, 0].max())), w)
    if y0 >= y1 or x0 >= x1:
        return
    yc = np.arange(y0, y1) + 0.5
    xc = np.arange(x0, x1) + 0.5
    inside = np.zeros((y1 - y0, x1 - x0), bool)
    for ring in rings:
        a, b = ring, np.roll(ring, -1, axis=0)
        step = max(1, 2**22 // len(ring))  # rows at a time: a region's outline has 10^5 edges
        for r0 in range(0, len(yc), step):
            _cross_rows(inside[r0:r0 + step], yc[r0:r0 + step], xc, a, b)
    target = labels[y0:y1, x0:x1]
    target[inside & (target == 0)] = lab


# Edges x columns up to which a polygon's rows are crossed in one array operation; a larger outline goes
# row by row, over the few edges that cross each row, so its memory stays bounded.
ALL_ROWS_AT_ONCE = 1 << 16


def _cross_rows(inside: np.ndarray, yc: np.ndarray, xc: np.ndarray, a: np.ndarray, b: np.ndarray) -> None:
    """Flip ``inside`` where a row's pixel centres lie right of an edge (a -> b) that crosses the row."""
    crosses = (a[:, 1][None, :] > yc[:, None]) != (b[:, 1][None, :] > yc[:, None])  # rows x edges
    with np.errstate(divide="ignore", invalid="ignore"):  # horizontal edges never cross a centre row
        t = (yc[:, None] - a[:, 1][None, :]) / (b[:, 1] - a[:, 1])[None, :]
        x_at = a[:, 0][None, :] + t * (b[:, 0] - a[:, 0])[None, :]
    if crosses.shape[1] * len(xc) <= ALL_ROWS_AT_ONCE:  # a nucleus: all rows at once, rows x edges x columns
        x_at = np.where(crosses, x_at, -np.inf)  # an edge that misses the row lies left of every centre
        inside ^= (xc[None, None, :] < x_at[:, :, None]).sum(axis=1) % 2 == 1
        return
    for r in np.flatnonzero(crosses.any(axis=1)):
        inside[r] ^= (xc[None, :] < x_at[r, crosses[r]][:, None]).sum(axis=0) % 2 == 1
