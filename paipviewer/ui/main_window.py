"""The main window: layout and wiring. The state lives in :class:`Session`, the work in the
:class:`Scheduler`; every view refreshes from the session's announcements."""
from __future__ import annotations

import time
import os
from pathlib import Path

import qtawesome as qta
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QGuiApplication, QIcon
from PySide6.QtWidgets import (QDockWidget, QFileDialog, QLabel, QMainWindow, QMessageBox, QProgressBar, QPushButton,
                               QScrollArea, QSplitter, QToolButton)

from paipviewer.core.imageio import IMAGE_SUFFIXES
from paipviewer.core.slides import SLIDE_SUFFIXES, is_slide
from paipviewer.core.outputs import check_writable_folder
from paipviewer.viewer import describe
from paipviewer.viewer import events as ev
from paipviewer.viewer import export as exporting
from paipviewer.viewer.catalog import ModelCatalog
from paipviewer.viewer.jobs import ModelCache
from paipviewer.viewer.layers import KINDS, compose, legend, probability_rgba
from paipviewer.viewer.paths import resources_dir
from paipviewer.viewer.plan import BACKGROUND_SLOTS
from paipviewer.viewer.session import Session

from .card_dialog import CardDialog
from .image_list import ImageList
from .about import show_about
from .image_view import ImageView
from .layers_panel import LayersPanel
from .menus import build_menus
from .metrics_panel import MetricsPanel
from .model_panel import ModelPanel
from .notifications_panel import NotificationsPanel
from .plots_panel import PlotsPanel
from .results_panel import ResultsPanel
from .settings import Settings
from .shortcuts import ShortcutsDialog
from .tasks import Scheduler, Task, WorkerPool

ROWS_DELAY_MS = 60  # list rows and the summary follow a dragged threshold once it rests
TABLES_DELAY_MS = 250  # the results table and the plots follow the state at most this often


def _scrolled(widget) -> QScrollArea:
    area = QScrollArea()
    area.setWidget(widget)
    area.setWidgetResizable(True)
    area.setFrameShape(QScrollArea.NoFrame)
    return area


