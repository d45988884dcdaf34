"""Which overlays show, how (fill or outline, opacity), the threshold, and the colour legend."""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QPixmap
from PySide6.QtWidgets import QCheckBox, QFormLayout, QGridLayout, QGroupBox, QLabel, QSlider, QVBoxLayout

from .overlay_colors import LEGEND, PALETTE, LayerState

LAYER_TEXT = {"errors": "TP / FP / FN", "prediction": "Prediction", "truth": "Ground truth",
              "probability": "Probability map", "disagree": "Disagreement (compare)"}


def _swatch(rgb) -> QLabel:
    pix = QPixmap(14, 14)
    pix.fill(QColor(*rgb))
    label = QLabel()
    label.setPixmap(pix)
    return label


class LayersPanel(QGroupBox):
    layers_changed = Signal()
    opacity_changed = Signal(float)
    threshold_changed = Signal(float)

    def __init__(self, state: LayerState, opacity: float, parent=None) -> None:
        super().__init__("Layers", parent)
        self.state = state
        self.boxes: dict[str, QCheckBox] = {}
        layout = QVBoxLayout(self)
        for name, text in LAYER_TEXT.items():
            box = QCheckBox(text)
            box.setChecked(getattr(state, name))
            box.toggled.connect(lambda on, n=name: self._set(n, on))
            self.boxes[name] = box
            layout.addWidget(box)
        self.outline = QCheckBox("Outline instead of fill")
        self.outline.setChecked(state.outline)
        self.outline.toggled.connect(lambda on: self._set("outline", on))
        self.boxes["outline"] = self.outline
        layout.addWidget(self.outline)

        form = QFormLayout()
        self.opacity = QSlider(Qt.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(round(opacity * 100))
        self.opacity.setTracking(True)  # live while dragging
        self.opacity.valueChanged.connect(lambda v: self.opacity_changed.emit(v / 100))
        form.addRow("Opacity", self.opacity)
        self.threshold = QSlider(Qt.Horizontal)
        self.threshold.setRange(1, 99)
        self.threshold.setValue(50)
        self.threshold.setToolTip("Threshold of the model on the left. Each model starts at its card's "
                                  "(calibrated) threshold; a compared model keeps its own.")
        self.threshold_label = QLabel("0.50")
        self.threshold.valueChanged.connect(self._threshold)
        form.addRow("Threshold", self.threshold)
        form.addRow("", self.threshold_label)
        layout.addLayout(form)

        legend = QGridLayout()
        for row, (key, text) in enumerate(LEGEND):
            legend.addWidget(_swatch(PALETTE[key]), row, 0)
            legend.addWidget(QLabel(text), row, 1)
        legend.setColumnStretch(1, 1)
        layout.addLayout(legend)

    def _set(self, name: str, on: bool) -> None:
        setattr(self.state, name, on)
        self.layers_changed.emit()

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
