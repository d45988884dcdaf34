"""Nuclei as objects: a predicted mask split into labelled nuclei.

A model predicts nucleus *pixels*; touching nuclei come out as one blob. :func:`label_nuclei`
splits blobs by a marker-controlled watershed on the distance transform, the usual way for
round objects:

1. Components (8-connected) smaller than ``min_area`` pixels are dropped as noise.
2. Markers are local maxima of the distance to the background (smoothed by a 1 px Gaussian)
   within a disc of radius ``min_distance``: one near the centre of each round nucleus.
3. Each blob with two or more markers is flooded from them, level by level down the distance
   map; where two basins meet, the shallower one is merged into the other unless both peaks
   rise at least ``min_depth`` pixels above the meeting level (the h-maxima rule), so a waist
   of a nucleus does not cut it in two, while a real neck between two nuclei does.

Blobs with one marker are one nucleus, untouched. :class:`ObjectSettings` are chosen on the training
images (``docs/results/objects.md``) and can be set in a model card's ``objects`` field. They apply in
the image's own pixels, also when the model ran at another scale: on MoNuSeg test images halved to
0.5 um/px (6 images) they gave AJI 0.576 / detection F1 0.777, sizes scaled to the image 0.583 /
0.750, labelling at the model's scale 0.598 / 0.762; no clear winner, so the simplest.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import cv2
import numpy as np


@dataclass(frozen=True)
class ObjectSettings:
    min_area: int = 30          # px: smaller components are noise, not nuclei (2 um^2 at 0.25 um/px)
    min_distance: int = 4       # px: radius within which a marker must be the highest point
    min_depth: float = 1.0      # px: how far both peaks must rise above a neck to split there

    def __post_init__(self):
        if self.min_area < 0 or self.min_distance < 1 or self.min_depth < 0:
            raise ValueError(f"invalid object settings {self}")

    @classmethod
    def from_dict(cls, data: dict | None) -> "ObjectSettings":
        """Settings from a card's ``objects`` field; unknown keys are ignored, wrong types refused."""
        data = data or {}
        known = {f.name: f.type for f in fields(cls)}
        values = {}
        for key, value in data.items():
            if key not in known:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"objects.{key} is {type(value).__name__}, not a number")
            values[key] = int(value) if key != "min_depth" else float(value)
        return cls(**values)

    def as_dict(self) -> dict:
        return asdict(self)


def label_nuclei(mask: np.ndarray, settings: ObjectSettings = ObjectSettings()) -> np.ndarray:
    """int32 labels 1..N of the nuclei in a boolean mask (0 = background), numbered in raster order."""
    fg = np.asarray(mask, dtype=bool).astype(np.uint8)
    n, comp, stats, _ = cv2.connectedComponentsWithStats(fg, connectivity=8)
    keep = stats[:, cv2.CC_STAT_AREA] >= settings.min_area
    keep[0] = False
    comp = np.where(keep[comp], comp, 0).astype(np.int32)
    if not keep.any():
        return comp
    fg = (comp > 0).astype(np.uint8)
    dist = cv2.GaussianBlur(cv2.distanceTransform(fg, cv2.DIST_L2, 5), (0, 0), 1.0)
    r = settings.min_distance
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    peaks = ((dist >= cv2.dilate(dist, disc)) & (fg > 0)).astype(np.uint8)
    n_markers, markers = cv2.connectedComponents(peaks, connectivity=8)
    # Blobs with several markers are split; the rest stay whole.
    owner = np.zeros(n_markers, np.int64)
    ys, xs = np.nonzero(markers)
    owner[markers[ys, xs]] = comp[ys, xs]
    per_blob = np.bincount(owner[1:], minlength=n)
    labels = comp.copy()
    next_id = n
    for blob in np.flatnonzero(per_blob >= 2):
        x, y, w, h = stats[blob, :4]
        sl = (slice(y, y + h), slice(x, x + w))
        region = comp[sl] == blob
        split = _flood(np.where(region, markers[sl], 0), dist[sl], region, settings.min_depth)
        ids = np.unique(split[split > 0])
        relabel = np.zeros(split.max() + 1, np.int32)
        relabel[ids] = np.arange(next_id, next_id + len(ids))
        labels[sl][region] = relabel[split[region]]
        next_id += len(ids)
    return _sequential(labels)


