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
import uuid

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


def feature_collection(labels: np.ndarray, probability: np.ndarray | None = None) -> dict:
    """A FeatureCollection of one detection per labelled nucleus, with its area (and mean probability)."""
    rings = polygons(labels)
    areas = np.bincount(np.asarray(labels).ravel().astype(np.int64))
    means = None
    if probability is not None:
        sums = np.bincount(np.asarray(labels).ravel().astype(np.int64), weights=np.asarray(probability, float).ravel())
        means = sums / np.maximum(areas, 1)
    features = []
    for lab, ring in rings.items():
        measurements = {"Area px^2": int(areas[lab])}
        if means is not None:
            measurements["Mean probability"] = round(float(means[lab]), 4)
        features.append({
            "type": "Feature",
            "id": str(uuid.UUID(int=lab)),  # stable across runs: the label id, in QuPath's UUID form
            "geometry": {"type": "Polygon", "coordinates": [ring]},
            "properties": {"objectType": "detection", "classification": dict(NUCLEUS),
                           "isLocked": False, "label": lab, "measurements": measurements},
        })
    return {"type": "FeatureCollection", "features": features}


def to_text(collection: dict) -> str:
    return json.dumps(collection, separators=(",", ":")) + "\n"


MAX_GEOJSON_BYTES = 512 * 2**20


class GeoJSONError(ValueError):
    """A GeoJSON file that cannot be used as ground truth; the message says why."""


def read_labels_geojson(path, shape: tuple[int, int], out: np.ndarray | None = None, *,
                        progress=None, cancelled=None) -> np.ndarray:
    """Ground truth drawn by hand (QuPath's export: a FeatureCollection, or a list of Features) as int32
    labels of ``shape``: each Polygon or MultiPolygon feature one nucleus, numbered in file order,
    holes cut out; a pixel belongs to a polygon when its centre lies inside, the rule :func:`polygons`
    traces by, so labels written here and read back are the same pixels.

    ``out``, a zeroed int32 array of ``shape``, takes the labels instead of a new array in memory: a
    whole slide's labels go to a memory-mapped file, and each polygon touches only its own box.
    ``progress(done, total)`` is told every 1000 features; ``cancelled()`` true raises ``Cancelled``.
    """
    from pathlib import Path

    from .inference import Cancelled

    path = Path(path)
    try:
        if path.stat().st_size > MAX_GEOJSON_BYTES:
            raise GeoJSONError(f"{path.name}: {path.stat().st_size / 2**20:.0f} MB is too large for a GeoJSON")
        data = json.loads(path.read_text(encoding="utf-8"))
    except GeoJSONError:
        raise
    except (OSError, ValueError, RecursionError) as exc:
        raise GeoJSONError(f"{path.name}: not readable GeoJSON ({exc})") from None
    features = data.get("features") if isinstance(data, dict) else data
    if isinstance(data, dict) and data.get("type") == "Feature":
        features = [data]
    if not isinstance(features, list):
        raise GeoJSONError(f"{path.name}: no features (expected a FeatureCollection or a list of Features)")
    if out is not None and (out.shape != tuple(shape) or out.dtype != np.int32):
        raise ValueError(f"out must be int32 of shape {tuple(shape)}, got {out.dtype} {out.shape}")
    labels = np.zeros(shape, np.int32) if out is None else out
    lab = 0
    for k, feature in enumerate(features):
        if k % 1000 == 0:
            if cancelled is not None and cancelled():
                raise Cancelled()
            if progress is not None:
                progress(k, len(features))
        geometry = feature.get("geometry") if isinstance(feature, dict) else None
        if not isinstance(geometry, dict) or geometry.get("type") not in ("Polygon", "MultiPolygon"):
            continue
        polys = geometry.get("coordinates") or []
        if geometry["type"] == "Polygon":
            polys = [polys]
        lab += 1
        try:
            rings = [np.asarray(r, float)[:, :2] for poly in polys for r in poly]
            _fill_even_odd(labels, rings, lab)
        except (ValueError, TypeError, IndexError) as exc:
            raise GeoJSONError(f"{path.name}: feature {lab} has malformed coordinates ({exc})") from None
    return labels


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
        crosses = (a[:, 1][None, :] > yc[:, None]) != (b[:, 1][None, :] > yc[:, None])  # rows x edges
        with np.errstate(divide="ignore", invalid="ignore"):  # horizontal edges never cross a centre row
            t = (yc[:, None] - a[:, 1][None, :]) / (b[:, 1] - a[:, 1])[None, :]
            x_at = a[:, 0][None, :] + t * (b[:, 0] - a[:, 0])[None, :]
        for r in np.flatnonzero(crosses.any(axis=1)):
            inside[r] ^= (xc[None, :] < x_at[r, crosses[r]][:, None]).sum(axis=0) % 2 == 1
    target = labels[y0:y1, x0:x1]
    target[inside & (target == 0)] = lab
