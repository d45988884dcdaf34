"""Scores at any threshold without thresholding again: levels, counts, scans and summaries.

Thresholds live on a grid of 0.01, :data:`GRID` (the viewer's slider, the trainer's scans, the
cards' calibrated values). A probability map is reduced once to *levels*::

    level(p) = number of grid thresholds t with t <= p        (1..101 for p in [0, 1])

compared in float32, as NumPy compares a float32 map with a Python threshold, so ``p >= t_k``
exactly when ``level(p) > k``: a mask from levels is the mask from probabilities, pixel for pixel.
Histograms of the levels over all pixels and over the ground-truth pixels then give the confusion
counts (see :mod:`paipviewer.core.metrics`) at every grid threshold in O(grid), so moving a
threshold over many open images never touches their pixels again. A threshold off the grid is
scored from the probabilities directly.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .metrics import Confusion, confusion, mean_score, pooled

STEPS = 100
GRID = (np.arange(STEPS + 1) / STEPS).astype(np.float32)  # 0.00, 0.01, ..., 1.00
SCAN = tuple(round(t, 2) for t in np.arange(0.30, 0.801, 0.05))  # the thresholds fit and calibrate try


def grid_index(threshold: float) -> int | None:
    """k with GRID[k] == threshold in float32, or None for a threshold off the grid."""
    k = int(round(float(threshold) * STEPS))
    return k if 0 <= k <= STEPS and GRID[k] == np.float32(threshold) else None


def levels_of(probability: np.ndarray) -> np.ndarray:
    """uint8 levels of a probability map (any shape); see the module docstring."""
    p = np.asarray(probability, dtype=np.float32)
    return np.searchsorted(GRID, p.ravel(), side="right").astype(np.uint8).reshape(p.shape)


def mask_at(levels: np.ndarray, probability: np.ndarray, threshold: float) -> np.ndarray:
    """``probability >= threshold``, from the levels when the threshold is on the grid."""
    k = grid_index(threshold)
    return levels > k if k is not None else probability >= threshold


def _above(hist: np.ndarray) -> np.ndarray:
    """above[..., k] = how many counted pixels have a level above k, for k = 0..STEPS."""
    tail = np.cumsum(hist[..., ::-1], axis=-1)[..., ::-1]  # tail[j] = sum(hist[j:])
    return tail[..., 1:]


@dataclass(frozen=True)
class LevelCounts:
    """Pixel counts of one map at every grid threshold; ``truth_above`` is None without ground truth."""
    pixels: int
    above: np.ndarray                  # (STEPS + 1,) predicted pixels at each threshold
    truth_pixels: int | None = None
    truth_above: np.ndarray | None = None  # (STEPS + 1,) true positives at each threshold

    def predicted(self, k: int) -> int:
        return int(self.above[k])

    def confusion(self, k: int) -> Confusion | None:
        if self.truth_above is None:
            return None
        tp, p, g = int(self.truth_above[k]), int(self.above[k]), int(self.truth_pixels)
        return Confusion(tp=tp, fp=p - tp, fn=g - tp, tn=self.pixels - p - g + tp)


def level_counts(levels: np.ndarray, truth: np.ndarray | None = None) -> LevelCounts:
    above = _above(np.bincount(levels.ravel(), minlength=STEPS + 2))
    if truth is None:
        return LevelCounts(int(levels.size), above)
    truth = np.asarray(truth, dtype=bool)
    if truth.shape != levels.shape:
        raise ValueError(f"prediction {levels.shape} and ground truth {truth.shape} differ in shape")
    truth_above = _above(np.bincount(levels[truth], minlength=STEPS + 2))
    return LevelCounts(int(levels.size), above, int(np.count_nonzero(truth)), truth_above)


def tile_confusions(probs: np.ndarray, truths: np.ndarray, thresholds) -> dict[float, list[Confusion]]:
    """Per-tile confusions of (N, h, w) probabilities against (N, h, w) masks at each threshold.

    One pass over the pixels whatever the number of thresholds: per-tile level histograms.
    """
    probs = np.asarray(probs, dtype=np.float32)
    truths = np.asarray(truths) > 0
    n = len(probs)
    levels = levels_of(probs).reshape(n, -1).astype(np.int64) + (STEPS + 2) * np.arange(n)[:, None]
    width = STEPS + 2
    hist = np.bincount(levels.ravel(), minlength=n * width).reshape(n, width)
    truth_hist = np.bincount(levels.reshape(n, -1)[truths.reshape(n, -1)], minlength=n * width).reshape(n, width)
    above, truth_above = _above(hist), _above(truth_hist)
    pixels, g = probs[0].size if n else 0, truths.reshape(n, -1).sum(axis=1)
    out = {}
    for t in thresholds:
        k = grid_index(t)
        if k is None:
            out[t] = [confusion(p >= t, y) for p, y in zip(probs, truths)]
            continue
        out[t] = [Confusion(tp=int(tp), fp=int(p - tp), fn=int(gi - tp), tn=int(pixels - p - gi + tp))
                  for tp, p, gi in zip(truth_above[:, k], above[:, k], g)]
    return out


def summarize(items: list[Confusion]) -> dict:
    """Over tiles or images: the study's mean per-tile Jaccard, mean Dice, and the pooled scores."""
    total = pooled(items)
    return {"count": len(items), "jaccard_mean": mean_score(items, "jaccard"), "dice_mean": mean_score(items, "dice"),
            "jaccard_pooled": total.jaccard, "dice_pooled": total.dice}


def tile_scores(probs: np.ndarray, truths: np.ndarray, threshold: float) -> dict:
    """Per-tile mean Jaccard and Dice, and pooled scores, at ``threshold``."""
    s = summarize(tile_confusions(probs, truths, [threshold])[threshold])
    return {"tiles": s.pop("count"), "threshold": threshold, **s}


def threshold_scan(probs: np.ndarray, truths: np.ndarray, thresholds=SCAN, score: str = "dice") -> dict[str, float]:
    """Mean per-tile ``score`` at each threshold, keyed "0.30", "0.35", ..."""
    per = tile_confusions(probs, truths, thresholds)
    return {f"{t:.2f}": mean_score(per[t], score) for t in thresholds}


def tune_threshold(probs: np.ndarray, truths: np.ndarray, thresholds=SCAN) -> tuple[float, dict[str, float]]:
    """The threshold with the best mean per-tile Dice (on validation tiles), and the scan behind it."""
    scan = threshold_scan(probs, truths, thresholds)
    best = max(scan, key=scan.get)
    return float(best), scan
