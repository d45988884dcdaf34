"""A figure of the current image as the views show it: each model's panel at the image's own
resolution (or scaled), with its title, and a legend of the layers on screen. Not a window grab:
a figure for a paper, the same whatever the screen."""
from __future__ import annotations

import cv2
import numpy as np
from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QImage, QPainter

from paipviewer.viewer import describe
from paipviewer.viewer.layers import LEGEND_TEXT, PALETTE, legend, overlay_image, probability_colours
from paipviewer.viewer.pyramid import scale_bar_length
from paipviewer.viewer.session import Session

GAP = 8


def panel_pixels(session: Session, model: str, other: str, opacity: float) -> np.ndarray:
    """The current image with one model's layers over it, as the view draws them (RGB uint8)."""
    entry = session.current()
    result = entry.results.get(model)
    return overlay_image(entry.image, session.layers(entry), session.mask(entry, model), entry.truth,
                         session.mask(entry, other) if other else None,
                         result.levels if result is not None else None, opacity, session.object_codes(entry, model))


def _qimage(rgb: np.ndarray) -> QImage:
    rgb = np.ascontiguousarray(rgb)
    h, w = rgb.shape[:2]
    return QImage(rgb.data, w, h, 3 * w, QImage.Format_RGB888).copy()


def _scale_bar(painter: QPainter, panel: QRect, mpp: float, scale: float) -> None:
    """A round length in microns at the panel's bottom right, white on a dark backing."""
    pixels, label = scale_bar_length(mpp, scale, max(40.0, panel.width() / 6))
    length = round(pixels * scale)
    metrics = QFontMetrics(painter.font())
    pad, bar = 6, max(4, painter.font().pixelSize() // 3)
    box_w = max(length, metrics.horizontalAdvance(label)) + 2 * pad
    box_h = metrics.height() + bar + 3 * pad
    box = QRect(panel.right() - box_w - 8, panel.bottom() - box_h - 8, box_w, box_h)
    painter.fillRect(box, QColor(0, 0, 0, 160))
    painter.setPen(QColor("white"))
    painter.drawText(QRect(box.x(), box.y() + pad, box_w, metrics.height()), Qt.AlignHCenter, label)
    painter.fillRect(box.right() - pad - length, box.bottom() - pad - bar, length, bar, QColor("white"))


def render_figure(session: Session, opacity: float, scale: float = 1.0) -> QImage:
    entry = session.current()
    if entry is None or not entry.loaded:
        raise ValueError("no image is loaded")
    models = [m for m in (session.model_key, session.compare_key) if m]
    side_by_side = len(models) == 2
    panels = []
    for model in models:
        other = next((m for m in models if m != model), "")
        pixels = panel_pixels(session, model, other, opacity)
        if scale != 1.0:
            pixels = cv2.resize(pixels, None, fx=scale, fy=scale,
                                interpolation=cv2.INTER_NEAREST if scale > 1 else cv2.INTER_AREA)
        panels.append((describe.view_title(session, entry, model, side_by_side, sep="\n"), pixels))
    h, w = panels[0][1].shape[:2]
    font = QFont()
    font.setPixelSize(int(np.clip(w / 28, 11, 28)))
    metrics = QFontMetrics(font)
    line = int(font.pixelSize() * 1.5)
    layers = session.layers(entry)
    mpp = session.pixel_size(entry).mpp
    has = {"pred": session.model_key in entry.results, "truth": entry.truth is not None, "other": side_by_side,
           "objects": session.object_codes(entry, session.model_key) is not None}
    keys = legend(layers, has)
    probability = layers.probability and has["pred"]
    width = len(panels) * w + (len(panels) - 1) * GAP
    wrap = Qt.AlignLeft | Qt.AlignTop | Qt.TextWordWrap
    title_h = max(metrics.boundingRect(QRect(0, 0, w, 10 ** 5), wrap, title).height() for title, _ in panels) + 4
    swatch = font.pixelSize()
    widest = max((metrics.horizontalAdvance(LEGEND_TEXT[k]) for k in keys), default=0) + swatch + 12
    columns = max(1, min(len(keys), width // max(widest, 1), 3))
    legend_rows = -(-len(keys) // columns) + (1 if probability else 0)
    height = title_h + h + GAP + legend_rows * line + GAP
    figure = QImage(width, height, QImage.Format_RGB888)
    figure.fill(QColor("white"))
    painter = QPainter(figure)
    painter.setFont(font)
    painter.setPen(QColor("black"))
    for i, (title, pixels) in enumerate(panels):
        x = i * (w + GAP)
        painter.drawText(QRect(x, 0, w, title_h), wrap, title)
        painter.drawImage(x, title_h, _qimage(pixels))
        if mpp:
            _scale_bar(painter, QRect(x, title_h, w, h), mpp, scale)
        painter.setPen(QColor("black"))
    y = title_h + h + GAP
    column = width // columns
    for i, key in enumerate(keys):
        x, yy = (i % columns) * column, y + (i // columns) * line
        painter.fillRect(x, yy + (line - swatch) // 2, swatch, swatch, QColor(*PALETTE[key]))
        painter.drawRect(x, yy + (line - swatch) // 2, swatch, swatch)
        painter.drawText(QRect(x + swatch + 6, yy, column - swatch - 6, line), Qt.AlignLeft | Qt.AlignVCenter,
                         LEGEND_TEXT[key])
    if probability:
        yy = y + (-(-len(keys) // columns)) * line
        label = "Probability 0"
        x0 = metrics.horizontalAdvance(label) + 6
        one = metrics.horizontalAdvance("1") + 6
        bar_w = max(20, min(200, width - x0 - one))
        painter.drawText(QRect(0, yy, x0, line), Qt.AlignLeft | Qt.AlignVCenter, label)
        ramp = np.repeat(probability_colours(bar_w)[None], swatch, axis=0)
        painter.drawImage(x0, yy + (line - swatch) // 2, _qimage(ramp))
        painter.drawText(QRect(x0 + bar_w + 4, yy, one, line), Qt.AlignLeft | Qt.AlignVCenter, "1")
    painter.end()
    return figure
