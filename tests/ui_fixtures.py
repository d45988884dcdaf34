"""Shared helpers for the UI tests: real sample tiles and a real (untrained) model file."""
from __future__ import annotations

import shutil
from pathlib import Path

from paipviewer.ui.paths import sample_dir

SAMPLES = sample_dir()


def make_model_file(folder: Path, architecture: str = "elunet", filters: int = 4, depth: int = 3) -> Path:
    """Build and save a small real model with its card (untrained: weights are Keras' init)."""
    from paipviewer.core.modelfile import ModelCard, save_model
    from trainer.models import build_model

    path = Path(folder) / f"{architecture}_{filters}_{depth}.keras"
    model = build_model(architecture, filters, depth, input_size=None)
    card = ModelCard(architecture=architecture, filters=filters, depth=depth, params=int(model.count_params()),
                     equalize="rgb", training={"data": "untrained (UI tests)"})
    return save_model(model, card, path)


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


def huge_png(path: Path, width: int = 40000, height: int = 40000) -> Path:
    """A PNG whose header claims more pixels than the reader allows (a decompression bomb)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))
    return path
