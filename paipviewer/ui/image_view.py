"""One image with its probability map and mask overlay in a zoomable, pannable pyqtgraph view."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Signal

from .scale_bar import MicronScaleBar

pg.setConfigOptions(imageAxisOrder="row-major", antialias=False)

MIN_RANGE_PX = 16
EMPTY_SIDE_PX = 4096  # zoom limits before an image has arrived


class ImageView(pg.GraphicsLayoutWidget):
    hovered = Signal(int, int)   # image pixel (x, y) under the cursor
    left = Signal()              # the cursor left the image
    zoom_changed = Signal(float)  # screen pixels per image pixel

    def __init__(self, title: str = "", parent=None) -> None:
        super().__init__(parent=parent)
        self.setBackground("#202020")
        self.title = self.addLabel(title, row=0, col=0, color="#dddddd")
        self.viewbox: pg.ViewBox = self.addViewBox(row=1, col=0, lockAspect=True, invertY=True,
                                                   enableMenu=False)
        self.image_item = pg.ImageItem(axisOrder="row-major")
        self.probability_item = pg.ImageItem(axisOrder="row-major")
        self.overlay_item = pg.ImageItem(axisOrder="row-major")
        for z, item in enumerate((self.image_item, self.probability_item, self.overlay_item)):
            item.setZValue(z)
            self.viewbox.addItem(item)
        self.message = pg.TextItem("", color="#ffcc66", anchor=(0.5, 0.5), fill=(0, 0, 0, 170))
        self.message.setZValue(3)
        self.viewbox.addItem(self.message)
        self.scale_bar = MicronScaleBar()
        self.scale_bar.setParentItem(self.viewbox)
        self.image_shape: tuple[int, int] | None = None
        self._linked: ImageView | None = None
        self._following = False
        self._limit_zoom()
        self.viewbox.sigRangeChanged.connect(lambda *_: self.zoom_changed.emit(self.zoom()))
        self.scene().sigMouseMoved.connect(self._mouse_moved)

    def set_title(self, text: str) -> None:
        self.title.setText(text)

    def set_mpp(self, mpp: float | None) -> None:
        """The image's microns per pixel, for the scale bar (None: unknown, no bar)."""
        self.scale_bar.set_mpp(mpp)

    def set_image(self, image: np.ndarray | None) -> None:
        """Show a new RGB image (or nothing); the overlays are cleared since they belonged to the last one."""
        self.set_overlay(None)
        self.set_probability(None)
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
            self.overlay_item.clear()
        else:
            self.overlay_item.setImage(rgba, levels=None, autoLevels=False)

    def set_probability(self, rgba: np.ndarray | None) -> None:
        if rgba is None:
            self.probability_item.clear()
        else:
            self.probability_item.setImage(rgba, levels=None, autoLevels=False)

    def set_opacity(self, value: float) -> None:
        self.overlay_item.setOpacity(value)
        self.probability_item.setOpacity(value)

    def show_message(self, text: str) -> None:
        self.message.setText(text)
        self.message.setVisible(bool(text))  # an empty message would still draw its backing box
        if self.image_shape:
            h, w = self.image_shape
            self.message.setPos(w / 2, h / 2)

    def message_text(self) -> str:
        return self.message.textItem.toPlainText()

    def fit(self) -> None:
        if self.image_shape:
            h, w = self.image_shape
            self.viewbox.setRange(xRange=(0, w), yRange=(0, h), padding=0.02)

    def zoom(self) -> float:
        """Screen pixels per image pixel (1.0 is 100%)."""
        (x0, x1), _ = self.viewbox.viewRange()
        width = self.viewbox.width()
        return width / (x1 - x0) if x1 > x0 and width > 0 else 0.0

    def zoom_to(self, factor: float) -> None:
        """Show image pixels at ``factor`` screen pixels each, about the centre of the view."""
        (x0, x1), (y0, y1) = self.viewbox.viewRange()
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        half_w = self.viewbox.width() / factor / 2
        half_h = self.viewbox.height() / factor / 2
        self.viewbox.setRange(xRange=(cx - half_w, cx + half_w), yRange=(cy - half_h, cy + half_h), padding=0)

    def _mouse_moved(self, pos) -> None:
        if self.image_shape is None or not self.viewbox.sceneBoundingRect().contains(pos):
            self.left.emit()
            return
        point = self.viewbox.mapSceneToView(pos)
        x, y = int(np.floor(point.x())), int(np.floor(point.y()))
        h, w = self.image_shape
        if 0 <= x < w and 0 <= y < h:
            self.hovered.emit(x, y)
        else:
            self.left.emit()

    def link_to(self, other: "ImageView") -> None:
        """Both views show the same centre at the same zoom, whichever moves. Not pyqtgraph's
        setXLink/setYLink: with the aspect locked, views of different heights then disagree."""
        self.unlink()
        self._linked = other
        other._linked = self
        self.viewbox.sigRangeChanged.connect(self._lead)
        other.viewbox.sigRangeChanged.connect(other._lead)

    def unlink(self) -> None:
        other = self._linked
        for view in (self, other):
            if view is not None and view._linked is not None:
                view.viewbox.sigRangeChanged.disconnect(view._lead)
                view._linked = None

    def _lead(self, *_) -> None:
        other = self._linked
        if other is None or self._following:
            return
        zoom = self.zoom()
        if zoom <= 0:
            return
        (x0, x1), (y0, y1) = self.viewbox.viewRange()
        half_w, half_h = other.viewbox.width() / zoom / 2, other.viewbox.height() / zoom / 2
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        other._following = True
        try:
            other.viewbox.setRange(xRange=(cx - half_w, cx + half_w), yRange=(cy - half_h, cy + half_h), padding=0)
        finally:
            other._following = False

    def has_overlay(self) -> bool:
        return self.overlay_item.image is not None

    def overlay_array(self) -> np.ndarray | None:
        return self.overlay_item.image

    def probability_array(self) -> np.ndarray | None:
        return self.probability_item.image

    def keyPressEvent(self, event) -> None:  # keys belong to the window's shortcuts, not pyqtgraph
        event.ignore()
