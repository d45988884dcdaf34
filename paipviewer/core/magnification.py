"""Microns per pixel: where an image's pixel size comes from, and running a model at its own scale.

A model sees nuclei at the size it was trained on (the card's ``mpp``: MoNuSeg and PAIP 2023 at
0.25 um/px, "40x"). An image at another pixel size is resampled to the model's scale, predicted,
and the probability resampled back to the image's pixels, when the two differ by more than
:data:`TOLERANCE` (10 %). An image of unknown pixel size is taken to be at the model's scale, and
the viewer says so. Measured on the 20x slide: without this the shipped models lose nucleus area
(docs/results).

Pixel size of a file, in order: the slide's own metadata (OpenSlide ``openslide.mpp-x``/``-y``), a
TIFF's XResolution/ResolutionUnit, a PNG's pHYs chunk (metres), a sheet beside the data (PAIP 2023's
ID/MPP CSV, see :mod:`.datasets`), or what the user states. A value outside
:data:`MPP_RANGE` is not a microscope's (72 dpi is 353 um/px) and counts as unknown.
"""
from __future__ import annotations

import struct
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

TOLERANCE = 0.10
MPP_RANGE = (0.05, 20.0)


@dataclass(frozen=True)
class PixelSize:
    mpp: float | None
    source: str  # "slide", "TIFF tags", "PNG pHYs", "sheet", "user", "unknown"

    def text(self) -> str:
        return f"{self.mpp:.3g} um/px ({self.source})" if self.mpp else "unknown"


UNKNOWN = PixelSize(None, "unknown")


def plausible(mpp) -> float | None:
    try:
        mpp = float(mpp)
    except (TypeError, ValueError):
        return None
    return mpp if MPP_RANGE[0] <= mpp <= MPP_RANGE[1] else None


def file_pixel_size(path: str | Path) -> PixelSize:
    """The pixel size a file carries, or :data:`UNKNOWN`; never raises for an odd file."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(64 * 1024)
    except OSError:
        return UNKNOWN
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return _png_phys(head)
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return _tiff_resolution(path)
    return UNKNOWN


def _png_phys(data: bytes) -> PixelSize:
    i = 8
    while i + 8 <= len(data):
        (length,) = struct.unpack(">I", data[i:i + 4])
        kind = data[i + 4:i + 8]
        if kind == b"pHYs" and length == 9 and i + 17 <= len(data):
            x, y, unit = struct.unpack(">IIB", data[i + 8:i + 17])
            if unit == 1 and x and abs(x - y) <= 0.01 * x:
                mpp = plausible(1e6 / x)
                return PixelSize(mpp, "PNG pHYs") if mpp else UNKNOWN
            return UNKNOWN
        if kind in (b"IDAT", b"IEND"):
            return UNKNOWN
        i += 12 + length
    return UNKNOWN


def _tiff_resolution(path: Path) -> PixelSize:
    try:
        import tifffile

        with tifffile.TiffFile(path) as tif:
            tags = tif.pages[0].tags
            x, unit = tags.get("XResolution"), tags.get("ResolutionUnit")
            if x is None or unit is None:
                return UNKNOWN
            num, den = x.value
            per_unit = num / den if den else 0
            microns = {2: 25400.0, 3: 10000.0}.get(int(unit.value))  # inch, centimetre
            mpp = plausible(microns / per_unit) if microns and per_unit else None
    except Exception:  # a damaged TIFF has no pixel size; reading it reports the damage
        return UNKNOWN
    return PixelSize(mpp, "TIFF tags") if mpp else UNKNOWN


def image_pixel_size(path: str | Path, stated: float | None = None) -> PixelSize:
    """An image's pixel size: its file's, else its data sheet's (PAIP 2023), else ``stated`` (the user's)."""
    from .datasets import sheet_mpp

    found = file_pixel_size(path)
    if found.mpp:
        return found
    sheet = plausible(sheet_mpp(Path(path)))
    if sheet:
        return PixelSize(sheet, "sheet")
    stated = plausible(stated)
    return PixelSize(stated, "user") if stated else UNKNOWN


@dataclass(frozen=True)
class Scale:
    """How an image is fed to a model: ``factor`` resizes the image (2 = a 20x image enlarged to 40x)."""
    image: PixelSize
    model_mpp: float | None
    factor: float
    enabled: bool = True

    @property
    def resampled(self) -> bool:
        return self.factor != 1.0

    def text(self) -> str:
        """What happened, for the user."""
        if self.model_mpp is None:
            return "model's pixel size not recorded: run as is"
        if self.image.mpp is None:
            return f"pixel size unknown: taken as the model's {self.model_mpp:g} um/px"
        if not self.enabled:
            ratio = self.image.mpp / self.model_mpp
            return f"{self.image.mpp:.3g} um/px, run as is (magnification handling off; x{ratio:.2g} would match)"
        if self.resampled:
            return f"{self.image.mpp:.3g} um/px resampled x{self.factor:.3g} to the model's {self.model_mpp:g} um/px"
        return f"{self.image.mpp:.3g} um/px, at the model's scale"


def plan_scale(image: PixelSize, model_mpp: float | None, enabled: bool = True) -> Scale:
    factor = 1.0
    if enabled and image.mpp and model_mpp:
        ratio = image.mpp / model_mpp
        if abs(ratio - 1.0) > TOLERANCE:
            factor = ratio
    return Scale(image, model_mpp, factor, enabled)


def resized(image: np.ndarray, factor: float) -> np.ndarray:
    h, w = image.shape[:2]
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    return cv2.resize(image, size, interpolation=cv2.INTER_CUBIC if factor > 1 else cv2.INTER_AREA)


def predict_at_scale(model, image: np.ndarray, equalize: str, scale: Scale, **kwargs):
    """:func:`~.inference.predict_image` at the model's scale; the probability at the image's pixels."""
    from .inference import predict_image

    if not scale.resampled:
        return predict_image(model, image, equalize, **kwargs)
    t0 = time.perf_counter()
    prediction = predict_image(model, resized(image, scale.factor), equalize, **kwargs)
    h, w = image.shape[:2]
    prob = prediction.probability
    prediction.probability = cv2.resize(prob, (w, h), interpolation=cv2.INTER_LINEAR if scale.factor < 1
                                        else cv2.INTER_AREA).astype(np.float32)
    np.clip(prediction.probability, 0.0, 1.0, out=prediction.probability)
    prediction.timing["resample"] = time.perf_counter() - t0 - prediction.timing.get("total", 0.0)
    prediction.timing["total"] = time.perf_counter() - t0
    return prediction
