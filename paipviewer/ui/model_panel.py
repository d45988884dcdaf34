"""Choosing the model (and a second one to compare) and seeing what each one is."""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from paipviewer.viewer.catalog import ModelCatalog

NO_MODEL = ""


class ModelPanel(QWidget):
    """The two model choosers, in a row for the toolbar; :attr:`details` shows what each model is
    (a short card, the whole card as its tooltip) in a dock of its own."""

    model_changed = Signal(str)     # model key
    compare_changed = Signal(str)   # model key, or "" for none

    def __init__(self, catalog: ModelCatalog, parent=None) -> None:
        super().__init__(parent)
        self.catalog = catalog
        self.model_box = QComboBox()
        self.compare_box = QComboBox()
        for box in (self.model_box, self.compare_box):
            box.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
            box.setMinimumContentsLength(18)
        row = QHBoxLayout(self)
        row.setContentsMargins(6, 0, 6, 0)
        for text, box in (("Model", self.model_box), ("Compare with", self.compare_box)):
            row.addWidget(QLabel(text))
            row.addWidget(box)
            row.addSpacing(8)
        self.details = QWidget()
        self.info = QLabel()
        self.compare_info = QLabel()
        column = QVBoxLayout(self.details)
        column.setContentsMargins(4, 4, 4, 4)
        for label in (self.info, self.compare_info):
            label.setWordWrap(True)
            label.setTextInteractionFlags(Qt.TextSelectableByMouse)
            column.addWidget(label)
        column.addStretch(1)
        self.model_box.currentIndexChanged.connect(lambda _: self._emit(self.model_box, self.model_changed))
        self.compare_box.currentIndexChanged.connect(lambda _: self._emit(self.compare_box, self.compare_changed))

    def _emit(self, box: QComboBox, signal) -> None:
        self._describe()
        signal.emit(box.currentData() or NO_MODEL)

    def refresh(self, model: str | None, compare: str | None) -> None:
        """Refill both lists from the catalog and select ``model``/``compare`` without emitting."""
        for box, current, blank in ((self.model_box, model, False), (self.compare_box, compare, True)):
            box.blockSignals(True)
            box.clear()
            if blank:
                box.addItem("— none —", NO_MODEL)
            for info in self.catalog.models:
                if blank and info.key == model:
                    continue  # a model is never compared with itself
                box.addItem(info.label, info.key)
                index = box.count() - 1
                if info.card is None:
                    box.model().item(index).setEnabled(info.needs_card)  # a card-less model can be set up
                    box.setItemData(index, info.error, 3)  # Qt.ToolTipRole
            found = box.findData(current or NO_MODEL)
            box.setCurrentIndex(max(found, 0))
            box.blockSignals(False)
        self._describe()

    def _describe(self) -> None:
        for box, label in ((self.model_box, self.info), (self.compare_box, self.compare_info)):
            info = self.catalog.find(box.currentData())
            name = info.card.label if info is not None and info.card is not None else ""
            label.setText(f"<b>{name}</b><br>" + info.brief().replace("\n", "<br>") if info else "")
            label.setToolTip(info.describe() if info else "")
            box.setToolTip(info.describe() if info else "")
            label.setVisible(info is not None)

    def current(self) -> str:
        return self.model_box.currentData() or NO_MODEL

    def compare(self) -> str:
        return self.compare_box.currentData() or NO_MODEL

    def select(self, key: str, compare: bool = False) -> None:
        box = self.compare_box if compare else self.model_box
        box.setCurrentIndex(max(box.findData(key), 0))
