"""What the overlay shows and in which colours, as pixels: pure NumPy, no Qt, testable anywhere.

The palette is Okabe-Ito, which stays distinguishable under the common colour-vision
deficiencies: TP bluish green, FP vermillion, FN sky blue, ground truth reddish purple, and the
prediction yellow, the colour that stands out most on haematoxylin's dark purple (an outline over
the tissue is how most images, those without ground truth, are seen). Disagreement between two
models is white.

Nuclei as objects (the "objects" layer) reuse the TP/FP/FN hues, since they mean the same thing one
level up: a predicted nucleus matched by a true one (IoU >= 0.5) is bluish green, a predicted
nucleus without a match vermillion, a true nucleus no prediction matched sky blue; on images
without ground truth every predicted nucleus is yellow. Unlike the pixel layer they are drawn
nucleus by nucleus, so touching nuclei stay apart: filled with a one-pixel gap where two meet, or
each nucleus's own outline. They paint over the other mask layers.

Compositing is one table look-up per pixel: each pixel gets a code from a few mask bits
(prediction, truth, the other model, and their outlines), and a 256-entry table, built from the
layer switches in the same paint order as the layers are listed, maps the code to RGBA. A 1000 x
1000 overlay costs about 3 ms, so a threshold tick can redraw both views at once.
"""
from __future__ import annotations

from dataclasses import astuple, dataclass, fields
from functools import lru_cache

import cv2
import numpy as np

PALETTE = {
    "tp": (0, 158, 115),
    "fp": (213, 94, 0),
    "fn": (86, 180, 233),
    "prediction": (240, 228, 66),
    "truth": (204, 121, 167),
    "disagree": (255, 255, 255),
    "matched": (0, 158, 115),
    "false": (213, 94, 0),
    "missed": (86, 180, 233),
    "nucleus": (240, 228, 66),
}
LEGEND_TEXT = {
    "tp": "True positive (model and truth)",
    "fp": "False positive (model only)",
    "fn": "False negative (missed)",
    "prediction": "Prediction",
    "truth": "Ground truth",
    "disagree": "Models disagree",
    "matched": "Matched nucleus (IoU ≥ 0.5)",
    "false": "False nucleus (no true match)",
    "missed": "Missed nucleus",
    "nucleus": "Predicted nucleus",
}
LAYERS = ("prediction", "truth", "errors", "probability", "disagree", "objects")
KINDS = ("annotated", "plain")  # images with ground truth, and without


@dataclass
class LayerState:
    prediction: bool = False
    truth: bool = False
    errors: bool = True
    probability: bool = False
    disagree: bool = False
    outline: bool = False
    objects: bool = False

    def toggled(self, name: str) -> bool:
        return getattr(self, name)

    @classmethod
    def default(cls, kind: str) -> "LayerState":
        """TP/FP/FN where there is ground truth; elsewhere the prediction's outline over the tissue."""
        if kind == "plain":
            return cls(prediction=True, errors=False, outline=True)
        return cls()

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))


def outline_of(mask: np.ndarray) -> np.ndarray:
    """A 1-2 px inner boundary of a boolean mask; outlines leave the tissue under the mask visible."""
    m = np.asarray(mask, dtype=np.uint8)
    return m != cv2.erode(m, np.ones((3, 3), np.uint8))


# Code bits of a pixel.
PRED, TRUTH, OTHER, PRED_EDGE, TRUTH_EDGE, CLASS_EDGE, DISAGREE_EDGE = (1 << i for i in range(7))


def _edges(code: np.ndarray) -> np.ndarray:
    """Pixels whose 3x3 neighbourhood holds another code: the boundary of every region at once."""
    kernel = np.ones((3, 3), np.uint8)
    return (cv2.erode(code, kernel) != code) | (cv2.dilate(code, kernel) != code)


def truth_outlined(layers: LayerState) -> bool:
    """Ground truth is an outline whenever the prediction is filled, so their overlap stays visible."""
    return layers.outline or layers.prediction


def _colour(code: int, layers: LayerState, has: dict[str, bool]) -> tuple[int, int, int, int]:
    """RGBA of one code: the layers paint in order, each over the last."""
    pred, truth, other = bool(code & PRED), bool(code & TRUTH), bool(code & OTHER)
    out = (0, 0, 0, 0)

    def paint(key):
        return (*PALETTE[key], 255)

    if layers.prediction and has["pred"] and (code & PRED_EDGE if layers.outline else pred):
        out = paint("prediction")
    if layers.truth and has["truth"] and (code & TRUTH_EDGE if truth_outlined(layers) else truth):
        out = paint("truth")
    if layers.errors and has["pred"] and has["truth"] and (pred or truth) and (
            not layers.outline or code & CLASS_EDGE):
        out = paint("tp" if pred and truth else "fp" if pred else "fn")
    if layers.disagree and has["pred"] and has["other"] and (
            code & DISAGREE_EDGE if layers.outline else pred != other):
        out = paint("disagree")
    return out


