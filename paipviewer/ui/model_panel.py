"""Choosing the model (and a second one to compare) and seeing what each one is."""
from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QFormLayout, QGroupBox, QLabel

from .catalog import ModelCatalog

NO_MODEL = ""


class ModelPanel(QGroupBox):
    model_changed = Signal(str)     # model key
    compare_changed = Signal(str)   # model key, or "" for none

    def __init__(self, catalog: ModelCatalog, parent=None) -> None:
        super().__init__("Model", parent)
        self.catalog = catalog
        self.model_box = QComboBox()
        self.compare_box = QComboBox()
        self.info = QLabel()
        self.info.setWordWrap(True)
        self.compare_info = QLabel()
        self.compare_info.setWordWrap(True)
        form = QFormLayout(self)
        form.addRow("Model", self.model_box)
        form.addRow(self.info)
        form.addRow("Compare with", self.compare_box)
        form.addRow(self.compare_info)
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
                box.addItem(info.label, info.key)
                index = box.count() - 1
                if info.card is None:
                    box.model().item(index).setEnabled(False)
                    box.setItemData(index, info.error, 3)  # Qt.ToolTipRole
            found = box.findData(current or NO_MODEL)
            box.setCurrentIndex(max(found, 0))
            box.blockSignals(False)
        self._describe()

    def _describe(self) -> None:
        for box, label in ((self.model_box, self.info), (self.compare_box, self.compare_info)):
            info = self.catalog.find(box.currentData())
            label.setText(info.describe() if info else "")
            label.setVisible(info is not None)

    def current(self) -> str:
        return self.model_box.currentData() or NO_MODEL

    def compare(self) -> str:
        return self.compare_box.currentData() or NO_MODEL

    def select(self, key: str, compare: bool = False) -> None:
        box = self.compare_box if compare else self.model_box
        box.setCurrentIndex(max(box.findData(key), 0))
