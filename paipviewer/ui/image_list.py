"""The list of open images: one row per image with each model's figure, and a row per file that failed."""
from __future__ import annotations

from functools import cache

import qtawesome as qta
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QListWidget, QListWidgetItem

from paipviewer.viewer.images import ImageEntry, OpenFailure

KEY_ROLE = Qt.UserRole
ERROR_COLOR = "#d55e00"


@cache
def _icon(failed: bool):
    return qta.icon("mdi6.alert-circle", color=ERROR_COLOR) if failed else qta.icon("mdi6.image-outline")


class ImageList(QListWidget):
    key_selected = Signal(str)  # the user chose an image: another one, or the current one again

    def __init__(self) -> None:
        super().__init__()
        self.setMinimumWidth(200)
        self.setWordWrap(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self._items: dict[str, QListWidgetItem] = {}
        self.currentItemChanged.connect(self._selection)
        self.itemClicked.connect(lambda item: self._selection(item, None))  # clicking the selected row asks again

    def add_entry(self, entry: ImageEntry) -> None:
        item = QListWidgetItem(_icon(False), entry.name)
        item.setData(KEY_ROLE, entry.key)
        self._items[entry.key] = item
        self.addItem(item)

    def add_failure(self, failure: OpenFailure) -> None:
        """A file that could not be opened stays visible with its reason, and cannot be selected."""
        item = QListWidgetItem(_icon(True),
                               f"{failure.path.name}\n  {failure.reason.removeprefix(failure.path.name + ': ')}")
        item.setToolTip(f"{failure.path}\n{failure.reason.removeprefix(failure.path.name + ': ')}")
        item.setFlags(Qt.ItemIsEnabled)
        self.addItem(item)

    def clear_all(self) -> None:
        self.clear()
        self._items.clear()

    def item_of(self, key: str) -> QListWidgetItem | None:
        return self._items.get(key)

    def show_current(self, key: str) -> None:
        """Highlight an image chosen elsewhere (keys, code) without echoing it back as a selection."""
        item = self.item_of(key)
        if item is not None and self.currentItem() is not item:
            self.blockSignals(True)
            self.setCurrentItem(item)
            self.blockSignals(False)
        if item is not None:
            self.scrollToItem(item)

    def update_entry(self, key: str, lines: list[str], tooltip: str, failed: bool) -> None:
        item = self.item_of(key)
        if item is None:
            return
        text = "\n  ".join(lines)
        if item.text() != text:
            item.setText(text)
        item.setToolTip(tooltip)
        item.setIcon(_icon(failed))

    def _selection(self, item, _previous) -> None:
        key = item.data(KEY_ROLE) if item else None
        if key:
            self.key_selected.emit(key)
