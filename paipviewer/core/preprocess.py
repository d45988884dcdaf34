"""Preprocessing: the study's histogram equalisation, then scaling to [0, 1] float32.

The study equalised with OpenCV but did not say on which colour channel, so the colour handling
is a named option, stored in every model card so inference repeats what training did:

- ``rgb``:   cv2.equalizeHist on each of R, G and B (the reproduction default; shifts hue)
- ``luma``:  equalizeHist on Y of YCrCb, chroma untouched
- ``clahe``: CLAHE (clip 2.0, 8x8 grid) on L of Lab, chroma untouched
- ``none``:  no equalisation

Equalisation is applied to the whole image before tiling, as the study did with its 1024x1024
patches; a tile opened on its own is equalised on its own histogram. :class:`WindowPreprocessor`
gives the whole image's result one window at a time, for inference on images too large to hold
as float32.
"""
from __future__ import annotations

import cv2
import numpy as np

EQUALIZE_MODES = ("rgb", "luma", "clahe", "none")
DEFAULT_EQUALIZE = "rgb"


def check_mode(mode: str) -> str:
    if mode not in EQUALIZE_MODES:
        raise ValueError(f"unknown equalisation {mode!r}; choose one of {', '.join(EQUALIZE_MODES)}")
    return mode


def equalize(image: np.ndarray, mode: str = DEFAULT_EQUALIZE) -> np.ndarray:
    """Histogram-equalise an RGB uint8 image; returns a new RGB uint8 image."""
    check_mode(mode)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an RGB uint8 image, got {image.dtype} {image.shape}")
    if mode == "none":
        return image.copy()
    if mode == "rgb":
        return np.dstack([cv2.equalizeHist(np.ascontiguousarray(image[:, :, c])) for c in range(3)])
    if mode == "luma":
        ycrcb = cv2.cvtColor(image, cv2.COLOR_RGB2YCrCb)
        ycrcb[:, :, 0] = cv2.equalizeHist(ycrcb[:, :, 0])
        return cv2.cvtColor(ycrcb, cv2.COLOR_YCrCb2RGB)
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2Lab)
    lab[:, :, 0] = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8)).apply(lab[:, :, 0])
    return cv2.cvtColor(lab, cv2.COLOR_Lab2RGB)


def to_float(image: np.ndarray) -> np.ndarray:
    """uint8 [0, 255] -> float32 [0, 1], the scale every model in this project is trained on."""
    return image.astype(np.float32) * np.float32(1.0 / 255.0)


def preprocess(image: np.ndarray, mode: str = DEFAULT_EQUALIZE) -> np.ndarray:
    """An RGB uint8 image as the float32 network input: equalise, then scale to [0, 1]."""
    return to_float(equalize(image, mode))


def equalize_hist_lut(hist: np.ndarray) -> np.ndarray:
    """The uint8 look-up table cv2.equalizeHist applies to an image with this 256-bin histogram.

    OpenCV's own arithmetic, so the table gives its result bit for bit: the first occupied level
    maps to 0, each later level to round(cumulative count * (255 / (total - first count))), both
    factors in float32 and the rounding half to even; an image of one level is left as it is."""
    hist = np.asarray(hist, np.int64)
    occupied = np.flatnonzero(hist)
    lut = np.arange(256, dtype=np.uint8)
    if len(occupied) < 2:
        return lut
    first = int(occupied[0])
    scale = np.float32(255.0) / np.float32(int(hist.sum()) - int(hist[first]))
    cumulative = np.cumsum(hist[first + 1:]).astype(np.float32)
    lut[first] = 0
    lut[first + 1:] = np.clip(np.rint(cumulative * scale), 0, 255).astype(np.uint8)
    return lut


