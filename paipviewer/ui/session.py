"""What is open and what is known about it: images, ground truth, predictions, scores.

Qt-free (napari's model layer): the window renders this state and the tests drive it directly.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from paipviewer.core import metrics
from paipviewer.core.datasets import MASK_SUFFIXES, DatasetError, discover, file_identity, find_mask
from paipviewer.core.imageio import ImageReadError, is_image_path, read_image, read_mask
from paipviewer.core.inference import Prediction
from paipviewer.core.modelfile import DEFAULT_THRESHOLD


@dataclass
class Result:
    prediction: Prediction
    model_load_seconds: float


@dataclass
class ImageEntry:
    path: Path
    mask_path: Path | None = None
    image: np.ndarray | None = None
    truth: np.ndarray | None = None
    error: str | None = None        # the image itself cannot be used
    mask_error: str | None = None   # the image works, its ground truth does not
    results: dict[str, Result] = field(default_factory=dict)  # by model key
    failures: dict[str, str] = field(default_factory=dict)   # by model key: that model failed on this image

    @property
    def key(self) -> str:
        return str(self.path)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def loaded(self) -> bool:
        return self.image is not None


@dataclass
class OpenFailure:
    path: Path
    reason: str


def load_pixels(image_path: Path, mask_path: Path | None) -> tuple[np.ndarray, np.ndarray | None, str | None]:
    """Read an image and its ground truth; a bad mask is reported, not fatal. Raises ImageReadError."""
    image = read_image(image_path)
    if mask_path is None:
        return image, None, None
    try:
        return image, read_mask(mask_path, image.shape[:2]), None
    except ImageReadError as exc:
        return image, None, str(exc)


def expand_paths(paths) -> tuple[list[tuple[Path, Path | None]], list[Path], list[OpenFailure]]:
    """Split dropped or opened paths into (image, mask) pairs, model files and failures."""
    pairs: list[tuple[Path, Path | None]] = []
    models: list[Path] = []
    failures: list[OpenFailure] = []
    files = [Path(p) for p in paths]
    stems = {p.stem for p in files}
    for path in files:
        if path.is_dir():
            try:
                pairs += [(s.image, s.mask) for s in discover(path)]
            except DatasetError as exc:
                failures.append(OpenFailure(path, str(exc)))
        elif not path.exists():
            failures.append(OpenFailure(path, "no such file or folder"))
        elif path.suffix.lower() == ".keras":
            models.append(path)
        elif not is_image_path(path):
            failures.append(OpenFailure(path, f"not an image file ({path.suffix or 'no extension'})"))
        elif _is_mask_of_listed(path, stems):
            continue  # its image was opened with it and pairs with it through find_mask
        else:
            pairs.append((path, find_mask(path)))
    return pairs, models, failures


def _is_mask_of_listed(path: Path, stems: set[str]) -> bool:
    return any(path.stem.endswith(s) and path.stem[: -len(s)] in stems for s in MASK_SUFFIXES)


class Session:
    def __init__(self) -> None:
        self.entries: list[ImageEntry] = []
        self.failures: list[OpenFailure] = []
        # Each model is cut at its card's threshold (calibrated on validation tiles) until the user
        # moves the slider for it, so the viewer scores a model as `paip-train evaluate` does.
        self.thresholds: dict[str, float] = {}

    def add(self, paths) -> tuple[list[ImageEntry], list[Path], list[OpenFailure]]:
        """Open paths; returns the new entries, model files found and what could not be opened.

        A file already open is not added again, whatever path (relative, ``..``, a symlink, a
        hard link) it comes through.
        """
        pairs, models, failures = expand_paths(paths)
        known = {file_identity(e.path) for e in self.entries}
        added = []
        for image, mask in pairs:
            identity = file_identity(image)
            if identity not in known:
                known.add(identity)
                added.append(ImageEntry(image, mask))
        self.entries += added
        self.failures += failures
        return added, models, failures

    def find(self, key: str) -> ImageEntry | None:
        return next((e for e in self.entries if e.key == key), None)

    def index_of(self, key: str) -> int:
        return next((i for i, e in enumerate(self.entries) if e.key == key), -1)

    def threshold(self, model: str) -> float:
        return self.thresholds.get(model, DEFAULT_THRESHOLD)

    def mask(self, entry: ImageEntry, model: str) -> np.ndarray | None:
        result = entry.results.get(model)
        return result.prediction.mask(self.threshold(model)) if result else None

    def confusion(self, entry: ImageEntry, model: str) -> metrics.Confusion | None:
        pred = self.mask(entry, model)
        if pred is None or entry.truth is None:
            return None
        return metrics.confusion(pred, entry.truth)

    def summary(self, model: str) -> dict | None:
        """Scores over all scored images: mean per-tile Jaccard (the study's figure) and pooled."""
        items = [c for c in (self.confusion(e, model) for e in self.entries) if c is not None]
        if not items:
            return None
        pooled = metrics.pooled(items)
        return {"images": len(items), "mean_jaccard": metrics.mean_score(items, "jaccard"),
                "mean_dice": metrics.mean_score(items, "dice"), "pooled_jaccard": pooled.jaccard}

    def next_unscored(self, model: str, after: int = 0) -> ImageEntry | None:
        """The next usable image without a result for ``model``, for scoring in the background."""
        order = self.entries[after:] + self.entries[:after]
        return next((e for e in order if e.error is None and model not in e.results and model not in e.failures),
                    None)



def user_models_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "paipviewer" / "models"
