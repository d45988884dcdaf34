"""The one table of keyboard shortcuts: the window binds from it and the help dialog lists it."""
from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QTableWidget, QTableWidgetItem, QVBoxLayout


@dataclass(frozen=True)
class Shortcut:
    action: str  # name of the window's action
    key: str     # QKeySequence text
    text: str


SHORTCUTS = (
    Shortcut("open_files", "Ctrl+O", "Open images or model files"),
    Shortcut("open_folder", "Ctrl+Shift+O", "Open a folder of images"),
    Shortcut("next_image", "PgDown", "Next image"),
    Shortcut("previous_image", "PgUp", "Previous image"),
    Shortcut("toggle_errors", "1", "Show/hide TP/FP/FN"),
    Shortcut("toggle_prediction", "2", "Show/hide prediction"),
    Shortcut("toggle_truth", "3", "Show/hide ground truth"),
    Shortcut("toggle_probability", "4", "Show/hide probability map"),
    Shortcut("toggle_disagree", "5", "Show/hide where the two models disagree"),
    Shortcut("toggle_objects", "6", "Show/hide nuclei as objects: matched, false and missed"),
    Shortcut("toggle_outline", "O", "Outline or fill the masks"),
    Shortcut("fit", "F", "Zoom to fit"),
    Shortcut("zoom_100", "Ctrl+1", "Zoom to 100% (one image pixel per screen pixel)"),
    Shortcut("cancel", "Esc", "Stop: this image and background scoring, until asked again"),
    Shortcut("run_again", "R", "Run again after a stop"),
    Shortcut("problems", "Ctrl+E", "Show the list of problems"),
    Shortcut("shortcuts", "F1", "This list of shortcuts"),
)


class ShortcutsDialog(QDialog):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        table = QTableWidget(len(SHORTCUTS), 2, self)
        table.setHorizontalHeaderLabels(["Key", "Action"])
        table.verticalHeader().hide()
        for row, s in enumerate(SHORTCUTS):
            table.setItem(row, 0, QTableWidgetItem(s.key))
            table.setItem(row, 1, QTableWidgetItem(s.text))
        table.resizeColumnsToContents()
        table.horizontalHeader().setStretchLastSection(True)
        self.table = table
        buttons = QDialogButtonBox(QDialogButtonBox.Close, self)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(table)
        layout.addWidget(buttons)
        table.setEditTriggers(QTableWidget.NoEditTriggers)
        table.resizeRowsToContents()
        self.resize(460, 40 + sum(table.rowHeight(r) for r in range(table.rowCount())) + 80)
