"""The Plots dock: per-image Dice of both models, Dice against threshold (this image and the folder,
with the threshold now marked), and predicted against true nuclei per image. The data come from
:mod:`paipviewer.viewer.results`; each plot exports to PNG or SVG, written atomically."""
from __future__ import annotations

from pathlib import Path

import pyqtgraph as pg
import qtawesome as qta
from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QAction, QPainter
from PySide6.QtSvg import QSvgGenerator
from PySide6.QtWidgets import (QFileDialog, QHBoxLayout, QLabel, QMessageBox, QPushButton, QTabWidget, QVBoxLayout,
                               QWidget)

from paipviewer.core.atomic import atomic_path
from paipviewer.viewer import results
from paipviewer.viewer.session import Session

# Okabe-Ito blue and orange: apart from each other and from the overlay colours.
MODEL_COLOURS = ((0, 114, 178), (230, 159, 0))
PLOTS = {"dice": "Dice per image", "threshold": "Dice against threshold", "counts": "Nuclei per image"}
TABS = {"dice": "Dice", "threshold": "Threshold", "counts": "Nuclei"}  # the dock is narrow
LEGEND_AT = {"dice": (-8, -8), "threshold": (-8, -8), "counts": (8, 8)}  # where the points are not
EXPORT_FILTERS = "PNG image (*.png);;SVG drawing (*.svg)"
EXPORT_WIDTH = 1600  # px of a PNG: sharp in a paper or a slide


def _dice_tip(x, y, data) -> str:
    return f"{data}\nDice {y:.3f}"


def _count_tip(x, y, data) -> str:
    return f"{data}\n{y:,.0f} nuclei predicted, {x:,.0f} true"


