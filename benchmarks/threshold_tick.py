"""What one threshold-slider tick costs the UI thread, with 20 images of 1000 x 1000 open side by side
while a model runs in the background.

A heartbeat timer fires every 5 ms on the UI thread; a tick moves the slider one step (as dragging
does) every 60 ms. Printed: the time spent inside each tick (slider handler: masks, overlays, titles,
metrics, summary) and the heartbeat's stall (how late it fired beyond 5 ms, which includes painting),
p50 / p95 / max. Beside it, in the same run, the previous version's per-tick work measured directly:
every open image re-thresholded and re-scored for both models, and both overlays painted layer by
layer.

    xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python benchmarks/threshold_tick.py   # real xcb
    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/threshold_tick.py
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("PAIP_SHARED_DATA", REPO.parent / "shared" / "data")) / "monuseg"


def images_1000(dest: Path, count: int) -> Path:
    """``count`` MoNuSeg images of 1000 x 1000 with their masks (test first, then train)."""
    (dest / "images").mkdir(parents=True)
    (dest / "masks").mkdir()
    found = [(p, split) for split in ("test", "train") for p in sorted((DATA / split / "images").glob("*"))][:count]
    for path, split in found:
        shutil.copy(path, dest / "images" / path.name)
        mask = next((DATA / split / "masks").glob(path.stem + ".*"))
        shutil.copy(mask, dest / "masks" / (path.stem + mask.suffix))
    return dest


def percentiles(values) -> str:
    v = np.asarray(values) * 1000
    return f"p50 {np.percentile(v, 50):6.1f}  p95 {np.percentile(v, 95):6.1f}  max {v.max():6.1f} ms"


def previous_version_tick(session, threshold: float) -> float:
    """The work one tick did before the state owner: re-threshold and re-score every open image for
    both models, and paint both views' overlays layer by layer (as overlay_colors.compose did)."""
    from paipviewer.core.metrics import confusion, error_map
    from paipviewer.viewer.layers import PALETTE, outline_of  # noqa: F401 (the same palette)

    t0 = time.perf_counter()
    for entry in session.entries:
        for model in (session.model_key, session.compare_key):
            result = entry.results.get(model)
            if result is not None and entry.truth is not None:
                confusion(result.prediction.probability >= threshold, entry.truth)
    entry = session.current()
    for model, other in ((session.model_key, session.compare_key), (session.compare_key, session.model_key)):
        pred = entry.results[model].prediction.probability >= threshold
        rgba = np.zeros(entry.image.shape[:2] + (4,), np.uint8)
        errors = error_map(pred, entry.truth)
        for code, key in ((1, "tp"), (2, "fp"), (3, "fn")):
            where = errors == code
            rgba[where, :3] = PALETTE[key]
            rgba[where, 3] = 255
    return time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--ticks", type=int, default=80)
    args = parser.parse_args()

    from PySide6.QtCore import QElapsedTimer, QTimer
    from PySide6.QtWidgets import QApplication

    from paipviewer.ui.app import build_window
    from paipviewer.ui.settings import Settings

    app = QApplication.instance() or QApplication(sys.argv[:1])
    scratch = Path(tempfile.mkdtemp(prefix="paipviewer-tick-"))
    try:
        folder = images_1000(scratch / "images", args.images)
        window = build_window([], model="elunet_8_5", compare="unet_32_5", settings=Settings(scratch / "s.ini"))
        window.resize(1920, 1080)
        window.show()
        window.open_paths([folder])
        s = window.session
        t0 = time.perf_counter()
        while not all(m in s.current().results for m in (s.model_key, s.compare_key)):
            app.processEvents()
            time.sleep(0.01)
        print(f"{len(s.entries)} images of {s.current().image.shape[1]} x {s.current().image.shape[0]}, "
              f"platform {app.platformName()}; first image scored by both models in {time.perf_counter() - t0:.0f} s")

        beats, ticks = [], []
        clock = QElapsedTimer()
        clock.start()
        heartbeat = QTimer(interval=5)
        heartbeat.timeout.connect(lambda: beats.append(clock.nsecsElapsed() / 1e9))
        values = [int(v) for v in np.round(50 + 30 * np.sin(np.linspace(0, 4 * np.pi, args.ticks)))]

        def tick():
            if not values:
                return
            start = time.perf_counter()
            window.layers_panel.threshold.setValue(values.pop())
            ticks.append(time.perf_counter() - start)

        mover = QTimer(interval=60)
        mover.timeout.connect(tick)
        heartbeat.start()
        mover.start()
        while values:
            app.processEvents()
            time.sleep(0.001)
        for _ in range(20):
            app.processEvents()
            time.sleep(0.005)
        heartbeat.stop()
        mover.stop()
        running = [j.slot for j in window.scheduler.jobs()]
        stalls = np.maximum(np.diff(beats) - 0.005, 0)
        scored = {m: s.scored(m) for m in (s.model_key, s.compare_key)}
        print(f"background work while ticking: {running or 'none'}; scored so far {list(scored.values())}")
        print(f"tick on the UI thread ({len(ticks)} ticks):  {percentiles(ticks)}")
        print(f"heartbeat stall (5 ms timer):        {percentiles(stalls)}")
        previous = [previous_version_tick(s, v / 100) for v in (35, 50, 65, 80, 45)]
        print(f"previous version's per-tick work:   {percentiles(previous)}  "
              f"(x{np.median(previous) / np.median(ticks):.0f} the new tick's median)")
        window.close()
        return 0
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
