"""Whole-slide images through OpenSlide: one reader, regions in level-0 pixels, the pixel size in microns.

Aperio .svs, Hamamatsu .ndpi, MIRAX .mrxs, Leica .scn, Ventana .bif, Philips and generic tiled TIFF:
whatever OpenSlide recognises (the ``openslide-bin`` wheel brings the library; nothing to install
system-wide). A TIFF OpenSlide does not recognise (a plain, stripped TIFF such as MoNuSeg's) is a
flat image and goes through :mod:`.imageio`. Regions outside the slide, and transparent parts of
it, read as white glass.
"""
from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

from .magnification import PixelSize, UNKNOWN, plausible

SLIDE_SUFFIXES = (".svs", ".ndpi", ".mrxs", ".scn", ".bif", ".vms", ".vmu", ".svslide", ".tif", ".tiff")


class SlideError(ValueError):
    """A slide that cannot be opened or read; the message says why, for the user."""


def is_slide(path: str | Path) -> bool:
    """A file OpenSlide reads as a slide (a tiled, usually pyramidal image), not a flat image."""
    path = Path(path)
    if path.suffix.lower() not in SLIDE_SUFFIXES or not path.is_file():
        return False
    try:
        import openslide

        return openslide.OpenSlide.detect_format(str(path)) is not None
    except Exception:  # a broken file is no slide; opening it as an image reports why
        return False


class Slide:
    """An open slide: level sizes, the pixel size, and RGB regions of any level."""

    def __init__(self, path: str | Path):
        import openslide

        self.path = Path(path)
        try:
            self._osr = openslide.OpenSlide(str(self.path))
        except (openslide.OpenSlideError, OSError, ValueError) as exc:
            raise SlideError(f"{self.path.name}: cannot open the slide ({exc})") from None
        props = self._osr.properties
        mpp_x, mpp_y = plausible(props.get("openslide.mpp-x")), plausible(props.get("openslide.mpp-y"))
        self.pixel_size = PixelSize((mpp_x + mpp_y) / 2, "slide") if mpp_x and mpp_y else UNKNOWN
        self.objective = props.get("openslide.objective-power")
        self.vendor = props.get("openslide.vendor", "")

    @property
    def dimensions(self) -> tuple[int, int]:
        """(width, height) of level 0."""
        return self._osr.dimensions

    @property
    def level_dimensions(self) -> tuple[tuple[int, int], ...]:
        return self._osr.level_dimensions

    @property
    def level_downsamples(self) -> tuple[float, ...]:
        return self._osr.level_downsamples

    def level_for(self, downsample: float) -> int:
        """The most detailed level no finer than ``downsample`` needs (read less, never upsample)."""
        return self._osr.get_best_level_for_downsample(max(downsample, 1.0))

    def read(self, x: int, y: int, width: int, height: int, level: int = 0) -> np.ndarray:
        """RGB uint8 (height, width, 3) at ``level``; (x, y) in level-0 pixels, as OpenSlide takes them."""
        try:
            rgba = np.asarray(self._osr.read_region((int(x), int(y)), level, (int(width), int(height))))
        except Exception as exc:  # a damaged tile deep in a slide is the slide's fault, said once
            raise SlideError(f"{self.path.name}: cannot read a region at ({x}, {y}) ({exc})") from None
        alpha = rgba[:, :, 3:4].astype(np.uint16)
        rgb = (rgba[:, :, :3].astype(np.uint16) * alpha + 255 * (255 - alpha)) // 255
        return rgb.astype(np.uint8)

    def thumbnail(self, max_side: int = 1024) -> tuple[np.ndarray, float]:
        """The whole slide, at most ``max_side`` pixels a side, and its downsample from level 0."""
        w, h = self.dimensions
        downsample = max(w, h) / max_side if max(w, h) > max_side else 1.0
        level = self.level_for(downsample)
        lw, lh = self.level_dimensions[level]
        pixels = self.read(0, 0, lw, lh, level)
        size = (max(1, round(w / downsample)), max(1, round(h / downsample)))
        if (lw, lh) != size:
            pixels = cv2.resize(pixels, size, interpolation=cv2.INTER_AREA)
        return pixels, w / size[0]

    def close(self) -> None:
        self._osr.close()

    def __enter__(self) -> "Slide":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def tissue_mask(thumbnail: np.ndarray) -> np.ndarray:
    """Tissue (not glass) in a low-resolution RGB view: Otsu's threshold on saturation, at least 15,
    and not near-white, then a close to take in the lumens and gaps inside tissue and an open to
    drop dust."""
    hsv = cv2.cvtColor(thumbnail, cv2.COLOR_RGB2HSV)
    saturation = cv2.GaussianBlur(hsv[:, :, 1], (5, 5), 0)
    otsu, _ = cv2.threshold(saturation, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    mask = (saturation >= max(otsu, 15)) & (thumbnail.min(axis=2) < 235)
    mask = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_CLOSE,
                            cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (15, 15)))
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5)))
    return mask.astype(bool)


def blocks(width: int, height: int, size: int, region: tuple[int, int, int, int] | None = None):
    """(x, y, w, h) blocks of at most ``size`` level-0 pixels covering ``region`` (x, y, w, h), row by row."""
    x0, y0, rw, rh = region or (0, 0, width, height)
    x1, y1 = min(x0 + rw, width), min(y0 + rh, height)
    x0, y0 = max(x0, 0), max(y0, 0)
    out = []
    for y in range(y0, y1, size):
        for x in range(x0, x1, size):
            out.append((x, y, min(size, x1 - x), min(size, y1 - y)))
    return out


def tissue_box(mask: np.ndarray, downsample: float, block: tuple[int, int, int, int]):
    """The part (x, y, w, h) of a level-0 block that holds tissue, to the thumbnail's pixel; None for glass."""
    x, y, w, h = block
    r0, c0 = int(y / downsample), int(x / downsample)
    r1, c1 = max(math.ceil((y + h) / downsample), r0 + 1), max(math.ceil((x + w) / downsample), c0 + 1)
    rows, cols = np.nonzero(mask[r0:r1, c0:c1])
    if not len(rows):
        return None
    bx0 = max(x, int((c0 + cols.min()) * downsample))
    by0 = max(y, int((r0 + rows.min()) * downsample))
    bx1 = min(x + w, math.ceil((c0 + cols.max() + 1) * downsample))
    by1 = min(y + h, math.ceil((r0 + rows.max() + 1) * downsample))
    return bx0, by0, bx1 - bx0, by1 - by0
