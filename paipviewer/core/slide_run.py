"""A model over a whole slide, in bounded memory: predicted block by block onto disk, nuclei labelled
block by block, scored against ground truth block by block, and written as a pyramidal label TIFF
and GeoJSON.

- **Where**: blocks of ``BLOCK`` level-0 pixels over the slide (or a region); in each only the box
  around its tissue (:func:`.slides.tissue_mask` on a thumbnail) is read and run, so glass costs nothing.
- **Scale**: each block (with a margin of context) is resampled to the model's pixel size and the
  probability back (:mod:`.magnification`), so a 20x slide is seen as the 40x the model knows.
- **Equalisation**: the card's histogram equalisation needs whole-image statistics; for a slide they
  come from the tissue of the thumbnail (``rgb`` and ``luma`` become one look-up table for the whole
  slide, :class:`.preprocess.SampledEqualizer`). ``clahe`` is local by nature and runs per block.
- **On disk**: the probability (uint8, 0-255) is a memory-mapped file in the work folder, with a
  record of finished blocks written atomically after each one, so a stopped run resumes where it
  was; the label map (uint32) likewise.
- **Objects**: each block is labelled with a margin; a nucleus belongs to the block holding its
  centre, so a nucleus on a block edge is labelled once, whole.
"""
from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .atomic import atomic_path, write_text_atomic
from .inference import Cancelled, check_views
from .magnification import Scale, predict_at_scale
from .metrics import Confusion, confusion
from .objects import ObjectSettings, OverlapCounts, label_nuclei
from .preprocess import SampledEqualizer
from .slides import Slide, blocks, tissue_box, tissue_mask

BLOCK = 1024      # level-0 pixels a side: about one MoNuSeg image at 40x
MARGIN = 64       # model pixels of context around each block
THUMBNAIL = 2048  # the tissue map's longest side


@dataclass
class SlidePrediction:
    probability: np.ndarray   # uint8 memmap (H, W) at level 0: round(255 * p)
    blocks_run: int
    blocks_total: int
    blocks_skipped: int       # glass
    seconds: float
    resumed: int              # blocks found finished from an earlier run
    views: int = 1            # dihedral views averaged a tile (paipviewer.core.inference.VIEWS)


def _identity(slide: Slide, model_id: str, scale: Scale, region, views: int) -> str:
    text = json.dumps([str(slide.path.resolve()), slide.path.stat().st_size, slide.dimensions, model_id,
                       scale.factor, region, BLOCK, MARGIN, views])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _memmap(path: Path, dtype, shape, fresh: bool) -> np.ndarray:
    """The work file to go on with, or a new one where there is none that fits."""
    if not fresh and path.exists():
        try:
            found = np.lib.format.open_memmap(path, mode="r+")
            if found.shape == tuple(shape) and found.dtype == np.dtype(dtype):
                return found
        except (OSError, ValueError):  # a work file cut short by a crash: start again
            pass
    return np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)


def predict_slide(model, equalize_mode: str, slide: Slide, scale: Scale, work: Path, model_id: str,
                  region: tuple[int, int, int, int] | None = None,
                  progress: Callable[[int, int], None] | None = None,
                  cancelled: Callable[[], bool] | None = None,
                  on_block: Callable[[tuple[int, int, int, int]], None] | None = None,
                  views: int = 1) -> SlidePrediction:
    """Run a model over a slide into ``work``/probability.npy, resuming a matching earlier run there
    (one with the same model, scale, region and ``views``)."""
    check_views(views)
    t0 = time.perf_counter()
    work.mkdir(parents=True, exist_ok=True)
    width, height = slide.dimensions
    thumb, down = slide.thumbnail(THUMBNAIL)
    tissue = tissue_mask(thumb)
    equalizer = SampledEqualizer(equalize_mode, thumb[tissue] if tissue.any() else thumb.reshape(-1, 3))
    grid = blocks(width, height, BLOCK, region)
    ident = _identity(slide, model_id, scale, region, views)
    state_path = work / "state.json"
    state = json.loads(state_path.read_text()) if state_path.exists() else {}
    fresh = state.get("identity") != ident
    done = set() if fresh else {tuple(b) for b in state.get("done", [])}
    prob = _memmap(work / "probability.npy", np.uint8, (height, width), fresh)
    margin = math.ceil(MARGIN / scale.factor)
    resumed, run, skipped = len(done), 0, 0
    for k, block in enumerate(grid):
        if cancelled is not None and cancelled():
            raise Cancelled()
        if block in done:
            continue
        box = tissue_box(tissue, down, block)
        x, y, w, h = block
        prob[y:y + h, x:x + w] = 0
        if box is None:
            skipped += 1
        else:
            x, y, w, h = box  # only the block's tissue is read and run; its glass stays 0
            pixels = equalizer(slide.read(x - margin, y - margin, w + 2 * margin, h + 2 * margin))
            p = predict_at_scale(model, pixels, "none", scale, views=views).probability  # equalised already
            prob[y:y + h, x:x + w] = np.clip(np.rint(p[margin:margin + h, margin:margin + w] * 255), 0, 255)
            run += 1
        done.add(block)
        prob.flush()
        write_text_atomic(state_path, json.dumps({"identity": ident, "done": sorted(done)}))
        if on_block is not None:
            on_block(block)
        if progress is not None:
            progress(k + 1, len(grid))
    return SlidePrediction(prob, run, len(grid), skipped, time.perf_counter() - t0, resumed, views)


