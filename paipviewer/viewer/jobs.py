"""The viewer's work, as plain functions that run off the UI thread and return one typed result.

Each body gets ``progress(done, total)`` and ``cancelled()`` and either returns its result or
raises: :class:`~paipviewer.core.inference.Cancelled` when asked to stop, and otherwise an error
whose type says what failed (``ModelFileError``: the model; ``ImageReadError``: the image;
``InferenceError``: this model on this image). Qt-free, so tests call them directly.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from paipviewer.core.evidence import Assessment
from paipviewer.core.inference import Cancelled, InferenceError
from paipviewer.core.magnification import UNKNOWN, PixelSize
from paipviewer.core.modelfile import ModelCard, ModelFileError
from paipviewer.core.quiet import native_chatter_filtered

from .images import Result, count_labels, load_image_and_nuclei


@dataclass(frozen=True)
class ImageLoaded:
    key: str
    image: np.ndarray
    truth: np.ndarray | None
    mask_error: str | None
    labels: np.ndarray | None = None  # the ground-truth nuclei (int32); truth is labels > 0
    nuclei_true: int | None = None    # how many there are (counted here, off the UI thread)
    pixel_size: PixelSize = UNKNOWN   # from the file or its data sheet


@dataclass(frozen=True)
class ModelRan:
    key: str
    model: str
    result: Result


@dataclass(frozen=True)
class Scored:
    """Background scoring: the image read on the way (None if it was already loaded), and the run."""
    loaded: ImageLoaded | None
    ran: ModelRan


@dataclass(frozen=True)
class Assessed:
    """One model's nuclei on one image at one threshold, matched against the ground truth.

    ``result`` and ``labels`` are what it was computed from: the session keeps it only while the
    image still holds exactly those (a model run again or a mask chosen again makes it stale).
    """
    key: str
    model: str
    threshold: float
    assessment: Assessment
    codes: np.ndarray      # uint8 object layer codes (paipviewer.viewer.layers.object_codes)
    result: Result
    labels: np.ndarray | None
    seconds: float
    nuclei_pred: int          # the assessment's count, kept: counting the labels again is a pass over them

    @property
    def objects(self):
        return self.assessment.objects


@dataclass(frozen=True)
class ModelReady:
    model: str
    card: ModelCard | None = None  # a card made for a model that came without one


def message(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


class ModelCache:
    """Loaded models by file, and one lock per model: a Keras model runs one call at a time."""

    def __init__(self) -> None:
        self._models: dict[str, object] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def lock(self, key: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def get(self, key: str, card: ModelCard | None = None):
        """(LoadedModel, seconds spent loading it now); caller holds ``lock(key)``. ``card`` is for
        a model file without one beside it."""
        loaded = self._models.get(key)
        if loaded is not None:
            return loaded, 0.0
        from paipviewer.core.modelfile import load_model  # imports Keras/TensorFlow, here in the worker

        t0 = time.perf_counter()
        try:
            with native_chatter_filtered():
                loaded = load_model(key, card=card)
        except ModelFileError:
            raise
        except Exception as exc:  # an I/O or memory error while loading is still the model's failure
            raise ModelFileError(f"{Path(key).name}: cannot load the model ({message(exc)})") from None
        self._models[key] = loaded
        return loaded, time.perf_counter() - t0


def run_model(cache: ModelCache, model_key: str, image: np.ndarray, pixel_size: PixelSize = UNKNOWN,
              rescale: bool = True, views: int = 1, *, progress, cancelled) -> Result:
    """Load (once) and run a model over an image, at the model's pixel size where the image's is known
    and differs (see :mod:`paipviewer.core.magnification`), ``views`` dihedral views a tile."""
    from paipviewer.core.magnification import plan_scale, predict_at_scale
    from paipviewer.core.scoring import levels_of

    with cache.lock(model_key):
        if cancelled():
            raise Cancelled()
        loaded, load_seconds = cache.get(model_key)
        scale = plan_scale(pixel_size, loaded.card.mpp, rescale)
        try:
            prediction = predict_at_scale(loaded.model, image, loaded.card.equalize, scale,
                                          progress=progress, cancelled=cancelled, views=views)
        except Cancelled:
            raise
        except Exception as exc:
            raise InferenceError(f"{loaded.card.label} failed on this image: {message(exc)}") from exc
    prediction.timing["model_load"] = load_seconds
    return Result(prediction, levels_of(prediction.probability), loaded.runtime, scale)


def load_image(key: str, image_path: Path, mask_path: Path | None, *, progress, cancelled) -> ImageLoaded:
    """Read an image and its ground-truth nuclei (a large file can take seconds)."""
    from paipviewer.core.magnification import image_pixel_size

    image, labels, error = load_image_and_nuclei(image_path, mask_path)
    return ImageLoaded(key, image, None if labels is None else labels > 0, error, labels,
                       None if labels is None else count_labels(labels), image_pixel_size(image_path))


def run_on(cache: ModelCache, key: str, model_key: str, image: np.ndarray, pixel_size: PixelSize = UNKNOWN,
           rescale: bool = True, views: int = 1, *, progress, cancelled) -> ModelRan:
    return ModelRan(key, model_key, run_model(cache, model_key, image, pixel_size, rescale, views,
                                              progress=progress, cancelled=cancelled))


def score(cache: ModelCache, key: str, model_key: str, paths: tuple, image: np.ndarray | None,
          pixel_size: PixelSize = UNKNOWN, rescale: bool = True, views: int = 1, *, progress, cancelled) -> Scored:
    """Background scoring: an image that may not be loaded yet, then the model. ``pixel_size`` is the
    session's for the image; an image read here may turn out to carry its own, which wins."""
    loaded = None
    if image is None:
        loaded = load_image(key, *paths, progress=progress, cancelled=cancelled)
        image = loaded.image
        if loaded.pixel_size.mpp:
            pixel_size = loaded.pixel_size
    return Scored(loaded, run_on(cache, key, model_key, image, pixel_size, rescale, views,
                                 progress=progress, cancelled=cancelled))