def lookup_table(layers: LayerState, has: dict[str, bool]) -> np.ndarray:
    """uint32 RGBA (little-endian bytes R, G, B, A) for each of the 256 codes."""
    return _table(astuple(layers), has["pred"], has["truth"], has["other"])


@lru_cache(maxsize=64)
def _table(switches: tuple, pred: bool, truth: bool, other: bool) -> np.ndarray:
    layers, has = LayerState(*switches), {"pred": pred, "truth": truth, "other": other}
    rgba = np.array([_colour(c, layers, has) for c in range(256)], np.uint8)
    table = rgba.view("<u4").ravel()
    table.setflags(write=False)  # shared between calls
    return table


def codes(layers: LayerState, pred: np.ndarray | None, truth: np.ndarray | None,
          other: np.ndarray | None, shape: tuple[int, int]) -> np.ndarray:
    """The per-pixel code of the masks present; edge bits only for the layers drawn as outlines."""
    code = np.zeros(shape, np.uint8)
    for bit, mask in ((PRED, pred), (TRUTH, truth), (OTHER, other)):
        if mask is not None:
            code |= np.asarray(mask, dtype=bool).view(np.uint8) * np.uint8(bit)
    if layers.outline and pred is not None:
        code |= outline_of(pred).view(np.uint8) * np.uint8(PRED_EDGE)
        if truth is not None:
            code |= _edges(code & (PRED | TRUTH)).view(np.uint8) * np.uint8(CLASS_EDGE)
        if other is not None:
            code |= outline_of(np.asarray(pred, bool) != np.asarray(other, bool)).view(np.uint8) * np.uint8(DISAGREE_EDGE)
    if truth is not None and truth_outlined(layers):
        code |= outline_of(truth).view(np.uint8) * np.uint8(TRUTH_EDGE)
    return code


def compose(shape: tuple[int, int], layers: LayerState, pred: np.ndarray | None = None,
            truth: np.ndarray | None = None, other: np.ndarray | None = None,
            objects: np.ndarray | None = None) -> np.ndarray:
    """One RGBA uint8 (H, W, 4) image of the visible mask layers.

    ``other`` is the second model's mask in side-by-side mode, for the disagreement layer;
    ``objects`` the model's :func:`object_codes` at the same threshold, for the objects layer. The
    probability map is its own image under this one (:func:`probability_rgba`): it does not
    change with the threshold. Opacity is not applied here: the view sets it on the image item.
    """
    has = {"pred": pred is not None, "truth": truth is not None, "other": other is not None}
    table = lookup_table(layers, has)
    out = np.take(table, codes(layers, pred, truth, other, tuple(shape)))
    if layers.objects and objects is not None:
        drawn = np.take(_object_table(layers.outline), objects)
        out = np.where(drawn != 0, drawn, out)
    return out.view(np.uint8).reshape(tuple(shape) + (4,))


# Object layer codes: the kind of nucleus in the low bits, and two edge bits.
OBJ_MATCHED, OBJ_FALSE, OBJ_MISSED, OBJ_NUCLEUS = 1, 2, 3, 4  # MATCHED, FALSE, MISSED of core.objects; 4: no truth
OBJ_KIND = 7
OBJ_OUTLINE = 8    # the nucleus's own boundary (against the background or another nucleus)
OBJ_SPLIT = 16     # where it touches another nucleus
OBJECT_KEYS = {OBJ_MATCHED: "matched", OBJ_FALSE: "false", OBJ_MISSED: "missed", OBJ_NUCLEUS: "nucleus"}


