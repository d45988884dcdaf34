"""Is one model better than another on these images? The Wilcoxon signed-rank test over images.

Paired per-image scores a (model A) and b (model B): d = a - b. Zero differences are dropped
(Wilcoxon's own rule, scipy's default ``zero_method="wilcox"``); the rest are ranked by |d| with
ties given their mean rank. W+ is the sum of the ranks of positive d. Two-sided p-value:

- exact, from the distribution of W+ over all 2**n sign patterns, when n <= 50 and no |d| ties;
- otherwise the normal approximation with the tie-corrected variance
  n(n+1)(2n+1)/24 - sum(t^3 - t)/48, without continuity correction.

This is what ``scipy.stats.wilcoxon(a, b)`` computes (tests check it against scipy where present).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

EXACT_MAX_N = 50


@dataclass(frozen=True)
class Paired:
    n: int                 # pairs with a non-zero difference
    median_difference: float
    statistic: float       # min(W+, W-), as scipy reports it
    p_value: float
    method: str            # "exact" or "normal"

    def verdict(self, a: str, b: str, alpha: float = 0.05) -> str:
        if self.n == 0:
            return f"{a} and {b} score the same on every image"
        if self.p_value >= alpha:
            return f"no significant difference between {a} and {b} (p = {self.p_value:.3g}, n = {self.n})"
        better = a if self.median_difference > 0 else b
        return f"{better} is better (p = {self.p_value:.3g}, Wilcoxon signed-rank, n = {self.n})"


def wilcoxon(a, b) -> Paired:
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError("wilcoxon needs two 1-D sequences of the same length")
    d = a - b
    d = d[np.isfinite(d)]
    median = float(np.median(d)) if len(d) else 0.0
    d = d[d != 0]
    n = len(d)
    if n == 0:
        return Paired(0, median, 0.0, 1.0, "exact")
    ranks = _mean_ranks(np.abs(d))
    w_plus = float(ranks[d > 0].sum())
    total = n * (n + 1) / 2
    statistic = min(w_plus, total - w_plus)
    _, counts = np.unique(np.abs(d), return_counts=True)
    if n <= EXACT_MAX_N and (counts == 1).all():
        return Paired(n, median, statistic, _exact_p(n, int(round(statistic))), "exact")
    var = n * (n + 1) * (2 * n + 1) / 24 - float((counts ** 3 - counts).sum()) / 48
    if var <= 0:
        return Paired(n, median, statistic, 1.0, "normal")
    z = abs(w_plus - total / 2) / math.sqrt(var)
    return Paired(n, median, statistic, min(1.0, math.erfc(max(z, 0.0) / math.sqrt(2))), "normal")


def _mean_ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x))
    sorted_x = x[order]
    i = 0
    while i < len(x):
        j = i
        while j + 1 < len(x) and sorted_x[j + 1] == sorted_x[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def _exact_p(n: int, statistic: int) -> float:
    """Two-sided P(W <= statistic) x 2 under H0, counting sign patterns by rank sum."""
    counts = np.zeros(n * (n + 1) // 2 + 1)
    counts[0] = 1
    for r in range(1, n + 1):
        counts[r:] = counts[r:] + counts[:-r].copy()
    return float(min(1.0, 2 * counts[:statistic + 1].sum() / 2 ** n))