class MainWindow(QMainWindow):
    current_ready = Signal()      # the current image shows every result it was waiting for
    opened = Signal(int, int)     # images added, failures
    exported = Signal(object)     # an export finished: paipviewer.viewer.export.Exported, or None if it stopped

    def __init__(self, settings: Settings | None = None, models_dirs=(), background_scoring: bool = True,
                 cache: ModelCache | None = None) -> None:
        super().__init__()
        self.setWindowTitle("PAIP Viewer")
        self.setWindowIcon(QIcon(str(resources_dir() / "icons" / "org.paipviewer.paipviewer.svg")))
        self.setDockOptions(QMainWindow.AnimatedDocks | QMainWindow.AllowTabbedDocks)
        self.settings = settings or Settings()
        catalog = ModelCatalog()
        for folder in models_dirs:
            catalog.scan(Path(folder))
        for f in self.settings.model_files:
            if Path(f).is_file():
                catalog.add(Path(f))
        self.session = Session(catalog, background=background_scoring)
        for kind in KINDS:
            self.session.layer_sets[kind] = self.settings.layer_set(kind)
        self.session.stated_mpp = self.settings.pixel_sizes
        self.session.set_views(self.settings.views)
        self.scheduler = Scheduler(self.session, cache)
        self.opacity = self.settings.opacity
        self._probability_cache: tuple | None = None
        self._rows_timer = QTimer(self, singleShot=True, interval=ROWS_DELAY_MS)
        self._rows_timer.timeout.connect(self._refresh_rows_and_summary)
        self._rows_stale = False  # every row must follow a threshold or model change, not only one image's
        self._failures_listed = 0  # open failures already shown as rows of the image list
        self._tables_timer = QTimer(self, singleShot=True, interval=TABLES_DELAY_MS)
        self._tables_timer.timeout.connect(self.refresh_tables)
        self._dirty_rows: set[str] | None = None  # rows of the results table to redo; None: all of them
        self._export_pool = WorkerPool(1)  # an export never waits behind the viewer's own work
        self._export_task: Task | None = None
        self._export_result = None
        self.restored_layout = False  # the user's own dock layout came back from the settings

        self._build_ui()
        self.actions = build_menus(self)
        self._wire()
        self._on_layers()
        self.setAcceptDrops(True)
        self._restore_geometry()

    # ---------------------------------------------------------------- building
    def _build_ui(self) -> None:
        self.view = ImageView("")
        self.compare_view = ImageView("")
        self.compare_view.hide()
        for v in (self.view, self.compare_view):
            v.set_opacity(self.opacity)
        self.views = QSplitter(Qt.Horizontal)
        self.views.setChildrenCollapsible(False)
        self.views.addWidget(self.view)
        self.views.addWidget(self.compare_view)
        self.views.setStretchFactor(0, 1)
        self.views.setStretchFactor(1, 1)
        self.setCentralWidget(self.views)

        self.image_list = ImageList()
        self.model_panel = ModelPanel(self.session.catalog)
        self.layers_panel = LayersPanel(self.opacity)
        self.metrics_panel = MetricsPanel()
        self.notifications = NotificationsPanel()
        self.results_panel = ResultsPanel()
        self.plots_panel = PlotsPanel()
        self.docks = {}
        # The side docks keep the full height (a laptop's 768 pixels hold layers and metrics whole);
        # the bottom ones share the width under the views.
        self.setCorner(Qt.BottomLeftCorner, Qt.LeftDockWidgetArea)
        self.setCorner(Qt.BottomRightCorner, Qt.RightDockWidgetArea)
        for name, title, widget, area in (
                ("images", "Images", self.image_list, Qt.LeftDockWidgetArea),
                ("results", "Results", self.results_panel, Qt.BottomDockWidgetArea),
                ("problems", "Problems", self.notifications, Qt.BottomDockWidgetArea),
                ("layers", "Layers", _scrolled(self.layers_panel), Qt.RightDockWidgetArea),
                ("metrics", "Metrics", _scrolled(self.metrics_panel), Qt.RightDockWidgetArea),
                ("model", "Models", _scrolled(self.model_panel.details), Qt.RightDockWidgetArea),
                ("plots", "Plots", self.plots_panel, Qt.RightDockWidgetArea)):
            dock = QDockWidget(title, self)
            dock.setObjectName(f"dock_{name}")
            dock.setWidget(widget)
            self.addDockWidget(area, dock)
            self.docks[name] = dock
        # The model details and the plots share the metrics' place: a laptop's 768 pixels hold layers
        # and metrics whole, and a plot there is about as tall as wide. One tab group only while the
        # window is not shown: Qt 6.11 leaves a stray tab bar over the window for a second one.
        self.tabifyDockWidget(self.docks["metrics"], self.docks["model"])
        self.tabifyDockWidget(self.docks["metrics"], self.docks["plots"])
        self.docks["metrics"].raise_()
        self.resizeDocks([self.docks["images"], self.docks["layers"]], [300, 340], Qt.Horizontal)
        self.resizeDocks([self.docks["layers"], self.docks["metrics"]], [235, 445], Qt.Vertical)
        self.resizeDocks([self.docks["results"]], [230], Qt.Vertical)
        self.docks["problems"].hide()  # until there is a problem: then it shows itself (see _on_notice)
        self._problems_shown = False

        bar = self.statusBar()
        self.status = QLabel("Ready")
        self.summary_label = QLabel()
        self.cursor_label = QLabel()
        self.zoom_label = QLabel()
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(160)
        self.progress.hide()
        self.export_progress = QProgressBar()
        self.export_progress.setMaximumWidth(120)
        self.export_progress.setFormat("Export %p%")
        self.export_progress.hide()
        self.export_cancel = QPushButton(qta.icon("mdi6.close-circle-outline"), "Cancel export")
        self.export_cancel.clicked.connect(self.cancel_export)
        self.export_cancel.hide()
        self.stop_button = QPushButton(qta.icon("mdi6.stop-circle-outline"), "Stop")
        self.stop_button.setToolTip("Stop this image and background scoring (Esc)")
        self.stop_button.clicked.connect(self.cancel)
        self.stop_button.hide()
        self.problems_button = QToolButton()
        self.problems_button.setToolButtonStyle(Qt.ToolButtonTextBesideIcon)
        self.problems_button.setText("No problems")
        self.problems_button.clicked.connect(lambda: self.docks["problems"].show())
        bar.addWidget(self.status, 1)
        bar.addWidget(self.summary_label, 2)
        for w in (self.cursor_label, self.zoom_label, self.export_progress, self.export_cancel, self.progress,
                  self.stop_button, self.problems_button):
            bar.addPermanentWidget(w)

    def _wire(self) -> None:
        s = self.session
        s.events.connect(ev.IMAGES, self._on_images)
        s.events.connect(ev.CURRENT, self._on_current)
        s.events.connect(ev.ENTRY, self._on_entry)
        s.events.connect(ev.MODELS, self._on_models)
        s.events.connect(ev.THRESHOLD, self._on_threshold)
        s.events.connect(ev.LAYERS, self._on_layers)
        s.events.connect(ev.RUNNING, lambda: (self.render(), self._show_status()))
        s.events.connect(ev.NOTICE, self._on_notice)
        self.scheduler.busy_changed.connect(self._show_status)
        self.scheduler.progress.connect(self._on_progress)
        self.scheduler.idle.connect(self._check_ready)
        self.image_list.key_selected.connect(self.select)
        self.model_panel.model_changed.connect(self.set_model)
        self.model_panel.compare_changed.connect(self.set_compare)
        self.layers_panel.layer_toggled.connect(lambda name, on: s.set_layer(name, on))
        self.layers_panel.opacity_changed.connect(self.set_opacity)
        self.layers_panel.threshold_changed.connect(lambda value: s.set_threshold(s.model_key, value))
        for view in (self.view, self.compare_view):
            view.hovered.connect(self._show_cursor)
            view.left.connect(lambda: self.cursor_label.setText(""))
        self.view.zoom_changed.connect(lambda z: self.zoom_label.setText(f"{100 * z:.0f}%" if z else ""))
        self.results_panel.image_chosen.connect(self.select)
        self.results_panel.score_all.connect(self.score_all)
        self.results_panel.score_folder.connect(self.score_folder_dialog)
        self.docks["results"].visibilityChanged.connect(lambda shown: shown and self.tables_later())
        self.docks["plots"].visibilityChanged.connect(lambda shown: shown and self.tables_later(rows=False))

    def _restore_geometry(self) -> None:
        """Last session's size and docks; else most of the screen, so any laptop fits the window."""
        geometry, state = self.settings.geometry, self.settings.window_state
        self.restored_layout = False
        if geometry is not None and self.restoreGeometry(geometry):
            if state is not None:
                self.restored_layout = self.restoreState(state)
            return
        screen = QGuiApplication.primaryScreen()
        if screen is not None:
            free = screen.availableGeometry()
            self.resize(int(free.width() * 0.9), int(free.height() * 0.9))

    # ---------------------------------------------------------------- the state's names, for callers
    @property
    def model_key(self) -> str:
        return self.session.model_key

    @property
    def compare_key(self) -> str:
        return self.session.compare_key

    @property
    def current_key(self) -> str | None:
        return self.session.current_key

    def current_entry(self):
        return self.session.current()

    def is_idle(self) -> bool:
        """Nothing runs or waits to run for the current image (its nuclei at the threshold now included)."""
        return not self.scheduler.current_waiting()

    # ---------------------------------------------------------------- actions
    def open_paths(self, paths) -> None:
        slides = [p for p in paths if is_slide(p)]
        for path in slides:  # a whole slide opens in its own window
            self.open_slide(path)
        paths = [p for p in paths if p not in slides]
        if slides and not paths:
            return
        opened = self.session.add([Path(p) for p in paths])
        if opened.images:
            self.settings.last_folder = str(Path(opened.images[0].path).parent)
            # absolute, not resolve(): a symlink loop among the paths must not stop the others opening
            self.settings.recent = [os.path.abspath(p) for p in paths] + self.settings.recent
        for key in opened.needs_card:
            self.ask_for_card(key)
        self.opened.emit(len(opened.images), len(opened.failures))

    def open_slide(self, path) -> None:
        from .app import open_slide_window

        model = Path(self.session.model_key).stem if self.session.model_key else None
        compare = Path(self.session.compare_key).stem if self.session.compare_key else None
        if open_slide_window(path, model, None, self.scheduler.cache, compare) is None:
            self.session.notify(Path(path), "cannot be opened as a slide")

    def state_pixel_size(self) -> None:
        """Image > Pixel size…: the user says how large the current image's pixels are."""
        from PySide6.QtWidgets import QInputDialog

        entry = self.session.current()
        if entry is None:
            return
        if entry.pixel_size.mpp:
            QMessageBox.information(self, "Pixel size", f"{entry.name} says its pixels are "
                                    f"{entry.pixel_size.text().replace('um/px', 'µm/px')}.")
            return
        current = self.session.pixel_size(entry).mpp or 0.25
        mpp, ok = QInputDialog.getDouble(self, "Pixel size", f"Microns per pixel of the images in "
                                         f"{entry.path.parent.name}/ (0.25 at 40x, 0.5 at 20x):",
                                         current, 0.05, 20.0, 4)
        if ok:
            self.session.state_pixel_size(entry, mpp, folder=True)
            self.settings.pixel_sizes = self.session.stated_mpp

    def set_views(self, eight: bool) -> None:
        """Run > Average 8 views: every model runs again with (or without) test-time augmentation."""
        self.session.set_views(8 if eight else 1)
        self.settings.views = self.session.views
        self._show_status()

    def ask_for_card(self, key: str) -> None:
        dialog = CardDialog(Path(key), self)
        if dialog.exec():
            self.session.provide_card(key, dialog.card(), dialog.save.isChecked())

    def select(self, key: str) -> None:
        self.session.select(key)

    def step(self, delta: int) -> None:
        self.session.step(delta)

    def run_again(self) -> None:
        """R: run the current image again after a stop (and background scoring with it)."""
        if self.session.current_key:
            self.session.select(self.session.current_key)
        else:
            self.session.resume()

    def cancel(self) -> None:
        """Esc: stop the current image and background scoring until the user asks again."""
        self.session.stop()

    def score_all(self) -> None:
        """Score every open image with both models in the background (Stop stops it again)."""
        self.session.score_all()
        self._show_status()

    def score_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Score a folder of images", self.settings.last_folder)
        if folder:
            self.open_paths([folder])
            self.score_all()

    def confirm(self, title: str, text: str) -> bool:
        """Ask the user yes or no (tests answer for them)."""
        return QMessageBox.question(self, title, text, QMessageBox.Yes | QMessageBox.No,
                                    QMessageBox.No) == QMessageBox.Yes

    # ---------------------------------------------------------------- export
    def export_results_dialog(self) -> None:
        """File > Export results: choose a folder, then write what `paipviewer score` writes."""
        if self._export_task is not None:
            QMessageBox.information(self, "Export running", "An export is running; cancel it or wait for it.")
            return
        if not exporting.plan(self.session).items:
            QMessageBox.information(self, "Nothing to export", "No open image has been scored yet "
                                    "(Run > Score all scores every open image).")
            return
        folder = QFileDialog.getExistingDirectory(self, "Export results into a folder", self.settings.last_folder)
        if folder:
            self.export_results(Path(folder))

    def export_results(self, folder: Path) -> bool:
        """Export every scored image with both models at their thresholds now into ``folder``, in
        the background; files already there are replaced only if the user says so. Returns whether
        the export started."""
        plan = exporting.plan(self.session)
        if self._export_task is not None or not plan.items:
            return False
        try:
            folder = check_writable_folder(folder, "export folder")
        except OSError as exc:
            QMessageBox.warning(self, "Cannot export there", exc.strerror or str(exc))
            return False
        existing = [p for p in exporting.planned_paths(folder, plan.items) if p.exists()]
        if existing and not self.confirm(
                "Replace earlier results?",
                f"{len(existing)} of the files to write already exist in {folder} (such as "
                f"{existing[0].relative_to(folder)}). Replace them?"):
            self.status.setText(f"Not exported: nothing in {folder} was replaced")
            return False
        task = Task(exporting.export, folder, plan.items, tag=plan)
        task.signals.progress.connect(self._on_export_progress)
        task.signals.result.connect(self._on_exported)
        task.signals.error.connect(lambda exc: self.session.notify(folder, f"export stopped: {exc}"))
        task.signals.cancelled.connect(lambda: self.status.setText(
            f"Export cancelled; what was written stays in {folder} (scores.csv lists it)"))
        task.signals.finished.connect(self._export_finished)
        self._export_task = task
        self.export_progress.setRange(0, len(plan.items))
        self.export_progress.setValue(0)
        self.export_progress.show()
        self.export_cancel.show()
        self.status.setText(f"Exporting {len(plan.items)} results to {folder}…")
        self._export_pool.start(task)
        return True

    def cancel_export(self) -> None:
        if self._export_task is not None:
            self._export_task.cancel()

    def _on_export_progress(self, done: int, total: int) -> None:
        self.export_progress.setRange(0, max(total, 1))
        self.export_progress.setValue(done)

    def _on_exported(self, done) -> None:
        for path, message in done.errors:
            self.session.notify(path, f"not exported: {message}")
        plan = self._export_task.tag if self._export_task is not None else None
        text = f"Exported {len(done.rows)} results ({len(done.files)} files) to {done.folder}"
        if done.errors:
            text += f"; {len(done.errors)} not written (see Problems)"
        if plan is not None and plan.unscored:
            text += f"; {plan.unscored} images not scored yet left out"
        self.status.setText(text)
        self._export_result = done

    def _export_finished(self) -> None:
        done, self._export_result = self._export_result, None
        self._export_task = None
        self.export_progress.hide()
        self.export_cancel.hide()
        self.exported.emit(done)

    def set_model(self, key: str) -> None:
        info = self.session.catalog.find(key)
        if info is not None and info.needs_card:
            self.ask_for_card(key)
            self.model_panel.refresh(self.session.model_key, self.session.compare_key)
            return
        self.session.set_model(key)

    def set_compare(self, key: str) -> None:
        self.session.set_compare(key)

    def set_truth(self, entry, path: Path) -> str | None:
        """Pair the image with a mask; returns why not (also listed as a problem), or None."""
        return self.session.set_truth(entry.key, Path(path))

    def set_opacity(self, value: float) -> None:
        self.opacity = value
        self.settings.opacity = value
        for v in (self.view, self.compare_view):
            v.set_opacity(value)

    def _share_views(self) -> None:
        """Side by side, each view gets half: linked views of one size show the same pixels."""
        if self.compare_view.isVisible():
            total = sum(self.views.sizes())
            self.views.setSizes([total // 2, total - total // 2])
        self.fit()

    def fit(self) -> None:
        self.view.fit()
        if self.session.compare_key:
            self.compare_view.fit()

    def zoom_100(self) -> None:
        self.view.zoom_to(1.0)

    def show_shortcuts(self) -> None:
        ShortcutsDialog(self).exec()

    def show_about(self) -> None:
        show_about(self)

    def show_error_dialog(self, text: str) -> None:
        """An unexpected error: say what and where the log is, without stopping the app (not modal)."""
        from .desktop import log_path

        box = QMessageBox(QMessageBox.Critical, "PAIP Viewer: unexpected error",
                          f"{text}\n\nThe app goes on; the details are in the log:\n{log_path()}", parent=self)
        box.setModal(False)
        box.show()
        self.error_dialog = box
        self.session.notify("", f"unexpected error: {text} (details in {log_path()})")

    def close_all(self) -> None:
        """File > Close all: every image goes; models, thresholds and layers stay."""
        self.session.close_all()
        self.image_list.clear_all()
        self._failures_listed = 0
        for view in (self.view, self.compare_view):
            view.set_image(None)
            view.show_message("")
        self.setWindowTitle("PAIP Viewer")

    def open_recent(self, path: str) -> None:
        if Path(path).exists():
            self.open_paths([path])
        else:
            self.session.notify(path, "no longer exists")
            self.settings.recent = [p for p in self.settings.recent if p != path]

    def open_files_dialog(self) -> None:
        pattern = " ".join(f"*{s}" for s in dict.fromkeys(IMAGE_SUFFIXES + SLIDE_SUFFIXES))
        files, _ = QFileDialog.getOpenFileNames(self, "Open images, slides or models", self.settings.last_folder,
                                                f"Images, slides and models ({pattern} *.keras *.onnx);;"
                                                "All files (*)")
        if files:
            self.open_paths(files)

    def open_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of images", self.settings.last_folder)
        if folder:
            self.open_paths([folder])

    def add_model_dialog(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Add model files", self.settings.last_folder,
                                                "Models (*.keras *.onnx)")
        if files:
            self.open_paths(files)

    def choose_truth_dialog(self) -> None:
        entry = self.current_entry()
        if entry is None or not entry.loaded:
            return
        masks = " ".join(f"*{s}" for s in IMAGE_SUFFIXES)
        path, _ = QFileDialog.getOpenFileName(self, f"Ground truth of {entry.name}", str(entry.path.parent),
                                              f"Masks and QuPath GeoJSON ({masks} *.geojson *.json);;All files (*)")
        if path:
            reason = self.set_truth(entry, Path(path))
            if reason is not None:
                QMessageBox.warning(self, "Ground truth not used", reason)  # the user's own action: say it now

    # ---------------------------------------------------------------- drag and drop
    def dragEnterEvent(self, event) -> None:
        event.acceptProposedAction()  # refused drops are explained on drop, not silently ignored

    def dragMoveEvent(self, event) -> None:
        event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        urls = event.mimeData().urls() if event.mimeData().hasUrls() else []
        paths = [u.toLocalFile() for u in urls if u.isLocalFile()]
        if not paths:
            self.session.notify("", "Nothing to open: drop image files, folders of images or model files (.keras, .onnx).")
            event.ignore()
            return
        event.acceptProposedAction()
        self.open_paths(paths)

    # ---------------------------------------------------------------- the state's announcements
    def _on_images(self) -> None:
        self.tables_later()
        listed = {self.image_list.item(i).data(Qt.UserRole) for i in range(self.image_list.count())}
        for entry in self.session.entries:
            if entry.key not in listed:
                self.image_list.add_entry(entry)
                self._update_row(entry)
        for failure in self.session.open_failures[self._failures_listed:]:
            self.image_list.add_failure(failure)
        self._failures_listed = len(self.session.open_failures)
        self._refresh_rows_and_summary()

    def _on_current(self) -> None:
        entry = self.session.current()
        if entry is None:
            return
        self.image_list.show_current(entry.key)
        self.setWindowTitle(f"PAIP Viewer — {entry.name}")
        self._show_entry_pixels(entry)
        self._on_layers()
        self.tables_later(rows=False)  # the plots' current image and the selected row

    def _show_entry_pixels(self, entry) -> None:
        for v in (self.view, self.compare_view):
            v.set_image(entry.image)
        self._probability_cache = None

    def _on_entry(self, key: str) -> None:
        entry = self.session.find(key)
        if entry is None:
            return
        self._update_row(entry)
        if key == self.session.current_key:
            if entry.loaded and self.view.image_shape != entry.image.shape[:2]:
                self._show_entry_pixels(entry)
            self._on_layers()
            self._check_ready()
        self._show_summary()
        self.tables_later(key)

    def _on_models(self) -> None:
        s = self.session
        self.settings.model = s.model_key
        self.model_panel.refresh(s.model_key, s.compare_key)
        self.layers_panel.show_threshold(s.threshold(s.model_key))
        comparing = bool(s.compare_key)
        if comparing != self.compare_view.isVisible():
            self.compare_view.setVisible(comparing)
            self.metrics_panel.set_columns(2 if comparing else 1)
            if comparing:
                self.compare_view.link_to(self.view)
                entry = s.current()
                self.compare_view.set_image(entry.image if entry else None)
            else:
                self.compare_view.unlink()
            QTimer.singleShot(0, self._share_views)  # once the splitter has laid the new view out
        self._probability_cache = None
        self.render()
        self._rows_stale = True
        self._refresh_rows_and_summary()
        self._show_status()
        self.tables_later()

    def _on_threshold(self, model: str) -> None:
        # The visible image and the summary at once (both from level counts); every row once the
        # slider rests, since a long list costs more than a tick may.
        if model == self.session.model_key:
            self.layers_panel.show_threshold(self.session.threshold(model))
        self.render()
        self._show_summary()
        self._rows_later()
        self.tables_later()

    def _on_layers(self) -> None:
        entry = self.session.current()
        layers = self.session.layers(entry)
        for kind in KINDS:
            self.settings.set_layer_set(kind, self.session.layer_sets[kind])
        self.layers_panel.show_layers(layers, entry.kind if entry else "plain")
        self.render()

    def _on_notice(self, notice) -> None:
        self.notifications.add(notice)
        if not self._problems_shown:  # once per session: after that the user decides where it lives
            self._problems_shown = True
            problems = self.docks["problems"]
            if self.isVisible() and not self.docks["results"].isHidden() and not self.restored_layout:
                self.tabifyDockWidget(self.docks["results"], problems)  # a tab beside the results
            problems.show()
            problems.raise_()
        count = len(self.session.notices)
        self.problems_button.setText(f"{count} problem{'s' if count != 1 else ''}")
        self.problems_button.setIcon(qta.icon("mdi6.alert-circle", color="#d55e00"))
        self.status.setText(f"{notice.source + ': ' if notice.source else ''}{notice.message}")

    # ---------------------------------------------------------------- drawing
    def render(self) -> None:
        """The current image's overlays, titles, messages, legend and metrics, from the state. The
        nuclei at a new threshold are drawn and counted once their job has found them."""
        s = self.session
        entry = s.current()
        side_by_side = bool(s.compare_key)
        pairs = [(self.view, s.model_key, s.compare_key)]
        if side_by_side:
            pairs.append((self.compare_view, s.compare_key, s.model_key))
        layers = s.layers(entry)
        for view, model, other in pairs:
            view.set_title(describe.view_title(s, entry, model, side_by_side))
            view.set_mpp(s.pixel_size(entry).mpp if entry is not None else None)
            if entry is None or not entry.loaded:
                view.set_overlay(None)
                view.set_probability(None)
                view.show_message(self._message(entry, model))
                continue
            pred = s.mask(entry, model)
            other_mask = s.mask(entry, other) if other else None
            objects = s.object_codes(entry, model) if layers.objects else None
            view.set_overlay(compose(entry.image.shape[:2], layers, pred, entry.truth, other_mask, objects))
            view.set_probability(self._probability(entry, model) if layers.probability else None)
            view.show_message(self._message(entry, model))
        has = {"pred": entry is not None and s.model_key in entry.results,
               "truth": entry is not None and entry.truth is not None, "other": side_by_side,
               "objects": entry is not None and s.object_codes(entry, s.model_key) is not None}
        self.layers_panel.show_legend(legend(layers, has), layers.probability and has["pred"])
        self._show_metrics()

    def _show_metrics(self) -> None:
        s = self.session
        entry = s.current()
        for column, model in enumerate((s.model_key, s.compare_key)):
            self.metrics_panel.show_column(column, s.label(model), describe.metric_column(s, entry, model))

    def _probability(self, entry, model: str):
        result = entry.results.get(model)
        if result is None:
            return None
        key = (entry.key, model, id(result))
        if self._probability_cache is None or self._probability_cache[0] != key:
            self._probability_cache = (key, probability_rgba(result.levels))
        return self._probability_cache[1]

    def _message(self, entry, model: str) -> str:
        s = self.session
        if not model:
            return "No model: add a model file (File > Add model file…)" if entry is not None else ""
        if entry is None:
            return ""
        if entry.error:
            return f"{entry.name}: {entry.error}"
        if model in entry.failures:
            return entry.failures[model]
        if model not in entry.results and s.stopped:
            return "Stopped — select the image or press R to run the model"
        return ""

    def _update_row(self, entry) -> None:
        self.image_list.update_entry(entry.key, describe.row_lines(self.session, entry), describe.row_tooltip(entry),
                                     failed=entry.error is not None)

    def _rows_later(self) -> None:
        self._rows_stale = True
        self._rows_timer.start()

    def _refresh_rows_and_summary(self) -> None:
        if self._rows_stale:
            self._rows_stale = False
            for entry in self.session.entries:
                self._update_row(entry)
        self.render()
        self._show_summary()

    def tables_later(self, key: str | None = None, rows: bool = True) -> None:
        """The results table and the plots follow the state soon: one image's row (``key``), every
        row (no key: thresholds, models, images changed), or none (``rows`` False)."""
        if rows and key is None:
            self._dirty_rows = None
        elif rows and self._dirty_rows is not None:
            self._dirty_rows.add(key)
        if not self._tables_timer.isActive():
            self._tables_timer.start()

    def on_screen(self, dock: str) -> bool:
        """Some of the dock shows: not closed, and not behind another dock's tab."""
        return not self.docks[dock].visibleRegion().isEmpty()

    def refresh_tables(self) -> None:
        """Redo the results table and the plots now. The next refresh waits at least four times as
        long as this one took, so a long list never takes more than a fifth of the UI thread."""
        self._tables_timer.stop()
        t0 = time.perf_counter()
        dirty, self._dirty_rows = self._dirty_rows, set()
        if not self.on_screen("results"):
            self._dirty_rows = None  # all of it when it shows again
        elif dirty is None:
            self.results_panel.refresh(self.session)
        else:
            self.results_panel.refresh_rows(self.session, dirty)
            self.results_panel.show_current(self.session.current_key)
        if self.on_screen("plots"):  # it catches up when it shows again
            self.plots_panel.refresh(self.session)
        self.tables_seconds = time.perf_counter() - t0
        self._tables_timer.setInterval(max(TABLES_DELAY_MS, int(4000 * self.tables_seconds)))

    def _show_summary(self) -> None:
        lines = describe.summary_lines(self.session)
        self.metrics_panel.show_summary(lines)
        self.summary_label.setText(lines[0] if lines else "")
        self.summary_label.setToolTip("\n".join(lines))

    def _show_status(self) -> None:
        running = self.scheduler.jobs()
        busy = self.scheduler.current_busy()
        self.progress.setVisible(busy)
        self.stop_button.setVisible(busy or any(j.slot in BACKGROUND_SLOTS for j in running))
        if busy:
            self.progress.setRange(0, 0)
        self.status.setText(describe.status_text(self.session, running))

    def _on_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)

    def _show_cursor(self, x: int, y: int) -> None:
        s = self.session
        entry = s.current()
        if entry is None or not entry.loaded:
            return
        parts = [f"x {x}, y {y}"]
        for model in (s.model_key, s.compare_key):
            result = entry.results.get(model) if model else None
            if result is not None:
                parts.append(f"p {result.prediction.probability[y, x]:.2f} ({s.label(model)})")
        self.cursor_label.setText("  ".join(parts))

    def _check_ready(self) -> None:
        """Tell waiting callers (tests, --snapshot) when the current image has all it was waiting for."""
        if self.session.current() is not None and self.is_idle():
            self.current_ready.emit()

    # ---------------------------------------------------------------- closing
    def closeEvent(self, event) -> None:
        self.settings.geometry = self.saveGeometry()
        self.settings.window_state = self.saveState()
        self.settings.sync()
        self.cancel_export()
        self.scheduler.close(30)
        self._export_pool.wait(30)
        self._export_pool.shutdown()
        super().closeEvent(event)
