"""A whole slide in its own window (as QuPath opens one image at a time): the streamed view, an
overview with the field of view, the pixel size and the magnification the model runs at, and a
model run on the field of view or the whole slide whose overlay appears block by block; with a
second model to compare, a linked view beside it that the same run fills next."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyqtgraph as pg
import qtawesome as qta
from PySide6.QtCore import QObject, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPen, QPixmap
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDockWidget, QDoubleSpinBox, QFileDialog, QFormLayout,
                               QHBoxLayout, QLabel, QMainWindow, QProgressBar, QPushButton, QSplitter, QVBoxLayout,
                               QWidget)

from paipviewer.core.datasets import find_mask
from paipviewer.core.magnification import plan_scale
from paipviewer.core.slides import Slide
from paipviewer.viewer.catalog import ModelCatalog
from paipviewer.viewer.jobs import ModelCache, message
from paipviewer.viewer.layers import LayerState
from paipviewer.viewer.paths import DEFAULT_MODEL_STEM, shipped_models_dir, user_models_dir
from paipviewer.viewer.slide_job import SlideResult, read_truth, run_slide, work_folder

from .slide_view import SlideView
from .tasks import Task, WorkerPool

OVERVIEW_SIDE = 240


class _Blocks(QObject):
    done = Signal(object)  # a finished block (x, y, w, h), from the worker thread


class Overview(QLabel):
    """The whole slide small, with the field of view drawn on it; a click centres the view there."""
    clicked = Signal(float, float)  # level-0 x, y

    def __init__(self) -> None:
        super().__init__()
        self.setFixedSize(OVERVIEW_SIDE, OVERVIEW_SIDE)
        self.setAlignment(Qt.AlignCenter)
        self._pixels: QImage | None = None
        self._scale = 1.0

    def set_slide(self, pixels: np.ndarray, width: int, height: int) -> None:
        h, w = pixels.shape[:2]
        self._image = np.ascontiguousarray(pixels)
        self._pixels = QImage(self._image.data, w, h, 3 * w, QImage.Format_RGB888)
        self._scale = w / width

    def show_view(self, x: float, y: float, w: float, h: float) -> None:
        if self._pixels is None:
            return
        pixmap = QPixmap.fromImage(self._pixels)
        painter = QPainter(pixmap)
        painter.setPen(QPen(QColor(255, 60, 60), 2))
        s = self._scale
        painter.drawRect(QRectF(x * s, y * s, max(w * s, 2), max(h * s, 2)))
        painter.end()
        self.setPixmap(pixmap)

    def mousePressEvent(self, event) -> None:
        pixmap = self.pixmap()
        if self._pixels is None or pixmap is None or pixmap.isNull():
            return
        ox = (self.width() - pixmap.width()) / 2
        oy = (self.height() - pixmap.height()) / 2
        p: QPointF = event.position()
        self.clicked.emit((p.x() - ox) / self._scale, (p.y() - oy) / self._scale)


def _index_of(box: QComboBox, wanted: str) -> int:
    """The entry of a model box for a model key or file stem; -1 if none."""
    return next((i for i in range(box.count()) if box.itemData(i) and
                 (box.itemData(i) == wanted or Path(box.itemData(i)).stem == wanted)), -1)


class SlideWindow(QMainWindow):
    finished = Signal(object)  # the first model's SlideResult once every model has run, or an exception

    def __init__(self, path: Path, model: str | None = None, models_dirs=(), cache: ModelCache | None = None,
                 compare: str | None = None):
        super().__init__()
        self.path = Path(path)
        self.setWindowTitle(f"{self.path.name} - PAIP Viewer")
        self.slide = Slide(self.path)
        self.cache = cache or ModelCache()
        self.pool = WorkerPool(1)
        self.task: Task | None = None
        self.result: SlideResult | None = None
        self.result2: SlideResult | None = None    # the compared model's
        self.view2: SlideView | None = None
        self._chain: list[tuple[int, str, float]] = []   # (view, model, threshold) still to run
        self._side, self._threshold = 0, 0.5   # the view and threshold of the model running
        self._region = None
        self._lines: list[str] = []
        self.truth = None
        self.truth_path = find_mask(self.path)
        self._truth_task: Task | None = None
        self._pending: tuple | None = None   # (region,) asked for while the ground truth was read
        self._rescore = False                 # run again once a newly chosen ground truth is read
        self._closed = False
        self._blocks = _Blocks()
        self._blocks.done.connect(self._block_done)

        self.catalog = ModelCatalog()
        for folder in (*map(Path, models_dirs), user_models_dir(), shipped_models_dir()):
            self.catalog.scan(folder)
        self.view = SlideView()
        self.splitter = QSplitter(Qt.Horizontal)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.addWidget(self.view)
        self.setCentralWidget(self.splitter)
        self._build_panel(model)
        self.view.set_slide(self.slide, self.path.name)
        self.overview.set_slide(self.view.overview_pixels(OVERVIEW_SIDE), *self.slide.dimensions)
        self.view.viewport_changed.connect(self.overview.show_view)
        self.overview.clicked.connect(self._centre_on)
        self.resize(1280, 800)
        self._describe()
        if compare:
            self.compare_box.setCurrentIndex(max(0, _index_of(self.compare_box, compare)))
        if self.truth_path is not None:
            self._read_truth()

    # ------------------------------------------------------------------ layout
    def _build_panel(self, model: str | None) -> None:
        panel = QWidget()
        layout = QVBoxLayout(panel)
        self.overview = Overview()
        layout.addWidget(self.overview, alignment=Qt.AlignHCenter)
        form = QFormLayout()
        self.info = QLabel()
        self.info.setWordWrap(True)
        form.addRow(self.info)
        self.truth_button = QPushButton(qta.icon("mdi6.vector-polygon"), "Ground truth…")
        self.truth_button.setToolTip("This slide's nuclei: QuPath GeoJSON, or an instance map (TIFF or PNG) of "
                                     "its full resolution; a slide already run is scored against it")
        self.truth_button.clicked.connect(self.choose_truth_dialog)
        form.addRow(self.truth_button)
        self.model_box = QComboBox()
        for info in self.catalog.usable():
            self.model_box.addItem(info.label, info.key)
        self.model_box.setCurrentIndex(max(0, _index_of(self.model_box, model or DEFAULT_MODEL_STEM)))
        self.model_box.currentIndexChanged.connect(lambda *_: (self._describe(), self._titles()))
        form.addRow("Model", self.model_box)
        self.compare_box = QComboBox()
        self.compare_box.addItem("None", None)
        for info in self.catalog.usable():
            self.compare_box.addItem(info.label, info.key)
        self.compare_box.setToolTip("A second model, run after the first over the same pixels, in a linked view "
                                    "beside it at its own calibrated threshold")
        self.compare_box.currentIndexChanged.connect(lambda *_: self._compare_changed())
        form.addRow("Compare with", self.compare_box)
        self.disagree = QCheckBox("Mark where the models disagree")
        self.disagree.setToolTip("White where one model finds a nucleus and the other does not")
        self.disagree.setEnabled(False)
        self.disagree.toggled.connect(lambda *_: self._layers_changed())
        form.addRow(self.disagree)
        self.threshold = QDoubleSpinBox(minimum=0.01, maximum=0.99, singleStep=0.05, decimals=2)
        card = self._card()
        self.threshold.setValue(card.threshold if card else 0.5)
        self.threshold.valueChanged.connect(self._threshold_changed)
        form.addRow("Threshold", self.threshold)
        self._threshold_label = form.labelForField(self.threshold)
        self.rescale = QCheckBox("Match the model's magnification")
        self.rescale.setChecked(True)
        self.rescale.setToolTip("Resample the slide to the pixel size the model was trained at (recommended)")
        self.rescale.toggled.connect(lambda *_: self._describe())
        form.addRow(self.rescale)
        self.views = QCheckBox("Average 8 views (slower)")
        self.views.setToolTip("Test-time augmentation: predict each tile turned and mirrored eight ways and "
                              "average the maps; about eight times the time")
        form.addRow(self.views)
        layout.addLayout(form)
        self.region_box = QCheckBox("Draw a region to run on")
        self.region_box.setToolTip("A rectangle over the slide you can move and resize; Run then runs on it")
        self.region_box.toggled.connect(self.show_region)
        form.addRow(self.region_box)
        self.roi = None
        buttons = QHBoxLayout()
        self.run_view = QPushButton(qta.icon("mdi6.crop-free"), "Run on view")
        self.run_all = QPushButton(qta.icon("mdi6.play"), "Run on slide")
        self.stop = QPushButton(qta.icon("mdi6.stop"), "Stop")
        self.stop.setEnabled(False)
        for b in (self.run_view, self.run_all, self.stop):
            buttons.addWidget(b)
        self.run_view.clicked.connect(lambda: self.run(self.region() or self.view.view_rect()))
        self.run_all.clicked.connect(lambda: self.run(None))
        self.stop.clicked.connect(self.cancel)
        layout.addLayout(buttons)
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        layout.addWidget(self.progress)
        self.scores = QLabel()
        self.scores.setWordWrap(True)
        self.scores.setTextInteractionFlags(Qt.TextSelectableByMouse)
        layout.addWidget(self.scores)
        layout.addStretch(1)
        dock = QDockWidget("Slide", self)
        dock.setObjectName("slide")
        dock.setWidget(panel)
        dock.setFeatures(QDockWidget.DockWidgetMovable | QDockWidget.DockWidgetFloatable)
        self.addDockWidget(Qt.RightDockWidgetArea, dock)

    def _compare_changed(self) -> None:
        """Show the second, linked view for a model to compare, or drop it."""
        key = self.compare_box.currentData()
        if key and self.view2 is None:
            self.view2 = SlideView()
            self.view2.set_slide(self.slide)
            self.view2.set_opacity(self.view.opacity)
            self.splitter.addWidget(self.view2)
            self.splitter.setSizes([10000, 10000])
            self.view2.viewbox.setXLink(self.view.viewbox)
            self.view2.viewbox.setYLink(self.view.viewbox)
        elif not key and self.view2 is not None:
            self.view2.shutdown()
            self.view2.clear_tiles()
            self.view2.setParent(None)
            self.view2.deleteLater()
            self.view2 = None
        self.result2 = None
        self.disagree.setEnabled(self.view2 is not None)
        self.view.set_other(None, 0.5)  # the mask it was compared with is gone or from another model
        self._titles()

    def _titles(self) -> None:
        """The views named by their models when there are two; the threshold row says which it sets."""
        self._threshold_label.setText("Threshold" if self.view2 is None else "Threshold, left")
        if self.view2 is None:
            self.view.title.setText(self.path.name)
            return
        self.view.title.setText(self.model_box.currentText())
        self.view2.title.setText(self.compare_box.currentText())

    def _views(self) -> list[SlideView]:
        return [self.view] if self.view2 is None else [self.view, self.view2]

    def _card(self, box: QComboBox | None = None):
        info = self.catalog.find((box or self.model_box).currentData())
        return info.card if info else None

    def _describe(self) -> None:
        s, card = self.slide, self._card()
        w, h = s.dimensions
        lines = [f"<b>{self.path.name}</b>", f"{w:,} x {h:,} px, {len(s.level_dimensions)} levels"
                 + (f", {s.objective}x" if s.objective else ""),
                 f"Pixel size: {s.pixel_size.text()}"]
        if card is not None:
            lines.append("Model: " + plan_scale(s.pixel_size, card.mpp, self.rescale.isChecked()).text())
        lines.append(f"Ground truth: {self.truth_path.name}" if self.truth_path else "No ground truth")
        self.info.setText("<br>".join(lines))

    def show_region(self, on: bool) -> None:
        """A movable, resizable rectangle in the middle of the view (half its size), or none."""
        if self.roi is not None:
            self.view.viewbox.removeItem(self.roi)
            self.roi = None
        if on:
            x, y, w, h = self.view.view_rect()
            self.roi = pg.RectROI((x + w / 4, y + h / 4), (max(w / 2, 64), max(h / 2, 64)),
                                  pen=pg.mkPen("#ffcc00", width=2), rotatable=False)
            self.roi.setZValue(10)
            self.view.viewbox.addItem(self.roi)
        self.run_view.setText("Run on region" if on else "Run on view")

    def region(self) -> tuple[int, int, int, int] | None:
        """The drawn rectangle in level-0 pixels, clipped to the slide; None without one."""
        if self.roi is None:
            return None
        (x, y), (w, h) = self.roi.pos(), self.roi.size()
        sw, sh = self.slide.dimensions
        x0, y0 = max(0, int(x)), max(0, int(y))
        x1, y1 = min(sw, int(x + w)), min(sh, int(y + h))
        return (x0, y0, max(0, x1 - x0), max(0, y1 - y0)) if x1 > x0 and y1 > y0 else None

    def _centre_on(self, x: float, y: float) -> None:
        (x0, x1), (y0, y1) = self.view.viewbox.viewRange()
        hw, hh = (x1 - x0) / 2, (y1 - y0) / 2
        self.view.viewbox.setRange(xRange=(x - hw, x + hw), yRange=(y - hh, y + hh), padding=0)

    # ------------------------------------------------------------------ work
    def _start(self, task: Task, on_result) -> None:
        task.signals.result.connect(on_result)
        task.signals.error.connect(self._failed)
        self.pool.start(task)

    def choose_truth_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, f"Ground truth of {self.path.name}", str(self.path.parent),
            "Nuclei (*.geojson *.json *.tif *.tiff *.png);;All files (*)")
        if path:
            self.set_truth(Path(path))

    def set_truth(self, path: Path) -> None:
        """Score against ``path`` from now on: it is read off the UI thread, and a slide already run is run
        again, which resumes from its saved map and only scores."""
        if self.task is not None or self._truth_task is not None:
            return
        self.truth_path, self.truth = Path(path), None
        self._describe()
        self._layers_changed()
        self._rescore = self.result is not None
        self._read_truth()

    def _read_truth(self) -> None:
        """Read the ground truth off the UI thread (a slide's polygons can take a while to draw); a run
        asked for meanwhile waits for it, since its scores need it."""
        self._truth_task = task = Task(read_truth, self.truth_path, self.slide)
        task.signals.result.connect(self._truth_loaded)
        task.signals.error.connect(self._truth_failed)
        task.signals.progress.connect(self._progress)
        task.signals.finished.connect(self._truth_ended)
        self.pool.start(task)
        self.truth_button.setEnabled(False)
        self.progress.setVisible(True)
        self.progress.setRange(0, 0)
        self.scores.setText(f"Reading the ground truth ({self.truth_path.name})…")

    def _truth_loaded(self, truth) -> None:
        self.truth = truth
        self.scores.setText("")
        self._layers_changed()

    def _truth_failed(self, exc) -> None:
        self.scores.setText(f"Ground truth not used: {message(exc)}")
        self.truth_path = self.truth = None
        self._rescore = False
        self._describe()

    def _truth_ended(self) -> None:
        self._truth_task = None
        self.progress.setVisible(False)
        self.truth_button.setEnabled(True)
        if self._pending is not None:
            (region,), self._pending = self._pending, None
            self.run(region)
        elif self._rescore and self.truth is not None and not self._closed:
            self._rescore = False
            self.run(self._region)

    def run(self, region) -> None:
        """Run the chosen model over ``region`` (x, y, w, h level-0 pixels) or the whole slide (None), then
        the model to compare, if any, over the same pixels."""
        key = self.model_box.currentData()
        if not key or self.task is not None:
            return
        if self._truth_task is not None:
            self._pending = (region,)
            self.scores.setText("The run starts once the ground truth is read…")
            return
        self.result = self.result2 = None
        self._chain = [(0, key, self.threshold.value())]
        if self.view2 is not None:
            self._chain.append((1, self.compare_box.currentData(), self._card(self.compare_box).threshold))
        for view in self._views():
            view.covered, view.other = [], None
            view.set_overlay_source(None, None, self.threshold.value())
        self._region, self._lines = region, []
        self._next()
        self.progress.setVisible(True)
        self.progress.setRange(0, 0)
        self.stop.setEnabled(True)
        for widget in (self.run_view, self.run_all, self.compare_box, self.truth_button):
            widget.setEnabled(False)
        self.scores.setText("Running…")

    def _next(self) -> None:
        self._side, key, self._threshold = self._chain.pop(0)
        self._probability_file = work_folder(self.path, key) / "probability.npy"
        self.task = task = Task(run_slide, self.cache, key, self.path, self.truth, self._region, self._threshold,
                                self.rescale.isChecked(), 8 if self.views.isChecked() else 1,
                                on_block=self._blocks.done.emit)
        task.signals.progress.connect(self._progress)
        task.signals.finished.connect(lambda: self._ended(task))
        self._start(task, self._done)

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()
            self.scores.setText("Stopped. Run again to go on where it stopped.")

    def _progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, total)
        self.progress.setValue(done)

    def _block_done(self, block) -> None:
        view = self._views()[self._side]
        view.covered.append(block)
        if view.probability is None and self._probability_file.exists():
            view.set_overlay_source(np.load(self._probability_file, mmap_mode="r"), self.truth, self._threshold,
                                    self._layers())
        view.redraw_overlays(block)

    def _done(self, result: SlideResult) -> None:
        view = self._views()[self._side]
        if self._side == 0:
            self.result = result
        else:
            self.result2 = result
        view.covered = [result.region or (0, 0, *self.slide.dimensions)]  # resumed blocks too
        view.set_overlay_source(result.prediction.probability, self.truth, result.threshold, self._layers())
        self._lines.append(f"{result.nuclei:,} nuclei ({result.model}, threshold {result.threshold:g}), "
                           f"{result.seconds:.0f} s; {result.prediction.blocks_run} blocks run, "
                           f"{result.prediction.resumed} resumed")
        if result.pixels is not None:
            o = result.objects.scores
            self._lines.append(f"Dice {result.pixels.dice:.3f}, Jaccard {result.pixels.jaccard:.3f}, "
                               f"AJI {o.aji:.3f}, detection F1 {o.f1:.3f}, PQ {o.pq:.3f}; "
                               f"{o.n_true:,} true nuclei")
        if self._chain:
            self.scores.setText("\n".join(self._lines + ["Running the model to compare…"]))
            self._next()
            return
        if result.region is not None and self.truth is not None:
            self._lines.append("Scores against the ground truth need the whole slide (Run on slide).")
        self.scores.setText("\n".join(self._lines))
        self._pair()
        self._ended(self.task)
        self.finished.emit(self.result)

    def _ended(self, task: Task | None) -> None:
        """The run is over: buttons back. Called before ``finished`` is emitted, so whoever hears it
        can run again at once, and by the task's own end, which must not end a newer run."""
        if task is None or task is not self.task:
            return
        self.task = None
        self._chain = []
        self.progress.setVisible(False)
        self.stop.setEnabled(False)
        for widget in (self.run_view, self.run_all, self.compare_box, self.truth_button):
            widget.setEnabled(True)

    def _failed(self, exc) -> None:
        self.scores.setText("\n".join(self._lines + [f"Failed: {message(exc)}"]))  # the first model's stay
        self._ended(self.task)
        self.finished.emit(exc)

    def _layers(self) -> LayerState:
        layers = LayerState.default("annotated" if self.truth is not None else "plain")
        layers.disagree = self.view2 is not None and self.disagree.isChecked()
        return layers

    def _pair(self) -> None:
        """Each view of a comparison knows the other's mask, for the disagreement layer."""
        if self.view2 is None or self.result is None or self.result2 is None:
            return
        self.view.set_other(self.result2.prediction.probability, self.view2.threshold)
        self.view2.set_other(self.result.prediction.probability, self.view.threshold)

    def _layers_changed(self) -> None:
        for view in self._views():
            if view.probability is not None:
                view.set_overlay_source(view.probability, self.truth, view.threshold, self._layers())

    def _threshold_changed(self, value: float) -> None:
        if self.view.probability is not None:
            self.view.set_overlay_source(self.view.probability, self.truth, value, self._layers())
            self._pair()

    def closeEvent(self, event) -> None:
        if self._closed:  # a second close (the window's, then a test's) must not touch the closed slide
            super().closeEvent(event)
            return
        self._closed = True
        self._pending = None
        if self._truth_task is not None:
            self._truth_task.cancel()
        self.cancel()
        self.pool.wait(5.0)
        for view in self._views():
            view.shutdown()
            view.clear_tiles()
        self.pool.shutdown()
        self.slide.close()
        super().closeEvent(event)
