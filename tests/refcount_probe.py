"""Render Python paint overrides from C++ many times and print how refcount(None/True/False) moved.

Run in its own process by test_qt_binding.py: on a leaking binding (PySide6 6.12.0 on Python 3.11)
the interpreter aborts once None's count reaches zero, which must fail one test, not end the run.
"""
from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import PySide6  # noqa: E402
import qtawesome as qta  # noqa: E402
from PySide6.QtCore import QRectF, QSize  # noqa: E402
from PySide6.QtGui import QImage, QPainter  # noqa: E402
from PySide6.QtWidgets import QApplication, QGraphicsItem, QGraphicsScene  # noqa: E402


class Box(QGraphicsItem):
    def boundingRect(self) -> QRectF:
        return QRectF(0, 0, 10, 10)

    def paint(self, painter, option, widget=None) -> None:
        painter.drawRect(0, 0, 5, 5)


def counts() -> dict[str, int]:
    return {"None": sys.getrefcount(None), "True": sys.getrefcount(True), "False": sys.getrefcount(False)}


def drift(step, calls: int) -> dict[str, int]:
    """How each singleton's refcount moved over ``calls`` calls of ``step``."""
    before = counts()
    for i in range(calls):
        step(i)
    after = counts()
    return {name: after[name] - before[name] for name in before}


def main(calls: int) -> None:
    app = QApplication.instance() or QApplication(sys.argv[:1])
    scene = QGraphicsScene()
    scene.addItem(Box())
    icon = qta.icon("mdi6.microscope")  # a Python QIconEngine, as every toolbar icon is
    target = QImage(20, 20, QImage.Format_ARGB32)

    def paint_scene(_):
        painter = QPainter(target)
        scene.render(painter)
        painter.end()

    def paint_icon(i):
        icon.pixmap(QSize(16 + i % 7, 16))  # sizes Qt has not cached yet, so the engine paints

    # Measured apart: a binding may leak references one way in one path and the other in another.
    result = {"pyside": PySide6.__version__, "python": sys.version.split()[0], "calls": calls,
              "paint": drift(paint_scene, calls), "icon": drift(paint_icon, calls // 4)}
    print(json.dumps(result))
    del app


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 300)
