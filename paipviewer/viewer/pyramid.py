"""Which tiles of a slide's pyramid a view needs, and a bounded cache of them: Qt-free.

A view asks for the rectangle it shows (level-0 pixels) at its zoom (screen pixels per level-0
pixel); :func:`tiles_for_view` picks the level whose pixels are no finer than the screen's (so a
whole slide on screen reads the smallest level, never level 0) and the tiles of that level that
touch the rectangle, nearest the centre first. :class:`TileCache` keeps decoded tiles up to a byte
budget, least recently used out first, so memory stays bounded whatever the slide.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

TILE = 512            # level pixels a side: few items on screen, reads of a few hundred kB
CACHE_BYTES = 256 * 2**20


@dataclass(frozen=True)
class TileKey:
    level: int
    col: int
    row: int


@dataclass(frozen=True)
class TileSpec:
    key: TileKey
    x: int          # level-0 pixels of the tile's top-left corner
    y: int
    width: int      # level pixels to read
    height: int
    downsample: float


def choose_level(downsamples, zoom: float) -> int:
    """The coarsest level still at least as fine as the screen (``zoom`` screen px per level-0 px)."""
    wanted = 1.0 / max(zoom, 1e-9)
    best = 0
    for level, d in enumerate(downsamples):
        if d <= wanted * 1.01:
            best = level
    return best


def tiles_for_view(level_dimensions, downsamples, rect: tuple[float, float, float, float], zoom: float,
                   tile: int = TILE) -> list[TileSpec]:
    """Tiles (nearest the rectangle's centre first) that cover ``rect`` = (x, y, w, h) in level-0 pixels."""
    level = choose_level(downsamples, zoom)
    d = downsamples[level]
    lw, lh = level_dimensions[level]
    x, y, w, h = rect
    c0, r0 = max(int(x / d) // tile, 0), max(int(y / d) // tile, 0)
    c1, r1 = min(math.ceil((x + w) / d / tile), math.ceil(lw / tile)), min(math.ceil((y + h) / d / tile),
                                                                         math.ceil(lh / tile))
    cx, cy = (x + w / 2) / d / tile, (y + h / 2) / d / tile
    specs = []
    for r in range(r0, r1):
        for c in range(c0, c1):
            specs.append(TileSpec(TileKey(level, c, r), round(c * tile * d), round(r * tile * d),
                                  min(tile, lw - c * tile), min(tile, lh - r * tile), d))
    specs.sort(key=lambda s: (s.key.col + 0.5 - cx) ** 2 + (s.key.row + 0.5 - cy) ** 2)
    return specs


class TileCache:
    """Decoded tiles by key, least recently used dropped first beyond ``max_bytes``."""

    def __init__(self, max_bytes: int = CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._tiles: OrderedDict[TileKey, np.ndarray] = OrderedDict()

    def get(self, key: TileKey) -> np.ndarray | None:
        tile = self._tiles.get(key)
        if tile is not None:
            self._tiles.move_to_end(key)
        return tile

    def put(self, key: TileKey, tile: np.ndarray) -> list[TileKey]:
        """Store a tile; returns the keys dropped to stay within the budget."""
        old = self._tiles.pop(key, None)
        if old is not None:
            self.bytes -= old.nbytes
        self._tiles[key] = tile
        self.bytes += tile.nbytes
        dropped = []
        while self.bytes > self.max_bytes and len(self._tiles) > 1:
            k, t = self._tiles.popitem(last=False)
            self.bytes -= t.nbytes
            dropped.append(k)
        return dropped

    def __contains__(self, key: TileKey) -> bool:
        return key in self._tiles

    def __len__(self) -> int:
        return len(self._tiles)

    def clear(self) -> None:
        self._tiles.clear()
        self.bytes = 0


def scale_bar_length(mpp: float, zoom: float, target_screen_px: float = 120) -> tuple[float, str]:
    """A round length (1, 2 or 5 x 10^k microns) near ``target_screen_px`` on screen: (image pixels, label)."""
    microns = target_screen_px / max(zoom, 1e-9) * mpp
    exponent = math.floor(math.log10(microns))
    best = min((m * 10 ** e for e in (exponent, exponent + 1) for m in (1, 2, 5)),
               key=lambda v: abs(math.log(v / microns)))
    label = f"{best / 1000:g} mm" if best >= 1000 else f"{best:g} µm"
    return best / mpp, label
