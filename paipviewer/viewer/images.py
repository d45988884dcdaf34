"""Open images: what each is, its pixels and ground truth once read, and each model's result on it."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from paipviewer.core.datasets import MASK_SUFFIXES, DatasetError, discover, find_mask
from paipviewer.core.evidence import truth_labels
from paipviewer.core.imageio import ImageReadError, is_image_path, read_image
from paipviewer.core.inference import Prediction
from paipviewer.core.magnification import UNKNOWN, PixelSize, Scale
from paipviewer.core.modelfile import MODEL_SUFFIXES


@dataclass
class Result:
    """One model's run on one image: its probability map, and the map's levels for fast thresholds."""
    prediction: Prediction
    levels: np.ndarray  # uint8, paipviewer.core.scoring.levels_of(prediction.probability)
    runtime: str = ""   # what ran the model: "ONNX Runtime", "OpenVINO bf16", "Keras"
    scale: Scale | None = None  # how the image was fed to the model (resampled to its pixel size or not)

    @property
    def model_load_seconds(self) -> float:
        return self.prediction.timing.get("model_load", 0.0)


@dataclass
class ImageEntry:
    path: Path
    mask_path: Path | None = None
    image: np.ndarray | None = None
    truth: np.ndarray | None = None          # bool: truth_labels > 0
    truth_labels: np.ndarray | None = None   # int32 ground-truth nuclei (0 = background)
    error: str | None = None        # the image itself cannot be used
    mask_error: str | None = None   # the image works, its ground truth does not
    results: dict[str, Result] = field(default_factory=dict)  # by model key
    failures: dict[str, str] = field(default_factory=dict)   # by model key: that model failed on this image
    derived: dict = field(default_factory=dict)  # figures computed from the above, dropped when it changes
    pixel_size: PixelSize = UNKNOWN  # what the file (or its data sheet) says; the user may state it

    @property
    def key(self) -> str:
        return str(self.path)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def loaded(self) -> bool:
        return self.image is not None

    @property
    def kind(self) -> str:
        """"annotated" with ground truth (or a mask still to be read), else "plain": the layer set to use."""
        has_truth = self.truth is not None if self.loaded else self.mask_path is not None
        return "annotated" if has_truth else "plain"


@dataclass
class OpenFailure:
    path: Path
    reason: str


def load_image_and_nuclei(image_path: Path, mask_path: Path | None
                          ) -> tuple[np.ndarray, np.ndarray | None, str | None]:
    """Read an image and its ground-truth nuclei as int32 labels (the instance map beside the mask
    where there is one, as ``paipviewer score`` reads them); a bad mask is reported, not fatal.
    Raises ImageReadError for the image."""
    image = read_image(image_path)
    if mask_path is None:
        return image, None, None
    try:
        return image, truth_labels(mask_path, image.shape[:2]), None
    except ImageReadError as exc:
        return image, None, str(exc)


def load_pixels(image_path: Path, mask_path: Path | None) -> tuple[np.ndarray, np.ndarray | None, str | None]:
    """Read an image and its ground truth as a boolean mask (``labels > 0``); see
    :func:`load_image_and_nuclei`. Raises ImageReadError."""
    image, labels, error = load_image_and_nuclei(image_path, mask_path)
    return image, None if labels is None else labels > 0, error


def count_labels(labels: np.ndarray) -> int:
    """How many distinct nuclei a label image holds (ids need not be consecutive)."""
    if not labels.size:
        return 0
    return int(np.count_nonzero(np.bincount(labels.ravel())[1:]))


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
        elif path.suffix.lower() in MODEL_SUFFIXES:
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
