"""Starting the viewer: the window first, models and images right after, TensorFlow in the worker."""
from __future__ import annotations

import faulthandler
import os
import sys
import tempfile
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication

from paipviewer import __version__
from paipviewer.core.atomic import atomic_path
from paipviewer.core.slides import is_slide
from paipviewer.viewer.layers import LAYERS
from paipviewer.viewer.paths import sample_dir, shipped_models_dir, user_models_dir

from .desktop import install_excepthook, start_logging
from .main_window import MainWindow
from .settings import Settings

# After --snapshot-timeout the figure is written with what there is; if even that cannot happen (a
# native call that never returns), the watchdog prints every thread's stack and ends the process.
SNAPSHOT_WATCHDOG_S = 60


def resolve_model(window: MainWindow, name: str | None) -> str:
    """A model given on the command line, as a file path or a known model's file stem."""
    if not name:
        return ""
    path = Path(name)
    if path.suffix in (".keras", ".onnx") and path.is_file():
        return window.session.catalog.add(path).key
    match = [m for m in window.session.catalog.models if m.path.stem == name or m.path.name == name]
    if not match:
        raise SystemExit(f"paipviewer: no model {name!r} (give a .keras or .onnx file or one of: "
                         f"{', '.join(m.path.stem for m in window.session.catalog.models) or 'none found'})")
    return match[0].key


def build_window(paths, model: str | None = None, compare: str | None = None, models_dir: str | None = None,
                 settings: Settings | None = None, background_scoring: bool = True,
                 cache=None) -> MainWindow:
    # The workers hold the GIL between NumPy calls and Python hands it over every 5 ms by default:
    # long enough to make a slider tick late (measured: tick max 22 ms at 5 ms, 16 ms at 1 ms).
    sys.setswitchinterval(0.001)
    dirs = [shipped_models_dir(), Path(models_dir) if models_dir else user_models_dir()]
    window = MainWindow(settings=settings, models_dirs=dirs, background_scoring=background_scoring, cache=cache)
    catalog = window.session.catalog
    chosen = resolve_model(window, model)
    if not chosen:
        saved = catalog.find(window.settings.model)
        default = saved if saved and saved.card else catalog.default()
        chosen = default.key if default else ""
    window.requested_model = chosen if model else ""
    window.session.set_model(chosen)
    if compare:
        window.session.set_compare(resolve_model(window, compare))
    return window


def apply_view_options(window: MainWindow, args) -> None:
    """Command-line layer choices, for both kinds of image, and the threshold of the first model."""
    session = window.session
    for kind in session.layer_sets:
        if args.layers is not None:
            shown = set(args.layers.split(","))
            for name in LAYERS:
                session.set_layer(name, name in shown, kind)
        if args.outline:
            session.set_layer("outline", True, kind)
    if args.threshold is not None:
        session.set_threshold(session.model_key, args.threshold)


DESKTOP_ID = "org.paipviewer.paipviewer"  # the .desktop file's name: Wayland's app id, the taskbar's icon


def run(args) -> int:
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("PAIP Viewer")
    app.setApplicationVersion(__version__)
    QGuiApplication.setDesktopFileName(DESKTOP_ID)
    start_logging()
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
    install_excepthook(window.show_error_dialog)
    if os.environ.get("PAIPVIEWER_CRASH_TEST"):  # a crash on purpose, to check the handler end to end
        QTimer.singleShot(0, _crash_on_purpose)
    apply_view_options(window, args)
    paths = args.paths or [str(sample_dir())]
    slides = [p for p in paths if is_slide(p)]
    paths = [p for p in paths if p not in slides]
    if snapshot is not None:
        if not paths and slides:
            print("paipviewer: --snapshot takes images; score slides with `paipviewer score`", file=sys.stderr)
            return 2
        return _snapshot(app, window, paths, snapshot, args.snapshot_scale, args.snapshot_timeout)
    slide_windows = [open_slide_window(path, args.model, args.models_dir, window.scheduler.cache, args.compare)
                     for path in slides]  # each slide in its own window, as QuPath opens one image at a time
    if slides and not paths:
        return app.exec() if any(slide_windows) else 2
    window.show()
    # Open after the first paint, so the window shows before any file is read.
    QTimer.singleShot(0, lambda: window.open_paths(paths))
    return app.exec()


