"""Regenerate the README's screenshots from the shipped models and sample tiles.

Usage (from the repository root): .venv/bin/python docs/screenshots/make_screenshots.py [MODEL_A MODEL_B]
Model names are file stems in resources/models (default unet_32_5 and elunet_8_5). Runs offscreen,
scores every sample tile with both models, and writes the PNGs beside this script.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "tests"))

from PySide6.QtCore import QEventLoop  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402


def main() -> None:
    a, b = sys.argv[1:3] if len(sys.argv) == 3 else ("unet_32_5", "elunet_8_5")
    app = QApplication([])
    from helpers import huge_png
    from paipviewer.ui.app import build_window
    from paipviewer.ui.paths import sample_dir
    from paipviewer.ui.settings import Settings

    def pump(cond, timeout=600):
        start = time.time()
        while not cond() and time.time() - start < timeout:
            app.processEvents(QEventLoop.AllEvents, 50)
            time.sleep(0.02)
        for _ in range(20):
            app.processEvents()

    def shot(widget, name):
        pump(lambda: True)
        widget.grab().save(str(HERE / name))
        print("wrote", HERE / name, flush=True)

    tmp = Path(tempfile.mkdtemp())
    w = build_window([], model=b, settings=Settings(str(tmp / "settings.ini")))
    w.resize(1500, 880)
    w.show()
    w.open_paths([sample_dir()])
    pump(lambda: all(w.model_key in e.results for e in w.session.entries))
    w.select(w.session.entries[3].key)
    pump(w.is_idle)
    shot(w, "viewer_tp_fp_fn.png")

    panel = w.layers_panel
    panel.boxes["errors"].setChecked(False)
    panel.boxes["probability"].setChecked(True)
    shot(w, "probability.png")
    panel.boxes["probability"].setChecked(False)
    panel.boxes["errors"].setChecked(True)

    compare = w.catalog.find(next(m.key for m in w.catalog.models if Path(m.key).stem == a))
    w.model_panel.select(compare.key, compare=True)
    pump(lambda: w.is_idle() and w.compare_key in w.current_entry().results)
    shot(w, "side_by_side.png")
    panel.boxes["errors"].setChecked(False)
    panel.boxes["disagree"].setChecked(True)
    shot(w, "disagreement.png")
    w.model_panel.select("", compare=True)
    panel.boxes["disagree"].setChecked(False)
    panel.boxes["errors"].setChecked(True)

    bad = tmp / "bad"
    bad.mkdir()
    (bad / "corrupt.png").write_bytes(b"GIF89a truncated" * 10)
    (bad / "notes.txt").write_text("not an image")
    huge_png(bad / "huge_slide.png")
    w.open_paths([bad / "corrupt.png", bad / "notes.txt", bad / "huge_slide.png", bad / "missing.tif"])
    pump(lambda: w.current_entry() is not None and w.current_entry().error is not None, 60)
    shot(w, "bad_input.png")
    w.close()


if __name__ == "__main__":
    main()
