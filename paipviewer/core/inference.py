"""Running a model over an image of any size: preprocess, tile, predict, stitch.

This is the one inference path: the viewer's worker and the trainer's evaluation both call
:func:`predict_image`, so they cannot disagree on preprocessing or tiling.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .preprocess import preprocess
from .tiling import TILE, extract_tiles, stitch

DEFAULT_OVERLAP = 32
# Tiles per call, by measurement (benchmarks/inference.py, 2 cores): one at a time is fastest on every
# backend (ONNX Runtime 41 against 46 ms a tile in eights for ELU-Net 8/5; Keras' predict_on_batch
# likewise), and it lets a cancel or a progress report come after every tile.
DEFAULT_BATCH = 1


class Cancelled(Exception):
    """Raised inside :func:`predict_image` when the caller asked to stop."""


class InferenceError(ValueError):
    """A model that loaded failed on one image: the failure belongs to that pair, not to the model."""


@dataclass
class Prediction:
    probability: np.ndarray  # float32 (H, W) in [0, 1]
    timing: dict[str, float] = field(default_factory=dict)  # seconds: preprocess, inference, total
    tiles: int = 0

    def mask(self, threshold: float) -> np.ndarray:
        return self.probability >= threshold


def predict_tiles(model, tiles: np.ndarray, batch: int | None = None,
                  progress: Callable[[int, int], None] | None = None,
                  cancelled: Callable[[], bool] | None = None) -> np.ndarray:
    """Sigmoid outputs (N, h, w) of float32 tiles (N, h, w, 3), a batch at a time.

    ``model`` is any backend's model (``predict_on_batch``: see :mod:`paipviewer.core.backends`) or
    a Keras model."""
    batch = batch or DEFAULT_BATCH
    out = np.empty(tiles.shape[:3], np.float32)
    for start in range(0, len(tiles), batch):
        if cancelled is not None and cancelled():
            raise Cancelled()
        chunk = tiles[start:start + batch]
        # predict_on_batch runs a traced graph: 3.7x faster per 256 tile than an eager model(x) call,
        # whose per-layer Python overhead dominates small models.
        out[start:start + len(chunk)] = np.asarray(model.predict_on_batch(chunk), dtype=np.float32)[..., 0]
        if progress is not None:
            progress(start + len(chunk), len(tiles))
    return out


def predict_image(model, image: np.ndarray, equalize: str, tile: int = TILE, overlap: int = DEFAULT_OVERLAP,
                  batch: int | None = None, progress: Callable[[int, int], None] | None = None,
                  cancelled: Callable[[], bool] | None = None) -> Prediction:
    """Probability map of an RGB uint8 image; ``equalize`` must be the model card's."""
    t0 = time.perf_counter()
    x = preprocess(image, equalize)
    tiles, layout = extract_tiles(x, tile, overlap)
    t1 = time.perf_counter()
    probs = predict_tiles(model, tiles, batch, progress, cancelled)
    t2 = time.perf_counter()
    return Prediction(probability=stitch(probs, layout), tiles=len(tiles),
                      timing={"preprocess": t1 - t0, "inference": t2 - t1, "total": t2 - t0})
