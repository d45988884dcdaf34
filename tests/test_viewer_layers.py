"""Overlay pixels: the look-up-table compositing equals painting the layers one by one, on real masks."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from paipviewer.core.imageio import read_mask
from paipviewer.viewer.layers import (PALETTE, LayerState, compose, legend, outline_of, probability_rgba,
                                      truth_outlined)
from ui_fixtures import SAMPLES


def reference(shape, layers, pred, truth, other):
    """The layers painted one after another, each over the last: the definition compose must meet."""
    rgba = np.zeros(tuple(shape) + (4,), np.uint8)
    style = outline_of if layers.outline else (lambda m: m)

    def paint(where, key):
        rgba[where, :3] = PALETTE[key]
        rgba[where, 3] = 255

    if layers.prediction and pred is not None:
        paint(style(pred), "prediction")
    if layers.truth and truth is not None:
        paint(outline_of(truth) if truth_outlined(layers) else truth, "truth")
    if layers.errors and pred is not None and truth is not None:
        for where, key in ((pred & truth, "tp"), (pred & ~truth, "fp"), (~pred & truth, "fn")):
            paint(style(where), key)
    if layers.disagree and pred is not None and other is not None:
        paint(style(pred != other), "disagree")
    return rgba


@pytest.fixture(scope="module")
def masks():
    truth = read_mask(sorted((SAMPLES / "masks").glob("*.png"))[2])
    shifted = np.roll(truth, (3, -4), axis=(0, 1))  # a plausible prediction: right nuclei, a little off
    other = np.roll(truth, (-2, 2), axis=(0, 1)) & ~np.roll(truth, 30, axis=0)
    return shifted, truth, other


@pytest.mark.parametrize("switches", list(itertools.product([False, True], repeat=6)))
def test_lookup_compositing_equals_painting_layer_by_layer(masks, switches):
    layers = LayerState(*switches)
    pred, truth, other = masks
    for present in ((pred, truth, other), (pred, None, other), (pred, truth, None), (None, truth, None)):
        assert np.array_equal(compose(truth.shape, layers, *present), reference(truth.shape, layers, *present))


def test_each_error_class_has_its_colour():
    truth = np.zeros((8, 8), bool)
    pred = np.zeros((8, 8), bool)
    truth[:4, :4] = True
    pred[2:6, 2:6] = True
    rgba = compose((8, 8), LayerState(errors=True), pred, truth)
    assert tuple(rgba[2, 2, :3]) == PALETTE["tp"] and tuple(rgba[5, 5, :3]) == PALETTE["fp"]
    assert tuple(rgba[0, 0, :3]) == PALETTE["fn"] and rgba[7, 7, 3] == 0
    assert not compose((8, 8), LayerState(errors=False), pred, truth)[..., 3].any()


def test_ground_truth_is_an_outline_under_a_filled_prediction():
    truth = np.zeros((10, 10), bool)
    truth[2:8, 2:8] = True
    rgba = compose((10, 10), LayerState(prediction=True, truth=True, errors=False), truth.copy(), truth)
    assert tuple(rgba[2, 4, :3]) == PALETTE["truth"]       # the edge shows the truth
    assert tuple(rgba[5, 5, :3]) == PALETTE["prediction"]  # the inside shows the prediction


def test_probability_is_transparent_below_the_floor_and_ordered_above():
    p = np.array([[0.0, 0.04, 0.2, 0.6, 1.0]], np.float32)
    from paipviewer.core.scoring import levels_of
    rgba = probability_rgba(levels_of(p))
    assert list(rgba[0, :, 3]) == [0, 0, 255, 255, 255]
    assert tuple(rgba[0, 4, :3]) != PALETTE["disagree"]  # viridis' yellow end is not the disagreement colour


def test_legend_lists_only_what_can_be_on_screen():
    all_there = {"pred": True, "truth": True, "other": True}
    assert legend(LayerState(), all_there) == ["tp", "fp", "fn"]
    assert legend(LayerState(), {"pred": True, "truth": False, "other": False}) == []
    assert legend(LayerState.default("plain"), {"pred": True, "truth": False}) == ["prediction"]
    assert legend(LayerState(errors=False, disagree=True), {"pred": True, "truth": True, "other": False}) == []