class PlotsPanel(QWidget):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.plots: dict[str, pg.PlotWidget] = {}
        self.notes: dict[str, QLabel] = {}
        self.last_folder = ""
        for name, title in PLOTS.items():
            page = QWidget()
            plot = pg.PlotWidget(background="w")
            plot.setMenuEnabled(False)
            item = plot.getPlotItem()
            item.showGrid(x=True, y=True, alpha=0.25)
            for axis in ("left", "bottom"):
                item.getAxis(axis).setPen(pg.mkPen("#333333"))
                item.getAxis(axis).setTextPen(pg.mkPen("#222222"))
            item.addLegend(offset=LEGEND_AT[name], labelTextColor="#222222", labelTextSize="8pt",
                           brush=(255, 255, 255, 210), pen=pg.mkPen("#bbbbbb"), verSpacing=-4)
            item.setTitle(title, color="#222222", size="10pt")
            # Right-click exports through the same atomic path as the button, not pyqtgraph's own dialog.
            action = QAction("Export PNG or SVG…", plot)
            action.triggered.connect(lambda *_, n=name: self.export_dialog(n))
            plot.scene().contextMenu = [action]
            note = QLabel()
            note.setWordWrap(True)
            note.setStyleSheet("color: #666666")
            button = QPushButton(qta.icon("mdi6.export"), "Export…")
            button.setToolTip("Save this plot as PNG or SVG")
            button.clicked.connect(lambda *_, n=name: self.export_dialog(n))
            bar = QHBoxLayout()
            bar.addWidget(note, 1)
            bar.addWidget(button)
            layout = QVBoxLayout(page)
            layout.setContentsMargins(2, 2, 2, 2)
            layout.addWidget(plot, 1)
            layout.addLayout(bar)
            self.tabs.addTab(page, TABS[name])
            self.tabs.setTabToolTip(self.tabs.count() - 1, title)
            self.plots[name], self.notes[name] = plot, note
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.tabs)
        self._labels()

    def _labels(self) -> None:
        p = self.plots
        p["dice"].setLabel("bottom", "image (its place in the list)")
        p["dice"].setLabel("left", "Dice")
        p["dice"].setYRange(0, 1.02, padding=0)
        p["threshold"].setLabel("bottom", "threshold")
        p["threshold"].setLabel("left", "Dice")
        p["threshold"].setXRange(0, 1, padding=0.01)
        p["threshold"].setYRange(0, 1.02, padding=0)
        p["counts"].setLabel("bottom", "true nuclei")
        p["counts"].setLabel("left", "predicted nuclei")

    # ---------------------------------------------------------------- from the state
    def refresh(self, session: Session) -> None:
        self._dice(session)
        self._threshold(session)
        self._counts(session)

    def _clear(self, name: str) -> pg.PlotItem:
        item = self.plots[name].getPlotItem()
        item.clear()
        item.legend.clear()
        return item

    def _dice(self, session: Session) -> None:
        item = self._clear("dice")
        series = results.dice_per_image(session)
        offsets = (-0.12, 0.12) if len(series) == 2 else (0.0,)
        for side, s in enumerate(series):
            colour = MODEL_COLOURS[side]
            item.addItem(pg.ScatterPlotItem(s.x + offsets[side], s.y, data=s.names, symbol="o" if side == 0 else "s",
                                            size=8, pen=pg.mkPen(colour), brush=pg.mkBrush(*colour, 200),
                                            hoverable=True, tip=_dice_tip, name=s.label))
        n = max((len(s.x) for s in series), default=0)
        self.notes["dice"].setText(f"{n} images with ground truth scored" if n else
                                   "No scored image with ground truth yet")

    def _threshold(self, session: Session) -> None:
        item = self._clear("threshold")
        for kind, model, s in results.dice_curves(session):
            side = 0 if model == session.model_key else 1
            style = Qt.SolidLine if kind == "folder" else Qt.DashLine
            name = f"{s.label}, {'all (pooled)' if kind == 'folder' else 'this image'}"
            item.addItem(pg.PlotDataItem(s.x, s.y, pen=pg.mkPen(MODEL_COLOURS[side], width=2, style=style),
                                         name=name))
        for side, model in enumerate(results.models(session)):
            line = pg.InfiniteLine(session.threshold(model), angle=90,
                                   pen=pg.mkPen(MODEL_COLOURS[side], width=1, style=Qt.DotLine),
                                   label=f"{session.threshold(model):.2f}",
                                   labelOpts={"color": MODEL_COLOURS[side], "position": 0.97 - 0.07 * side})
            line.setObjectName(f"threshold_{side}")
            item.addItem(line)
        entry = session.current()
        self.notes["threshold"].setText(
            "Dashed: this image; solid: all scored images with ground truth, pooled; dotted: the thresholds"
            if entry is not None and entry.truth is not None else
            "This image has no ground truth; solid: all scored images with ground truth, pooled")

    def _counts(self, session: Session) -> None:
        item = self._clear("counts")
        series = results.nucleus_counts(session)
        top = max([1.0] + [float(max(s.x.max(), s.y.max())) for s in series if len(s.x)])
        item.addItem(pg.PlotDataItem([0, top * 1.05], [0, top * 1.05], pen=pg.mkPen("#888888", width=1,
                                                                                  style=Qt.DashLine), name="y = x"))
        for side, s in enumerate(series):
            colour = MODEL_COLOURS[side]
            item.addItem(pg.ScatterPlotItem(s.x, s.y, data=s.names, symbol="o" if side == 0 else "s", size=8,
                                            pen=pg.mkPen(colour), brush=pg.mkBrush(*colour, 200), hoverable=True,
                                            tip=_count_tip, name=s.label))
        n = max((len(s.x) for s in series), default=0)
        self.notes["counts"].setText(f"{n} images with ground truth; nuclei split as each model's card says" if n
                                     else "No image with ground truth has its nuclei counted yet")

    # ---------------------------------------------------------------- for tests
    def points(self, name: str) -> list[int]:
        """How many points each scatter or curve of a plot draws, in the order they were added."""
        out = []
        for it in self.plots[name].getPlotItem().items:
            if isinstance(it, pg.ScatterPlotItem):
                out.append(len(it.data))
            elif isinstance(it, pg.PlotDataItem) and it.name() != "y = x":
                out.append(0 if it.xData is None else len(it.xData))
        return out

    # ---------------------------------------------------------------- export
    def export(self, name: str, path: str | Path) -> Path:
        """Write a plot to ``path`` (.png or .svg by its suffix) atomically: a reader sees the old
        file or the whole new one.

        PNG through pyqtgraph's ImageExporter, EXPORT_WIDTH pixels wide. SVG through Qt's own
        QSvgGenerator, not pyqtgraph's SVGExporter: with Qt 6.11 every plot's clip path ends in
        "Z", which SVGExporter 0.14 cannot parse (pyqtgraph issue 3495, fixed after 0.14.0).
        """
        from pyqtgraph.exporters import ImageExporter

        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in (".png", ".svg"):
            raise ValueError(f"{path.name}: export as .png or .svg")
        item = self.plots[name].getPlotItem()
        with atomic_path(path) as tmp:
            if suffix == ".png":
                exporter = ImageExporter(item)
                exporter.parameters()["width"] = EXPORT_WIDTH
                exporter.parameters()["antialias"] = True
                exporter.export(str(tmp))
            else:
                self._write_svg(name, tmp)
            if not tmp.stat().st_size:
                raise OSError(f"{path.name}: nothing was written")
        return path

    def _write_svg(self, name: str, path: Path) -> None:
        plot = self.plots[name]
        source = plot.getPlotItem().sceneBoundingRect()
        target = QRectF(0, 0, source.width(), source.height())
        generator = QSvgGenerator()
        generator.setFileName(str(path))
        generator.setSize(QSize(int(source.width()), int(source.height())))
        generator.setViewBox(target)
        generator.setTitle(PLOTS[name])
        generator.setDescription("PAIP Viewer")
        painter = QPainter(generator)
        try:
            plot.scene().render(painter, target, source)
        finally:
            painter.end()

    def export_dialog(self, name: str) -> Path | None:
        """Ask where (the dialog confirms replacing a file), then export."""
        start = str(Path(self.last_folder or Path.home()) / f"{name}.png")
        path, chosen = QFileDialog.getSaveFileName(self, f"Export “{PLOTS[name]}”", start, EXPORT_FILTERS)
        if not path:
            return None
        path = Path(path)
        if path.suffix.lower() not in (".png", ".svg"):
            path = path.with_name(path.name + (".svg" if "svg" in chosen.lower() else ".png"))
            # The dialog confirmed the name typed, not this one: ask before replacing it.
            if path.exists() and QMessageBox.question(
                    self, "Replace file?", f"{path} already exists. Replace it?") != QMessageBox.Yes:
                return None
        self.last_folder = str(path.parent)
        try:
            return self.export(name, path)
        except (OSError, ValueError) as exc:
            QMessageBox.warning(self, "Plot not exported", str(exc))
            return None
