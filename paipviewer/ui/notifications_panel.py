"""Every problem since the app started, with file, reason and time; newest first, none overwritten."""
from __future__ import annotations

import time

from PySide6.QtWidgets import QHeaderView, QTreeWidget, QTreeWidgetItem

from paipviewer.viewer.session import Notice


class NotificationsPanel(QTreeWidget):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setHeaderLabels(["Time", "File", "Problem"])
        self.setRootIsDecorated(False)
        self.setWordWrap(True)
        self.setAlternatingRowColors(True)
        header = self.header()
        header.setSectionResizeMode(0, QHeaderView.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.Interactive)
        header.setStretchLastSection(True)
        self.setColumnWidth(1, 260)

    def add(self, notice: Notice) -> None:
        item = QTreeWidgetItem([time.strftime("%H:%M:%S", time.localtime(notice.when)), notice.source or "—",
                                notice.message])
        item.setToolTip(1, notice.path or notice.source)
        item.setToolTip(2, notice.message)
        self.insertTopLevelItem(0, item)

    def messages(self) -> list[str]:
        return [self.topLevelItem(i).text(2) for i in range(self.topLevelItemCount())]
