"""The slide window's README screenshot: the 20x slide, ELU-Net 8/5 beside U-Net 32/5, run on a region.

Usage (from the repository root; the screen size is the one judged):

    xvfb-run -a -s "-screen 0 1366x768x24" env QT_QPA_PLATFORM=xcb \
        .venv/bin/python docs/screenshots/make_slide_screenshots.py [OUT_DIR]

writes OUT_DIR/slide_compare_<width>.png (the README shows the 1366 one as slide_compare.png) (default: beside this script). Runs go to a fresh cache.
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "tests"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="paipviewer-shots-")

from PySide6.QtCore import QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE
    app = QApplication([])
    from conftest import _data

    from paipviewer.ui.slide_window import SlideWindow

    screen = app.primaryScreen().size()
    w = SlideWindow(_data("slides") / "mosaic_20x.svs", model="elunet_8_5")
    w.resize(screen.width(), screen.height())
    w.show()

    def run() -> None:
        box = w.compare_box
        box.setCurrentIndex(next(i for i in range(1, box.count()) if Path(box.itemData(i)).stem == "unet_32_5"))
        w.region_box.setChecked(True)
        w.view.viewbox.setRange(xRange=(300, 1100), yRange=(300, 800), padding=0)
        w.roi.setPos((450, 400))
        w.roi.setSize((500, 300))
        w.run_view.click()

    def save(result) -> None:
        if isinstance(result, Exception):
            raise SystemExit(f"the run failed: {result}")
        w.grab().save(str(out / f"slide_compare_{screen.width()}.png"))
        app.quit()

    w.finished.connect(lambda result: QTimer.singleShot(2500, lambda: save(result)))  # tiles settle
    QTimer.singleShot(2000, run)
    app.exec()


if __name__ == "__main__":
    main()
