"""Persistent preferences: last folder, extra models, chosen models, opacity, layers."""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from PySide6.QtCore import QSettings

from .overlay_colors import LayerState


class Settings:
    """QSettings behind typed accessors; ``path`` gives tests a private INI file."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.q = QSettings(str(path), QSettings.IniFormat) if path else QSettings("paipviewer", "PAIP Viewer")

    def _get(self, key: str, default):
        value = self.q.value(key)
        return default if value is None else value

    @property
    def last_folder(self) -> str:
        return str(self._get("last_folder", ""))

    @last_folder.setter
    def last_folder(self, value: str) -> None:
        self.q.setValue("last_folder", value)

    @property
    def model_files(self) -> list[str]:
        return json.loads(self._get("model_files", "[]"))

    @model_files.setter
    def model_files(self, value: list[str]) -> None:
        self.q.setValue("model_files", json.dumps(sorted(set(value))))

    @property
    def model(self) -> str:
        return str(self._get("model", ""))

    @model.setter
    def model(self, value: str) -> None:
        self.q.setValue("model", value)

    @property
    def opacity(self) -> float:
        return min(1.0, max(0.0, float(self._get("opacity", 0.6))))

    @opacity.setter
    def opacity(self, value: float) -> None:
        self.q.setValue("opacity", float(value))

    @property
    def layers(self) -> LayerState:
        try:
            return LayerState(**json.loads(self._get("layers", "{}")))
        except (TypeError, ValueError):
            return LayerState()

    @layers.setter
    def layers(self, value: LayerState) -> None:
        self.q.setValue("layers", json.dumps(asdict(value)))

    def sync(self) -> None:
        self.q.sync()
