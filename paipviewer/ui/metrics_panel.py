"""Scores and timings of the current image, per model, and the summary over all open images."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QGroupBox, QLabel, QTableWidget, QTableWidgetItem, QVBoxLayout

from paipviewer.core.metrics import Confusion

ROWS = (("Jaccard", "jaccard"), ("Dice", "dice"), ("Precision", "precision"), ("Recall", "recall"),
        ("TP pixels", "tp"), ("FP pixels", "fp"), ("FN pixels", "fn"),
        ("Model load (s)", "model_load"), ("Preprocess (s)", "preprocess"),
        ("Inference (s)", "inference"), ("Total (s)", "total"))


class MetricsPanel(QGroupBox):
    def __init__(self, parent=None) -> None:
        super().__init__("Metrics", parent)
        self.table = QTableWidget(len(ROWS), 2)
        self.table.setVerticalHeaderLabels([r[0] for r in ROWS])
        self.table.setEditTriggers(QTableWidget.NoEditTriggers)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addWidget(self.summary)
        self.show_column(0, "", None, None)
        self.show_column(1, "", None, None)
        self.set_columns(1)
        self.table.resizeRowsToContents()
        rows = sum(self.table.rowHeight(r) for r in range(len(ROWS)))
        self.table.setFixedHeight(rows + self.table.horizontalHeader().height() + 4)
        self.table.setVerticalScrollBarPolicy(Qt.ScrollBarAlwaysOff)

    def show_column(self, column: int, title: str, scores: Confusion | None, timing: dict | None,
                    note: str = "") -> None:
        self.table.setHorizontalHeaderItem(column, QTableWidgetItem(title or "—"))
        values = scores.as_dict() if scores else {}
        for row, (_, key) in enumerate(ROWS):
            if key in values:
                v = values[key]
                text = f"{v:,}" if isinstance(v, int) else f"{v:.3f}"
            elif timing and key in timing:
                text = f"{timing[key]:.2f}"
            else:
                text = note if row == 0 else ""
            self.table.setItem(row, column, QTableWidgetItem(text))

    def set_columns(self, count: int) -> None:
        self.table.setColumnHidden(1, count < 2)

    def value(self, column: int, key: str) -> str:
        row = [r[1] for r in ROWS].index(key)
        item = self.table.item(row, column)
        return item.text() if item else ""

    def show_summary(self, lines: list[str]) -> None:
        self.summary.setText("\n".join(lines))
