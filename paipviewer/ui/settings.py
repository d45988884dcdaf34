"""Persistent preferences: last folder, extra models, chosen model, opacity, layers per image kind, window layout.

Read defensively: the file is the user's (hand-edited, half-written by a crash, from another
version), so a value that does not parse falls back to its default with a warning in the log and
never stops the app from starting.
"""
from __future__ import annotations

import json
import logging
from dataclasses import asdict
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings

from paipviewer.viewer.layers import DEFAULT_OPACITY, LayerState

log = logging.getLogger(__name__)
RECENT = 10


class Settings:
    """QSettings behind typed accessors; ``path`` gives tests a private INI file."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.q = QSettings(str(path), QSettings.IniFormat) if path else QSettings("paipviewer", "PAIP Viewer")

    def _get(self, key: str, default, parse=str):
        """``parse(stored value)``, or ``default`` if nothing is stored or it does not parse."""
        value = self.q.value(key)
        if value is None:
            return default
        try:
            return parse(value)
        except (TypeError, ValueError) as exc:  # json.JSONDecodeError is a ValueError
            log.warning("settings %s: ignoring %s=%r (%s); using %r", self.q.fileName(), key, value, exc, default)
            return default

    @property
    def last_folder(self) -> str:
        return self._get("last_folder", "")

    @last_folder.setter
    def last_folder(self, value: str) -> None:
        self.q.setValue("last_folder", value)

    @property
    def model_files(self) -> list[str]:
        return self._get("model_files", [], _string_list)

    @model_files.setter
    def model_files(self, value: list[str]) -> None:
        self.q.setValue("model_files", json.dumps(sorted(set(value))))

    @property
    def recent(self) -> list[str]:
        """Files and folders opened lately, newest first (at most ten)."""
        return self._get("recent", [], _string_list)

    @recent.setter
    def recent(self, value: list[str]) -> None:
        self.q.setValue("recent", json.dumps(list(dict.fromkeys(value))[:RECENT]))

    @property
    def pixel_sizes(self) -> dict[str, float]:
        """Microns per pixel the user stated, by image file or folder."""
        return self._get("pixel_sizes", {}, _pixel_sizes)

    @pixel_sizes.setter
    def pixel_sizes(self, value: dict[str, float]) -> None:
        self.q.setValue("pixel_sizes", json.dumps(dict(value)))

    @property
    def views(self) -> int:
        """Dihedral views averaged a tile (Run > Average 8 views)."""
        return self._get("views", 1, _views)

    @views.setter
    def views(self, value: int) -> None:
        self.q.setValue("views", int(value))

    @property
    def model(self) -> str:
        return self._get("model", "")

    @model.setter
    def model(self, value: str) -> None:
        self.q.setValue("model", value)

    @property
    def opacity(self) -> float:
        return self._get("opacity", DEFAULT_OPACITY, _fraction)

    @opacity.setter
    def opacity(self, value: float) -> None:
        self.q.setValue("opacity", float(value))

    def layer_set(self, kind: str) -> LayerState:
        """The layers shown on one kind of image ("annotated" or "plain")."""
        return self._get(f"layers_{kind}", LayerState.default(kind), _layer_state)

    def set_layer_set(self, kind: str, value: LayerState) -> None:
        self.q.setValue(f"layers_{kind}", json.dumps(asdict(value)))

    @property
    def geometry(self) -> QByteArray | None:
        """The window's last geometry and dock layout (Qt's own format; Qt refuses a damaged one)."""
        return self._get("geometry", None, _bytes)

    @geometry.setter
    def geometry(self, value: QByteArray) -> None:
        self.q.setValue("geometry", value)

    @property
    def window_state(self) -> QByteArray | None:
        return self._get("window_state", None, _bytes)

    @window_state.setter
    def window_state(self, value: QByteArray) -> None:
        self.q.setValue("window_state", value)

    def sync(self) -> None:
        self.q.sync()


def _string_list(value) -> list[str]:
    items = json.loads(value)
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise ValueError("not a list of file names")
    return items


def _pixel_sizes(value) -> dict[str, float]:
    from paipviewer.core.magnification import plausible

    items = json.loads(value)
    if not isinstance(items, dict) or not all(isinstance(k, str) and plausible(v) for k, v in items.items()):
        raise ValueError("not a table of microns per pixel")
    return {k: float(v) for k, v in items.items()}


def _views(value) -> int:
    from paipviewer.core.inference import check_views

    return check_views(int(value))


def _fraction(value) -> float:
    number = float(value)
    if number != number:  # NaN compares unequal to itself and would survive min/max
        raise ValueError("not a number")
    return min(1.0, max(0.0, number))


def _layer_state(value) -> LayerState:
    fields = json.loads(value)
    if not isinstance(fields, dict) or not all(isinstance(v, bool) for v in fields.values()):
        raise ValueError("not a JSON object of true/false switches")
    return LayerState(**fields)


def _bytes(value) -> QByteArray:
    if not isinstance(value, QByteArray):
        raise ValueError("not saved window geometry")
    return value