def object_codes(nuclei: np.ndarray, truth_labels: np.ndarray | None = None, matching=None) -> np.ndarray:
    """uint8 per pixel: which kind of nucleus covers it (matched, false, missed; or, without ground
    truth, a predicted nucleus) and whether it lies on that nucleus's outline or where it meets
    another. ``matching`` is :func:`paipviewer.core.objects.match_nuclei` of ``truth_labels`` and
    ``nuclei``; predicted nuclei lie over missed true ones."""
    from paipviewer.core.objects import object_map

    nuclei = np.asarray(nuclei)
    if truth_labels is None or matching is None:
        kind = np.where(nuclei > 0, OBJ_NUCLEUS, 0).astype(np.uint8)
        ids = nuclei.astype(np.float32)
    else:
        kind = object_map(truth_labels, nuclei, matching)
        # One id per drawn nucleus: the predicted ones, then the missed true ones after them.
        ids = np.where(nuclei > 0, nuclei.astype(np.float32),
                       np.where(kind == OBJ_MISSED, truth_labels.astype(np.float32) + float(nuclei.max()), 0))
        ids = ids.astype(np.float32)
    kernel = np.ones((3, 3), np.uint8)
    inside = ids > 0
    high = cv2.dilate(ids, kernel)
    low = cv2.erode(ids, kernel)
    outline = inside & ((high != ids) | (low != ids))
    # Another nucleus next to this one: a larger id around, or a smaller non-zero one.
    low_nucleus = cv2.erode(np.where(inside, ids, np.float32(np.finfo(np.float32).max)).astype(np.float32), kernel)
    split = inside & ((high > ids) | (low_nucleus < ids))
    return (kind | outline.view(np.uint8) * np.uint8(OBJ_OUTLINE) | split.view(np.uint8) * np.uint8(OBJ_SPLIT))


@lru_cache(maxsize=4)
def _object_table(outline: bool) -> np.ndarray:
    """uint32 RGBA of each object code (32 of them): a kind's colour inside the nucleus (filled, less
    where it meets another) or on its outline."""
    rgba = np.zeros((32, 4), np.uint8)
    for code in range(32):
        key = OBJECT_KEYS.get(code & OBJ_KIND)
        if key is not None and (code & OBJ_OUTLINE if outline else not code & OBJ_SPLIT):
            rgba[code] = (*PALETTE[key], 255)
    table = rgba.view("<u4").ravel()
    table.setflags(write=False)
    return table


def _viridis(n: int) -> np.ndarray:
    ramp = np.linspace(0, 255, n).round().astype(np.uint8)[:, None]
    return cv2.applyColorMap(ramp, cv2.COLORMAP_VIRIDIS).reshape(n, 3)[:, ::-1]


PROBABILITY_FLOOR = 0.05  # below this the map is transparent, so the tissue shows


def probability_colours(n: int = 256) -> np.ndarray:
    """(n, 3) uint8 RGB of the probability colour map from 0 to 1: the colour bar's ramp."""
    return _viridis(n)


def probability_rgba(levels: np.ndarray) -> np.ndarray:
    """RGBA uint8 (H, W, 4) of a map's levels (:mod:`paipviewer.core.scoring`): viridis, transparent
    below :data:`PROBABILITY_FLOOR`."""
    from paipviewer.core.scoring import GRID

    rgb = _viridis(len(GRID) + 1)
    alpha = np.where(np.arange(len(GRID) + 1) > round(PROBABILITY_FLOOR * (len(GRID) - 1)), 255, 0).astype(np.uint8)
    table = np.concatenate([rgb, alpha[:, None]], axis=1).view("<u4").ravel()
    return np.take(table, levels).view(np.uint8).reshape(levels.shape + (4,))


DEFAULT_OPACITY = 0.6


def blend(base: np.ndarray, rgba: np.ndarray, opacity: float) -> np.ndarray:
    """RGB uint8 ``base`` with an RGBA layer over it at ``opacity``."""
    alpha = rgba[..., 3:4].astype(np.float32) * (opacity / 255.0)
    return (base * (1 - alpha) + rgba[..., :3] * alpha).astype(np.uint8)


def overlay_image(image: np.ndarray, layers: LayerState, pred: np.ndarray | None = None,
                  truth: np.ndarray | None = None, other: np.ndarray | None = None,
                  levels: np.ndarray | None = None, opacity: float = DEFAULT_OPACITY,
                  objects: np.ndarray | None = None) -> np.ndarray:
    """The image with its layers over it, as the view draws them (RGB uint8, the image's size):
    what snapshots and ``paipviewer score``'s overlays hold."""
    out = image
    if layers.probability and levels is not None:
        out = blend(out, probability_rgba(levels), opacity)
    return blend(out, compose(image.shape[:2], layers, pred, truth, other, objects), opacity)


def legend(layers: LayerState, has: dict[str, bool]) -> list[str]:
    """Palette keys of the colours that can be on screen now, in paint order. ``has["objects"]``:
    the model's nuclei at this threshold are known."""
    keys = []
    if layers.prediction and has.get("pred"):
        keys.append("prediction")
    if layers.truth and has.get("truth"):
        keys.append("truth")
    if layers.errors and has.get("pred") and has.get("truth"):
        keys += ["tp", "fp", "fn"]
    if layers.disagree and has.get("pred") and has.get("other"):
        keys.append("disagree")
    if layers.objects and has.get("objects"):
        keys += ["matched", "false", "missed"] if has.get("truth") else ["nucleus"]
    return keys
