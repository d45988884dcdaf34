"""Render the app icon's PNG sizes from its SVG with Qt's own SVG renderer (what the app and the
desktop show). Run from the repository root: .venv/bin/python packaging/render_icons.py"""
from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtGui import QGuiApplication, QImage, QPainter  # noqa: E402
from PySide6.QtSvg import QSvgRenderer  # noqa: E402

ICONS = Path(__file__).resolve().parents[1] / "resources" / "icons"
NAME = "org.paipviewer.paipviewer"
SIZES = (16, 32, 48, 64, 128, 256)


def main() -> int:
    app = QGuiApplication(sys.argv[:1])  # noqa: F841  (QPainter needs one)
    renderer = QSvgRenderer(str(ICONS / f"{NAME}.svg"))
    if not renderer.isValid():
        raise SystemExit(f"cannot read {ICONS / f'{NAME}.svg'}")
    for size in SIZES:
        image = QImage(size, size, QImage.Format_ARGB32)
        image.fill(Qt.transparent)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.Antialiasing)
        renderer.render(painter)
        painter.end()
        out = ICONS / f"{size}x{size}" / f"{NAME}.png"
        out.parent.mkdir(parents=True, exist_ok=True)
        image.save(str(out))
        print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
