"""The slide window's work, Qt-free: a model over a slide (or a region of it), then its nuclei and,
where there is ground truth, their scores. Runs off the UI thread through the task layer."""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from paipviewer.core.evidence import truth_labels
from paipviewer.core.magnification import Scale, plan_scale
from paipviewer.core.metrics import Confusion
from paipviewer.core.objects import ObjectSettings
from paipviewer.core.slide_run import SlidePrediction, label_slide, predict_slide, score_slide
from paipviewer.core.slides import Slide

from .jobs import ModelCache
from .paths import cache_dir


@dataclass
class SlideResult:
    model: str
    prediction: SlidePrediction
    scale: Scale
    threshold: float
    region: tuple | None
    nuclei: int = 0
    pixels: Confusion | None = None
    objects: object = None      # objects.Matching, with ground truth
    seconds: float = 0.0


def work_folder(slide_path: Path, model_key: str) -> Path:
    """Where a slide's run keeps its memory-mapped maps: the user's cache, one folder per slide and model."""
    digest = hashlib.sha256(f"{Path(slide_path).resolve()}|{model_key}".encode()).hexdigest()[:16]
    return cache_dir() / "slides" / digest


def read_truth(truth_path: Path | None, slide: Slide, *, progress=None, cancelled=None) -> np.ndarray | None:
    """The slide's ground-truth labels; polygons are drawn into a memory-mapped file in the cache."""
    if truth_path is None:
        return None
    width, height = slide.dimensions
    return truth_labels(truth_path, (height, width), cache_dir() / "truth", progress=progress,
                        cancelled=cancelled)


def run_slide(cache: ModelCache, model_key: str, slide_path: Path, truth: np.ndarray | None,
              region: tuple | None, threshold: float | None, rescale: bool = True, views: int = 1, *, progress,
              cancelled, on_block=None) -> SlideResult:
    """Predict (resuming an earlier run of the same slide, model, region and views), then label and score."""
    t0 = time.perf_counter()
    with cache.lock(model_key):
        loaded, _ = cache.get(model_key)
    card = loaded.card
    threshold = card.threshold if threshold is None else threshold
    with Slide(slide_path) as slide:
        scale = plan_scale(slide.pixel_size, card.mpp, rescale)
        work = work_folder(slide_path, model_key)
        with cache.lock(model_key):
            prediction = predict_slide(loaded.model, card.equalize, slide, scale, work, Path(model_key).stem,
                                       region, progress=progress, cancelled=cancelled, on_block=on_block,
                                       views=views)
    result = SlideResult(Path(model_key).stem, prediction, scale, threshold, region)
    labels, boxes = label_slide(prediction.probability, threshold, ObjectSettings.from_dict(card.objects), work)
    result.nuclei = len(boxes)
    if truth is not None and region is None:
        scored = score_slide(prediction.probability, labels, truth, threshold)
        result.pixels, result.objects = scored.pixels, scored.objects
    result.seconds = time.perf_counter() - t0
    return result
