"""A slide's instance map as a TIFF, read tile by tile into a memory-mapped file."""
from __future__ import annotations

import numpy as np
import pytest
import tifffile

from paipviewer.core import tiff_labels
from paipviewer.core.evidence import truth_labels
from paipviewer.core.imageio import ImageReadError, read_labels
from paipviewer.core.inference import Cancelled
from paipviewer.core.slide_run import write_label_pyramid


@pytest.fixture(scope="module")
def instances():
    from conftest import _data

    return read_labels(_data("slides") / "mosaic_20x_instances.png")


def test_a_label_pyramid_is_read_tile_by_tile_into_a_mapped_file(instances, tmp_path):
    """``paipviewer score``'s own label TIFF, and a striped uint16 one, read back as the same ids."""
    write_label_pyramid(instances.astype(np.uint32), tmp_path / "pyramid.tif", 0.5)
    tifffile.imwrite(tmp_path / "strips.tif", instances.astype(np.uint16), rowsperstrip=300, compression="zlib")
    for name in ("pyramid.tif", "strips.tif"):
        told = []
        got = truth_labels(tmp_path / name, instances.shape, tmp_path / "spill",
                           progress=lambda done, total: told.append((done, total)))
        assert isinstance(got, np.memmap) and got.dtype == np.int32, name
        assert np.array_equal(got, instances) and got.max() == 6697, name
        assert told and told[0][0] == 0 and all(total == told[0][1] > 0 for _, total in told), name
    assert not list((tmp_path / "spill").iterdir())
    with pytest.raises(Cancelled):
        truth_labels(tmp_path / "pyramid.tif", instances.shape, tmp_path / "spill", cancelled=lambda: True)


def test_a_binary_tiff_is_split_into_nuclei_as_a_binary_png_is(instances, tmp_path, monkeypatch):
    binary = np.where(instances > 0, 255, 0).astype(np.uint8)
    tifffile.imwrite(tmp_path / "binary.tif", binary, tile=(256, 256))
    got = truth_labels(tmp_path / "binary.tif", binary.shape, tmp_path / "spill")
    assert np.array_equal(got, read_labels(tmp_path / "binary.tif"))  # OpenCV's whole-image reading
    assert got.max() > 5000  # touching nuclei merge, but thousands remain apart
    monkeypatch.setattr(tiff_labels, "MAX_PIXELS", 1000 * 1000)
    with pytest.raises(ImageReadError, match="binary.tif: a binary mask of 2500 x 2500"):
        truth_labels(tmp_path / "binary.tif", binary.shape, tmp_path / "spill")


def test_tiffs_that_are_not_this_slides_labels_are_refused_by_name(instances, tmp_path):
    tifffile.imwrite(tmp_path / "rgb.tif", np.zeros((2500, 2500, 3), np.uint8), photometric="rgb")
    tifffile.imwrite(tmp_path / "small.tif", instances[:1000].astype(np.uint16))
    tifffile.imwrite(tmp_path / "whole.tif", instances.astype(np.uint16), tile=(256, 256), compression="zlib")
    (tmp_path / "cut.tif").write_bytes((tmp_path / "whole.tif").read_bytes()[:50000])
    for name, message in (("rgb.tif", "not a label image"), ("small.tif", "mask is 2500 x 1000"),
                          ("cut.tif", "not a readable TIFF")):
        with pytest.raises(ImageReadError, match=f"{name}: {message}"):
            truth_labels(tmp_path / name, instances.shape, tmp_path / "spill")
