"""Preprocessing: the study's histogram equalisation, then scaling to [0, 1] float32.

The study equalised with OpenCV but did not say on which colour channel, so the colour handling
is a named option, stored in every model card so inference repeats what training did:

- ``rgb``:   cv2.equalizeHist on each of R, G and B (the reproduction default; shifts hue)
- ``luma``:  equalizeHist on Y of YCrCb, chroma untouched
- ``clahe``: CLAHE (clip 2.0, 8x8 grid) on L of Lab, chroma untouched
- ``none``:  no equalisation

Equalisation is applied to the whole image before tiling, as the study did with its 1024x1024
patches; a tile opened on its own is equalised on its own histogram.
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
