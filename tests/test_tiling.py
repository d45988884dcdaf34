"""Tiling then stitching gives back the input exactly, for any size and overlap."""
from __future__ import annotations

import numpy as np
import pytest

from paipviewer.core.imageio import read_image
from paipviewer.core.tiling import TileLayout, extract_tiles, stitch


@pytest.mark.parametrize("shape", [(1024, 1024), (1000, 1000), (256, 256), (300, 517), (40, 7), (1, 1)])
@pytest.mark.parametrize("overlap", [0, 32, 64])
def test_roundtrip_is_exact(shape, overlap):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, shape + (3,), dtype=np.uint8)
    tiles, layout = extract_tiles(image, 256, overlap)
    assert tiles.shape[1:] == (256, 256, 3)
    np.testing.assert_array_equal(stitch(tiles, layout), image)


def test_real_image_roundtrip_and_study_tile_count(monuseg):
    image = read_image(next((monuseg / "test" / "images").glob("*.tif")))
    tiles, layout = extract_tiles(image, 256, 0)
    assert len(tiles) == 16  # 1000x1000 padded to 1024: the study's 16 tiles per image
    np.testing.assert_array_equal(tiles[0], image[:256, :256])
    np.testing.assert_array_equal(stitch(tiles, layout), image)
    tiles, layout = extract_tiles(image, 256, 32)
    np.testing.assert_array_equal(stitch(tiles, layout), image)


def test_1024_gives_16_tiles_without_padding():
    layout = TileLayout(1024, 1024, 256, 0)
    assert len(layout) == 16 and layout.padding() == ((0, 0), (0, 0))


def test_overlap_gives_context_on_every_side():
    image = np.arange(600 * 600, dtype=np.int32).reshape(600, 600)
    tiles, layout = extract_tiles(image, 256, 64)
    # Tile (row 1, col 1) keeps image[192:384, 192:384] and saw 32 px of context around it.
    k = layout.cols + 1
    np.testing.assert_array_equal(tiles[k], image[160:416, 160:416])
    assert layout.stride == 192 and layout.margin == 32


def test_bad_layouts_are_refused():
    with pytest.raises(ValueError):
        TileLayout(100, 100, 256, 256)
    with pytest.raises(ValueError):
        TileLayout(100, 100, 256, 31)
    with pytest.raises(ValueError):
        TileLayout(0, 100, 256, 0)
    tiles, layout = extract_tiles(np.zeros((300, 300)), 256, 0)
    with pytest.raises(ValueError, match="expected 4 tiles"):
        stitch(tiles[:3], layout)
