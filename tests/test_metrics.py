"""Metric maths on hand-checked masks and on real masks, including the empty cases."""
from __future__ import annotations

import numpy as np
import pytest

from paipviewer.core.imageio import read_mask
from paipviewer.core.metrics import confusion, error_map, mean_score, pooled


def test_hand_counted_example():
    truth = np.zeros((4, 4), bool)
    truth[:2, :2] = True  # 4 px
    pred = np.zeros((4, 4), bool)
    pred[:2, 1:3] = True  # 4 px, 2 overlap
    c = confusion(pred, truth)
    assert (c.tp, c.fp, c.fn, c.tn) == (2, 2, 2, 10)
    assert c.jaccard == pytest.approx(2 / 6)
    assert c.dice == pytest.approx(4 / 8)
    assert c.precision == pytest.approx(0.5) and c.recall == pytest.approx(0.5)
    assert c.background_jaccard == pytest.approx(10 / 14)
    assert c.mean_iou == pytest.approx((2 / 6 + 10 / 14) / 2)
    np.testing.assert_array_equal(np.bincount(error_map(pred, truth).ravel(), minlength=4), [10, 2, 2, 2])


def test_empty_cases():
    empty = np.zeros((8, 8), bool)
    some = empty.copy()
    some[2:4, 2:4] = True
    both_empty = confusion(empty, empty)
    assert both_empty.jaccard == 1.0 and both_empty.dice == 1.0
    assert both_empty.precision == 1.0 and both_empty.recall == 1.0
    missed = confusion(empty, some)
    assert missed.jaccard == 0.0 and missed.dice == 0.0 and missed.recall == 0.0 and missed.precision == 0.0
    hallucinated = confusion(some, empty)
    assert hallucinated.jaccard == 0.0 and hallucinated.precision == 0.0 and hallucinated.recall == 0.0


def test_dice_jaccard_identity_on_real_masks(samples256):
    masks = [read_mask(p) for p in sorted((samples256 / "masks").glob("*.png"))]
    for a, b in zip(masks, masks[1:]):
        c = confusion(a, b)
        assert c.dice == pytest.approx(2 * c.jaccard / (1 + c.jaccard))
        assert c.tp + c.fp + c.fn + c.tn == a.size
    assert confusion(masks[0], masks[0]).jaccard == 1.0


def test_pooled_differs_from_mean_and_is_pixel_weighted():
    a_truth = np.zeros((10, 10), bool)
    a_truth[:5] = True
    small_truth = np.zeros((10, 10), bool)
    small_truth[0, 0] = True
    items = [confusion(a_truth, a_truth), confusion(np.zeros_like(small_truth), small_truth)]
    assert mean_score(items) == pytest.approx(0.5)
    assert pooled(items).jaccard == pytest.approx(50 / 51)


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError, match="differ in shape"):
        confusion(np.zeros((2, 2), bool), np.zeros((3, 3), bool))
