"""The list of open images: one row per image with its scores, and a row per file that failed to open."""
from __future__ import annotations

import qtawesome as qta
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QListWidget, QListWidgetItem

from .session import ImageEntry, OpenFailure

KEY_ROLE = Qt.UserRole
ERROR_COLOR = "#d55e00"


class ImageList(QListWidget):
    key_selected = Signal(str)  # the user moved to another image

    def __init__(self) -> None:
        super().__init__()
        self.setMinimumWidth(300)
        self.setWordWrap(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.currentItemChanged.connect(self._selection)

    def add_entry(self, entry: ImageEntry) -> None:
        item = QListWidgetItem(qta.icon("mdi6.image-outline"), entry.name)
        item.setData(KEY_ROLE, entry.key)
        item.setToolTip(str(entry.path) + (f"\nground truth: {entry.mask_path}" if entry.mask_path else
                                           "\nno ground truth found"))
        self.addItem(item)

    def add_failure(self, failure: OpenFailure) -> None:
        """A file that could not be opened stays visible with its reason, and cannot be selected."""
        item = QListWidgetItem(qta.icon("mdi6.alert-circle", color=ERROR_COLOR),
                               f"{failure.path.name}\n  {failure.reason.removeprefix(failure.path.name + ': ')}")
        item.setToolTip(f"{failure.path}: {failure.reason}")
        item.setFlags(Qt.ItemIsEnabled)
        self.addItem(item)

    def item_of(self, key: str) -> QListWidgetItem | None:
        for row in range(self.count()):
            item = self.item(row)
            if item.data(KEY_ROLE) == key:
                return item
        return None

    def show_current(self, key: str) -> None:
        """Highlight an image chosen elsewhere (keys, code) without echoing it back as a selection."""
        item = self.item_of(key)
        if item is not None and self.currentItem() is not item:
            self.blockSignals(True)
            self.setCurrentItem(item)
            self.blockSignals(False)

    def update_entry(self, entry: ImageEntry, scores: list[str]) -> None:
        item = self.item_of(entry.key)
        if item is None:
            return
        if entry.error:
            item.setText(f"{entry.name}\n  {entry.error.removeprefix(entry.name + ': ')}")
            item.setToolTip(entry.error)
            item.setIcon(qta.icon("mdi6.alert-circle", color=ERROR_COLOR))
            return
        if entry.mask_error or (entry.loaded and entry.truth is None):
            scores = scores + ["no ground truth"]
        item.setText(entry.name + ("\n  " + " | ".join(scores) if scores else ""))

    def _selection(self, item, _previous) -> None:
        key = item.data(KEY_ROLE) if item else None
        if key:
            self.key_selected.emit(key)
