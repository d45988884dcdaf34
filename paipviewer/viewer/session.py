"""The viewer's one owner of state: images, models, results, thresholds, selection, layers, notices.

Qt-free (napari's model layer). Everything changes through the methods here, and each change is
announced on :attr:`Session.events` (:mod:`paipviewer.viewer.events`), so every view that shows
a figure refreshes from one place and no figure can go stale. The task layer hands finished work
to :meth:`Session.apply` and failures to :meth:`Session.fail`; what should run next is
:func:`paipviewer.viewer.plan.wanted`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from paipviewer.core import metrics, scoring
from paipviewer.core.datasets import file_identity
from paipviewer.core.evidence import Assessment, truth_labels
from paipviewer.core.imageio import ImageReadError, labels_of_mask
from paipviewer.core.inference import InferenceError, check_views
from paipviewer.core.magnification import PixelSize
from paipviewer.core.modelfile import DEFAULT_THRESHOLD, ModelFileError
from paipviewer.core.objects import ObjectSettings

from . import events as ev
from .catalog import ModelCatalog
from .images import ImageEntry, OpenFailure, Result, count_labels, expand_paths
from .jobs import Assessed, ImageLoaded, ModelRan, ModelReady, Scored
from .layers import KINDS, LayerState

# Object assessments kept per image and model: the current threshold's and the one before (a
# slider moved back and forth finds both); each holds the nucleus labels, so not every threshold.
ASSESSMENTS_KEPT = 2


@dataclass(frozen=True)
class Notice:
    """A problem the user must be able to find again: which file, what went wrong, when."""
    source: str   # the file's name (or "" for the app itself)
    message: str  # without the file's name, so no message names a file twice
    when: float = field(default_factory=time.time)
    path: str = ""


def _without_name(message: str, name: str) -> str:
    return message.removeprefix(f"{name}: ") if name else message


@dataclass
class Opened:
    """What one open (dialog, drop, command line) brought: images, models and what failed."""
    images: list[ImageEntry]
    models: list[str]            # keys of model files waiting for their load check
    needs_card: list[str]        # keys of Keras files without a card: the user chooses how to run them
    failures: list[OpenFailure]


class Session:
    def __init__(self, catalog: ModelCatalog | None = None, background: bool = True) -> None:
        self.events = ev.Events()
        self.catalog = catalog or ModelCatalog()
        self.entries: list[ImageEntry] = []
        self.open_failures: list[OpenFailure] = []
        self.notices: list[Notice] = []
        self.current_key: str | None = None
        self.model_key = ""
        self.compare_key = ""
        self.previous_model = ""  # where to go back to if the chosen model turns out to be broken
        # Each model is cut at its card's threshold (calibrated on validation tiles) until the user
        # moves the slider for it, so the viewer scores a model as `paip-train evaluate` does.
        self.thresholds: dict[str, float] = {}
        self.layer_sets = {kind: LayerState.default(kind) for kind in KINDS}
        self.background = background  # score every open image, not only the current one
        self.stopped = False          # the user pressed Stop: nothing runs until asked again
        self.pending_models: list[str] = []  # opened models waiting for their load check
        self.pending_cards: dict[str, tuple] = {}  # key -> (card the user made, save it beside the model)
        # Microns per pixel the user stated, by image file or folder, for files that do not say.
        self.stated_mpp: dict[str, float] = {}
        # Dihedral views averaged a tile (test-time augmentation, paipviewer.core.inference): one for
        # a first result in about a second; eight when the user asks for the steadier map.
        self.views = 1

    # ------------------------------------------------------------------ opening
    def add(self, paths) -> Opened:
        """Open paths. A file already open is not added again, whatever path (relative, ``..``, a
        symlink, a hard link) it comes through."""
        pairs, model_paths, failures = expand_paths(paths)
        known = {file_identity(e.path) for e in self.entries}
        added = []
        for image, mask in pairs:
            identity = file_identity(image)
            if identity not in known:
                known.add(identity)
                added.append(ImageEntry(image, mask))
        self.entries += added
        models, needs_card = [], []
        for path in model_paths:
            info = self.catalog.add(path)
            if info.card is not None:
                models.append(info.key)
            elif info.needs_card:
                needs_card.append(info.key)
            else:
                failures.append(OpenFailure(path, info.error))
        self.pending_models += [m for m in models if m not in self.pending_models]
        self.open_failures += failures
        for failure in failures:
            self.notify(failure.path, failure.reason)
        if added or failures:
            self.events.emit(ev.IMAGES)
        if model_paths:
            self.events.emit(ev.MODELS)
        if added:
            self.select(added[0].key)  # what was just opened is what the user wants to see
        return Opened(added, models, needs_card, failures)

    def close_all(self) -> None:
        """Forget every open image (and what failed to open); models, thresholds and layers stay."""
        self.entries, self.open_failures, self.current_key = [], [], None
        self.events.emit(ev.IMAGES)
        self.events.emit(ev.CURRENT)

    # ------------------------------------------------------------------ selection
    def find(self, key: str | None) -> ImageEntry | None:
        return next((e for e in self.entries if e.key == key), None) if key else None

    def index_of(self, key: str | None) -> int:
        return next((i for i, e in enumerate(self.entries) if e.key == key), -1)

    def current(self) -> ImageEntry | None:
        return self.find(self.current_key)

    def select(self, key: str) -> None:
        """Make an image current. Choosing an image is asking for it: a stopped viewer runs again,
        and an image or model that failed on it is tried again."""
        entry = self.find(key)
        if entry is None:
            return
        self.current_key = key
        if entry.error is not None:
            entry.error = None
            entry.derived.clear()
        for model in (self.model_key, self.compare_key):
            entry.failures.pop(model, None)
            entry.derived.pop(("objects_failed", model), None)
        self.stopped = False
        self.events.emit(ev.CURRENT)

    def step(self, delta: int) -> None:
        if not self.entries:
            return
        index = self.index_of(self.current_key)
        self.select(self.entries[(index + delta) % len(self.entries)].key)

    # ------------------------------------------------------------------ models
    def usable(self, key: str) -> bool:
        info = self.catalog.find(key)
        return info is not None and info.card is not None

    def label(self, key: str) -> str:
        info = self.catalog.find(key)
        return info.card.label if info is not None and info.card is not None else ""

    def set_model(self, key: str) -> None:
        if key == self.model_key:
            return
        if self.model_key:
            self.previous_model = self.model_key
        self.model_key = key
        self._start_at_card_threshold(key)
        if self.compare_key == key:  # a model is never compared with itself
            self.compare_key = ""
        self.events.emit(ev.MODELS)

    def set_compare(self, key: str) -> None:
        key = "" if key == self.model_key else key
        if key == self.compare_key:
            return
        self.compare_key = key
        self._start_at_card_threshold(key)
        self.events.emit(ev.MODELS)

    def _start_at_card_threshold(self, key: str) -> None:
        if key and key not in self.thresholds:
            info = self.catalog.find(key)
            self.thresholds[key] = info.card.threshold if info and info.card else DEFAULT_THRESHOLD

    def provide_card(self, key: str, card, save: bool) -> None:
        """The user said how to feed a model that came without a card: try it with that card."""
        self.pending_cards[key] = (card, save)
        if key not in self.pending_models:
            self.pending_models.append(key)
        self.events.emit(ev.MODELS)

    def model_ready(self, key: str, card=None) -> None:
        """A model the user opened has loaded: it becomes the one that runs."""
        if card is not None:
            self.catalog.set_card(key, card)
        if key in self.pending_models:
            self.pending_models.remove(key)
        self.pending_cards.pop(key, None)
        self.set_model(key)

    def model_failed(self, key: str, message: str) -> None:
        """A model that cannot load is listed with its reason and never retried; a broken primary
        model hands over to the one used before it (or the default), so scoring goes on."""
        info = self.catalog.find(key)
        if info is not None:
            info.card, info.error, info.needs_card = None, message, False
        if key in self.pending_models:
            self.pending_models.remove(key)
        self.pending_cards.pop(key, None)
        told = _without_name(message, Path(key).name)
        if key == self.compare_key:
            self.compare_key = ""
        if key == self.model_key:
            back = self.catalog.find(self.previous_model)
            back = back if back is not None and back.card is not None else self.catalog.default()
            self.model_key = ""
            if back is not None:
                self.set_model(back.key)
                told += f"; using {back.card.label} instead"
        self.notify(Path(key), told)
        self.events.emit(ev.MODELS)

    # ------------------------------------------------------------------ results
    def apply(self, value) -> None:
        """Take a finished job's typed result. A result is true of its own image and model, so it
        is kept whichever image is current; the views only ever draw the current image's own."""
        if isinstance(value, ModelReady):
            self.model_ready(value.model, value.card)
        elif isinstance(value, ImageLoaded):
            self._image_loaded(value)
        elif isinstance(value, ModelRan):
            self._add_result(value)
        elif isinstance(value, Scored):
            entry = self.find(value.ran.key)
            if value.loaded is not None and entry is not None and not entry.loaded:
                self._image_loaded(value.loaded, announce=False)
            self._add_result(value.ran)
        elif isinstance(value, Assessed):
            self._add_assessment(value)
        else:
            raise TypeError(f"unknown result {type(value).__name__}")

    def _image_loaded(self, value: ImageLoaded, announce: bool = True) -> None:
        entry = self.find(value.key)
        if entry is None:
            return
        entry.image, entry.truth, entry.mask_error = value.image, value.truth, value.mask_error
        entry.pixel_size = value.pixel_size
        labels = value.labels
        if labels is None and value.truth is not None:
            labels = labels_of_mask(value.truth)
        entry.truth_labels = labels
        entry.derived.clear()
        if value.nuclei_true is not None and labels is value.labels:
            entry.derived[("truth_count",)] = value.nuclei_true
        if value.mask_error:
            mask = entry.mask_path or entry.path
            self.notify(mask, f"not used as ground truth: {_without_name(value.mask_error, Path(mask).name)}")
        if announce:
            self.events.emit(ev.ENTRY, entry.key)

    def _add_result(self, value: ModelRan) -> None:
        entry = self.find(value.key)
        if entry is None or value.result.prediction.views != self.views:
            return  # ran before the user changed the views: another way of predicting
        entry.results[value.model] = value.result
        entry.failures.pop(value.model, None)
        for key in [k for k in entry.derived if len(k) > 1 and k[1] == value.model]:
            del entry.derived[key]  # figures of the model's earlier run on this image
        self.events.emit(ev.ENTRY, entry.key)

    def _add_assessment(self, value: Assessed) -> None:
        """Keep a model's nuclei at one threshold, if the image still holds what they came from."""
        entry = self.find(value.key)
        if (entry is None or entry.results.get(value.model) is not value.result
                or entry.truth_labels is not value.labels):
            return  # the model ran again or the ground truth changed meanwhile: stale
        kept = entry.derived.setdefault(("objects", value.model), {})
        kept.pop(value.threshold, None)
        kept[value.threshold] = value
        while len(kept) > ASSESSMENTS_KEPT:
            del kept[next(iter(kept))]
        self.events.emit(ev.ENTRY, entry.key)

    def fail(self, job, exc: Exception) -> None:
        """Report a failure against what failed (the model, the image, or this model on this
        image); everything else goes on."""
        message = str(exc) or type(exc).__name__
        entry = self.find(job.image_key)
        if job.kind == "objects":
            if entry is not None:  # the nuclei at this threshold only: the model's result stands
                entry.derived.setdefault(("objects_failed", job.model_key), {})[job.threshold] = message
                self.notify(entry.path, f"{self.label(job.model_key)}: nuclei not assessed at "
                                        f"{job.threshold:.2f}: {message}")
                self.events.emit(ev.ENTRY, entry.key)
            else:
                self.notify("", message)
        elif isinstance(exc, ModelFileError) and job.model_key:
            self.model_failed(job.model_key, message)
        elif entry is not None and (job.kind == "load" or isinstance(exc, ImageReadError)):
            entry.error = _without_name(message, entry.name)
            entry.derived.clear()
            self.notify(entry.path, entry.error)
            self.events.emit(ev.ENTRY, entry.key)
        elif entry is not None and job.model_key:
            text = message if isinstance(exc, InferenceError) else f"{self.label(job.model_key)} failed: {message}"
            entry.failures[job.model_key] = text
            self.notify(entry.path, text)
            self.events.emit(ev.ENTRY, entry.key)
        else:
            self.notify("", message)

    def set_truth(self, key: str, path: Path) -> str | None:
        """Pair an image with a mask the user chose; returns why not, or None. A wrong mask is
        refused and the image keeps the ground truth it had."""
        entry = self.find(key)
        if entry is None or not entry.loaded:
            return "the image is not loaded yet"
        try:
            labels = truth_labels(Path(path), entry.image.shape[:2])
        except ImageReadError as exc:
            reason = _without_name(str(exc), Path(path).name)
            self.notify(path, f"not used as ground truth of {entry.name}: {reason}")
            return reason
        entry.truth, entry.truth_labels, entry.mask_path, entry.mask_error = labels > 0, labels, Path(path), None
        entry.derived.clear()
        self.events.emit(ev.ENTRY, key)
        return None

    # ------------------------------------------------------------------ thresholds and layers
    def threshold(self, model: str) -> float:
        return self.thresholds.get(model, DEFAULT_THRESHOLD)

    def set_threshold(self, model: str, value: float) -> None:
        if not model or self.thresholds.get(model) == value:
            return
        self.thresholds[model] = value
        self.events.emit(ev.THRESHOLD, model)

    def layers(self, entry: ImageEntry | None = None) -> LayerState:
        """The layer set of an image's kind (the current image's by default)."""
        entry = entry if entry is not None else self.current()
        return self.layer_sets["plain" if entry is None else entry.kind]

    def set_layer(self, name: str, on: bool, kind: str | None = None) -> None:
        """Switch a layer for a kind of image (the current image's kind by default)."""
        layers = self.layer_sets[kind] if kind else self.layers()
        if getattr(layers, name) != on:
            setattr(layers, name, on)
            self.events.emit(ev.LAYERS)

    # ------------------------------------------------------------------ running
    def stop(self) -> None:
        """Stop the current image and background scoring until the user asks again."""
        if not self.stopped:
            self.stopped = True
            self.events.emit(ev.RUNNING)

    def resume(self) -> None:
        if self.stopped:
            self.stopped = False
            self.events.emit(ev.RUNNING)

    def score_all(self) -> None:
        """Score every open image with the model (and the compare model) in the background, from
        now on; resumes a stopped viewer."""
        if not self.background or self.stopped:
            self.background, self.stopped = True, False
            self.events.emit(ev.RUNNING)

    def notify(self, source, message: str) -> None:
        path = str(source) if source else ""
        name = Path(path).name if path else ""
        notice = Notice(name, _without_name(message, name), path=path)
        self.notices.append(notice)
        self.events.emit(ev.NOTICE, notice)

    # ------------------------------------------------------------------ figures
    def counts(self, entry: ImageEntry, model: str) -> scoring.LevelCounts | None:
        """Pixel counts of a model's map on an image at every grid threshold (cached)."""
        result = entry.results.get(model) if model else None
        if result is None:
            return None
        key = ("counts", model)
        if key not in entry.derived:
            entry.derived[key] = scoring.level_counts(result.levels, entry.truth)
        return entry.derived[key]

    def mask(self, entry: ImageEntry, model: str) -> np.ndarray | None:
        result = entry.results.get(model) if model else None
        if result is None:
            return None
        return scoring.mask_at(result.levels, result.prediction.probability, self.threshold(model))

    def confusion(self, entry: ImageEntry, model: str) -> metrics.Confusion | None:
        if entry.truth is None:
            return None
        k = scoring.grid_index(self.threshold(model))
        if k is None:
            pred = self.mask(entry, model)
            return metrics.confusion(pred, entry.truth) if pred is not None else None
        counts = self.counts(entry, model)
        return counts.confusion(k) if counts is not None else None

    def predicted_pixels(self, entry: ImageEntry, model: str) -> int | None:
        k = scoring.grid_index(self.threshold(model))
        counts = self.counts(entry, model)
        if counts is None:
            return None
        return counts.predicted(k) if k is not None else int(np.count_nonzero(self.mask(entry, model)))

    def pixel_size(self, entry: ImageEntry) -> PixelSize:
        """The image's microns per pixel: its file's (or data sheet's), else what the user stated for it
        or its folder, else unknown (the model's scale is assumed)."""
        if entry.pixel_size.mpp:
            return entry.pixel_size
        for key in (str(entry.path), str(entry.path.parent)):
            if key in self.stated_mpp:
                return PixelSize(self.stated_mpp[key], "stated")
        return entry.pixel_size

    def state_pixel_size(self, entry: ImageEntry, mpp: float | None, folder: bool = False) -> list[ImageEntry]:
        """The user says how large ``entry``'s pixels are (for its whole folder with ``folder``; None
        forgets it). Images whose file gives no size are run again at the new scale; returns them."""
        key = str(entry.path.parent if folder else entry.path)
        if mpp is None:
            self.stated_mpp.pop(key, None)
        else:
            self.stated_mpp[key] = float(mpp)
        changed = [e for e in self.entries if not e.pixel_size.mpp
                   and (e is entry or (folder and e.path.parent == entry.path.parent))]
        for e in changed:
            self._forget_results(e)
        return changed

    def set_views(self, views: int) -> None:
        """Run every model with ``views`` dihedral views a tile from now on: what ran with another
        number is dropped (the figures would mix two ways of predicting), and runs again as wanted."""
        check_views(views)
        if views == self.views:
            return
        self.views = views
        for entry in self.entries:
            self._forget_results(entry)
        self.events.emit(ev.MODELS)

    def _forget_results(self, entry: ImageEntry) -> None:
        entry.results.clear()
        entry.failures.clear()
        for key in [k for k in entry.derived if len(k) > 1]:
            del entry.derived[key]  # each model's figures; the true nuclei count stays
        self.events.emit(ev.ENTRY, entry.key)

    def object_settings(self, model: str) -> ObjectSettings:
        """How a model's mask is split into nuclei: its card's ``objects`` field, else the defaults."""
        info = self.catalog.find(model)
        try:
            return ObjectSettings.from_dict(info.card.objects if info and info.card else None)
        except ValueError:
            return ObjectSettings()

    def assessed(self, entry: ImageEntry, model: str) -> Assessed | None:
        """The model's nuclei on the image at its threshold now (None while they are computed)."""
        kept = entry.derived.get(("objects", model)) if model else None
        return kept.get(self.threshold(model)) if kept else None

    def assessment(self, entry: ImageEntry, model: str) -> Assessment | None:
        found = self.assessed(entry, model)
        return found.assessment if found is not None else None

    def assessment_failed(self, entry: ImageEntry, model: str) -> str | None:
        return entry.derived.get(("objects_failed", model), {}).get(self.threshold(model))

    def wants_assessment(self, entry: ImageEntry, model: str) -> bool:
        """The model has run on the image but its nuclei at the threshold now are not known yet."""
        return (bool(model) and model in entry.results and entry.loaded and self.assessed(entry, model) is None
                and self.assessment_failed(entry, model) is None)

    def next_unassessed(self, model: str, after: int = 0) -> ImageEntry | None:
        order = self.entries[after:] + self.entries[:after]
        return next((e for e in order if self.wants_assessment(e, model)), None)

    def nuclei(self, entry: ImageEntry, model: str) -> int | None:
        """Predicted nuclei at the model's threshold (split as its card says), once assessed."""
        found = self.assessed(entry, model)
        return found.nuclei_pred if found is not None else None

    def nuclei_known(self, entry: ImageEntry, model: str) -> bool:
        return self.assessed(entry, model) is not None

    def truth_count(self, entry: ImageEntry) -> int | None:
        """True nuclei in the image's ground truth (None without)."""
        if entry.truth_labels is None:
            return None
        key = ("truth_count",)
        if key not in entry.derived:  # counted by the load job; a mask chosen by hand is counted here
            entry.derived[key] = count_labels(entry.truth_labels)
        return entry.derived[key]

    def object_codes(self, entry: ImageEntry, model: str) -> np.ndarray | None:
        """The objects layer's codes of the model at its threshold now (None while computed)."""
        found = self.assessed(entry, model)
        return found.codes if found is not None else None

    def summary(self, model: str) -> dict | None:
        """Over every scored image with ground truth: the study's mean per-tile Jaccard, and pooled."""
        items = [c for c in (self.confusion(e, model) for e in self.entries) if c is not None]
        if not items:
            return None
        return scoring.summarize(items)

    def scored(self, model: str) -> int:
        return sum(1 for e in self.entries if model in e.results)

    def usable_images(self) -> int:
        return sum(1 for e in self.entries if e.error is None)

    def next_unscored(self, model: str, after: int = 0) -> ImageEntry | None:
        """The next usable image without a result for ``model``, for scoring in the background."""
        order = self.entries[after:] + self.entries[:after]
        return next((e for e in order if e.error is None and model not in e.results and model not in e.failures),
                    None)
