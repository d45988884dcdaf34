"""``paip-train prepare``: split a dataset by image, preprocess, augment with flips, cut tiles, cache.

The split is made on whole images, never on tiles, so no tile of a test image can reach training
or validation. Layouts (see :mod:`paipviewer.core.datasets`):

- PAIP 2023: pancreas at 0.25 mpp by default, as the study; ``test_count`` images (10 of 46 in
  the study, scaled for fewer) for testing and ``val_fraction`` (20%) of the rest for validation.
- ``train/`` + ``test/`` folders (MoNuSeg): the official test split; validation images are held
  out of train.
- a flat images/ + masks/ folder: split like PAIP.

Training and validation images are equalised as a whole (the model card's mode), flipped
vertically, horizontally and both (x4; validation images are not flipped) and cut into 256x256 tiles without overlap. Test images
are not tiled here: evaluation reads them whole. The cache directory is named by a hash of
everything that decides its content, so a second run with the same settings is instant.
"""
from __future__ import annotations

import hashlib
import json
import random
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from paipviewer.core.atomic import remove_temporaries, write_atomic, write_text_atomic
from paipviewer.core.datasets import Sample, discover, is_paip_root
from paipviewer.core.imageio import read_image, read_mask
from paipviewer.core.preprocess import DEFAULT_EQUALIZE, check_mode, equalize
from paipviewer.core.tiling import TILE, extract_tiles

from paipviewer.core.outputs import check_writable_folder

STUDY_TEST_FRACTION = 10 / 46
CACHE_VERSION = 1
PARTS = ("train", "val")
FILES = (*(f"{part}_{kind}" for part in PARTS for kind in ("x.npy", "y.npy", "tiles.json")), "split.json")


@dataclass(frozen=True)
class PrepareSettings:
    equalize: str = DEFAULT_EQUALIZE
    seed: int = 42
    val_fraction: float = 0.2
    test_fraction: float = STUDY_TEST_FRACTION
    organs: tuple[str, ...] = ("pancreas",)
    mpp: float | None = 0.25
    flips: bool = True
    tile: int = TILE


@dataclass
class Split:
    train: list[Sample]
    val: list[Sample]
    test: list[Sample]

    def names(self) -> dict[str, list[str]]:
        return {k: [s.name for s in getattr(self, k)] for k in ("train", "val", "test")}


def select_samples(root: Path, settings: PrepareSettings) -> list[Sample]:
    samples = [s for s in discover(root) if s.mask is not None]
    if is_paip_root(root):
        if settings.organs:
            samples = [s for s in samples if s.organ in settings.organs]
        if settings.mpp is not None:
            samples = [s for s in samples if s.mpp is None or abs(s.mpp - settings.mpp) < 1e-6]
    if not samples:
        raise ValueError(f"{root}: no images with masks match the selection")
    return samples


def split_samples(samples: list[Sample], settings: PrepareSettings) -> Split:
    """Seeded image-level split; the official test split wins where the data has one."""
    rng = random.Random(settings.seed)
    if any(s.split == "test" for s in samples):
        test = [s for s in samples if s.split == "test"]
        rest = sorted((s for s in samples if s.split != "test"), key=lambda s: s.name)
    else:
        pool = sorted(samples, key=lambda s: s.name)
        rng.shuffle(pool)
        n_test = max(1, round(len(pool) * settings.test_fraction)) if len(pool) >= 3 else 0
        test, rest = sorted(pool[:n_test], key=lambda s: s.name), pool[n_test:]
    rest = list(rest)
    rng.shuffle(rest)
    # A fraction of 0 is a final fit on every training image, with choices made on an earlier split.
    n_val = max(1, round(len(rest) * settings.val_fraction)) if len(rest) >= 2 and settings.val_fraction else 0
    val, train = rest[:n_val], rest[n_val:]
    if not train:
        raise ValueError("not enough images to train on after the split")
    return Split(sorted(train, key=lambda s: s.name), sorted(val, key=lambda s: s.name), test)


