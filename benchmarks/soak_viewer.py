"""Soak the viewer: many zoom steps and a folder of thousands of images, as a user's long session;
or, with ``--switches N``, N rapid image and model switches while inference runs.

Prints the Qt binding, the platform, refcount(None/True/False) and resident memory before and after,
and how long each phase took. A binding that leaks references (PySide6 6.12.0 on Python 3.11)
aborts here with "none_dealloc" long before the end.

``--switches N`` opens ``--switch-images`` distinct tiles (the sample tiles turned and flipped, so no
two images have the same pixels) with the shipped ELU-Net 8/5 and U-Net 32/5, background scoring on,
and makes N switches a few milliseconds apart (one in ten followed by up to half a second, so that
results land in between): a random image, the other model, or both, while the models run. After every switch, and again after the pause that follows it, it checks that nothing
stale is drawn: the view shows the selected image's own pixels, its overlay is exactly the one the
state gives for the selected image and model (none of another image's or model's results), and its
title names that model. Then it waits for the current image, checks a sample of the kept results
against a fresh prediction of their own image (a result filed under the wrong image would differ),
and reports resident memory before and after each pass beside the bytes the open images and their
results hold, so growth that the kept results do not explain shows as a leak.

    xvfb-run -s "-screen 0 1920x1080x24" .venv/bin/python benchmarks/soak_viewer.py   # real xcb
    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/soak_viewer.py --zoom-steps 2000 --images 200
    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/soak_viewer.py --switches 200 [--passes 2]
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


def distinct_folder(dest: Path, count: int) -> Path:
    """``count`` images whose pixels all differ: the sample tiles turned by quarter turns and flipped,
    each with its mask turned alike."""
    import cv2
    import numpy as np

    from paipviewer.viewer.paths import sample_dir

    tiles = sorted((sample_dir() / "images").glob("*.png"))
    (dest / "images").mkdir(parents=True)
    (dest / "masks").mkdir()
    for i in range(count):
        src, variant = tiles[i % len(tiles)], i // len(tiles)
        for sub, folder in (("images", dest / "images"), ("masks", dest / "masks")):
            array = cv2.imread(str(src.parent.parent / sub / src.name), cv2.IMREAD_UNCHANGED)
            array = np.rot90(array, variant % 4)
            if variant // 4 % 2:
                array = array[:, ::-1]
            cv2.imwrite(str(folder / f"{i:04d}_{src.stem}.png"), np.ascontiguousarray(array))
    return dest


def held_mb(session) -> float:
    """Megabytes of arrays the open images hold: pixels, ground truth, each model's results and the
    figures derived from them (each array counted once)."""
    import dataclasses

    import numpy as np

    seen, total, stack = set(), 0, [e.__dict__ for e in session.entries]
    while stack:
        value = stack.pop()
        if id(value) in seen:
            continue
        seen.add(id(value))
        if isinstance(value, np.ndarray):
            total += value.nbytes if value.base is None else 0
        elif isinstance(value, dict):
            stack += list(value.values())
        elif isinstance(value, (list, tuple)):
            stack += list(value)
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            stack += [getattr(value, f.name) for f in dataclasses.fields(value)]
    return total / 2**20


def stale_drawing(window) -> str | None:
    """What, if anything, the main view draws that is not the selected image's and model's own."""
    import numpy as np

    from paipviewer.viewer import describe
    from paipviewer.viewer.layers import compose

    s, view = window.session, window.view
    entry = s.current()
    if entry is None:
        return None
    shown = view.image_item.image
    if not entry.loaded:
        return None if shown is None else f"{entry.name} is not read yet, but the view shows pixels"
    if shown is not entry.image and not (shown is not None and np.array_equal(shown, entry.image)):
        return f"the view shows other pixels than {entry.name}'s"
    layers = s.layers(entry)
    objects = s.object_codes(entry, s.model_key) if layers.objects else None
    other = s.mask(entry, s.compare_key) if s.compare_key else None
    expected = compose(entry.image.shape[:2], layers, s.mask(entry, s.model_key), entry.truth, other, objects)
    drawn = view.overlay_array()
    if drawn is None or not np.array_equal(drawn, expected):
        return f"the overlay on {entry.name} is not {s.label(s.model_key)}'s at {s.threshold(s.model_key):.2f}"
    title = describe.view_title(s, entry, s.model_key, bool(s.compare_key))
    if view.title.text != title:
        return f"the title says {view.title.text!r}, not {title!r}"
    return None


def pump(app, seconds: float) -> None:
    end = time.perf_counter() + seconds
    while True:
        app.processEvents()
        if time.perf_counter() >= end:
            return
        time.sleep(0.002)


def switch_soak(app, args, scratch: Path) -> int:
    """``--switches``: rapid image and model switches during inference; see the module's docstring."""
    import gc
    import random

    import numpy as np

    from paipviewer.core.inference import predict_image
    from paipviewer.core.modelfile import load_model
    from paipviewer.ui.app import build_window
    from paipviewer.ui.settings import Settings

    folder = distinct_folder(scratch / "switch", args.switch_images)
    window = build_window([], model="elunet_8_5", settings=Settings(scratch / "settings.ini"))
    window.resize(1366, 768)
    window.show()
    models = [m.key for stem in ("elunet_8_5", "unet_32_5") for m in window.session.catalog.models
              if m.path.stem == stem]
    window.open_paths([folder])
    entries = list(window.session.entries)
    t0 = time.perf_counter()
    for model in (*models[::-1], models[0]):  # each model loaded and run once: no pass pays for a first load
        window.set_model(model)
        while not (model in window.current_entry().results and window.is_idle()) and time.perf_counter() - t0 < 120:
            pump(app, 0.05)
    gc.collect()
    print(f"{len(entries)} distinct images, models {', '.join(Path(m).stem for m in models)}, each loaded and "
          f"run once in {time.perf_counter() - t0:.1f} s; RSS {rss_mb():.0f} MB, the images and results hold "
          f"{held_mb(window.session):.0f} MB")
    rng = random.Random(args.seed)
    problems = []
    for p in range(args.passes):
        gc.collect()
        rss0, held0 = rss_mb(), held_mb(window.session)
        busy = drawn = 0
        t0 = time.perf_counter()
        for i in range(args.switches):
            what = rng.choice(("image", "model", "both"))
            if what in ("image", "both"):
                window.select(rng.choice(entries).key)
            if what in ("model", "both"):
                window.set_model(models[1 - models.index(window.model_key)])
            app.processEvents()
            busy += bool(window.scheduler.running)
            for when in ("at once", "after a pause"):
                found = stale_drawing(window)
                if found:
                    problems.append(f"pass {p + 1}, switch {i + 1} ({what}), {when}: {found}")
                entry = window.current_entry()
                drawn += entry is not None and window.model_key in entry.results
                if when == "at once":  # mostly a few milliseconds; one switch in ten lets results land
                    pump(app, rng.uniform(0, args.pause) if rng.random() > 0.1 else rng.uniform(0, 0.5))
        seconds = time.perf_counter() - t0
        t1 = time.perf_counter()
        while not window.is_idle() and time.perf_counter() - t1 < 120:
            pump(app, 0.05)
        found = stale_drawing(window)
        if found:
            problems.append(f"pass {p + 1}, once idle: {found}")
        gc.collect()
        app.processEvents()
        rss1, held1 = rss_mb(), held_mb(window.session)
        print(f"pass {p + 1}: {args.switches} switches in {seconds:.1f} s, inference running at {busy} of them; "
              f"{2 * args.switches} checks, {drawn} of them with a result on screen; "
              f"RSS {rss0:.0f} -> {rss1:.0f} MB ({rss1 - rss0:+.0f}), the images and results hold "
              f"{held0:.0f} -> {held1:.0f} MB ({held1 - held0:+.0f}), "
              f"unexplained {rss1 - rss0 - (held1 - held0):+.0f} MB; "
              f"{sum(len(e.results) for e in entries)} results kept for {len(entries)} images x {len(models)} models")
    window.session.stop()
    done = [(e, m) for e in entries for m in models if m in e.results]
    checked = rng.sample(done, min(args.check, len(done)))
    loaded = {m: load_model(m) for m in {m for _, m in checked}}
    worst = 0.0
    for entry, model in checked:
        fresh = predict_image(loaded[model].model, entry.image, loaded[model].card.equalize).probability
        kept = entry.results[model].prediction.probability
        diff = float(np.abs(fresh - kept).max()) if fresh.shape == kept.shape else float("inf")
        worst = max(worst, diff)
        if diff > 1e-3:
            problems.append(f"{entry.name}, {Path(model).stem}: the kept result differs from a fresh run by {diff:.3g}")
    print(f"{len(checked)} kept results checked against a fresh prediction of their own image: "
          f"largest difference {worst:.2g}")
    window.close()
    print(f"stale drawings or misfiled results: {len(problems)}")
    for problem in problems[:20]:
        print(f"  {problem}")
    return 1 if problems else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zoom-steps", type=int, default=20000)
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--switches", type=int, default=0, help="instead: this many image and model switches "
                        "during inference, checking that nothing stale is drawn")
    parser.add_argument("--switch-images", type=int, default=40, help="distinct images to switch between (40)")
    parser.add_argument("--passes", type=int, default=1, help="rounds of --switches, memory reported after each")
    parser.add_argument("--pause", type=float, default=0.03, help="longest pause after nine switches in ten, "
                        "seconds (0.03); after the tenth up to 0.5 s, so that results land in between")
    parser.add_argument("--check", type=int, default=20, help="kept results checked against a fresh run (20)")
    parser.add_argument("--seed", type=int, default=15)
    args = parser.parse_args()

    import PySide6
    from PySide6.QtCore import QPoint, QPointF, Qt
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QApplication

    from paipviewer.ui.app import build_window
    from paipviewer.ui.settings import Settings

    app = QApplication.instance() or QApplication(sys.argv[:1])
    scratch = Path(tempfile.mkdtemp(prefix="paipviewer-soak-"))
    if args.switches:
        try:
            print(f"PySide6 {PySide6.__version__}, Python {sys.version.split()[0]}, platform {app.platformName()}")
            return switch_soak(app, args, scratch)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
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
