"""Reading H&E images and nucleus masks, safely.

Images come back as RGB uint8 (H, W, 3) whatever the file held: 8 or 16 bit, grey, RGB or RGBA
(alpha is dropped). Masks come back as bool (H, W): {0,1}, {0,255} and uint16 instance maps all
mean "nucleus where > 0". 16-bit files are read with IMREAD_UNCHANGED, since OpenCV's default
flags convert to 8 bit and silently drop every instance id below 256.

Before decoding, the header is read to refuse absurdly large images, so that a decompression
bomb (a tiny PNG that declares 100k x 100k pixels) gets a clear error instead of the machine's
memory.
"""
from __future__ import annotations

import os
import stat
import struct
from pathlib import Path

import numpy as np

# OpenCV reads this on first decode; it is our second line of defence after the header probe.
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(2**28))
import cv2  # noqa: E402

from .atomic import write_bytes_atomic  # noqa: E402

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
MAX_PIXELS = 2**28  # 268 M pixels, e.g. 16384 x 16384: far above any tile, well below 24 GB as float32
MAX_FILE_BYTES = 2 * 2**30


class ImageReadError(ValueError):
    """A file that cannot be used as an image or mask; the message says why, for the user."""


def is_image_path(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def probe_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG, JPEG, TIFF or BMP header, or None if the header is not understood."""
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        # The first chunk must be IHDR; otherwise the "size" would be whatever bytes follow.
        return struct.unpack(">II", data[16:24]) if len(data) >= 24 and data[12:16] == b"IHDR" else None
    if data[:2] == b"BM" and len(data) >= 26:
        w, h = struct.unpack("<ii", data[18:26])
        return abs(w), abs(h)
    if data[:2] == b"\xff\xd8":
        return _jpeg_size(data)
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return _tiff_size(data)
    if data[:4] in (b"II+\x00", b"MM\x00+"):
        return _bigtiff_size(data)
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2:i + 4])
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            h, w = struct.unpack(">HH", data[i + 5:i + 9])
            return w, h
        i += 2 + length
    return None


def _tiff_size(data: bytes) -> tuple[int, int] | None:
    order = "<" if data[:2] == b"II" else ">"
    if len(data) < 8:  # the magic number and no offset of the first directory
        return None
    (offset,) = struct.unpack(order + "I", data[4:8])
    if offset + 2 > len(data):
        return None
    (count,) = struct.unpack(order + "H", data[offset:offset + 2])
    size = {}
    for k in range(count):
        entry = data[offset + 2 + 12 * k: offset + 14 + 12 * k]
        if len(entry) < 12:
            break
        tag, typ = struct.unpack(order + "HH", entry[:4])
        if tag in (256, 257):
            fmt = "H" if typ == 3 else "I"
            (size[tag],) = struct.unpack(order + fmt, entry[8:8 + struct.calcsize(fmt)])
    if 256 in size and 257 in size:
        return size[256], size[257]
    return None


def _bigtiff_size(data: bytes) -> tuple[int, int] | None:
    """BigTIFF: 8-byte offsets, 20-byte IFD entries (tag, type, count, value)."""
    order = "<" if data[:2] == b"II" else ">"
    if len(data) < 16 or struct.unpack(order + "H", data[4:6])[0] != 8:
        return None
    (offset,) = struct.unpack(order + "Q", data[8:16])
    if offset + 8 > len(data):
        return None
    (count,) = struct.unpack(order + "Q", data[offset:offset + 8])
    size = {}
    formats = {3: "H", 4: "I", 16: "Q"}  # SHORT, LONG, LONG8
    for k in range(min(count, 4096)):
        entry = data[offset + 8 + 20 * k: offset + 28 + 20 * k]
        if len(entry) < 20:
            break
        tag, typ = struct.unpack(order + "HH", entry[:4])
        if tag in (256, 257) and typ in formats:
            (size[tag],) = struct.unpack(order + formats[typ], entry[12:12 + struct.calcsize(formats[typ])])
    if 256 in size and 257 in size:
        return size[256], size[257]
    return None


def _file_kind(mode: int) -> str:
    kinds = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe"), (stat.S_ISSOCK, "a socket"),
             (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device"))
    return next((name for test, name in kinds if test(mode)), "not a file")


def _decode(path: str | os.PathLike, flags: int) -> np.ndarray:
    path = Path(path)
    try:
        try:
            info = path.stat()
        except FileNotFoundError:  # also a symbolic link to nowhere
            raise ImageReadError(f"{path.name}: no such file") from None
        if not stat.S_ISREG(info.st_mode):  # a folder, a FIFO (reading one would wait forever), a device
            raise ImageReadError(f"{path.name}: not a regular file ({_file_kind(info.st_mode)})")
        nbytes = info.st_size
        if nbytes == 0:
            raise ImageReadError(f"{path.name}: the file is empty")
        if nbytes > MAX_FILE_BYTES:
            raise ImageReadError(f"{path.name}: {nbytes / 2**30:.1f} GiB is too large to open")
        data = path.read_bytes()
    except OSError as exc:  # permissions, a vanished network share, an I/O error: the file's fault
        raise ImageReadError(f"{path.name}: cannot read the file ({exc.strerror or type(exc).__name__})") from None
    size = probe_size(data)
    if size is not None and size[0] * size[1] > MAX_PIXELS:
        raise ImageReadError(f"{path.name}: {size[0]} x {size[1]} pixels is too large "
                             f"(limit {MAX_PIXELS / 1e6:.0f} megapixels); cut it into tiles first")
    if size is not None and 0 in size:
        raise ImageReadError(f"{path.name}: the image has no pixels")
    try:
        array = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    except cv2.error as exc:
        raise ImageReadError(f"{path.name}: cannot decode ({str(exc).strip().splitlines()[-1]})") from None
    if array is None or array.size == 0:
        raise ImageReadError(f"{path.name}: not a readable PNG, JPEG, TIFF or BMP image")
    return array


def read_image(path: str | os.PathLike) -> np.ndarray:
    """An image file as RGB uint8 (H, W, 3)."""
    array = _decode(path, cv2.IMREAD_UNCHANGED)
    return to_rgb8(array, Path(path).name)


def to_rgb8(array: np.ndarray, name: str = "image") -> np.ndarray:
    """OpenCV's decoded array (grey, BGR or BGRA; 8, 16 bit or float) as RGB uint8."""
    if array.dtype == np.uint16:
        array = (array >> 8).astype(np.uint8)
    elif array.dtype in (np.float32, np.float64):
        array = np.clip(array * (255.0 if array.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    elif array.dtype != np.uint8:
        raise ImageReadError(f"{name}: unsupported pixel type {array.dtype}")
    if array.ndim == 2:
        return np.ascontiguousarray(np.repeat(array[:, :, None], 3, axis=2))
    if array.ndim == 3 and array.shape[2] in (3, 4):
        return np.ascontiguousarray(array[:, :, 2::-1])
    if array.ndim == 3 and array.shape[2] == 1:
        return np.ascontiguousarray(np.repeat(array, 3, axis=2))
    raise ImageReadError(f"{name}: unsupported shape {array.shape}")


def read_mask(path: str | os.PathLike, shape: tuple[int, int] | None = None) -> np.ndarray:
    """A mask file as bool (H, W): foreground wherever the value is above zero.

    Binary masks ({0,1} or {0,255}) and instance maps (uint8 or uint16 ids, 0 = background)
    alike. A colour mask counts a pixel as foreground if any channel is above zero, but a file
    whose channels disagree like a photograph's is refused: it is an image, not a mask. If
    ``shape`` (H, W) is given, a mask of another size is refused.
    """
    return _mask_values(path, shape) > 0


def read_labels(path: str | os.PathLike, shape: tuple[int, int] | None = None) -> np.ndarray:
    """A mask file as int32 nucleus labels (H, W), 0 = background.

    An instance map (more than two values: uint16 ids as PAIP 2023 and MoNuSeg ship them, or uint8)
    keeps its ids; a binary mask is labelled by its 8-connected components, so touching nuclei in a
    binary mask are one object (nothing in the file tells them apart).
    """
    values = _mask_values(path, shape)
    if len(np.unique(values)) > 2:
        return values.astype(np.int32)
    return labels_of_mask(values > 0)


def labels_of_mask(mask: np.ndarray) -> np.ndarray:
    """int32 nuclei of a binary mask by its 8-connected components (nothing else tells them apart)."""
    _, labels = cv2.connectedComponents(np.asarray(mask, dtype=bool).view(np.uint8), connectivity=8)
    return labels.astype(np.int32, copy=False)


def _mask_values(path: str | os.PathLike, shape: tuple[int, int] | None) -> np.ndarray:
    """The mask file's values as one 2-D array, checked as :func:`read_mask` says."""
    name = Path(path).name
    array = _decode(path, cv2.IMREAD_UNCHANGED)
    if array.ndim == 3:
        colour = array[:, :, :3]
        if np.any(colour.max(axis=2).astype(np.int32) - colour.min(axis=2) > 0) and len(np.unique(colour)) > 64:
            raise ImageReadError(f"{name}: looks like a colour photograph, not a mask")
        array = colour.max(axis=2)
    if array.ndim != 2:
        raise ImageReadError(f"{name}: unsupported mask shape {array.shape}")
    if shape is not None and array.shape != tuple(shape):
        raise ImageReadError(f"{name}: mask is {array.shape[1]} x {array.shape[0]} but the image is "
                             f"{shape[1]} x {shape[0]}")
    return array


def write_png_atomic(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write an RGB or single-channel array as PNG via a temporary file and an atomic rename."""
    path = Path(path)
    if array.ndim == 3:
        array = array[:, :, ::-1]
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(array))
    if not ok:
        raise OSError(f"cannot encode {path.name} as PNG")
    write_bytes_atomic(path, buf.tobytes())