def _flood(markers: np.ndarray, dist: np.ndarray, region: np.ndarray, min_depth: float) -> np.ndarray:
    """Grow ``markers`` over ``region`` in steps down ``dist``, merging basins too shallow to keep."""
    labels = markers.astype(np.float32)  # cv2.dilate takes float32; ids stay exact below 2**24
    ids = np.unique(markers[markers > 0])
    peak = {int(i): float(dist[markers == i].max()) for i in ids}
    parent = {i: i for i in peak}
    kernel = np.ones((3, 3), np.uint8)
    step = 0.5
    for level in np.arange(np.floor(dist[region].max() / step) * step, -step, -step):
        allowed = region & (dist >= level)
        while True:
            grown = cv2.dilate(labels, kernel)
            new = allowed & (labels == 0) & (grown > 0)
            if not new.any():
                break
            labels[new] = grown[new]
        # Only a basin whose peak is within min_depth of this level can still be merged away.
        if min(peak[i] for i in parent if parent[i] == i) - level < min_depth:
            _merge_shallow(labels, peak, parent, float(level), min_depth)
    return labels.astype(np.int32)


def _merge_shallow(labels: np.ndarray, peak: dict, parent: dict, level: float, min_depth: float) -> None:
    """Where two basins touch at ``level``, fold the lower into the higher if either is too shallow."""
    pairs = set()
    for a, b in ((labels[:, :-1], labels[:, 1:]), (labels[:-1, :], labels[1:, :]),
                 (labels[:-1, :-1], labels[1:, 1:]), (labels[:-1, 1:], labels[1:, :-1])):
        touch = (a > 0) & (b > 0) & (a != b)
        if touch.any():
            pairs.update(zip(a[touch].astype(int).tolist(), b[touch].astype(int).tolist()))
    merged = False
    for a, b in sorted(pairs):
        a, b = _root(parent, a), _root(parent, b)
        if a == b or min(peak[a], peak[b]) - level >= min_depth:
            continue
        low, high = (a, b) if (peak[a], -a) < (peak[b], -b) else (b, a)
        parent[low] = high
        merged = True
    if merged:
        lut = np.zeros(max(parent) + 1, np.float32)
        for i in parent:
            lut[i] = _root(parent, i)
        labels[:] = lut[labels.astype(np.int64)]


def _root(parent: dict, i: int) -> int:
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def _sequential(labels: np.ndarray) -> np.ndarray:
    """Labels renumbered 1..N in raster order of each object's first pixel."""
    flat = labels.ravel()
    ids, first = np.unique(flat, return_index=True)
    order = ids[np.argsort(first)]
    order = order[order > 0]
    lut = np.zeros(int(labels.max()) + 1, np.int32)
    lut[order] = np.arange(1, len(order) + 1, dtype=np.int32)
    return lut[labels]


@dataclass(frozen=True)
class ObjectScores:
    """Object-level agreement of predicted nuclei with true nuclei in one image.

    Matching: a predicted and a true nucleus match when their IoU is at least 0.5, one to one
    (pairs taken greedily by falling IoU; above 0.5 a nucleus can only have one partner anyway).

    - detection: TP matched pairs, FP unmatched predictions, FN unmatched true nuclei;
      precision TP/(TP+FP), recall TP/(TP+FN), F1 = 2TP/(2TP+FP+FN).
    - PQ (Kirillov et al. 2019; Graham et al. 2019 for nuclei) = DQ x SQ, where
      DQ = TP/(TP + FP/2 + FN/2) (the F1 above) and SQ = the mean IoU of the matched pairs.
    - AJI (Kumar et al. 2017): each true nucleus G takes the predicted nucleus S of highest IoU
      with it; C sums |G & S| and U sums |G | S| (|G| alone when no prediction touches G); U also
      adds every predicted nucleus never taken. AJI = C / U.

    An image with neither true nor predicted nuclei scores 1 on everything; with one side empty, 0.
    """
    n_true: int
    n_pred: int
    tp: int
    iou_sum: float      # summed IoU of the matched pairs
    aji_inter: int
    aji_union: int

    @property
    def fp(self) -> int:
        return self.n_pred - self.tp

    @property
    def fn(self) -> int:
        return self.n_true - self.tp

    @property
    def precision(self) -> float:
        return self.tp / self.n_pred if self.n_pred else (1.0 if not self.n_true else 0.0)

    @property
    def recall(self) -> float:
        return self.tp / self.n_true if self.n_true else (1.0 if not self.n_pred else 0.0)

    @property
    def f1(self) -> float:
        den = 2 * self.tp + self.fp + self.fn
        return 2 * self.tp / den if den else 1.0

    @property
    def dq(self) -> float:
        return self.f1

    @property
    def sq(self) -> float:
        return self.iou_sum / self.tp if self.tp else (1.0 if not (self.n_true or self.n_pred) else 0.0)

    @property
    def pq(self) -> float:
        return self.dq * self.sq

    @property
    def aji(self) -> float:
        return self.aji_inter / self.aji_union if self.aji_union else 1.0


