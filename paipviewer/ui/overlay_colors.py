"""Overlay colours and RGBA compositing, pure numpy (no Qt) so it is testable without a display.

The palette is Okabe-Ito, which stays distinguishable under the common colour-vision
deficiencies: TP bluish green, FP vermillion, FN sky blue.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from paipviewer.core.metrics import error_map

PALETTE = {
    "tp": (0, 158, 115),
    "fp": (213, 94, 0),
    "fn": (86, 180, 233),
    "prediction": (0, 114, 178),
    "truth": (204, 121, 167),
    "disagree": (240, 228, 66),
}
LEGEND = (
    ("tp", "True positive (model and truth)"),
    ("fp", "False positive (model only)"),
    ("fn", "False negative (missed)"),
    ("prediction", "Prediction"),
    ("truth", "Ground truth"),
    ("disagree", "Models disagree"),
)
LAYERS = ("prediction", "truth", "errors", "probability", "disagree")


@dataclass
class LayerState:
    prediction: bool = False
    truth: bool = False
    errors: bool = True
    probability: bool = False
    disagree: bool = False
    outline: bool = False

    def toggled(self, name: str) -> bool:
        return getattr(self, name)


def outline_of(mask: np.ndarray) -> np.ndarray:
    """A 1-2 px boundary of a boolean mask; outlines leave the tissue under the mask visible."""
    m = mask.astype(np.uint8)
    return (m - cv2.erode(m, np.ones((3, 3), np.uint8))).astype(bool)


def _paint(rgba: np.ndarray, where: np.ndarray, key: str) -> None:
    rgba[where, :3] = PALETTE[key]
    rgba[where, 3] = 255


def probability_rgba(probability: np.ndarray) -> np.ndarray:
    """Probability as a perceptually ordered colour map (viridis), opaque where p > 0.05."""
    lut = cv2.applyColorMap(np.arange(256, dtype=np.uint8)[:, None], cv2.COLORMAP_VIRIDIS).reshape(256, 3)[:, ::-1]
    index = np.clip(probability * 255.0, 0, 255).astype(np.uint8)
    rgba = np.empty(probability.shape + (4,), np.uint8)
    rgba[..., :3] = lut[index]
    rgba[..., 3] = np.where(probability > 0.05, 255, 0)
    return rgba


def compose(shape: tuple[int, int], layers: LayerState, pred: np.ndarray | None = None,
            truth: np.ndarray | None = None, probability: np.ndarray | None = None,
            other: np.ndarray | None = None) -> np.ndarray:
    """One RGBA uint8 (H, W, 4) image of the visible layers; later layers paint over earlier ones.

    ``other`` is the second model's mask in side-by-side mode, for the disagreement layer.
    Opacity is not applied here: the view sets it on the image item so the slider stays live.
    """
    rgba = np.zeros(tuple(shape) + (4,), np.uint8)
    style = outline_of if layers.outline else (lambda m: m)
    if layers.probability and probability is not None:
        rgba[:] = probability_rgba(probability)
    if layers.prediction and pred is not None:
        _paint(rgba, style(pred), "prediction")
    if layers.truth and truth is not None:
        _paint(rgba, style(truth), "truth")
    if layers.errors and pred is not None and truth is not None:
        errors = error_map(pred, truth)
        for code, key in ((1, "tp"), (2, "fp"), (3, "fn")):
            _paint(rgba, style(errors == code), key)
    if layers.disagree and pred is not None and other is not None:
        _paint(rgba, style(pred != other), "disagree")
    return rgba