def probe_model(cache: ModelCache, model_key: str, card: ModelCard | None = None, save_card: bool = False, *,
                progress, cancelled) -> ModelReady:
    """Load a model the user has just opened, so only one that works gets selected. ``card`` is the
    one the user made for a model without one; ``save_card`` stores it beside the model, never
    over an existing file."""
    from paipviewer.core.atomic import write_text_atomic
    from paipviewer.core.modelfile import card_path

    with cache.lock(model_key):
        if cancelled():
            raise Cancelled()
        loaded, _ = cache.get(model_key, card)
    if card is not None and save_card and not card_path(model_key).exists():
        write_text_atomic(card_path(model_key), loaded.card.to_json())
    return ModelReady(model_key, loaded.card if card is not None else None)


def assess_objects(key: str, model_key: str, result: Result, labels: np.ndarray | None, threshold: float,
                   settings, *, progress, cancelled) -> Assessed:
    """Split a model's mask into nuclei at ``threshold`` and match them with the true ones
    (:func:`paipviewer.core.evidence.assess`, as ``paipviewer score`` does): about 0.1 s for a
    1000 x 1000 image, so never on the UI thread."""
    from dataclasses import replace

    from paipviewer.core.evidence import assess

    from .layers import object_codes

    if cancelled():
        raise Cancelled()
    t0 = time.perf_counter()
    assessment = assess(result.prediction.probability, threshold, labels, settings)
    if assessment.nuclei_pred <= np.iinfo(np.uint16).max:  # half the memory for each kept assessment
        assessment = replace(assessment, nuclei=assessment.nuclei.astype(np.uint16))
    codes = object_codes(assessment.nuclei, labels, assessment.objects)
    return Assessed(key, model_key, threshold, assessment, codes, result, labels, time.perf_counter() - t0,
                    assessment.nuclei_pred)
