"""The Results dock: a sortable row per open image with both models' pixel and nucleus scores, a
footer under the same columns (mean per image, pooled or total), a line comparing the two models,
and Score all / Score folder buttons. The rows and words come from :mod:`paipviewer.viewer.results`."""
from __future__ import annotations

import qtawesome as qta
from PySide6.QtCore import QAbstractTableModel, QModelIndex, QSortFilterProxyModel, Qt, Signal
from PySide6.QtWidgets import (QAbstractItemView, QHBoxLayout, QHeaderView, QLabel, QTableView, QToolButton,
                               QVBoxLayout, QWidget)

from paipviewer.viewer import results
from paipviewer.viewer.session import Session

SORT_ROLE = Qt.UserRole + 1
KEY_ROLE = Qt.UserRole + 2


class ResultsModel(QAbstractTableModel):
    """The table as Qt sees it: display text, a sort value (numbers sort as numbers; pending, failed
    and missing figures last) and each row's image key."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.columns: list[results.Column] = []
        self.rows: list[results.Row] = []

    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.columns)

    def data(self, index, role=Qt.DisplayRole):
        if not index.isValid():
            return None
        row, column = self.rows[index.row()], self.columns[index.column()]
        cell = row.cells.get(column.key)
        if role == Qt.DisplayRole:
            return cell.text if cell is not None else ""
        if role == SORT_ROLE:
            return cell.value if cell is not None else None
        if role == KEY_ROLE:
            return row.key
        if role == Qt.TextAlignmentRole:
            return int((Qt.AlignLeft if column.kind == "text" else Qt.AlignRight) | Qt.AlignVCenter)
        if role == Qt.ToolTipRole:
            return row.name if column.key == "image" else column.tip
        return None

    def headerData(self, section, orientation, role=Qt.DisplayRole):
        if orientation != Qt.Horizontal or not 0 <= section < len(self.columns):
            return None
        if role == Qt.DisplayRole:
            return self.columns[section].title
        if role == Qt.ToolTipRole:
            return self.columns[section].tip
        return None

    def update(self, columns: list[results.Column], rows: list[results.Row]) -> None:
        """New figures: in place when the same images and columns remain (selection, scroll and
        sorting stay), else a reset."""
        if columns == self.columns and [r.key for r in rows] == [r.key for r in self.rows]:
            self.rows = rows
            if rows and columns:
                self.dataChanged.emit(self.index(0, 0), self.index(len(rows) - 1, len(columns) - 1))
            return
        self.beginResetModel()
        self.columns, self.rows = columns, rows
        self.endResetModel()

    def update_row(self, row: results.Row) -> None:
        for i, r in enumerate(self.rows):
            if r.key == row.key:
                self.rows[i] = row
                self.dataChanged.emit(self.index(i, 0), self.index(i, len(self.columns) - 1))
                return


class SortProxy(QSortFilterProxyModel):
    """Numbers sort as numbers and text as text; a missing figure sorts after every number, whichever way."""

    def lessThan(self, left, right) -> bool:
        a, b = left.data(SORT_ROLE), right.data(SORT_ROLE)
        if a is None or b is None:
            descending = self.sortOrder() == Qt.DescendingOrder
            # None is "greater" ascending and "smaller" descending: last in both.
            return (a is not None and b is None) != descending if a is not b else False
        return a < b


class ResultsPanel(QWidget):
    image_chosen = Signal(str)       # a row was clicked: make its image current
    score_all = Signal()
    score_folder = Signal()

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.model = ResultsModel(self)
        self.proxy = SortProxy(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(SORT_ROLE)
        self.proxy.setDynamicSortFilter(True)
        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(-1, Qt.AscendingOrder)  # the images' own order until a header is clicked
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.setTextElideMode(Qt.ElideMiddle)  # image names differ at their ends
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 6)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.Interactive)
        header.setDefaultAlignment(Qt.AlignCenter)
        header.setHighlightSections(False)
        self.table.clicked.connect(self._clicked)
        self.table.activated.connect(self._clicked)

        # The footer: the same columns, two rows that stay in view whatever the table scrolls to.
        self.footer_model = ResultsModel(self)
        self.footer = QTableView()
        self.footer.setModel(self.footer_model)
        self.footer.horizontalHeader().hide()
        self.footer.verticalHeader().hide()
        self.footer.verticalHeader().setDefaultSectionSize(self.table.verticalHeader().defaultSectionSize())
        self.footer.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.footer.setVerticalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.footer.setSelectionMode(QAbstractItemView.NoSelection)
        self.footer.setFocusPolicy(Qt.NoFocus)
        self.footer.setTextElideMode(Qt.ElideRight)
        self.footer.setStyleSheet("QTableView { background: palette(alternate-base); font-weight: bold; }")
        self.footer.setFixedHeight(2 * self.footer.verticalHeader().defaultSectionSize() + 2 * self.footer.frameWidth())
        header.sectionResized.connect(lambda i, _, size: self.footer.setColumnWidth(i, size))
        self.table.horizontalScrollBar().valueChanged.connect(self.footer.horizontalScrollBar().setValue)

        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.score_all_button = QToolButton()
        self.score_all_button.setIcon(qta.icon("mdi6.playlist-play"))
        self.score_all_button.setText("Score all")
        self.score_all_button.setToolTip("Score every open image with both models in the background (Stop stops it)")
        self.score_all_button.clicked.connect(self.score_all)
        self.score_folder_button = QToolButton()
        self.score_folder_button.setIcon(qta.icon("mdi6.folder-play-outline"))
        self.score_folder_button.setText("Score folder…")
        self.score_folder_button.setToolTip("Open a folder of images and score all of them")
        self.score_folder_button.clicked.connect(self.score_folder)
        for button in (self.score_all_button, self.score_folder_button):
            button.setToolButtonStyle(Qt.ToolButtonTextBesideIcon)
        footer = QHBoxLayout()
        footer.addWidget(self.summary, 1)
        footer.addWidget(self.score_all_button, 0, Qt.AlignTop)
        footer.addWidget(self.score_folder_button, 0, Qt.AlignTop)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(2)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.footer)
        layout.addLayout(footer)
        self._sized = False
        self._syncing = False

    # ---------------------------------------------------------------- from the state
    def refresh(self, session: Session) -> None:
        """Every row and the summary from the state now."""
        columns = results.columns(session)
        new_columns = columns != self.model.columns
        self.model.update(columns, results.rows(session))
        if new_columns or not self._sized:
            self._size_columns()
        self._refresh_summary(session)

    def refresh_rows(self, session: Session, keys) -> None:
        """Only these images' rows (each finished job changes one image), and the summary."""
        for key in keys:
            entry = session.find(key)
            if entry is not None:
                self.model.update_row(results.row(session, entry))
        if not self._sized and self.model.rows:
            self._size_columns()
        self._refresh_summary(session)

    def _refresh_summary(self, session: Session) -> None:
        summary = results.summarize(session)
        self.footer_model.update(self.model.columns, results.summary_rows(session, summary))
        for i in range(len(self.model.columns)):  # a reset of the footer forgets its widths
            if self.footer.columnWidth(i) != self.table.columnWidth(i):
                self.footer.setColumnWidth(i, self.table.columnWidth(i))
        self.summary.setText("\n".join(results.comparison_lines(session, summary)))
        words = "\n".join(results.summary_lines(session, summary))
        self.summary.setToolTip(words)
        self.footer.setToolTip(words)
        self.show_current(session.current_key)

    def _size_columns(self) -> None:
        header = self.table.horizontalHeader()
        metrics = self.fontMetrics()
        for i, column in enumerate(self.model.columns):
            if column.kind == "text":
                width = metrics.horizontalAdvance("TCGA-2Z-A9J9-01A-01-TS1_y496_x000") + 16
            else:
                lines = column.title.split("\n")
                width = max(metrics.horizontalAdvance(line) for line in lines + ["0.000 "]) + 14
            header.resizeSection(i, width)
        self._sized = bool(self.model.rows)

    def show_current(self, key: str | None) -> None:
        """Select the current image's row (without choosing it again)."""
        self._syncing = True
        try:
            for r in range(self.proxy.rowCount()):
                index = self.proxy.index(r, 0)
                if index.data(KEY_ROLE) == key:
                    if self.table.currentIndex().row() != r:
                        self.table.selectRow(r)
                    break
            else:
                self.table.clearSelection()
        finally:
            self._syncing = False

    # ---------------------------------------------------------------- for the window and tests
    def _clicked(self, index) -> None:
        if not self._syncing and index.isValid():
            self.image_chosen.emit(index.data(KEY_ROLE))

    def row_keys(self) -> list[str]:
        """The image keys in the order the table shows them (sorted as the user chose)."""
        return [self.proxy.index(r, 0).data(KEY_ROLE) for r in range(self.proxy.rowCount())]

    def text(self, key: str, column: str) -> str:
        """What the table shows in an image's row under a column key."""
        c = next(i for i, col in enumerate(self.model.columns) if col.key == column)
        r = next(i for i, row in enumerate(self.model.rows) if row.key == key)
        return self.model.index(r, c).data()

    def column_index(self, key: str) -> int:
        return next(i for i, col in enumerate(self.model.columns) if col.key == key)