def label_slide(probability: np.ndarray, threshold: float, settings: ObjectSettings, work: Path,
                block: int = 2 * BLOCK, margin: int = 64) -> tuple[np.ndarray, dict[int, tuple]]:
    """uint32 labels of the slide's nuclei (``work``/labels.npy) and each one's bounding box
    (x0, y0, x1, y1) in level-0 pixels; a nucleus belongs to the block that holds its centre."""
    height, width = probability.shape
    labels = np.lib.format.open_memmap(work / "labels.npy", mode="w+", dtype=np.uint32, shape=(height, width))
    cut = math.ceil(threshold * 255)  # p >= t  <=>  round(255 p) >= ceil(255 t), to the byte
    boxes: dict[int, tuple] = {}
    next_id = 1
    for x, y, w, h in blocks(width, height, block):
        x0, y0 = max(x - margin, 0), max(y - margin, 0)
        x1, y1 = min(x + w + margin, width), min(y + h + margin, height)
        mask = np.asarray(probability[y0:y1, x0:x1]) >= cut
        if not mask.any():
            continue
        local = label_nuclei(mask, settings)
        n = int(local.max())
        if n == 0:
            continue
        ys, xs = np.nonzero(local)
        ids = local[ys, xs]
        area = np.bincount(ids, minlength=n + 1).astype(np.float64)
        cy = np.bincount(ids, weights=ys, minlength=n + 1) / np.maximum(area, 1) + y0
        cx = np.bincount(ids, weights=xs, minlength=n + 1) / np.maximum(area, 1) + x0
        own = (cx >= x) & (cx < x + w) & (cy >= y) & (cy < y + h)
        own[0] = False
        new_id = np.zeros(n + 1, np.uint32)
        owned = np.flatnonzero(own)
        new_id[owned] = np.arange(next_id, next_id + len(owned), dtype=np.uint32)
        next_id += len(owned)
        target = labels[y0:y1, x0:x1]
        write = (new_id[local] > 0) & (target == 0)
        target[write] = new_id[local][write]
        for i in owned:
            sel = ids == i
            boxes[int(new_id[i])] = (int(xs[sel].min()) + x0, int(ys[sel].min()) + y0,
                                     int(xs[sel].max()) + x0 + 1, int(ys[sel].max()) + y0 + 1)
    labels.flush()
    return labels, boxes


@dataclass
class SlideScores:
    pixels: Confusion
    objects: object   # objects.Matching


def score_slide(probability: np.ndarray, labels: np.ndarray, truth: np.ndarray, threshold: float,
                block: int = 2 * BLOCK) -> SlideScores:
    """Pixel confusion and object matching against a truth label map of the same size, block by block."""
    if truth.shape != probability.shape:
        raise ValueError(f"ground truth {truth.shape[1]} x {truth.shape[0]} does not match the slide's "
                         f"{probability.shape[1]} x {probability.shape[0]}")
    cut = math.ceil(threshold * 255)
    total = Confusion(0, 0, 0, 0)
    counts = OverlapCounts()
    height, width = probability.shape
    for x, y, w, h in blocks(width, height, block):
        t = np.asarray(truth[y:y + h, x:x + w])
        total = total + confusion(np.asarray(probability[y:y + h, x:x + w]) >= cut, t > 0)
        counts.add(t, np.asarray(labels[y:y + h, x:x + w]))
    return SlideScores(total, counts.match())


def write_label_pyramid(labels: np.ndarray, path: Path, mpp: float | None) -> None:
    """A tiled, pyramidal (sub-IFD) BigTIFF of uint32 labels, each level half the last, nearest
    neighbour; with the pixel size in its resolution tags."""
    import tifffile

    levels = max(0, math.ceil(math.log2(max(labels.shape) / 1024))) if max(labels.shape) > 1024 else 0
    options = dict(tile=(256, 256), compression="zlib", photometric="minisblack")
    resolution = dict(resolution=(1e4 / mpp, 1e4 / mpp), resolutionunit="CENTIMETER") if mpp else {}
    with atomic_path(path) as tmp:
        with tifffile.TiffWriter(tmp, bigtiff=True) as tif:
            tif.write(labels, subifds=levels, **options, **resolution)
            for level in range(1, levels + 1):
                step = 2 ** level
                tif.write(np.ascontiguousarray(labels[::step, ::step]), subfiletype=1, **options,
                          **({k: (v[0] / step, v[1] / step) if k == "resolution" else v
                              for k, v in resolution.items()}))


def nucleus_features(labels: np.ndarray, boxes: dict[int, tuple], probability: np.ndarray | None = None):
    """GeoJSON features of every nucleus of a slide, traced one bounding box at a time, as they are
    written (:func:`paipviewer.core.geojson.write`): a slide's are too many to hold at once."""
    from .geojson import features

    for lab, (x0, y0, x1, y1) in boxes.items():
        piece = np.where(np.asarray(labels[y0:y1, x0:x1]) == lab, lab, 0)
        prob = None if probability is None else np.asarray(probability[y0:y1, x0:x1], np.float32) / 255
        for f in features(piece, prob):
            ring = f["geometry"]["coordinates"][0]
            f["geometry"]["coordinates"][0] = [[px + x0, py + y0] for px, py in ring]
            yield f
