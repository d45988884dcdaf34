"""Scores from levels and histograms equal scores from thresholded masks, exactly, on real maps."""
from __future__ import annotations

import numpy as np
import pytest

from paipviewer.core.imageio import read_mask
from paipviewer.core.metrics import confusion
from paipviewer.core.scoring import (GRID, SCAN, grid_index, level_counts, levels_of, mask_at, tile_confusions,
                                     tile_scores, tune_threshold)


def hostile_probabilities(shape, seed=0):
    """Random probabilities with many pixels exactly on, and one float32 step either side of, grid values."""
    rng = np.random.default_rng(seed)
    p = rng.random(shape, dtype=np.float32)
    on = rng.integers(0, len(GRID), shape)
    pick = rng.random(shape)
    p = np.where(pick < 0.3, GRID[on], p)
    p = np.where((pick >= 0.3) & (pick < 0.4), np.nextafter(GRID[on], np.float32(0)), p)
    p = np.where((pick >= 0.4) & (pick < 0.5), np.nextafter(GRID[on], np.float32(1)), p)
    return np.clip(p, 0, 1).astype(np.float32)


def test_grid_index_is_exact_in_float32():
    assert grid_index(0.35) == 35 and grid_index(0.5) == 50 and grid_index(1.0) == 100 and grid_index(0.0) == 0
    assert grid_index(0.375) is None and grid_index(0.351) is None and grid_index(1.5) is None


def test_masks_and_counts_from_levels_equal_thresholding(samples256):
    truth = read_mask(sorted((samples256 / "masks").glob("*.png"))[0])
    prob = hostile_probabilities(truth.shape)
    levels = levels_of(prob)
    counts = level_counts(levels, truth)
    for t in (0.0, 0.01, 0.35, 0.45, 0.5, 0.99, 1.0):
        k = grid_index(t)
        mask = prob >= t
        assert np.array_equal(levels > k, mask) and np.array_equal(mask_at(levels, prob, t), mask)
        assert counts.confusion(k) == confusion(mask, truth)
        assert counts.predicted(k) == int(mask.sum())
    assert np.array_equal(mask_at(levels, prob, 0.375), prob >= 0.375)  # off the grid: from the map
    assert level_counts(levels).confusion(50) is None


def test_tile_confusions_and_tuning_match_per_tile_masks(samples256):
    truths = np.stack([read_mask(p) for p in sorted((samples256 / "masks").glob("*.png"))[:4]])
    probs = hostile_probabilities(truths.shape, seed=1)
    per = tile_confusions(probs, truths, [0.3, 0.5, 0.375])
    for t, items in per.items():
        assert items == [confusion(p >= t, y) for p, y in zip(probs, truths)]
    # a map that is right exactly at 0.60 must be tuned to 0.60
    exact = np.where(truths, 0.6, 0.55).astype(np.float32)
    best, scan = tune_threshold(exact, truths)
    assert best == 0.6 and scan["0.60"] == 1.0 and scan["0.55"] < 1.0 and len(scan) == len(SCAN)
    assert tile_scores(exact, truths, best)["jaccard_mean"] == 1.0


def test_shapes_must_agree():
    with pytest.raises(ValueError, match="differ in shape"):
        level_counts(levels_of(np.zeros((4, 4))), np.zeros((4, 5), bool))
