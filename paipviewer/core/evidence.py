"""One image scored by one model at one threshold: pixel and object scores, and the row users keep.

``paipviewer score``, ``paip-train evaluate`` and the viewer's results table all call
:func:`assess`, so a Dice or an AJI is the same number wherever it is read.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass

import numpy as np

from pathlib import Path

from .datasets import instance_map
from .imageio import ImageReadError, read_labels
from .metrics import Confusion, confusion
from .objects import Matching, ObjectSettings, label_nuclei, match_nuclei
from .tiff_labels import TIFF_SUFFIXES, read_tiff_labels

# scores.csv, one row per image and model; empty cells where there is no ground truth.
COLUMNS = ["image", "model", "threshold", "dice", "jaccard", "precision", "recall", "tp", "fp", "fn",
           "nuclei_pred", "nuclei_true", "det_f1", "aji", "pq", "seconds", "mpp", "scale", "views"]
TRUTH_COLUMNS = {"dice", "jaccard", "precision", "recall", "tp", "fp", "fn", "nuclei_true", "det_f1", "aji", "pq"}


@dataclass(frozen=True)
class Assessment:
    threshold: float
    nuclei: np.ndarray              # int32 labels of the predicted nuclei
    pixels: Confusion | None        # None without ground truth
    objects: Matching | None

    @property
    def nuclei_pred(self) -> int:
        return int(self.nuclei.max()) if self.nuclei.size else 0

    def scores(self) -> dict:
        """The CSV's score columns (without image, model and seconds); None where there is no truth."""
        out = {"threshold": self.threshold, "nuclei_pred": self.nuclei_pred}
        if self.pixels is None or self.objects is None:
            return {**out, **{k: None for k in TRUTH_COLUMNS}}
        p, o = self.pixels, self.objects.scores
        return {**out, "dice": p.dice, "jaccard": p.jaccard, "precision": p.precision, "recall": p.recall,
                "tp": p.tp, "fp": p.fp, "fn": p.fn, "nuclei_true": o.n_true, "det_f1": o.f1,
                "aji": o.aji, "pq": o.pq}


def truth_labels(mask: Path, shape: tuple[int, int], spill: Path | None = None, *, progress=None,
                 cancelled=None) -> np.ndarray:
    """Ground-truth nuclei of an image: its instance map where one lies beside the mask, else the mask's
    own labels (an instance map as is, a binary mask by components), or polygons drawn in QuPath
    (.geojson). Raises ImageReadError.

    ``spill``: a folder where polygons are drawn, or a TIFF's tiles copied, into a memory-mapped file
    rather than into memory, since a whole slide's labels may not fit there. The file is unlinked once
    mapped where the system allows it, so nothing is left behind and a second load never writes over
    pages the first still shows. Another mask image (PNG) is decoded whole either way. ``progress``
    and ``cancelled`` as for :func:`read_labels_geojson` (for a TIFF, counting tiles).
    """
    if Path(mask).suffix.lower() == ".geojson":
        from .geojson import GeoJSONError, read_labels_geojson

        out = None if spill is None else _spill_file(spill, shape)
        try:
            return read_labels_geojson(mask, shape, out, progress=progress, cancelled=cancelled)
        except GeoJSONError as exc:
            raise ImageReadError(str(exc)) from None
    labels = instance_map(mask) or mask
    if spill is not None and Path(labels).suffix.lower() in TIFF_SUFFIXES:
        return read_tiff_labels(labels, _spill_file(spill, shape), progress=progress, cancelled=cancelled)
    return read_labels(labels, shape)


def _spill_file(folder: Path, shape: tuple[int, int]) -> np.ndarray:
    import os
    import tempfile

    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.truth.npy"):  # left by an earlier load that could not unlink its file
        try:
            old.unlink()
        except OSError:
            pass
    fd, name = tempfile.mkstemp(suffix=".truth.npy", dir=folder)
    os.close(fd)
    out = np.lib.format.open_memmap(name, mode="w+", dtype=np.int32, shape=tuple(shape))
    try:
        os.unlink(name)
    except OSError:  # Windows keeps a mapped file; the cache folder holds it until then
        pass
    return out


def assess(probability: np.ndarray, threshold: float, truth: np.ndarray | None,
           settings: ObjectSettings = ObjectSettings()) -> Assessment:
    """Score a probability map against ``truth`` labels (int, 0 = background; None if unknown)."""
    mask = np.asarray(probability) >= threshold
    nuclei = label_nuclei(mask, settings)
    if truth is None:
        return Assessment(threshold, nuclei, None, None)
    return Assessment(threshold, nuclei, confusion(mask, truth > 0), match_nuclei(truth, nuclei))


def row(image: str, model: str, assessment: Assessment, seconds: float | None, mpp: float | None = None,
        scale: float = 1.0, views: int = 1) -> dict:
    """A scores.csv row; ``mpp`` is the image's pixel size (None: unknown), ``scale`` the factor it
    was resampled by to reach the model's (1: as is) and ``views`` the dihedral views averaged a tile."""
    return {"image": image, "model": model, **assessment.scores(), "seconds": seconds, "mpp": mpp, "scale": scale,
            "views": views}


def rows_to_csv(rows: list[dict], columns: list[str] = COLUMNS) -> str:
    """CSV text; floats to 4 decimals (seconds to 3), None as an empty cell."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, columns, lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({k: _cell(k, r.get(k)) for k in columns})
    return buf.getvalue()


def _cell(key: str, value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3f}" if key in ("seconds", "scale") else f"{value:.4f}"
    return str(value)
