"""Running a model over an image of any size: preprocess, tile, predict, stitch, a batch of tiles at a time.

This is the one inference path: the viewer's worker and the trainer's evaluation both call
:func:`predict_image`, so they cannot disagree on preprocessing or tiling.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .preprocess import WindowPreprocessor
from .tiling import TILE, TileLayout

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
    """Probability map of an RGB uint8 image; ``equalize`` must be the model card's.

    Streams: a batch of tiles at a time is read from the uint8 image (reflect padding by index, see
    :meth:`TileLayout.index_maps`), preprocessed (whole-image equalisation statistics computed once,
    see :class:`WindowPreprocessor`), predicted, and its central ``stride x stride`` parts written
    straight into the map. So memory is the image, the float32 map and a batch, whatever the size
    (a 16000 px image peaked at 10.9 GB when the whole image was preprocessed and cut at once; see
    benchmarks/memory.py), and the map equals that of preprocessing, tiling and stitching the whole.
    Cancel is checked before each batch and progress reported after it."""
    t0 = time.perf_counter()
    source = WindowPreprocessor(image, equalize)
    layout = TileLayout(image.shape[0], image.shape[1], tile, overlap)
    rows, cols = layout.index_maps()
    height, width, s, m = layout.height, layout.width, layout.stride, layout.margin
    out = np.empty((height, width), np.float32)
    origins = layout.origins()
    batch = batch or DEFAULT_BATCH
    t_pre, t_inf = time.perf_counter() - t0, 0.0
    for start in range(0, len(origins), batch):
        if cancelled is not None and cancelled():
            raise Cancelled()
        chunk = origins[start:start + batch]
        t1 = time.perf_counter()
        x = np.empty((len(chunk), tile, tile, 3), np.float32)
        for k, (y, x0) in enumerate(chunk):
            x[k] = source.window(rows[y:y + tile], cols[x0:x0 + tile])
        t2 = time.perf_counter()
        probs = predict_tiles(model, x, len(chunk))
        t3 = time.perf_counter()
        for k, (y, x0) in enumerate(chunk):
            out[y:y + s, x0:x0 + s] = probs[k, m:m + min(s, height - y), m:m + min(s, width - x0)]
        t_pre, t_inf = t_pre + (t2 - t1), t_inf + (t3 - t2)
        if progress is not None:
            progress(start + len(chunk), len(origins))
    return Prediction(probability=out, tiles=len(origins),
                      timing={"preprocess": t_pre, "inference": t_inf, "total": time.perf_counter() - t0})
