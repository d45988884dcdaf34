"""Cutting an image of any size into fixed-size tiles and stitching predictions back.

The overlap-tile strategy of the U-Net paper: tiles step by ``tile - overlap``; the image is
reflect-padded by ``overlap // 2`` on the top and left and as much as needed on the bottom and
right, and each output pixel is taken from the central ``stride x stride`` part of exactly one
tile. So stitching the unchanged tiles gives back the input exactly, and predictions have no
seams: every kept pixel saw at least ``overlap // 2`` pixels of context. With no overlap a
1024x1024 image gives the study's 16 tiles of 256x256 (and a 1000x1000 one gives 16 too, padded).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

TILE = 256


@dataclass(frozen=True)
class TileLayout:
    height: int
    width: int
    tile: int
    overlap: int

    def __post_init__(self):
        if self.tile < 1 or not 0 <= self.overlap < self.tile or self.overlap % 2:
            raise ValueError(f"need 0 <= overlap < tile and an even overlap, got tile={self.tile} overlap={self.overlap}")
        if self.height < 1 or self.width < 1:
            raise ValueError("the image has no pixels")

    @property
    def stride(self) -> int:
        return self.tile - self.overlap

    @property
    def margin(self) -> int:
        return self.overlap // 2

    @property
    def rows(self) -> int:
        return math.ceil(self.height / self.stride)

    @property
    def cols(self) -> int:
        return math.ceil(self.width / self.stride)

    def __len__(self) -> int:
        return self.rows * self.cols

    def origins(self) -> list[tuple[int, int]]:
        """Top-left corner of each tile in padded coordinates, row by row."""
        return [(r * self.stride, c * self.stride) for r in range(self.rows) for c in range(self.cols)]

    def padding(self) -> tuple[tuple[int, int], tuple[int, int]]:
        m = self.margin
        bottom = (self.rows - 1) * self.stride + self.tile - m - self.height
        right = (self.cols - 1) * self.stride + self.tile - m - self.width
        return (m, bottom), (m, right)

    def index_maps(self) -> tuple[np.ndarray, np.ndarray]:
        """Row and column of the image behind each row and column of the padded image.

        ``padded[y, x] == image[rows[y], cols[x]]`` for the padded image :func:`extract_tiles` cuts, so a
        tile at origin (y, x) is ``image[np.ix_(rows[y:y + tile], cols[x:x + tile])]``: any one tile can
        be read without padding (or even preprocessing) the whole image. Padding acts on each axis on
        its own, so padding the indices pads the image."""
        mode = _pad_mode(self.height, self.width)
        (top, bottom), (left, right) = self.padding()
        return (np.pad(np.arange(self.height), (top, bottom), mode=mode),
                np.pad(np.arange(self.width), (left, right), mode=mode))


def _pad_mode(height: int, width: int) -> str:
    # Reflection needs two pixels; numpy reflects a one-pixel axis of a larger image as its edge.
    return "reflect" if max(height, width) > 1 else "edge"


def extract_tiles(image: np.ndarray, tile: int = TILE, overlap: int = 0) -> tuple[np.ndarray, TileLayout]:
    """Tiles (N, tile, tile, ...) of an (H, W, ...) image, and the layout to stitch them back."""
    layout = TileLayout(image.shape[0], image.shape[1], tile, overlap)
    pad = layout.padding() + ((0, 0),) * (image.ndim - 2)
    padded = np.pad(image, pad, mode=_pad_mode(layout.height, layout.width))
    tiles = np.stack([padded[y:y + tile, x:x + tile] for y, x in layout.origins()])
    return tiles, layout


def stitch(tiles: np.ndarray, layout: TileLayout) -> np.ndarray:
    """Inverse of :func:`extract_tiles`: an (H, W, ...) array from per-tile results."""
    if len(tiles) != len(layout):
        raise ValueError(f"expected {len(layout)} tiles, got {len(tiles)}")
    s, m = layout.stride, layout.margin
    out = np.empty((layout.rows * s, layout.cols * s) + tiles.shape[3:], dtype=tiles.dtype)
    for k, (y, x) in enumerate(layout.origins()):
        out[y:y + s, x:x + s] = tiles[k, m:m + s, m:m + s]
    return out[:layout.height, :layout.width]
