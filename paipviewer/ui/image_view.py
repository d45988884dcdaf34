"""One image with its overlay in a zoomable, pannable pyqtgraph view."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg

pg.setConfigOptions(imageAxisOrder="row-major", antialias=False)

MIN_RANGE_PX = 16
EMPTY_SIDE_PX = 4096  # zoom limits before an image has arrived


class ImageView(pg.GraphicsLayoutWidget):
    def __init__(self, title: str = "", parent=None) -> None:
        super().__init__(parent=parent)
        self.setBackground("#202020")
        self.title = self.addLabel(title, row=0, col=0, color="#dddddd")
        self.viewbox: pg.ViewBox = self.addViewBox(row=1, col=0, lockAspect=True, invertY=True,
                                                   enableMenu=False)
        self.image_item = pg.ImageItem(axisOrder="row-major")
        self.overlay_item = pg.ImageItem(axisOrder="row-major")
        self.overlay_item.setZValue(1)
        self.viewbox.addItem(self.image_item)
        self.viewbox.addItem(self.overlay_item)
        self.message = pg.TextItem("", color="#ffcc66", anchor=(0.5, 0.5))
        self.message.setZValue(2)
        self.viewbox.addItem(self.message)
        self.image_shape: tuple[int, int] | None = None
        self._limit_zoom()

    def set_title(self, text: str) -> None:
        self.title.setText(text)

    def set_image(self, image: np.ndarray | None) -> None:
        """Show a new RGB image (or nothing); the overlay is cleared since it belonged to the last one."""
        self.clear_overlay()
        if image is None:
            self.image_item.clear()
            self.image_shape = None
            return
        new_shape = image.shape[:2]
        self.image_item.setImage(image, levels=(0, 255), autoLevels=False)
        if new_shape != self.image_shape:
            self.image_shape = new_shape
            self._limit_zoom()
            self.fit()

    def _limit_zoom(self) -> None:
        """Zoom in to 16 image pixels across and out to ten images' width: unbounded wheel zooming
        runs into floating-point ranges pyqtgraph rejects ("Cannot set range [nan, nan]")."""
        side = 10 * max(self.image_shape or (EMPTY_SIDE_PX,))
        self.viewbox.setLimits(minXRange=MIN_RANGE_PX, minYRange=MIN_RANGE_PX, maxXRange=side, maxYRange=side)

    def set_overlay(self, rgba: np.ndarray | None) -> None:
        if rgba is None:
            self.clear_overlay()
        else:
            self.overlay_item.setImage(rgba, levels=(0, 255), autoLevels=False)

    def clear_overlay(self) -> None:
        self.overlay_item.clear()

    def set_opacity(self, value: float) -> None:
        self.overlay_item.setOpacity(value)

    def show_message(self, text: str) -> None:
        self.message.setText(text)
        if self.image_shape:
            h, w = self.image_shape
            self.message.setPos(w / 2, h / 2)

    def fit(self) -> None:
        if self.image_shape:
            h, w = self.image_shape
            self.viewbox.setRange(xRange=(0, w), yRange=(0, h), padding=0.02)

    def link_to(self, other: "ImageView") -> None:
        self.viewbox.setXLink(other.viewbox)
        self.viewbox.setYLink(other.viewbox)

    def unlink(self) -> None:
        self.viewbox.setXLink(None)
        self.viewbox.setYLink(None)

    def has_overlay(self) -> bool:
        return self.overlay_item.image is not None

    def overlay_array(self) -> np.ndarray | None:
        return self.overlay_item.image

    def keyPressEvent(self, event) -> None:  # keys belong to the window's shortcuts, not pyqtgraph
        event.ignore()