def open_slide_window(path, model=None, models_dir=None, cache=None, compare=None):
    """A slide in its own window, shown; None (and the reason on stderr) if it cannot be opened."""
    from paipviewer.core.slides import SlideError

    from .slide_window import SlideWindow

    try:
        w = SlideWindow(Path(path), model=model, models_dirs=[models_dir] if models_dir else (), cache=cache,
                        compare=compare)
    except SlideError as exc:
        print(f"paipviewer: {exc}", file=sys.stderr)
        return None
    # Owned here (a window without a parent is collected when unreferenced); closed ones are let go.
    _SLIDE_WINDOWS[:] = [x for x in _SLIDE_WINDOWS if x.isVisible()] + [w]
    w.show()
    return w


_SLIDE_WINDOWS: list = []


def _crash_on_purpose() -> None:
    raise RuntimeError("crash on purpose (PAIPVIEWER_CRASH_TEST is set)")


def _snapshot(app, window: MainWindow, paths, out: Path, scale: float, timeout: float) -> int:
    """Open, wait for the first image's results, write the figure, exit; at once if nothing opens.
    A script waits on this, so it never hangs: see SNAPSHOT_WATCHDOG_S."""
    from .snapshot import render_figure

    faulthandler.dump_traceback_later(timeout + SNAPSHOT_WATCHDOG_S, exit=True, file=sys.stderr)
    window.open_paths(paths)
    session = window.session
    if not session.entries:
        reasons = "; ".join(f"{f.path.name}: {f.reason.removeprefix(f.path.name + ': ')}"
                            for f in session.open_failures) or "no image given"
        print(f"paipviewer: nothing to snapshot: {reasons}", file=sys.stderr)
        return 2
    if not session.model_key:
        print("paipviewer: no usable model to run", file=sys.stderr)
        return 2
    status = {"code": 1}

    def model_replaced() -> str | None:
        """Why the model asked for on the command line is not the one that ran, if it is not."""
        requested = getattr(window, "requested_model", "")
        if not requested or session.model_key == requested:
            return None
        name = Path(requested).name
        said = [n.message for n in session.notices if n.source in (name, Path(requested).stem)]
        info = session.catalog.find(requested)
        return said[-1] if said else (info.error if info and info.error else "it could not be loaded")

    def save() -> None:
        replaced = model_replaced()
        if replaced is not None:
            print(f"paipviewer: model {Path(window.requested_model).name} cannot be used: "
                  f"{replaced.removeprefix(Path(window.requested_model).name + ': ')}", file=sys.stderr)
            status["code"] = 2
            window.close()
            app.quit()
            return
        entry = session.current()
        if entry is None or entry.error or not entry.loaded:
            reason = entry.error if entry is not None else "no image"
            print(f"paipviewer: cannot snapshot {entry.name if entry else ''}: {reason}", file=sys.stderr)
        else:
            for model, message in entry.failures.items():
                print(f"paipviewer: {message}", file=sys.stderr)
            figure = render_figure(session, window.opacity, scale)
            with atomic_path(out) as tmp:
                if not figure.save(str(tmp), out.suffix.lstrip(".").upper() or "PNG"):
                    raise OSError(f"cannot write {out}")
            status["code"] = 0
            print(f"paipviewer: wrote {out}")
        window.close()
        app.quit()

    def give_up() -> None:
        print("paipviewer: timed out waiting for inference; writing what there is", file=sys.stderr)
        save()

    window.current_ready.connect(save)
    QTimer.singleShot(round(timeout * 1000), give_up)
    app.exec()
    return status["code"]
