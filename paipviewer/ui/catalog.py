"""The model files the viewer knows: shipped, a user folder, and any opened or dropped.

Cards are read without importing Keras, so the list fills at once; the model is loaded in the
worker only when it runs.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from paipviewer.core.datasets import file_identity
from paipviewer.core.modelfile import ModelCard, ModelFileError, read_card, training_totals

from .paths import DEFAULT_MODEL_STEM


@dataclass
class ModelInfo:
    path: Path
    card: ModelCard | None
    error: str | None = None

    @property
    def key(self) -> str:
        return str(self.path)

    @property
    def label(self) -> str:
        return f"{self.card.label}  ({self.path.stem})" if self.card else f"{self.path.name} (unusable)"

    def describe(self) -> str:
        if self.card is None:
            return self.error or "unusable"
        c = self.card
        size = self.path.stat().st_size if self.path.exists() else 0
        data = c.training.get("data") or c.training.get("dataset") or "not recorded"
        epochs, _ = training_totals(c.training)
        # Three short lines: the panel is narrow, and a long card must not push the layers out of view.
        trained = f"Trained on {Path(data).name or data}" + (f", {epochs} epochs" if epochs else "")
        recipe = _recipe(c.training)
        lines = [f"{c.label}: {c.params:,} parameters, {size / 1e6:.2f} MB",
                 trained + (f"; {recipe}" if recipe else ""),
                 f"Preprocessing {c.equalize}, threshold {c.threshold:g}"]
        val = c.metrics.get("validation") if isinstance(c.metrics.get("validation"), dict) else {}
        if isinstance(val.get("dice_mean"), (int, float)):
            lines[-1] += f"; validation Dice {val['dice_mean']:.3f} ({val.get('tiles', '?')} tiles)"
        return "\n".join(lines)


def _recipe(training: dict) -> str:
    """How the last training run was set up, in the words of ``paip-train fit``'s options."""
    if "learning_rate" not in training:
        return ""
    parts = [f"Adam {training['learning_rate']:g}", str(training.get("loss", "bce")),
             f"batch {training.get('batch_size', '?')}"]
    if training.get("augment"):
        parts.append("augmented")
    if training.get("continued_from"):
        parts.append("continued")
    if training.get("device") not in (None, "cpu"):
        parts.append(f"on {training['device']}")
    return ", ".join(parts)


class ModelCatalog:
    def __init__(self) -> None:
        self.models: list[ModelInfo] = []

    def scan(self, folder: Path) -> list[ModelInfo]:
        if not folder.is_dir():
            return []
        return [self.add(p) for p in sorted(folder.glob("*.keras"))]

    def add(self, path: Path) -> ModelInfo:
        """A model file, listed once whatever path (a symlink, a hard link) it was opened through."""
        path = Path(path).resolve()
        identity = file_identity(path)
        found = next((m for m in self.models if file_identity(m.path) == identity), None)
        if found:
            return found
        try:
            info = ModelInfo(path, read_card(path))
        except ModelFileError as exc:
            info = ModelInfo(path, None, str(exc))
        self.models.append(info)
        return info

    def find(self, key: str | None) -> ModelInfo | None:
        return next((m for m in self.models if m.key == key), None) if key else None

    def usable(self) -> list[ModelInfo]:
        return [m for m in self.models if m.card is not None]

    def default(self) -> ModelInfo | None:
        usable = self.usable()
        preferred = [m for m in usable if m.path.stem == DEFAULT_MODEL_STEM]
        return (preferred or usable or [None])[0]
