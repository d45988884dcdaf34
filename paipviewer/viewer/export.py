"""File > Export results: what ``paipviewer score`` writes, for every scored image and both models.

``scores.csv`` (a row per image and model, :func:`paipviewer.core.evidence.rows_to_csv`) and, per
image and model, the nucleus label PNG, the overlay and the GeoJSON (:func:`paipviewer.score.write_outputs`),
so a folder exported from the viewer and one written by the command line hold the same files.

:func:`plan` takes what is needed from the state on the UI thread; :func:`export` runs off it,
with progress and cancel. A file that cannot be written is reported and the others are still
written; ``scores.csv`` lists the rows whose files were written, and is rewritten after each
image, so a cancelled export keeps what it did.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from paipviewer.core.evidence import Assessment, assess, row, rows_to_csv
from paipviewer.core.inference import Cancelled
from paipviewer.core.objects import ObjectSettings

from .session import Session

SCORES = "scores.csv"


@dataclass(frozen=True)
class Item:
    """One image scored by one model, as the viewer holds it."""
    image_path: Path
    image: np.ndarray
    labels: np.ndarray | None       # ground-truth nuclei
    model_name: str                 # the model's id: its file stem, the folder of its files
    probability: np.ndarray
    threshold: float
    settings: ObjectSettings
    assessment: Assessment | None   # the viewer's own at this threshold, when known
    seconds: float | None
    mpp: float | None = None        # the image's pixel size as the viewer used it
    scale: float = 1.0              # the factor the image was resampled by for the model
    views: int = 1                  # dihedral views averaged a tile


@dataclass
class Plan:
    items: list[Item]
    unscored: int                   # open images a model has not run on yet (left out)


@dataclass
class Exported:
    folder: Path
    rows: list[dict]
    files: list[Path]
    errors: list[tuple[Path, str]] = field(default_factory=list)  # (file or image, why not written)


def model_names(session: Session) -> dict[str, str]:
    """Model key -> id used in files; two models of one file name are told apart."""
    names = {}
    for key in (session.model_key, session.compare_key):
        if key:
            stem = Path(key).stem
            names[key] = stem if stem not in names.values() else f"{stem}_compare"
    return names


def plan(session: Session) -> Plan:
    """What to export now: each image each model has scored (at its threshold now)."""
    names = model_names(session)
    items, unscored = [], 0
    for entry in session.entries:
        if entry.error is not None:
            continue
        if any(m not in entry.results for m in names):
            unscored += 1
        for model, name in names.items():
            result = entry.results.get(model)
            if result is None or not entry.loaded:
                continue
            items.append(Item(entry.path, entry.image, entry.truth_labels, name, result.prediction.probability,
                              session.threshold(model), session.object_settings(model),
                              session.assessment(entry, model), result.prediction.timing.get("total"),
                              session.pixel_size(entry).mpp, result.scale.factor if result.scale else 1.0,
                              result.prediction.views))
    return Plan(items, unscored)


def planned_paths(folder: Path, items: list[Item]) -> list[Path]:
    from paipviewer.score import output_paths

    return [Path(folder) / SCORES] + [p for it in items for p in output_paths(Path(folder), it.model_name,
                                                                              it.image_path).values()]


def export(folder: Path, items: list[Item], *, progress, cancelled) -> Exported:
    """Write every item's files and scores.csv into ``folder`` (checked and confirmed by the caller)."""
    from paipviewer.core.atomic import write_text_atomic
    from paipviewer.score import write_outputs

    folder = Path(folder)
    done = Exported(folder, [], [])
    for k, item in enumerate(items):
        if cancelled():
            raise Cancelled()
        try:
            found = item.assessment
            if found is None or found.threshold != item.threshold:
                found = assess(item.probability, item.threshold, item.labels, item.settings)
            files = write_outputs(folder, item.model_name, item.image_path, item.image, item.probability, found,
                                  item.labels)
        except Exception as exc:  # this image's files; the others are still written
            done.errors.append((item.image_path, f"{item.model_name}: {_reason(exc)}"))
        else:
            done.files += files.values()
            done.rows.append(row(item.image_path.name, item.model_name, found, item.seconds, item.mpp, item.scale,
                                 item.views))
        last_of_image = k + 1 == len(items) or items[k + 1].image_path != item.image_path
        if last_of_image and done.rows:
            try:
                write_text_atomic(folder / SCORES, rows_to_csv(done.rows))
            except OSError as exc:
                done.errors.append((folder / SCORES, _reason(exc)))
            else:
                if folder / SCORES not in done.files:
                    done.files.append(folder / SCORES)
        progress(k + 1, len(items))
    return done


def _reason(exc: Exception) -> str:
    return (exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)) or type(exc).__name__
