"""A whole slide in a zoomable view: the pyramid streamed tile by tile off the UI thread, at the level
that fits the zoom, over a low-resolution backdrop, with the model's overlay and a scale bar."""
from __future__ import annotations

import math
import threading
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, QRectF, QTimer, Signal

from paipviewer.core.slides import Slide
from paipviewer.viewer.layers import LayerState, compose
from paipviewer.viewer.pyramid import TileCache, TileKey, TileSpec, tiles_for_view

from .scale_bar import MicronScaleBar

SETTLE_MS = 40
BACKDROP_SIDE = 2048


class _TileSignals(QObject):
    loaded = Signal(object, object)  # TileSpec, RGB array


class SlideView(pg.GraphicsLayoutWidget):
    viewport_changed = Signal(float, float, float, float)  # level-0 x, y, w, h on screen

    def __init__(self, parent=None) -> None:
        super().__init__(parent=parent)
        self.setBackground("#202020")
        self.title = self.addLabel("", row=0, col=0, color="#dddddd")
        self.viewbox: pg.ViewBox = self.addViewBox(row=1, col=0, lockAspect=True, invertY=True, enableMenu=False)
        self.backdrop = pg.ImageItem(axisOrder="row-major")
        self.backdrop.setZValue(0)
        self.viewbox.addItem(self.backdrop)
        self.scale_bar = MicronScaleBar()
        self.scale_bar.setParentItem(self.viewbox)
        self.slide: Slide | None = None
        self.cache = TileCache()
        self.items: dict[TileKey, pg.ImageItem] = {}
        self.overlay_items: dict[TileKey, pg.ImageItem] = {}
        self.probability: np.ndarray | None = None   # uint8 level-0 map of the model, or None
        self.truth: np.ndarray | None = None         # level-0 labels, or None
        self.other: np.ndarray | None = None         # the compared model's uint8 map, for the disagreement layer
        self.other_threshold = 0.5
        self.covered: list[tuple[int, int, int, int]] = []  # level-0 rectangles the model has run on
        self.threshold = 0.5
        self.layers = LayerState.default("plain")
        self.opacity = 0.6
        self._signals = _TileSignals()
        self._signals.loaded.connect(self._tile_loaded)
        # Python threads, as the task layer's; two reads at a time keep the disk and one core busy.
        self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="paipviewer-tiles")
        self._wanted: set[TileKey] = set()
        self._lock = threading.Lock()
        self._timer = QTimer(self, singleShot=True, interval=SETTLE_MS)
        self._timer.timeout.connect(self.refresh)
        self.viewbox.sigRangeChanged.connect(lambda *_: self._timer.start())
        self._closed = False

    # ------------------------------------------------------------------ content
    def set_slide(self, slide: Slide, title: str = "") -> None:
        self.clear_tiles()
        self.slide = slide
        self.title.setText(title)
        thumb, _ = slide.thumbnail(BACKDROP_SIDE)
        w, h = slide.dimensions
        self.backdrop.setImage(thumb, levels=(0, 255), autoLevels=False)
        self.backdrop.setRect(QRectF(0, 0, w, h))
        self.scale_bar.set_mpp(slide.pixel_size.mpp)
        side = 10 * max(w, h)
        self.viewbox.setLimits(minXRange=16, minYRange=16, maxXRange=side, maxYRange=side)
        self.fit()

    def set_overlay_source(self, probability: np.ndarray | None, truth: np.ndarray | None, threshold: float,
                           layers: LayerState | None = None) -> None:
        self.probability, self.truth, self.threshold = probability, truth, threshold
        if layers is not None:
            self.layers = layers
        self.redraw_overlays()

    def set_other(self, probability: np.ndarray | None, threshold: float) -> None:
        """The other model's map in a comparison: where the two masks differ is the disagreement layer."""
        self.other, self.other_threshold = probability, threshold
        self.redraw_overlays()

    def fit(self) -> None:
        if self.slide is not None:
            w, h = self.slide.dimensions
            self.viewbox.setRange(xRange=(0, w), yRange=(0, h), padding=0.02)

    def zoom(self) -> float:
        (x0, x1), _ = self.viewbox.viewRange()
        width = self.viewbox.width()
        return width / (x1 - x0) if x1 > x0 and width > 0 else 0.0

    def view_rect(self) -> tuple[int, int, int, int]:
        """The part of the slide on screen, level-0 pixels, clipped to the slide."""
        (x0, x1), (y0, y1) = self.viewbox.viewRange()
        w, h = self.slide.dimensions if self.slide else (0, 0)
        x0, y0 = max(0, int(x0)), max(0, int(y0))
        x1, y1 = min(w, math.ceil(x1)), min(h, math.ceil(y1))
        return x0, y0, max(0, x1 - x0), max(0, y1 - y0)

    # ------------------------------------------------------------------ tiles
    def refresh(self) -> None:
        """Show the tiles the view needs now; ask for the missing ones; drop the ones off screen."""
        if self.slide is None:
            return
        rect = self.view_rect()
        self.viewport_changed.emit(*map(float, rect))
        if rect[2] == 0 or rect[3] == 0:
            return
        specs = tiles_for_view(self.slide.level_dimensions, self.slide.level_downsamples, rect, self.zoom())
        wanted = {s.key for s in specs}
        with self._lock:
            self._wanted = wanted
        for key in [k for k in self.items if k not in wanted]:
            self._remove(key)
        for spec in specs:
            tile = self.cache.get(spec.key)
            if tile is not None:
                self._show(spec, tile)
            elif spec.key not in self.items:
                self._executor.submit(self._read, spec)

    def _read(self, spec: TileSpec) -> None:
        with self._lock:
            if self._closed or spec.key not in self._wanted:  # the view moved on before this tile's turn
                return
        pixels = self.slide.read(spec.x, spec.y, spec.width, spec.height, spec.key.level)
        self._signals.loaded.emit(spec, pixels)

    def _tile_loaded(self, spec: TileSpec, pixels: np.ndarray) -> None:
        for key in self.cache.put(spec.key, pixels):
            self._remove(key)
        if spec.key in self._wanted:
            self._show(spec, pixels)

    def _show(self, spec: TileSpec, pixels: np.ndarray) -> None:
        rect = QRectF(spec.x, spec.y, spec.width * spec.downsample, spec.height * spec.downsample)
        item = self.items.get(spec.key)
        if item is None:
            item = pg.ImageItem(axisOrder="row-major")
            item.setZValue(1)  # above the backdrop
            self.viewbox.addItem(item)
            self.items[spec.key] = item
            item.setImage(pixels, levels=(0, 255), autoLevels=False)
            item.setRect(rect)
        self._overlay(spec)

    def _remove(self, key: TileKey) -> None:
        for store in (self.items, self.overlay_items):
            item = store.pop(key, None)
            if item is not None:
                self.viewbox.removeItem(item)

    def clear_tiles(self) -> None:
        for key in list(self.items):
            self._remove(key)
        self.cache.clear()

    # ------------------------------------------------------------------ overlay
    def redraw_overlays(self, region: tuple[int, int, int, int] | None = None) -> None:
        """Recompute the overlay of the tiles on screen (only those touching ``region`` if given)."""
        if self.slide is None:
            return
        rect = self.view_rect()
        if rect[2] == 0 or rect[3] == 0:
            return
        for spec in tiles_for_view(self.slide.level_dimensions, self.slide.level_downsamples, rect, self.zoom()):
            if spec.key in self.items and (region is None or _touches(spec, region)):
                self._overlay(spec)

    def _overlay(self, spec: TileSpec) -> None:
        item = self.overlay_items.get(spec.key)
        if self.probability is None:
            if item is not None:
                item.clear()
            return
        step = max(1, int(round(spec.downsample)))
        x1 = min(spec.x + round(spec.width * spec.downsample), self.probability.shape[1])
        y1 = min(spec.y + round(spec.height * spec.downsample), self.probability.shape[0])
        prob = np.asarray(self.probability[spec.y:y1:step, spec.x:x1:step])
        pred = prob >= math.ceil(self.threshold * 255)
        truth = None
        if self.truth is not None:  # outside what the model ran on, a true nucleus is not a miss
            truth = np.asarray(self.truth[spec.y:y1:step, spec.x:x1:step]) > 0
            truth &= self._covered(spec.x, spec.y, step, truth.shape)
        other = None
        if self.other is not None and self.layers.disagree:
            other = np.asarray(self.other[spec.y:y1:step, spec.x:x1:step]) >= math.ceil(self.other_threshold * 255)
        rgba = compose(pred.shape, self.layers, pred, truth, other)
        if item is None:
            item = pg.ImageItem(axisOrder="row-major")
            item.setZValue(5)
            item.setOpacity(self.opacity)
            self.viewbox.addItem(item)
            self.overlay_items[spec.key] = item
        item.setImage(rgba, levels=None, autoLevels=False)
        item.setRect(QRectF(spec.x, spec.y, (x1 - spec.x), (y1 - spec.y)))

    def _covered(self, x0: int, y0: int, step: int, shape: tuple[int, int]) -> np.ndarray:
        """Which pixels of a tile (level-0 origin, subsampling ``step``) lie in a rectangle run on."""
        ys = y0 + step * np.arange(shape[0])
        xs = x0 + step * np.arange(shape[1])
        out = np.zeros(shape, bool)
        for x, y, w, h in self.covered:
            out |= ((ys >= y) & (ys < y + h))[:, None] & ((xs >= x) & (xs < x + w))[None, :]
        return out

    def set_opacity(self, value: float) -> None:
        self.opacity = value
        for item in self.overlay_items.values():
            item.setOpacity(value)

    def overview_pixels(self, size: int = 256) -> np.ndarray:
        img = self.backdrop.image
        if img is None:
            return np.zeros((size, size, 3), np.uint8)
        scale = size / max(img.shape[:2])
        return cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)

    def shutdown(self) -> None:
        """Stop reading tiles and wait for the reads under way: the slide may be closed after this."""
        with self._lock:
            self._closed = True
        self._timer.stop()
        self._executor.shutdown(wait=True, cancel_futures=True)
        self.slide = None

    def keyPressEvent(self, event) -> None:
        event.ignore()


def _touches(spec: TileSpec, region: tuple[int, int, int, int]) -> bool:
    x, y, w, h = region
    sw, sh = spec.width * spec.downsample, spec.height * spec.downsample
    return spec.x < x + w and x < spec.x + sw and spec.y < y + h and y < spec.y + sh
