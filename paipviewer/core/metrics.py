"""Segmentation scores from pixel confusion counts, per image and pooled.

For a predicted mask P and ground truth G (both boolean):

- TP = |P & G|, FP = |P & ~G|, FN = |~P & G|, TN = |~P & ~G|
- Jaccard (IoU) = TP / (TP + FP + FN)   (the study's per-tile accuracy)
- Dice (F1)     = 2 TP / (2 TP + FP + FN) = 2 J / (1 + J)
- precision     = TP / (TP + FP),  recall = TP / (TP + FN)
- two-class mean IoU = (Jaccard of foreground + Jaccard of background) / 2, the Keras
  ``MeanIoU`` convention, printed beside foreground Jaccard so a reader can tell which one a
  published figure fits.

Empty cases, decided once: a ratio whose denominator is zero means nothing was there to find and
nothing was found, so it is 1.0 (a tile with no nuclei and no prediction is a perfect tile).
When only one side is empty (nuclei missed entirely, or predicted on an empty tile) TP is zero
and the denominator is not, so Jaccard and Dice are 0.0 by the formula. Precision with no
predicted pixel is 1.0 only if there was no nucleus either (FN = 0), else 0.0; recall likewise
with FP.

"Pooled" sums the counts over many tiles or images before dividing (one big image); the "mean"
of per-tile scores is what the study reports.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Confusion:
    tp: int
    fp: int
    fn: int
    tn: int

    def __add__(self, other: "Confusion") -> "Confusion":
        return Confusion(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn, self.tn + other.tn)

    @property
    def jaccard(self) -> float:
        return _ratio(self.tp, self.tp + self.fp + self.fn)

    @property
    def dice(self) -> float:
        return _ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn)

    @property
    def precision(self) -> float:
        return _ratio(self.tp, self.tp + self.fp, empty=1.0 if self.fn == 0 else 0.0)

    @property
    def recall(self) -> float:
        return _ratio(self.tp, self.tp + self.fn, empty=1.0 if self.fp == 0 else 0.0)

    @property
    def background_jaccard(self) -> float:
        return _ratio(self.tn, self.tn + self.fp + self.fn)

    @property
    def mean_iou(self) -> float:
        return (self.jaccard + self.background_jaccard) / 2

    def scores(self) -> dict[str, float]:
        return {"jaccard": self.jaccard, "dice": self.dice, "precision": self.precision,
                "recall": self.recall, "mean_iou": self.mean_iou}

    def as_dict(self) -> dict[str, float]:
        return {**asdict(self), **self.scores()}


def _ratio(num: int, den: int, empty: float = 1.0) -> float:
    return float(num) / float(den) if den else empty


def confusion(pred: np.ndarray, truth: np.ndarray) -> Confusion:
    """Pixel confusion counts of two boolean masks of the same shape."""
    pred = np.asarray(pred, dtype=bool)
    truth = np.asarray(truth, dtype=bool)
    if pred.shape != truth.shape:
        raise ValueError(f"prediction {pred.shape} and ground truth {truth.shape} differ in shape")
    tp = int(np.count_nonzero(pred & truth))
    p = int(np.count_nonzero(pred))
    g = int(np.count_nonzero(truth))
    return Confusion(tp=tp, fp=p - tp, fn=g - tp, tn=pred.size - p - g + tp)


def pooled(items) -> Confusion:
    """Sum of many confusions: the scores of all pixels taken together."""
    total = Confusion(0, 0, 0, 0)
    for c in items:
        total = total + c
    return total


def mean_score(items, name: str = "jaccard") -> float:
    """Mean of a per-item score (``jaccard``, ``dice``, ...), as the study averages tiles."""
    values = [getattr(c, name) for c in items]
    if not values:
        raise ValueError("no items to average")
    return float(np.mean(values))


def error_map(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """uint8 map: 0 = TN, 1 = TP, 2 = FP, 3 = FN; what the viewer colours."""
    pred = np.asarray(pred, dtype=bool)
    truth = np.asarray(truth, dtype=bool)
    out = np.zeros(pred.shape, np.uint8)
    out[pred & truth] = 1
    out[pred & ~truth] = 2
    out[~pred & truth] = 3
    return out
