"""A whole slide's instance map from a TIFF, read tile by tile into an array the caller gives.

OpenCV decodes an image whole, and refuses one above ``imageio.MAX_PIXELS``; a slide's label image
(``paipviewer score``'s pyramidal uint32 TIFF, QuPath's labelled-image export) is billions of pixels.
tifffile decodes the first page one tile or strip at a time, so memory holds a tile and the labels go
to a memory-mapped file.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .imageio import MAX_PIXELS, ImageReadError, labels_of_mask

TIFF_SUFFIXES = (".tif", ".tiff")


def read_tiff_labels(path, out: np.ndarray, *, progress=None, cancelled=None) -> np.ndarray:
    """Fill ``out`` (zeroed int32 of the slide's (H, W)) with the first page of a single-channel integer
    TIFF and return it. An instance map keeps its ids, as :func:`imageio.read_labels` keeps them; a
    binary mask (one value besides 0) is labelled by 8-connected components where it fits in memory,
    and refused above that, since nothing else tells its touching nuclei apart. ``progress(done,
    total)`` counts tiles; ``cancelled()`` true raises ``Cancelled``. Raises ImageReadError."""
    import tifffile

    from .inference import Cancelled

    name = Path(path).name
    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages[0]
            if page.samplesperpixel != 1 or page.dtype is None or page.dtype.kind not in "uib":
                raise ImageReadError(f"{name}: not a label image (one integer per pixel), but "
                                     f"{page.samplesperpixel} x {page.dtype} per pixel")
            height, width = page.shape[:2]
            if (height, width) != out.shape:
                raise ImageReadError(f"{name}: mask is {width} x {height} but the image is "
                                     f"{out.shape[1]} x {out.shape[0]}")
            values: set[int] = set()
            total = len(page.dataoffsets)
            for k, (data, index, _) in enumerate(page.segments()):
                if k % 64 == 0:
                    if cancelled is not None and cancelled():
                        raise Cancelled()
                    if progress is not None:
                        progress(k, total)
                if data is None:  # a tile never written: background
                    continue
                y, x = index[2], index[3]
                seg = data[0, :height - y, :width - x, 0]
                if seg.max(initial=0) > np.iinfo(np.int32).max:
                    raise ImageReadError(f"{name}: nucleus ids above {np.iinfo(np.int32).max:,}")
                out[y:y + seg.shape[0], x:x + seg.shape[1]] = seg
                if len(values) < 2:
                    values.update(np.unique(seg[seg > 0]).tolist()[:2])
    except (ImageReadError, Cancelled):
        raise
    except Exception as exc:  # noqa: BLE001 - each codec raises its own (zlib.error, imagecodecs' errors)
        raise ImageReadError(f"{name}: not a readable TIFF ({type(exc).__name__}: {exc})") from None
    if len(values) == 1:
        _components(out, name)
    return out


def _components(labels: np.ndarray, name: str) -> None:
    if labels.size > MAX_PIXELS:
        raise ImageReadError(f"{name}: a binary mask of {labels.shape[1]} x {labels.shape[0]} pixels cannot be "
                             "told apart into nuclei at this size; give an instance map (one id per nucleus) "
                             "or QuPath GeoJSON")
    labels[:] = labels_of_mask(np.asarray(labels) > 0)
