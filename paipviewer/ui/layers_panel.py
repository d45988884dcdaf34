"""Which overlays show for this kind of image, how (fill or outline, opacity), the threshold, and a
legend of what is on screen now, with the probability map's colour bar."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QImage, QPixmap
from PySide6.QtWidgets import (QCheckBox, QFormLayout, QGridLayout, QHBoxLayout, QLabel, QSlider, QVBoxLayout,
                               QWidget)

from paipviewer.viewer.layers import LEGEND_TEXT, PALETTE, LayerState, probability_colours

LAYER_TEXT = {"errors": "TP / FP / FN", "prediction": "Prediction", "truth": "Ground truth",
              "probability": "Probability map", "disagree": "Disagreement", "objects": "Nuclei as objects"}
LAYER_TIPS = {"objects": "Each nucleus the model found, matched with the true ones (IoU ≥ 0.5): matched, false "
                         "and missed nuclei, nucleus by nucleus (touching ones kept apart)"}
KIND_TEXT = {"annotated": "Layers for images with ground truth", "plain": "Layers for images without ground truth"}


def _swatch(rgb) -> QLabel:
    pix = QPixmap(14, 14)
    pix.fill(QColor(*rgb))
    label = QLabel()
    label.setPixmap(pix)
    return label


def _colour_bar(width: int = 160, height: int = 12) -> QLabel:
    ramp = np.ascontiguousarray(np.repeat(probability_colours(width)[None], height, axis=0))
    image = QImage(ramp.data, width, height, 3 * width, QImage.Format_RGB888).copy()
    label = QLabel()
    label.setPixmap(QPixmap.fromImage(image))
    return label


class LayersPanel(QWidget):
    layer_toggled = Signal(str, bool)
    opacity_changed = Signal(float)
    threshold_changed = Signal(float)

    def __init__(self, opacity: float, parent=None) -> None:
        super().__init__(parent)
        self.kind = QLabel()
        self.boxes: dict[str, QCheckBox] = {}
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.kind)
        switches = QGridLayout()  # two columns: the panel must fit a 768-pixel-high screen with the others
        for i, (name, text) in enumerate({**LAYER_TEXT, "outline": "Outline, not fill"}.items()):
            box = QCheckBox(text)
            box.setToolTip(LAYER_TIPS.get(name, ""))
            box.toggled.connect(lambda on, n=name: self.layer_toggled.emit(n, on))
            self.boxes[name] = box
            switches.addWidget(box, i // 2, i % 2)
        layout.addLayout(switches)
        self.outline = self.boxes["outline"]

        form = QFormLayout()
        self.opacity = QSlider(Qt.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(round(opacity * 100))
        self.opacity.valueChanged.connect(lambda v: self.opacity_changed.emit(v / 100))
        form.addRow("Opacity", self.opacity)
        self.threshold = QSlider(Qt.Horizontal)
        self.threshold.setRange(1, 99)
        self.threshold.setValue(50)
        self.threshold.setToolTip("Threshold of the model on the left. Each model starts at its card's "
                                  "(calibrated) threshold; a compared model keeps its own.")
        self.threshold_label = QLabel("0.50")
        self.threshold.valueChanged.connect(self._threshold)
        row = QHBoxLayout()
        row.addWidget(self.threshold, 1)
        row.addWidget(self.threshold_label)
        form.addRow("Threshold", row)
        layout.addLayout(form)

        self.legend = QGridLayout()
        self.legend.setVerticalSpacing(2)
        self.legend_rows: dict[str, tuple[QLabel, QLabel]] = {}
        for row_index, (key, text) in enumerate(LEGEND_TEXT.items()):
            swatch, label = _swatch(PALETTE[key]), QLabel(text)
            self.legend.addWidget(swatch, row_index, 0)
            self.legend.addWidget(label, row_index, 1)
            self.legend_rows[key] = (swatch, label)
        self.colour_bar = QWidget()
        bar = QHBoxLayout(self.colour_bar)
        bar.setContentsMargins(0, 0, 0, 0)
        bar.addWidget(QLabel("p 0"))
        bar.addWidget(_colour_bar())
        bar.addWidget(QLabel("1"))
        bar.addStretch(1)
        self.legend.addWidget(self.colour_bar, len(LEGEND_TEXT), 0, 1, 2)
        self.legend.setColumnStretch(1, 1)
        layout.addLayout(self.legend)
        layout.addStretch(1)

    def show_layers(self, state: LayerState, kind: str) -> None:
        """Show one kind of image's layer set without announcing it as the user's choice."""
        self.kind.setText(KIND_TEXT[kind])
        for name, box in self.boxes.items():
            box.blockSignals(True)
            box.setChecked(getattr(state, name))
            box.blockSignals(False)

    def show_legend(self, keys: list[str], probability: bool) -> None:
        """Only the colours that can be on screen now."""
        for key, widgets in self.legend_rows.items():
            for w in widgets:
                w.setVisible(key in keys)
        self.colour_bar.setVisible(probability)

    def legend_keys(self) -> list[str]:
        return [key for key, (swatch, _) in self.legend_rows.items() if not swatch.isHidden()]

    def toggle(self, name: str) -> None:
        self.boxes[name].toggle()

    def _threshold(self, value: int) -> None:
        self.threshold_label.setText(f"{value / 100:.2f}")
        self.threshold_changed.emit(value / 100)

    def set_threshold(self, value: float) -> None:
        self.threshold.setValue(round(value * 100))

    def show_threshold(self, value: float) -> None:
        """Show a model's threshold without announcing it as the user's choice."""
        self.threshold.blockSignals(True)
        self.threshold.setValue(round(value * 100))
        self.threshold.blockSignals(False)
        self.threshold_label.setText(f"{value:.2f}")