def _blocks(image: np.ndarray, pixels: int = 2**22):
    """The image in contiguous blocks of at most ``pixels`` pixels (whole rows where they fit)."""
    h, w = image.shape[:2]
    cols = min(w, pixels)
    rows = max(1, pixels // cols)
    for y in range(0, h, rows):
        for x in range(0, w, cols):
            yield np.ascontiguousarray(image[y:y + rows, x:x + cols])


def _histogram(blocks, channel: int) -> np.ndarray:
    """Exact 256-bin counts of one channel over all blocks (calcHist counts in float32, exact below 2**24
    pixels a block; the sum is int64)."""
    total = np.zeros(256, np.int64)
    for block in blocks:
        total += cv2.calcHist([block], [channel], None, [256], [0, 256]).reshape(-1).astype(np.int64)
    return total


def _take(array: np.ndarray, rows, cols) -> np.ndarray:
    """``array[np.ix_(rows, cols)]``, gathering only the window itself (slices where rows or columns run on)."""
    rows, cols = _as_slice(rows), _as_slice(cols)
    if isinstance(rows, slice):
        return array[rows][:, cols]
    if isinstance(cols, slice):
        return array[:, cols][rows]
    return array[np.ix_(rows, cols)]


def _as_slice(index):
    index = np.asarray(index)
    if len(index) and index[0] >= 0 and np.array_equal(index, np.arange(index[0], index[0] + len(index))):
        return slice(int(index[0]), int(index[0]) + len(index))
    return index


class SampledEqualizer:
    """The equalisation of an image too large to see whole (a slide), with its statistics taken from
    sample pixels (the tissue of a thumbnail): ``rgb`` and ``luma`` become the same look-up tables as
    :class:`WindowPreprocessor` builds, applied to uint8 blocks; ``clahe`` is local by nature and runs
    on each block; ``none`` leaves the block as it is."""

    def __init__(self, mode: str, sample: np.ndarray):
        self.mode = check_mode(mode)
        pixels = np.ascontiguousarray(np.asarray(sample, np.uint8).reshape(-1, 1, 3))
        if mode == "rgb":
            self.luts = [equalize_hist_lut(np.bincount(pixels[:, 0, c], minlength=256)) for c in range(3)]
        elif mode == "luma":
            y = cv2.cvtColor(pixels, cv2.COLOR_RGB2YCrCb)[:, 0, 0]
            self.lut = equalize_hist_lut(np.bincount(y, minlength=256))

    def __call__(self, block: np.ndarray) -> np.ndarray:
        if self.mode == "rgb":
            return np.dstack([self.luts[c][block[:, :, c]] for c in range(3)])
        if self.mode == "luma":
            ycrcb = cv2.cvtColor(block, cv2.COLOR_RGB2YCrCb)
            ycrcb[:, :, 0] = self.lut[ycrcb[:, :, 0]]
            return cv2.cvtColor(ycrcb, cv2.COLOR_YCrCb2RGB)
        if self.mode == "clahe":
            return equalize(block, "clahe")
        return block


class WindowPreprocessor:
    """:func:`preprocess` of a whole image, computed one window at a time.

    ``window(rows, cols)`` equals ``preprocess(image, mode)[np.ix_(rows, cols)]`` exactly, but only the
    window is ever float32. What equalisation needs of the whole image is computed once, in small blocks
    of the uint8 image: ``rgb`` and ``luma`` are look-up tables built from whole-image histograms (of R,
    G and B; of Y), applied per window; ``clahe`` interpolates between local histograms, which no table
    reproduces, so its equalised L plane (one uint8 plane, a third of the image) is kept instead."""

    def __init__(self, image: np.ndarray, mode: str = DEFAULT_EQUALIZE):
        check_mode(mode)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an RGB uint8 image, got {image.dtype} {image.shape}")
        self.image, self.mode = image, mode
        scale = np.float32(1.0 / 255.0)
        if mode == "rgb":
            self._table = np.stack([equalize_hist_lut(_histogram(_blocks(image), c)) for c in range(3)])
            self._table = self._table.astype(np.float32) * scale  # (3, 256): to_float of each equalised level
        elif mode == "luma":
            y = _histogram((cv2.cvtColor(b, cv2.COLOR_RGB2YCrCb) for b in _blocks(image)), 0)
            self._lut = equalize_hist_lut(y)
        elif mode == "clahe":
            lightness = np.empty(image.shape[:2], np.uint8)
            h, w = image.shape[:2]
            rows = max(1, 2**22 // w)
            for y0 in range(0, h, rows):
                band = np.ascontiguousarray(image[y0:y0 + rows])
                lightness[y0:y0 + rows] = cv2.cvtColor(band, cv2.COLOR_RGB2Lab)[:, :, 0]
            self._lightness = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8)).apply(lightness)
            del lightness

    def window(self, rows, cols) -> np.ndarray:
        """Float32 (len(rows), len(cols), 3): the preprocessed image at these row and column indices."""
        pixels = _take(self.image, rows, cols)
        if self.mode == "rgb":
            out = np.empty(pixels.shape, np.float32)
            for c in range(3):
                out[:, :, c] = self._table[c][pixels[:, :, c]]
            return out
        if self.mode == "luma":
            ycrcb = cv2.cvtColor(np.ascontiguousarray(pixels), cv2.COLOR_RGB2YCrCb)
            ycrcb[:, :, 0] = self._lut[ycrcb[:, :, 0]]
            return to_float(cv2.cvtColor(ycrcb, cv2.COLOR_YCrCb2RGB))
        if self.mode == "clahe":
            lab = cv2.cvtColor(np.ascontiguousarray(pixels), cv2.COLOR_RGB2Lab)
            lab[:, :, 0] = _take(self._lightness, rows, cols)
            return to_float(cv2.cvtColor(lab, cv2.COLOR_Lab2RGB))
        return to_float(pixels)
