"""The model files the viewer knows: shipped, a user folder, and any opened or dropped.

Cards are read without importing Keras, so the list fills at once; the model is loaded in the
worker only when it runs.
"""
from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

from paipviewer.core.datasets import file_identity
from paipviewer.core.modelfile import (MODEL_SUFFIXES, ModelCard, ModelFileError, card_path, model_files,
                                      read_card, training_totals)

from .paths import DEFAULT_MODEL_STEM


@dataclass
class ModelInfo:
    path: Path
    card: ModelCard | None
    error: str | None = None
    needs_card: bool = False  # a Keras file without a card: usable once the user says how to feed it

    @property
    def key(self) -> str:
        return str(self.path)

    @property
    def label(self) -> str:
        if self.card:
            return f"{self.card.label}  ({self.path.stem})"
        return f"{self.path.name} (needs a card)" if self.needs_card else f"{self.path.name} (unusable)"

    def _facts(self) -> tuple[int, str, dict]:
        """(file bytes, "Trained on DATA, N epochs", the card's validation scores)."""
        c = self.card
        size = self.path.stat().st_size if self.path.exists() else 0
        data = c.training.get("data") or c.training.get("dataset") or "not recorded"
        epochs, _ = training_totals(c.training)
        val = c.metrics.get("validation") if isinstance(c.metrics.get("validation"), dict) else {}
        return size, f"Trained on {Path(data).name or data}" + (f", {epochs} epochs" if epochs else ""), val

    def brief(self) -> str:
        """Two short lines for the narrow model panel; :meth:`describe` is the whole card (its tooltip)."""
        if self.card is None:
            return self.error or "unusable"
        size, trained, val = self._facts()
        if isinstance(val.get("dice_mean"), (int, float)):
            trained += f"; val. Dice {val['dice_mean']:.3f}"
        return f"{self.card.params:,} parameters, {size / 1e6:.1f} MB, threshold {self.card.threshold:g}\n{trained}"

    def describe(self) -> str:
        if self.card is None:
            return self.error or "unusable"
        c = self.card
        size, trained, val = self._facts()
        recipe = _recipe(c.training)
        lines = [f"{c.label}: {c.params:,} parameters, {size / 1e6:.2f} MB",
                 trained + (f"; {recipe}" if recipe else ""),
                 f"Preprocessing {c.equalize}, threshold {c.threshold:g}"]
        if isinstance(val.get("dice_mean"), (int, float)):
            lines[-1] += f"; validation Dice {val['dice_mean']:.3f} ({val.get('tiles', '?')} tiles)"
        return "\n".join(lines)


def _recipe(training: dict) -> str:
    """How the last training run was set up, in the words of ``paip-train fit``'s options."""
    if "learning_rate" not in training:
        return ""
    parts = [f"Adam {training['learning_rate']:g}", str(training.get("loss", "bce")),
             f"batch {training.get('batch_size', '?')}"]
    if isinstance(training.get("recipe"), str):
        parts.insert(0, f"recipe {training['recipe']}")
    if training.get("augment"):
        parts.append("augmented")
    parts += [words for key, words in (("stain_augment", "HED stain jitter"), ("scale_augment", "scale jitter"))
              if training.get(key)]
    if training.get("continued_from"):
        parts.append("continued")
    if training.get("device") not in (None, "cpu"):
        parts.append(f"on {training['device']}")
    return ", ".join(parts)


def model_key(path: Path) -> Path:
    """The file a model is known by: its .keras (the source of truth) where there is one, else its .onnx."""
    files = model_files(path)
    return files.get(".keras") or files.get(".onnx") or path


class ModelCatalog:
    def __init__(self) -> None:
        self.models: list[ModelInfo] = []

    def scan(self, folder: Path) -> list[ModelInfo]:
        if not folder.is_dir():
            return []
        found = sorted({p.with_suffix("") for s in MODEL_SUFFIXES for p in folder.glob(f"*{s}")}, key=_natural)
        return [self.add(model_key(base)) for base in found]

    def add(self, path: Path) -> ModelInfo:
        """A model, listed once whatever file of it (.keras, .onnx, its card) or path (a symlink, a
        hard link) it was opened through."""
        path = model_key(Path(path).resolve())
        identity = file_identity(path)
        found = next((m for m in self.models if file_identity(m.path) == identity), None)
        if found:
            return found
        if not card_path(path).exists() and zipfile.is_zipfile(path):
            info = ModelInfo(path, None, f"{path.name}: no model card; choose its preprocessing and threshold "
                                         "to use it", needs_card=True)
        else:
            try:
                info = ModelInfo(path, read_card(path))
            except ModelFileError as exc:
                info = ModelInfo(path, None, str(exc))
        self.models.append(info)
        return info

    def set_card(self, key: str, card: ModelCard) -> None:
        """The card made for a model brought without one, once it has loaded with it."""
        info = self.find(key)
        if info is not None:
            info.card, info.error, info.needs_card = card, None, False

    def find(self, key: str | None) -> ModelInfo | None:
        return next((m for m in self.models if m.key == key), None) if key else None

    def usable(self) -> list[ModelInfo]:
        return [m for m in self.models if m.card is not None]

    def default(self) -> ModelInfo | None:
        usable = self.usable()
        preferred = [m for m in usable if m.path.stem == DEFAULT_MODEL_STEM]
        return (preferred or usable or [None])[0]


def _natural(path: Path) -> list:
    """Numbers compared as numbers, so ELU-Net 8/4 comes before 16/4 in the model list."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]