@dataclass(frozen=True)
class Matching:
    """Which nuclei matched: the scores, and the matched ids on each side (for the object layer)."""
    scores: ObjectScores
    true_matched: np.ndarray   # bool per true id (index 0 unused)
    pred_matched: np.ndarray   # bool per predicted id


MATCH_IOU = 0.5


def match_nuclei(truth: np.ndarray, pred: np.ndarray, iou: float = MATCH_IOU) -> Matching:
    """Match labelled true and predicted nuclei (int label images of one shape, 0 = background)."""
    truth = np.asarray(truth)
    pred = np.asarray(pred)
    if truth.shape != pred.shape:
        raise ValueError(f"prediction {pred.shape} and ground truth {truth.shape} differ in shape")
    counts = OverlapCounts()
    counts.add(truth, pred)
    return counts.match(iou)


class OverlapCounts:
    """Object areas and pairwise overlaps, summed block by block: a whole slide's nuclei are matched
    without holding its label maps at once (a nucleus cut by a block edge adds up across blocks)."""

    def __init__(self) -> None:
        self.area_t = np.zeros(1, np.int64)
        self.area_p = np.zeros(1, np.int64)
        self.pairs: dict[tuple[int, int], int] = {}

    def add(self, truth: np.ndarray, pred: np.ndarray) -> None:
        t = np.asarray(truth).ravel().astype(np.int64)
        p = np.asarray(pred).ravel().astype(np.int64)
        self.area_t = _add_counts(self.area_t, np.bincount(t))
        self.area_p = _add_counts(self.area_p, np.bincount(p))
        both = (t > 0) & (p > 0)
        if both.any():
            width = int(p.max()) + 1
            codes, inter = np.unique(t[both] * width + p[both], return_counts=True)
            for a, b, n in zip((codes // width).tolist(), (codes % width).tolist(), inter.tolist()):
                self.pairs[(a, b)] = self.pairs.get((a, b), 0) + n

    def match(self, iou: float = MATCH_IOU) -> Matching:
        area_t, area_p = self.area_t.copy(), self.area_p.copy()
        area_t[0] = area_p[0] = 0
        true_ids, pred_ids = np.flatnonzero(area_t), np.flatnonzero(area_p)
        keys = np.array(list(self.pairs) or np.empty((0, 2)), np.int64).reshape(-1, 2)
        ti, pi = keys[:, 0], keys[:, 1]
        inter = np.array(list(self.pairs.values()), np.int64)
        union = area_t[ti] + area_p[pi] - inter
        ious = inter / np.maximum(union, 1)

        true_matched = np.zeros(len(area_t), bool)
        pred_matched = np.zeros(len(area_p), bool)
        iou_sum = 0.0
        for k in np.lexsort((pi, ti, -ious)):  # by falling IoU; ties in a fixed order
            if ious[k] < iou:
                break
            if not true_matched[ti[k]] and not pred_matched[pi[k]]:
                true_matched[ti[k]] = pred_matched[pi[k]] = True
                iou_sum += float(ious[k])

        # AJI: the best prediction of each true nucleus (by IoU, ties to the lower id), used or not.
        best = np.lexsort((pi, -ious, ti))
        first = np.ones(len(best), bool)
        first[1:] = ti[best][1:] != ti[best][:-1]
        best = best[first]
        touched = np.zeros(len(area_t), bool)
        touched[ti[best]] = True
        taken = np.zeros(len(area_p), bool)
        taken[pi[best]] = True
        aji_inter = int(inter[best].sum())
        aji_union = int(union[best].sum() + area_t[true_ids[~touched[true_ids]]].sum()
                        + area_p[pred_ids[~taken[pred_ids]]].sum())
        scores = ObjectScores(n_true=len(true_ids), n_pred=len(pred_ids), tp=int(true_matched.sum()),
                              iou_sum=iou_sum, aji_inter=aji_inter, aji_union=aji_union)
        return Matching(scores, true_matched, pred_matched)


def _add_counts(total: np.ndarray, more: np.ndarray) -> np.ndarray:
    if len(more) > len(total):
        total, more = more.astype(np.int64), total
    total = total.copy()
    total[:len(more)] += more
    return total


# Codes of the object layer.
MATCHED, FALSE, MISSED = 1, 2, 3


def object_map(truth: np.ndarray, pred: np.ndarray, matching: Matching) -> np.ndarray:
    """uint8 per pixel: MATCHED / FALSE on predicted nuclei, MISSED on true nuclei no prediction matched."""
    out = np.zeros(pred.shape, np.uint8)
    missed = ~matching.true_matched[truth] & (truth > 0)
    out[missed] = MISSED
    out[pred > 0] = np.where(matching.pred_matched[pred[pred > 0]], MATCHED, FALSE)
    return out
