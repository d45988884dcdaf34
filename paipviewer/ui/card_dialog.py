"""Bring your own model: how to feed a Keras file that came without a card, chosen by the user."""
from __future__ import annotations

from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFormLayout, QLabel,
                               QVBoxLayout)

from paipviewer.core.modelfile import DEFAULT_THRESHOLD, card_path, custom_card
from paipviewer.core.preprocess import DEFAULT_EQUALIZE, EQUALIZE_MODES

EQUALIZE_TEXT = {"rgb": "Histogram equalisation per RGB channel (as the study)",
                 "luma": "Equalise brightness only (keeps colours)",
                 "clahe": "Local contrast equalisation (CLAHE) of brightness",
                 "none": "None: the model takes pixels as they are (scaled to 0..1)"}


class CardDialog(QDialog):
    """Asks for preprocessing and threshold; the shapes are checked when the model loads."""

    def __init__(self, model_path, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Use {model_path.name}")
        intro = QLabel(f"<b>{model_path.name}</b> has no model card. Say how it was trained to see its input, and "
                       "where to cut its output into a mask. Its input and output shapes are checked when it loads "
                       "(RGB tiles in, one channel of the same size out).")
        intro.setWordWrap(True)
        self.equalize = QComboBox()
        for mode in EQUALIZE_MODES:
            self.equalize.addItem(EQUALIZE_TEXT.get(mode, mode), mode)
        self.equalize.setCurrentIndex(max(self.equalize.findData(DEFAULT_EQUALIZE), 0))
        self.threshold = QDoubleSpinBox()
        self.threshold.setRange(0.01, 0.99)
        self.threshold.setSingleStep(0.01)
        self.threshold.setDecimals(2)
        self.threshold.setValue(DEFAULT_THRESHOLD)
        self.save = QCheckBox(f"Save these as {card_path(model_path).name} beside the model")
        self.save.setChecked(False)
        form = QFormLayout()
        form.addRow("Preprocessing", self.equalize)
        form.addRow("Threshold", self.threshold)
        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(form)
        layout.addWidget(self.save)
        layout.addWidget(buttons)

    def card(self):
        return custom_card(self.equalize.currentData(), round(self.threshold.value(), 2))