def flips(array: np.ndarray, enabled: bool) -> list[np.ndarray]:
    """The study's augmentation: original, vertical, horizontal, both."""
    if not enabled:
        return [array]
    return [array, array[::-1], array[:, ::-1], array[::-1, ::-1]]


def tiles_of(samples: list[Sample], settings: PrepareSettings) -> tuple[np.ndarray, np.ndarray, list[str]]:
    xs, ys, names = [], [], []
    for s in samples:
        image = equalize(read_image(s.image), settings.equalize)
        mask = read_mask(s.mask, image.shape[:2]).astype(np.uint8)
        for k, (im, mk) in enumerate(zip(flips(image, settings.flips), flips(mask, settings.flips))):
            ti, _ = extract_tiles(np.ascontiguousarray(im), settings.tile, 0)
            tm, _ = extract_tiles(np.ascontiguousarray(mk), settings.tile, 0)
            xs.append(ti)
            ys.append(tm)
            names += [f"{s.name}#flip{k}#{j}" for j in range(len(ti))]
    t = settings.tile
    if not xs:
        return np.empty((0, t, t, 3), np.uint8), np.empty((0, t, t), np.uint8), []
    return np.concatenate(xs), np.concatenate(ys), names


def cache_key(root: Path, samples: list[Sample], settings: PrepareSettings) -> str:
    ident = {"version": CACHE_VERSION, "root": str(root.resolve()), "settings": asdict(settings),
             "files": [(s.name, s.image.stat().st_size, s.mask.stat().st_size) for s in samples]}
    return hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()[:16]


def default_cache_root() -> Path:
    """The platform's cache folder (~/.cache/paipviewer/prepared on Linux, XDG_CACHE_HOME respected)."""
    from paipviewer.viewer.paths import cache_dir
    return cache_dir() / "prepared"


def prepare(root: str | Path, settings: PrepareSettings = PrepareSettings(), cache_root: str | Path | None = None,
            log=print) -> Path:
    """Prepare (or find already prepared) tiles; returns the cache folder."""
    root = Path(root)
    check_mode(settings.equalize)
    samples = select_samples(root, settings)
    out = Path(cache_root or default_cache_root()) / cache_key(root, samples, settings)
    for name in FILES:
        remove_temporaries(out / name)  # a killed run's, up to hundreds of MB each
    if (out / "split.json").is_file():
        log(f"prepared data already in {out}")
        return out
    check_writable_folder(out, "--cache")
    split = split_samples(samples, settings)
    for part in PARTS:
        # Validation keeps the images as they are: flips only enlarge the training set.
        part_settings = settings if part == "train" else replace(settings, flips=False)
        x, y, names = tiles_of(getattr(split, part), part_settings)
        for suffix, array in (("x", x), ("y", y)):
            write_atomic(out / f"{part}_{suffix}.npy", lambda fh: np.save(fh, array))
        write_text_atomic(out / f"{part}_tiles.json", json.dumps(names))
        log(f"{part}: {len(getattr(split, part))} images -> {len(x)} tiles")
    log(f"test: {len(split.test)} images (read whole at evaluation)")
    manifest = {"root": str(root.resolve()), "settings": asdict(settings), "split": split.names(),
                "test_files": [[str(s.image), str(s.mask)] for s in split.test]}
    write_text_atomic(out / "split.json", json.dumps(manifest, indent=2))  # written last: marks completion
    return out


def load_prepared(folder: str | Path, part: str, mmap: bool = True) -> tuple[np.ndarray, np.ndarray]:
    folder = Path(folder)
    mode = "r" if mmap else None
    return np.load(folder / f"{part}_x.npy", mmap_mode=mode), np.load(folder / f"{part}_y.npy", mmap_mode=mode)


def read_manifest(folder: str | Path) -> dict:
    return json.loads((Path(folder) / "split.json").read_text())
