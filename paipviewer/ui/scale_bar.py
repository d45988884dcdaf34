"""A scale bar in microns that keeps a round length near 120 screen pixels at every zoom."""
from __future__ import annotations

import pyqtgraph as pg

from paipviewer.viewer.pyramid import scale_bar_length

TARGET_PX = 120


class MicronScaleBar(pg.ScaleBar):
    """pyqtgraph's bar, its length chosen from the pixel size and the zoom; hidden while the pixel
    size is unknown (a bar in pixels would pass for microns)."""

    def __init__(self) -> None:
        super().__init__(size=1, width=6, brush="w", pen=pg.mkPen("k"), suffix="", offset=(-20, -20))
        self.mpp: float | None = None
        self.label = ""
        self.text.setColor("w")
        self.text.fill = pg.mkBrush(0, 0, 0, 150)
        self.setVisible(False)

    def set_mpp(self, mpp: float | None) -> None:
        self.mpp = mpp
        self.setVisible(bool(mpp))
        self.updateBar()

    def updateBar(self) -> None:
        view = self.parentItem()
        if view is None or not self.mpp:
            return
        (x0, x1), _ = view.viewRange()
        width = view.width()
        if x1 <= x0 or width <= 0:
            return
        self.size, self.label = scale_bar_length(self.mpp, width / (x1 - x0), TARGET_PX)
        self.text.setText(self.label)
        super().updateBar()
