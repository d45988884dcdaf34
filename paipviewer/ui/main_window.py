"""The main window: image list, one or two linked views, side panel, status bar.

It renders the Qt-free :class:`Session` and sends work to the thread pool. Every task is tagged
with (slot, image key, model key, generation); only a result whose tag is the slot's current
one is drawn, so a late result can never land on an image the user has already left.
"""
from __future__ import annotations

from pathlib import Path

import qtawesome as qta
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (QFileDialog, QLabel, QMainWindow, QProgressBar, QPushButton, QScrollArea,
                               QSplitter, QVBoxLayout, QWidget)

from paipviewer.core.imageio import IMAGE_SUFFIXES, ImageReadError, read_mask
from paipviewer.core.modelfile import DEFAULT_THRESHOLD, ModelFileError

from . import worker
from .catalog import ModelCatalog
from .image_list import ImageList
from .image_view import ImageView
from .layers_panel import LayersPanel
from .menus import build_menus
from .metrics_panel import MetricsPanel
from .model_panel import ModelPanel
from .overlay_colors import compose
from .session import ImageEntry, OpenFailure, Session
from .settings import Settings
from .shortcuts import ShortcutsDialog

IMAGE_SLOTS = ("load", "primary", "compare")  # work on the current image, replaced when it changes
FOREGROUND = IMAGE_SLOTS + ("probe",)         # work the user is waiting for


