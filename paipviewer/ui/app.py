"""Starting the viewer: the window first, models and images right after, TensorFlow in the worker."""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from .main_window import MainWindow
from .overlay_colors import LAYERS
from .paths import sample_dir, shipped_models_dir
from .session import user_models_dir
from .settings import Settings

SNAPSHOT_TIMEOUT_MS = 10 * 60 * 1000


def resolve_model(window: MainWindow, name: str | None) -> str:
    """A model given on the command line, as a file path or a known model's file stem."""
    if not name:
        return ""
    path = Path(name)
    if path.suffix == ".keras" and path.is_file():
        return window.catalog.add(path).key
    match = [m for m in window.catalog.models if m.path.stem == name or m.path.name == name]
    if not match:
        raise SystemExit(f"paipviewer: no model {name!r} (give a .keras file or one of: "
                         f"{', '.join(m.path.stem for m in window.catalog.models) or 'none found'})")
    return match[0].key


def build_window(paths, model: str | None = None, compare: str | None = None, models_dir: str | None = None,
                 settings: Settings | None = None, background_scoring: bool = True,
                 cache=None) -> MainWindow:
    dirs = [shipped_models_dir(), Path(models_dir) if models_dir else user_models_dir()]
    window = MainWindow(settings=settings, models_dirs=dirs, background_scoring=background_scoring, cache=cache)
    chosen = resolve_model(window, model)
    if not chosen:
        saved = window.catalog.find(window.settings.model)
        default = saved if saved and saved.card else window.catalog.default()
        chosen = default.key if default else ""
    window.model_key = chosen
    window.adopt_threshold(chosen)
    window.model_panel.refresh(chosen, "")
    if compare:
        window.set_compare(resolve_model(window, compare))
        window.model_panel.refresh(chosen, window.compare_key)
    return window


def apply_view_options(window: MainWindow, args) -> None:
    """Command-line layer choices, through the same widgets a user would click."""
    panel = window.layers_panel
    if args.layers is not None:
        shown = set(args.layers.split(","))
        for name in LAYERS:
            panel.boxes[name].setChecked(name in shown)
    if args.outline:
        panel.boxes["outline"].setChecked(True)
    if args.threshold is not None:
        panel.set_threshold(args.threshold)


def run(args) -> int:
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("PAIP Viewer")
    snapshot = Path(args.snapshot) if args.snapshot else None
    if snapshot and snapshot.exists() and not args.overwrite:
        print(f"paipviewer: {snapshot} exists; pass --overwrite to replace it", file=sys.stderr)
        return 2
    # A snapshot is a reproducible figure: default layers plus the command line, and it leaves the
    # user's saved settings alone.
    scratch = tempfile.TemporaryDirectory() if snapshot else None
    settings = Settings(Path(scratch.name) / "snapshot.ini") if scratch else None
    window = build_window(args.paths, args.model, args.compare, args.models_dir, settings=settings,
                          background_scoring=snapshot is None)
    apply_view_options(window, args)
    if args.compare:
        window.resize(1800, 900)  # two views side by side need the room
    window.show()
    paths = args.paths or [str(sample_dir())]
    # Open after the first paint, so the window shows before any file is read.
    QTimer.singleShot(0, lambda: window.open_paths(paths))
    if snapshot is None:
        return app.exec()

    status = {"code": 1}

    def grab() -> None:
        if not window.is_idle() or window.current_key is None:
            return
        window.current_ready.disconnect(grab)
        QTimer.singleShot(100, save)  # let the last overlay paint

    def save() -> None:
        tmp = snapshot.with_name(f".{snapshot.stem}.tmp{snapshot.suffix}")
        if window.grab().save(str(tmp)):
            os.replace(tmp, snapshot)
            status["code"] = 0
            print(f"paipviewer: wrote {snapshot}")
        else:
            print(f"paipviewer: could not write {snapshot}", file=sys.stderr)
        window.close()
        app.quit()

    def give_up() -> None:
        print("paipviewer: timed out waiting for inference; writing the window as it is", file=sys.stderr)
        save()

    window.current_ready.connect(grab)
    QTimer.singleShot(SNAPSHOT_TIMEOUT_MS, give_up)
    app.exec()
    return status["code"]
