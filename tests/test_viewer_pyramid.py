"""Which tiles of a slide the viewer reads, the bounded tile cache, and the scale bar's length."""
from __future__ import annotations

import numpy as np
import pytest

from paipviewer.viewer.pyramid import TileCache, TileKey, choose_level, scale_bar_length, tiles_for_view

DIMS = ((5000, 5000), (1250, 1250), (312, 312))
DOWN = (1.0, 4.0, 16.025641025641026)


def test_the_level_follows_the_zoom():
    assert choose_level(DOWN, 1.0) == 0      # 100 %: level 0
    assert choose_level(DOWN, 0.3) == 0      # 30 %: level 1 would be coarser than the screen
    assert choose_level(DOWN, 0.25) == 1
    assert choose_level(DOWN, 0.05) == 2     # whole slide on a 250 px view


def test_tiles_cover_the_view_nearest_the_centre_first():
    whole = tiles_for_view(DIMS, DOWN, (0, 0, 5000, 5000), 0.05)
    assert {s.key.level for s in whole} == {2} and len(whole) == 1
    near = tiles_for_view(DIMS, DOWN, (1000, 1000, 1200, 800), 1.0)
    assert all(s.key.level == 0 for s in near)
    covered = np.zeros((5000, 5000), bool)
    for s in near:
        covered[s.y:s.y + s.height, s.x:s.x + s.width] = True
    assert covered[1000:1800, 1000:2200].all()
    assert len(near) == 12  # columns 1..4 (x 512..2559) x rows 1..3 (y 512..2047), tiles of 512
    centre = (1600, 1400)
    d = [np.hypot(s.x + 256 - centre[0], s.y + 256 - centre[1]) for s in near]
    assert d[0] == min(d)
    edge = tiles_for_view(DIMS, DOWN, (4900, 4900, 400, 400), 1.0)
    assert edge[-1].width == 5000 - 9 * 512 and all(s.x < 5000 for s in edge)


def test_cache_stays_within_its_budget():
    cache = TileCache(max_bytes=3 * 512 * 512 * 3)
    tiles = {TileKey(0, i, 0): np.zeros((512, 512, 3), np.uint8) for i in range(5)}
    dropped = []
    for k, t in tiles.items():
        dropped += cache.put(k, t)
    assert len(cache) == 3 and cache.bytes <= cache.max_bytes
    assert dropped == [TileKey(0, 0, 0), TileKey(0, 1, 0)]
    cache.get(TileKey(0, 2, 0))  # used again: the next to go is column 3
    assert cache.put(TileKey(0, 9, 0), np.zeros((512, 512, 3), np.uint8)) == [TileKey(0, 3, 0)]


@pytest.mark.parametrize("mpp,zoom,expected", [(0.25, 1.0, "20 µm"), (0.25, 0.1, "200 µm"),
                                               (0.5, 0.01, "5 mm"), (0.25, 4.0, "10 µm")])
def test_scale_bar_is_a_round_length(mpp, zoom, expected):
    pixels, label = scale_bar_length(mpp, zoom)
    assert label == expected
    assert 50 < pixels * zoom < 300  # on screen, near the 120 px asked for
