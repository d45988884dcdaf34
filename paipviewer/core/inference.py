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
# Test-time augmentation: how many of a tile's eight dihedral views (quarter turns, mirrored or not)
# are predicted and averaged. 1 is the model alone; 8 lifted ELU-Net 8/5's whole-image validation
# Dice by 0.005 on MoNuSeg for 6-7 times the time (docs/results/views.md).
VIEWS = (1, 2, 4, 8)


class Cancelled(Exception):
    """Raised inside :func:`predict_image` when the caller asked to stop."""


class InferenceError(ValueError):
    """A model that loaded failed on one image: the failure belongs to that pair, not to the model."""


@dataclass
class Prediction:
    probability: np.ndarray  # float32 (H, W) in [0, 1]
    timing: dict[str, float] = field(default_factory=dict)  # seconds: preprocess, inference, total
    tiles: int = 0
    views: int = 1  # dihedral views averaged per tile (see VIEWS)

    def mask(self, threshold: float) -> np.ndarray:
        return self.probability >= threshold


def check_views(views: int) -> int:
    if views not in VIEWS:
        raise ValueError(f"views must be one of {', '.join(map(str, VIEWS))}, got {views!r}")
    return views


def _view(x: np.ndarray, k: int) -> np.ndarray:
    """Dihedral view ``k`` of (N, h, w, ...) tiles: 0 as is, 1 mirrored left-right, 2 upside down,
    3 both (a half turn); 4-7 the same after a transpose. The first 2 and 4 are groups, so each
    view's inverse is among them and their average is as symmetric as the set."""
    if k >= 4:
        x = np.swapaxes(x, 1, 2)
    if k % 4 in (1, 3):
        x = x[:, :, ::-1]
    if k % 4 in (2, 3):
        x = x[:, ::-1]
    return x


def _unview(y: np.ndarray, k: int) -> np.ndarray:
    """The inverse of :func:`_view`: mirrors undone first, then the transpose."""
    if k % 4 in (2, 3):
        y = y[:, ::-1]
    if k % 4 in (1, 3):
        y = y[:, :, ::-1]
    return np.swapaxes(y, 1, 2) if k >= 4 else y


def _predict_batch(model, x: np.ndarray, views: int) -> np.ndarray:
    """Sigmoid outputs (N, h, w): the mean over ``views`` dihedral views of each tile."""
    if views > 4 and x.shape[1] != x.shape[2]:
        raise ValueError(f"{views} views need square tiles, got {x.shape[1]}x{x.shape[2]}")
    total = None
    for k in range(views):
        # predict_on_batch runs a traced graph: 3.7x faster per 256 tile than an eager model(x) call,
        # whose per-layer Python overhead dominates small models.
        y = np.asarray(model.predict_on_batch(np.ascontiguousarray(_view(x, k))), dtype=np.float32)[..., 0]
        y = _unview(y, k)
        total = y if total is None else total + y  # a new array: the model's output is never changed
    return total / views if views > 1 else total


def predict_tiles(model, tiles: np.ndarray, batch: int | None = None,
                  progress: Callable[[int, int], None] | None = None,
                  cancelled: Callable[[], bool] | None = None, views: int = 1) -> np.ndarray:
    """Sigmoid outputs (N, h, w) of float32 tiles (N, h, w, 3), a batch at a time, each the mean of
    its first ``views`` dihedral views (see :func:`_view`).

    ``model`` is any backend's model (``predict_on_batch``: see :mod:`paipviewer.core.backends`) or
    a Keras model."""
    check_views(views)
    batch = batch or DEFAULT_BATCH
    out = np.empty(tiles.shape[:3], np.float32)
    for start in range(0, len(tiles), batch):
        if cancelled is not None and cancelled():
            raise Cancelled()
        chunk = tiles[start:start + batch]
        out[start:start + len(chunk)] = _predict_batch(model, chunk, views)
        if progress is not None:
            progress(start + len(chunk), len(tiles))
    return out


def predict_image(model, image: np.ndarray, equalize: str, tile: int = TILE, overlap: int = DEFAULT_OVERLAP,
                  batch: int | None = None, progress: Callable[[int, int], None] | None = None,
                  cancelled: Callable[[], bool] | None = None, views: int = 1) -> Prediction:
    """Probability map of an RGB uint8 image; ``equalize`` must be the model card's; each tile the
    mean of ``views`` dihedral views (:func:`predict_tiles`).

    Streams: a batch of tiles at a time is read from the uint8 image (reflect padding by index, see
    :meth:`TileLayout.index_maps`), preprocessed (whole-image equalisation statistics computed once,
    see :class:`WindowPreprocessor`), predicted, and its central ``stride x stride`` parts written
    straight into the map. So memory is the image, the float32 map and a batch, whatever the size
    (a 16000 px image peaked at 10.9 GB when the whole image was preprocessed and cut at once; see
    benchmarks/memory.py), and the map equals that of preprocessing, tiling and stitching the whole.
    Cancel is checked before each batch and progress reported after it."""
    check_views(views)
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
        probs = predict_tiles(model, x, len(chunk), views=views)
        t3 = time.perf_counter()
        for k, (y, x0) in enumerate(chunk):
            out[y:y + s, x0:x0 + s] = probs[k, m:m + min(s, height - y), m:m + min(s, width - x0)]
        t_pre, t_inf = t_pre + (t2 - t1), t_inf + (t3 - t2)
        if progress is not None:
            progress(start + len(chunk), len(origins))
    return Prediction(probability=out, tiles=len(origins), views=views,
                      timing={"preprocess": t_pre, "inference": t_inf, "total": time.perf_counter() - t0})