class MainWindow(QMainWindow):
    current_ready = Signal()      # the current image is drawn with every result it is waiting for
    opened = Signal(int, int)     # images added, failures

    def __init__(self, settings: Settings | None = None, models_dirs=(), background_scoring: bool = True,
                 cache: worker.ModelCache | None = None) -> None:
        super().__init__()
        self.setWindowTitle("PAIP Viewer")
        self.setWindowIcon(qta.icon("mdi6.microscope"))
        self.settings = settings or Settings()
        self.session = Session()
        self.catalog = ModelCatalog()
        self.cache = cache or worker.ModelCache()
        self.pool = worker.make_pool(2)
        self.background_scoring = background_scoring
        self.tasks: dict[str, worker.Task] = {}
        self._previous_model = ""  # where to go back to if the chosen model turns out to be broken
        self._generation = 0
        self._closed = False
        self.current_key: str | None = None
        self.model_key = ""
        self.compare_key = ""
        self.layers = self.settings.layers
        self.opacity = self.settings.opacity

        for folder in models_dirs:
            self.catalog.scan(Path(folder))
        for f in self.settings.model_files:
            if Path(f).is_file():
                self.catalog.add(Path(f))

        self._build_ui()
        self.actions = build_menus(self)
        self.setAcceptDrops(True)
        self.resize(1400, 860)

    # ---------------------------------------------------------------- building
    def _build_ui(self) -> None:
        self.image_list = ImageList()
        self.image_list.key_selected.connect(self._list_selection)

        self.view = ImageView("")
        self.compare_view = ImageView("")
        self.compare_view.hide()
        for v in (self.view, self.compare_view):
            v.set_opacity(self.opacity)
        self.views = views = QSplitter(Qt.Horizontal)
        views.addWidget(self.view)
        views.addWidget(self.compare_view)

        self.model_panel = ModelPanel(self.catalog)
        self.model_panel.model_changed.connect(self.set_model)
        self.model_panel.compare_changed.connect(self.set_compare)
        self.layers_panel = LayersPanel(self.layers, self.opacity)
        self.layers_panel.layers_changed.connect(self._layers_changed)
        self.layers_panel.opacity_changed.connect(self.set_opacity)
        self.layers_panel.threshold_changed.connect(self.set_threshold)
        self.metrics_panel = MetricsPanel()
        side = QWidget()
        col = QVBoxLayout(side)
        for w in (self.model_panel, self.layers_panel, self.metrics_panel):
            col.addWidget(w)
        scroll = QScrollArea()
        scroll.setWidget(side)
        scroll.setWidgetResizable(True)
        scroll.setMinimumWidth(340)

        split = QSplitter(Qt.Horizontal)
        split.addWidget(self.image_list)
        split.addWidget(views)
        split.addWidget(scroll)
        split.setStretchFactor(1, 1)
        split.setSizes([300, 760, 340])
        self.setCentralWidget(split)

        bar = self.statusBar()
        self.status = QLabel("Ready")
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(220)
        self.progress.hide()
        self.cancel_button = QPushButton(qta.icon("mdi6.stop-circle-outline"), "Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.cancel_button.hide()
        bar.addWidget(self.status, 1)
        bar.addPermanentWidget(self.progress)
        bar.addPermanentWidget(self.cancel_button)

    # ---------------------------------------------------------------- opening
    def open_paths(self, paths) -> None:
        added, models, failures = self.session.add([Path(p) for p in paths])
        chosen = ""
        for path in models:
            info = self.catalog.add(path)
            if info.card is not None:
                chosen = info.key
            else:
                failures.append(OpenFailure(path, info.error))
        if models:
            self.model_panel.refresh(self.model_key, self.compare_key)
        if chosen:
            # An opened model is the one the user wants to see run, once it is known to load:
            # a broken file is listed with its reason and the working model stays selected.
            self._submit("probe", "", chosen, worker.probe_model, self.cache, chosen)
        for entry in added:
            self.image_list.add_entry(entry)
        for failure in failures:
            self.image_list.add_failure(failure)
        if added:
            self.settings.last_folder = str(Path(added[0].path).parent)
        text = f"Opened {len(added)} image(s)"
        if models:
            text += f", {len(models)} model file(s)"
        if failures:
            text += f"; {len(failures)} could not be opened: " + "; ".join(
                f"{f.path.name}: {f.reason}" for f in failures[:3])
        self.show_status(text)
        if added:
            self.select(added[0].key)
        self.opened.emit(len(added), len(failures))

    def _update_item(self, entry: ImageEntry) -> None:
        scores = []
        for key in (self.model_key, self.compare_key):
            c = self.session.confusion(entry, key) if key else None
            if c is not None:
                scores.append(f"J {c.jaccard:.3f}  D {c.dice:.3f}")
        self.image_list.update_entry(entry, scores)

    def open_files_dialog(self) -> None:
        pattern = " ".join(f"*{s}" for s in IMAGE_SUFFIXES)
        files, _ = QFileDialog.getOpenFileNames(self, "Open images or models", self.settings.last_folder,
                                                f"Images and models ({pattern} *.keras);;All files (*)")
        if files:
            self.open_paths(files)

    def open_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of images", self.settings.last_folder)
        if folder:
            self.open_paths([folder])

    def add_model_dialog(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Add model files", self.settings.last_folder,
                                                "Keras models (*.keras)")
        if files:
            self.open_paths(files)

    def choose_truth_dialog(self) -> None:
        entry = self.current_entry()
        if entry is None or not entry.loaded:
            return
        path, _ = QFileDialog.getOpenFileName(self, f"Ground truth of {entry.name}", str(entry.path.parent),
                                              "Masks (" + " ".join(f"*{s}" for s in IMAGE_SUFFIXES) + ")")
        if path:
            self.set_truth(entry, Path(path))

    def set_truth(self, entry: ImageEntry, path: Path) -> bool:
        """Pair an image with a mask chosen by hand; a wrong mask is refused with the reason."""
        try:
            entry.truth = read_mask(path, entry.image.shape[:2])
        except ImageReadError as exc:
            self.show_status(f"Ground truth not used: {exc}")
            return False
        entry.mask_path, entry.mask_error = path, None
        self._update_item(entry)
        self.render()
        self._show_metrics()
        return True

    # ---------------------------------------------------------------- drag and drop
    def dragEnterEvent(self, event) -> None:
        event.acceptProposedAction()  # refused drops are explained on drop, not silently ignored

    def dragMoveEvent(self, event) -> None:
        event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        urls = event.mimeData().urls() if event.mimeData().hasUrls() else []
        paths = [u.toLocalFile() for u in urls if u.isLocalFile()]
        if not paths:
            self.show_status("Nothing to open: drop image files, folders of images or .keras model files.")
            event.ignore()
            return
        event.acceptProposedAction()
        self.open_paths(paths)

    # ---------------------------------------------------------------- navigation
    def current_entry(self) -> ImageEntry | None:
        return self.session.find(self.current_key) if self.current_key else None

    def _list_selection(self, key: str) -> None:
        if key != self.current_key:
            self.select(key)

    def select(self, key: str) -> None:
        entry = self.session.find(key)
        if entry is None:
            return
        self.current_key = key
        self.image_list.show_current(key)
        self._cancel(IMAGE_SLOTS + ("background",))
        self.view.set_image(entry.image)
        self.compare_view.set_image(entry.image)
        self.setWindowTitle(f"PAIP Viewer — {entry.name}")
        self.view.set_title(entry.name)
        self.compare_view.set_title(entry.name)
        if entry.error:
            self._show_error(entry.error)
            return
        self.view.show_message("")
        if entry.loaded:
            self._request_current()
        else:
            self._submit("load", key, "", worker.load_image, entry.path, entry.mask_path)
        self._show_metrics()

    def step(self, delta: int) -> None:
        keys = [e.key for e in self.session.entries]
        if not keys:
            return
        index = keys.index(self.current_key) if self.current_key in keys else -1
        self.select(keys[(index + delta) % len(keys)])

    # ---------------------------------------------------------------- models
    def set_model(self, key: str) -> None:
        if key == self.model_key:
            return
        if self.model_key:
            self._previous_model = self.model_key
        self.model_key = key
        self.settings.model = key
        self.adopt_threshold(key)
        self._cancel(("primary", "background"))
        self._refresh_all_items()
        self._request_current()

    def set_compare(self, key: str) -> None:
        if key == self.compare_key:
            return
        self.compare_key = key
        self._start_at_card_threshold(key)
        self._cancel(("compare", "background"))
        self.compare_view.setVisible(bool(key))
        if key:
            half = max(self.views.width() // 2, 100)
            self.views.setSizes([half, half])
        QTimer.singleShot(50, self.fit)  # after the splitter has laid the views out
        if key:
            self.compare_view.link_to(self.view)
            self.compare_view.set_image(self.current_entry().image if self.current_entry() else None)
        else:
            self.compare_view.unlink()
        self.metrics_panel.set_columns(2 if key else 1)
        self._refresh_all_items()
        self._request_current()

    # ---------------------------------------------------------------- work
    def _submit(self, slot: str, image_key: str, model_key: str, fn, *args) -> worker.Task | None:
        """Start a task in ``slot``, cancelling the one it replaces."""
        self._cancel((slot,))
        if self._closed:  # late signals after closing start nothing
            return None
        self._generation += 1
        task = worker.Task(fn, *args, tag=(slot, image_key, model_key, self._generation))
        task.signals.result.connect(lambda value, t=task: self._on_result(t, value))
        task.signals.error.connect(lambda message, t=task: self._on_error(t, message))
        task.signals.finished.connect(lambda t=task: self._on_finished(t))
        if slot != "background":
            task.signals.progress.connect(self._on_progress)
        self.tasks[slot] = task
        self.pool.start(task)
        self._update_busy()
        return task

    def accepts(self, task: worker.Task) -> bool:
        """Whether a task's result may be drawn: it is still the current task of its slot."""
        return self.tasks.get(task.tag[0]) is task and not task.is_cancelled

    def _cancel(self, slots) -> None:
        for slot in slots:
            task = self.tasks.pop(slot, None)
            if task is not None:
                task.cancel()
        self._update_busy()

    def cancel(self) -> None:
        running = [s for s in self.tasks if s != "background"]
        self._cancel(tuple(self.tasks))
        if running:
            self.show_status("Cancelled")
            self.view.show_message("Cancelled — select the image again to run the model")

    def _request_current(self) -> None:
        entry = self.current_entry()
        if entry is None or not entry.loaded:
            return
        if not self.model_key:
            self._show_error("No model: add a .keras model file (File > Add model file…)")
        for slot, model in (("primary", self.model_key), ("compare", self.compare_key)):
            if model and model not in entry.results and self.catalog.find(model) and self.catalog.find(model).card:
                self._submit(slot, entry.key, model, worker.run_model, self.cache, model, entry.image)
        self.render()
        self._check_ready()

    def _on_result(self, task: worker.Task, value) -> None:
        slot, image_key, model_key, _ = task.tag
        if slot == "probe":
            self._on_model_ready(task, model_key)
            return
        entry = self.session.find(image_key)
        if entry is None:
            return
        # A finished result is true of its own image and model, so it is kept even when stale;
        # it is only drawn if the task is still the current one.
        if slot == "load":
            entry.image, entry.truth, entry.mask_error = value
        elif slot == "background":
            if not entry.loaded:
                entry.image, entry.truth, entry.mask_error = value["image"], value["truth"], value["mask_error"]
            entry.results[model_key] = value["result"]
        else:
            entry.results[model_key] = value
        self._update_item(entry)
        self._show_summary()
        if not self.accepts(task):
            return
        self.tasks.pop(slot, None)
        if slot == "load":
            self.view.set_image(entry.image)
            self.compare_view.set_image(entry.image)
            if entry.mask_error:
                self.show_status(f"Ground truth not used: {entry.mask_error}")
            self._request_current()
        elif slot in ("primary", "compare"):
            self.render()
            self._show_metrics()
            self._update_busy()
            if self.is_idle():
                t = value.prediction.timing
                self.show_status(f"{entry.name}: done in {t['total'] + t['model_load']:.2f} s "
                                 f"(model load {t['model_load']:.2f} s)")
            self._check_ready()

    def _on_model_ready(self, task: worker.Task, key: str) -> None:
        if not self.accepts(task):
            return
        self.tasks.pop("probe", None)
        self.settings.model_files = self.settings.model_files + [key]
        self.model_panel.refresh(key, self.compare_key)
        self.set_model(key)

    def _on_error(self, task: worker.Task, exc: Exception) -> None:
        """Report a failure against what failed, and let the rest of the work go on."""
        slot, image_key, model_key, _ = task.tag
        message = worker.message(exc)
        entry = self.session.find(image_key)
        current = self.accepts(task)
        if current:
            self.tasks.pop(slot, None)
        if isinstance(exc, ModelFileError) and model_key:
            self.show_status(self._model_failed(model_key, message))
            if current:
                self._check_ready(failed=True)
            return
        if entry is not None and (slot == "load" or isinstance(exc, ImageReadError)):
            entry.error = message
            self._update_item(entry)
        elif entry is not None and model_key:
            entry.failures[model_key] = message  # this model on this image; other images go on
        if current and slot != "background":
            self._show_error(message)
            self._check_ready(failed=True)
        else:
            self.show_status(message)

    def _model_failed(self, key: str, message: str) -> str:
        """A model that cannot load is listed with its reason and never retried; a broken primary
        model hands over to the one used before it (or the default), so scoring goes on.
        Returns what to tell the user."""
        info = self.catalog.find(key)
        if info is not None:
            info.card, info.error = None, message
        told = f"Model not usable: {message}"
        if key == self.compare_key:
            self.set_compare("")
        if key == self.model_key:
            back = self.catalog.find(self._previous_model)
            back = back if back is not None and back.card is not None else self.catalog.default()
            self.model_key = ""  # so that set_model runs even when going back to the same key
            if back is not None:
                self.set_model(back.key)
                told += f"; using {back.card.label} instead"
        self.model_panel.refresh(self.model_key, self.compare_key)
        return told

    def _on_finished(self, task: worker.Task) -> None:
        if self.tasks.get(task.tag[0]) is task and task.is_cancelled:
            self.tasks.pop(task.tag[0], None)
        self._update_busy()
        if not any(s in self.tasks for s in FOREGROUND):
            self._schedule_background()

    def _on_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)

    def _update_busy(self) -> None:
        busy = [s for s in self.tasks if s in FOREGROUND]
        self.progress.setVisible(bool(busy))
        self.cancel_button.setVisible(bool(busy))
        if busy:
            self.progress.setRange(0, 0)
            names = [self.catalog.find(self.tasks[s].tag[2]) for s in busy if self.tasks[s].tag[2]]
            self.status.setText("Running " + ", ".join(n.card.label for n in names if n and n.card)
                                if names else "Loading image…")
        elif "background" in self.tasks:
            model = self.tasks["background"].tag[2]
            done = sum(1 for e in self.session.entries if model in e.results)
            self.status.setText(f"Scoring all images in the background: {done}/{len(self.session.entries)}")

    def _schedule_background(self) -> None:
        if self._closed or not self.background_scoring or "background" in self.tasks:
            return
        start = max(self.session.index_of(self.current_key or ""), 0)
        for model in (self.model_key, self.compare_key):
            info = self.catalog.find(model)
            if not model or info is None or info.card is None:
                continue
            entry = self.session.next_unscored(model, after=start)
            if entry is not None:
                self._submit("background", entry.key, model, worker.load_and_run, self.cache, model,
                             (entry.path, entry.mask_path), entry.image)
                return
        self.show_status(self._summary_line())

    def _check_ready(self, failed: bool = False) -> None:
        if failed or not any(s in self.tasks for s in FOREGROUND):
            self.current_ready.emit()

    def is_idle(self) -> bool:
        return not any(s in self.tasks for s in FOREGROUND)

    # ---------------------------------------------------------------- drawing
    def render(self) -> None:
        entry = self.current_entry()
        if entry is None or not entry.loaded:
            return
        shape = entry.image.shape[:2]
        pred_a = self.session.mask(entry, self.model_key) if self.model_key else None
        pred_b = self.session.mask(entry, self.compare_key) if self.compare_key else None
        prob_a = entry.results[self.model_key].prediction.probability if pred_a is not None else None
        self.view.set_overlay(compose(shape, self.layers, pred_a, entry.truth, prob_a, pred_b))
        self.view.set_title(self._view_title(self.model_key, entry))
        if self.compare_key:
            prob_b = entry.results[self.compare_key].prediction.probability if pred_b is not None else None
            self.compare_view.set_overlay(compose(shape, self.layers, pred_b, entry.truth, prob_b, pred_a))
            self.compare_view.set_title(self._view_title(self.compare_key, entry))

    def _view_title(self, model: str, entry: ImageEntry) -> str:
        info = self.catalog.find(model)
        label = info.card.label if info and info.card else "no model"
        c = self.session.confusion(entry, model)
        name = "" if self.compare_key else f" — {entry.name}"  # two titles side by side must stay short
        return f"{label}{name}" + (f" — Jaccard {c.jaccard:.3f}, Dice {c.dice:.3f}" if c else "")

    def _show_error(self, message: str) -> None:
        self.view.show_message(message)
        self.show_status(message)

    def _show_metrics(self) -> None:
        entry = self.current_entry()
        for column, model in enumerate((self.model_key, self.compare_key)):
            info = self.catalog.find(model)
            result = entry.results.get(model) if entry and model else None
            title = info.card.label if info and info.card else ""
            note = "no ground truth" if entry is not None and entry.loaded and entry.truth is None else ""
            self.metrics_panel.show_column(column, title, self.session.confusion(entry, model) if result else None,
                                           result.prediction.timing if result else None, note)
        self._show_summary()

    def _summary_line(self) -> str:
        parts = []
        usable = sum(1 for e in self.session.entries if e.error is None)
        for model in (self.model_key, self.compare_key):
            info = self.catalog.find(model)
            s = self.session.summary(model) if model else None
            if s and info and info.card:
                parts.append(f"{info.card.label}: mean per-tile Jaccard {s['mean_jaccard']:.3f} "
                             f"over {s['images']}/{usable} images "
                             f"(pooled {s['pooled_jaccard']:.3f}, mean Dice {s['mean_dice']:.3f})")
        return "; ".join(parts) or "No scores yet"

    def _show_summary(self) -> None:
        self.metrics_panel.show_summary(["All open images:"] + self._summary_line().split("; "))

    def _refresh_all_items(self) -> None:
        for entry in self.session.entries:
            self._update_item(entry)
        self._show_metrics()

    # ---------------------------------------------------------------- layers
    def _layers_changed(self) -> None:
        self.settings.layers = self.layers
        self.render()

    def set_opacity(self, value: float) -> None:
        self.opacity = value
        self.settings.opacity = value
        for v in (self.view, self.compare_view):
            v.set_opacity(value)

    def _start_at_card_threshold(self, key: str) -> None:
        """A model is cut at its card's threshold until the user moves the slider for it."""
        if key and key not in self.session.thresholds:
            info = self.catalog.find(key)
            self.session.thresholds[key] = info.card.threshold if info and info.card else DEFAULT_THRESHOLD

    def adopt_threshold(self, key: str) -> None:
        """The slider shows (and moves) the primary model's threshold."""
        self._start_at_card_threshold(key)
        self.layers_panel.show_threshold(self.session.threshold(key))

    def set_threshold(self, value: float) -> None:
        """Masks and scores follow the threshold at once: the probability map is kept."""
        if self.model_key:
            self.session.thresholds[self.model_key] = value
        self.render()
        self._refresh_all_items()

    def fit(self) -> None:
        self.view.fit()
        if self.compare_key:
            self.compare_view.fit()

    def show_shortcuts(self) -> None:
        ShortcutsDialog(self).exec()

    def show_status(self, text: str) -> None:
        self.status.setText(text)

    # ---------------------------------------------------------------- closing
    def closeEvent(self, event) -> None:
        self._closed = True
        self._cancel(tuple(self.tasks))
        self.settings.sync()
        # Cancelled tasks stop at the next batch; only a model still loading can take a few seconds.
        self.pool.wait(30)
        self.pool.shutdown()
        super().closeEvent(event)
