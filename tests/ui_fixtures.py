"""Shared helpers for the UI tests: real sample tiles and synthetic drops."""
from __future__ import annotations

import shutil
from pathlib import Path

from paipviewer.viewer.paths import sample_dir


SAMPLES = sample_dir()


def copy_samples(dest: Path, count: int = 3) -> Path:
    """An images/ + masks/ folder with the first ``count`` sample tiles."""
    for sub in ("images", "masks"):
        (dest / sub).mkdir(parents=True, exist_ok=True)
        for p in sorted((SAMPLES / sub).glob("*.png"))[:count]:
            shutil.copy(p, dest / sub / p.name)
    return dest


def drop_event(paths=(), text: str | None = None):
    """A synthetic drop of local files (or of plain text) at the window's centre."""
    from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
    from PySide6.QtGui import QDropEvent

    mime = QMimeData()
    if paths:
        mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    if text is not None:
        mime.setText(text)
    event = QDropEvent(QPointF(100, 100), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    event._mime = mime  # keep the mime data alive as long as the event
    return event

