"""Finding images and their ground truth on disk.

Three layouts are understood:

- **PAIP 2023 training download**: ``1. PAIP2023_Training/<id>.png`` with uint16 instance maps
  in ``2. PAIP2023_Traning masks/tumor/<id>_tumor.png`` (the official folder name's typo
  included; a corrected spelling is accepted too). The target is tumour nuclei. ``tr_p*`` is
  pancreas, ``tr_c*`` colon. Microns per pixel come from a ``*.csv`` sheet with ``ID`` and
  ``MPP`` columns next to the folders, when there is one.
- **images/ + masks/** paired by file stem (``<stem>.*`` or ``<stem>_mask.*``), e.g. the
  MoNuSeg copy and the sample tiles.
- **split folders**: ``train/`` and ``test/``, each an images/ + masks/ layout (MoNuSeg).

For a single image file, :func:`find_mask` looks for its ground truth in the same places, and
:func:`instance_map` for a uint16 instance map beside a binary mask (MoNuSeg's masks_instance/).
"""
from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path

from .imageio import IMAGE_SUFFIXES, is_image_path

PAIP_IMAGES = "1. PAIP2023_Training"
PAIP_MASK_DIRS = ("2. PAIP2023_Traning masks", "2. PAIP2023_Training masks")
ORGANS = {"p": "pancreas", "c": "colon"}
MASK_SUFFIXES = ("_mask", "_tumor", "_label", "_gt", "_instances")


@dataclass(frozen=True)
class Sample:
    """One image and, if known, its ground-truth mask file."""
    name: str
    image: Path
    mask: Path | None = None
    organ: str | None = None
    mpp: float | None = None
    split: str | None = None


class DatasetError(ValueError):
    """A folder that holds no dataset layout we understand; the message says what was expected."""


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and is_image_path(p) and not p.name.startswith("."))


def _find_by_stem(folder: Path, stem: str, suffixes: tuple[str, ...] = ("",) + MASK_SUFFIXES) -> Path | None:
    """``folder/<stem><suffix>.<ext>`` for the first suffix and image extension that exists."""
    for suffix in suffixes:
        for ext in IMAGE_SUFFIXES:
            for cand in (folder / f"{stem}{suffix}{ext}", folder / f"{stem}{suffix}{ext.upper()}"):
                if cand.is_file():
                    return cand
    return None


def is_paip_root(folder: Path) -> bool:
    return (folder / PAIP_IMAGES).is_dir()


def _paip_mask_dir(root: Path) -> Path | None:
    for name in PAIP_MASK_DIRS:
        if (root / name / "tumor").is_dir():
            return root / name / "tumor"
    return None


def read_mpp_sheet(root: Path) -> dict[str, float]:
    """ID -> microns per pixel from any CSV sheet in ``root`` with ID and MPP columns."""
    table: dict[str, float] = {}
    for sheet in sorted(root.glob("*.csv")):
        with open(sheet, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            cols = {c.strip().lower(): c for c in reader.fieldnames or []}
            if "id" not in cols or "mpp" not in cols:
                continue
            for row in reader:
                try:
                    table[row[cols["id"]].strip()] = float(row[cols["mpp"]])
                except (TypeError, ValueError):
                    continue
    return table


def sheet_mpp(image: Path) -> float | None:
    """Microns per pixel of an image in a PAIP 2023 folder, from the sheet beside the folders."""
    if image.parent.name != PAIP_IMAGES:
        return None
    return read_mpp_sheet(image.parent.parent).get(image.stem)


def discover_paip(root: Path) -> list[Sample]:
    """Samples of a PAIP 2023 training folder, tumour nuclei as the target."""
    masks = _paip_mask_dir(root)
    mpp = read_mpp_sheet(root)
    samples = []
    for image in _images_in(root / PAIP_IMAGES):
        stem = image.stem
        m = re.match(r"tr_([a-z])\d+", stem)
        mask = masks / f"{stem}_tumor.png" if masks else None
        samples.append(Sample(name=stem, image=image, mask=mask if mask and mask.is_file() else None,
                              organ=ORGANS.get(m.group(1)) if m else None, mpp=mpp.get(stem)))
    return samples


def discover_pairs(folder: Path) -> list[Sample]:
    """Samples of an images/ + masks/ folder, paired by stem; images without a mask keep mask=None."""
    images_dir = folder / "images" if (folder / "images").is_dir() else folder
    masks_dir = folder / "masks" if (folder / "masks").is_dir() else None
    samples = []
    for image in _images_in(images_dir):
        if images_dir == folder and image.stem.endswith(MASK_SUFFIXES):
            continue
        mask = _find_by_stem(masks_dir, image.stem) if masks_dir else None
        if mask is None and images_dir == folder:
            mask = _find_by_stem(folder, image.stem, MASK_SUFFIXES)
        samples.append(Sample(name=image.stem, image=image, mask=mask))
    return samples


def discover(folder: str | Path) -> list[Sample]:
    """All samples under ``folder``, whichever known layout it has."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"{folder}: not a folder")
    if is_paip_root(folder):
        return discover_paip(folder)
    splits = [s for s in ("train", "val", "test") if (folder / s).is_dir()]
    if splits:
        return [replace(s, split=split) for split in splits for s in discover_pairs(folder / split)]
    samples = discover_pairs(folder)
    if not samples:
        raise DatasetError(f"{folder}: no images found (expected a PAIP 2023 folder, images/ + masks/, "
                           f"train/ + test/, or image files)")
    return samples


def find_mask(image: str | Path) -> Path | None:
    """The ground-truth file of one image, if it lies where one of our layouts puts it."""
    image = Path(image)
    folder = image.parent
    if folder.name == PAIP_IMAGES:
        masks = _paip_mask_dir(folder.parent)
        cand = masks / f"{image.stem}_tumor.png" if masks else None
        return cand if cand and cand.is_file() else None
    if folder.name == "images" and (folder.parent / "masks").is_dir():
        found = _find_by_stem(folder.parent / "masks", image.stem)
        if found:
            return found
    found = _find_by_stem(folder, image.stem, MASK_SUFFIXES)
    if found is None:  # polygons drawn in QuPath, exported as GeoJSON beside the image
        found = next((c for s in ("",) + MASK_SUFFIXES for c in (folder / f"{image.stem}{s}.geojson",)
                      if c.is_file()), None)
    return found


INSTANCE_FOLDER = "masks_instance"


def instance_map(mask: Path | None) -> Path | None:
    """The instance map that goes with a binary mask, where a layout ships both (MoNuSeg:
    ``masks_instance/<stem>.png`` beside ``masks/``); else None, and the mask itself is the truth."""
    if mask is None or mask.parent.name != "masks":
        return None
    return _find_by_stem(mask.parent.parent / INSTANCE_FOLDER, mask.stem, ("",))


def file_identity(path: Path) -> tuple:
    """What makes two paths the same file: device and inode where the file can be stat'ed."""
    try:
        st = os.stat(path)
    except OSError:
        return ("path", os.path.realpath(path))
    return ("inode", st.st_dev, st.st_ino)
