"""Soak the viewer: many zoom steps and a folder of thousands of images, as a user's long session.

Prints the Qt binding, the platform, refcount(None/True/False) and resident memory before and after,
and how long each phase took. A binding that leaks references (PySide6 6.12.0 on Python 3.11)
aborts here with "none_dealloc" long before the end.

    xvfb-run -s "-screen 0 1920x1080x24" .venv/bin/python benchmarks/soak_viewer.py   # real xcb
    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/soak_viewer.py --zoom-steps 2000 --images 200
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def refcounts() -> str:
    return ", ".join(f"{name} {sys.getrefcount(v)}" for name, v in (("None", None), ("True", True), ("False", False)))


def make_folder(dest: Path, count: int) -> Path:
    """``count`` distinct image files (copies, not links: the viewer lists a linked file once)."""
    from paipviewer.viewer.paths import sample_dir

    tiles = sorted((sample_dir() / "images").glob("*.png"))
    (dest / "images").mkdir(parents=True)
    (dest / "masks").mkdir()
    for i in range(count):
        src = tiles[i % len(tiles)]
        shutil.copyfile(src, dest / "images" / f"{i:05d}_{src.name}")
        shutil.copyfile(src.parent.parent / "masks" / src.name, dest / "masks" / f"{i:05d}_{src.name}")
    return dest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zoom-steps", type=int, default=20000)
    parser.add_argument("--images", type=int, default=2000)
    args = parser.parse_args()

    import PySide6
    from PySide6.QtCore import QPoint, QPointF, Qt
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QApplication

    from paipviewer.ui.app import build_window
    from paipviewer.ui.settings import Settings

    app = QApplication.instance() or QApplication(sys.argv[:1])
    scratch = Path(tempfile.mkdtemp(prefix="paipviewer-soak-"))
    try:
        folder = make_folder(scratch / "folder", args.images)
        window = build_window([], settings=Settings(scratch / "settings.ini"))
        window.resize(1366, 768)
        window.show()
        print(f"PySide6 {PySide6.__version__}, Python {sys.version.split()[0]}, platform {app.platformName()}")
        print(f"start: {refcounts()}; RSS {rss_mb():.0f} MB")

        t0 = time.perf_counter()
        window.open_paths([folder])
        for _ in range(len(window.session.entries)):
            window.step(1)
            app.processEvents()
            window.view.viewport().repaint()
        print(f"{len(window.session.entries)} images opened and stepped through in {time.perf_counter() - t0:.1f} s: "
              f"{refcounts()}; RSS {rss_mb():.0f} MB")

        viewport = window.view.viewport()
        centre = QPointF(viewport.width() / 2, viewport.height() / 2)
        t0 = time.perf_counter()
        for i in range(args.zoom_steps):
            delta = 120 if (i // 20) % 2 == 0 else -120  # in and out, so the view stays in range
            event = QWheelEvent(centre, viewport.mapToGlobal(centre), QPoint(), QPoint(0, delta), Qt.NoButton,
                                Qt.NoModifier, Qt.NoScrollPhase, False)
            app.sendEvent(viewport, event)
            viewport.repaint()
            if i % 100 == 0:
                app.processEvents()
        print(f"{args.zoom_steps} zoom steps in {time.perf_counter() - t0:.1f} s: {refcounts()}; RSS {rss_mb():.0f} MB")
        window.close()
        print("survived")
        return 0
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
