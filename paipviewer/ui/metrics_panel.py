"""Scores and timings of the current image, one column per model, and the summary over all open images."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHeaderView, QLabel, QSizePolicy, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget

from paipviewer.viewer.describe import METRIC_ROWS


class MetricsPanel(QWidget):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.table = QTableWidget(len(METRIC_ROWS), 2)
        self.table.setVerticalHeaderLabels([r[0] for r in METRIC_ROWS])
        self.table.setEditTriggers(QTableWidget.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.Stretch)
        self.table.setVerticalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextSelectableByMouse)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.table)
        layout.addWidget(self.summary)
        layout.addStretch(1)
        for column in (0, 1):
            self.show_column(column, "", {})
        self.set_columns(1)
        self.table.resizeRowsToContents()
        rows = sum(self.table.rowHeight(r) for r in range(len(METRIC_ROWS)))
        # Every row always shows: the dock scrolls if the screen is short, the table never clips.
        self.table.setFixedHeight(rows + self.table.horizontalHeader().height() + 2 * self.table.frameWidth())
        self.table.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)

    def show_column(self, column: int, title: str, values: dict[str, str]) -> None:
        header = self.table.horizontalHeaderItem(column)
        if header is None or header.text() != (title or "—"):
            self.table.setHorizontalHeaderItem(column, QTableWidgetItem(title or "—"))
        for row, (_, key) in enumerate(METRIC_ROWS):
            text = values.get(key, "")
            item = self.table.item(row, column)
            if item is None:
                item = QTableWidgetItem(text)
                self.table.setItem(row, column, item)
            elif item.text() != text:
                item.setText(text)
            item.setToolTip(text)  # a narrow dock may elide a long value; hovering shows it whole

    def set_columns(self, count: int) -> None:
        self.table.setColumnHidden(1, count < 2)

    def value(self, column: int, key: str) -> str:
        row = [r[1] for r in METRIC_ROWS].index(key)
        item = self.table.item(row, column)
        return item.text() if item else ""

    def show_summary(self, lines: list[str]) -> None:
        self.summary.setText("All open images:\n" + "\n".join(lines) if lines else "")
