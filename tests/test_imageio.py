"""Reading images and masks from real files, and refusing bad ones clearly."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from helpers import huge_png
from paipviewer.core.imageio import ImageReadError, probe_size, read_image, read_mask


def test_monuseg_tiff_reads_as_rgb(monuseg):
    path = next((monuseg / "train" / "images").glob("*.tif"))
    image = read_image(path)
    assert image.shape == (1000, 1000, 3) and image.dtype == np.uint8
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    np.testing.assert_array_equal(image, bgr[:, :, ::-1])


def test_uint16_instance_map_trap(paip_fixture):
    """Default OpenCV flags turn a uint16 instance map into uint8 and lose nuclei; read_mask must not."""
    path = paip_fixture / "2. PAIP2023_Traning masks" / "tumor" / "tr_c001_tumor.png"
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert raw.dtype == np.uint16 and raw.max() > 255
    naive = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) > 0
    mask = read_mask(path)
    np.testing.assert_array_equal(mask, raw > 0)
    assert len(np.unique(raw[mask])) == raw.max()
    # The trap: the default 8-bit read keeps only the nuclei with ids >= 256.
    assert naive.sum() < 0.2 * mask.sum()


def test_binary_01_mask_and_255_mask_agree(samples256, tmp_path):
    path = next((samples256 / "masks").glob("*.png"))
    mask01 = read_mask(path)
    assert set(np.unique(cv2.imread(str(path), cv2.IMREAD_UNCHANGED))) <= {0, 1}
    assert 0 < mask01.mean() < 1
    cv2.imwrite(str(tmp_path / "m255.png"), mask01.astype(np.uint8) * 255)
    np.testing.assert_array_equal(read_mask(tmp_path / "m255.png"), mask01)
    inst = samples256 / "masks_instance" / path.name
    np.testing.assert_array_equal(read_mask(inst), mask01)


def test_bit_depths_and_channels(samples256, tmp_path):
    rgb = read_image(next((samples256 / "images").glob("*.png")))
    bgr = rgb[:, :, ::-1]
    cv2.imwrite(str(tmp_path / "a16.png"), bgr.astype(np.uint16) * 257)
    cv2.imwrite(str(tmp_path / "grey.png"), cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
    cv2.imwrite(str(tmp_path / "rgba.png"), np.dstack([bgr, np.full(rgb.shape[:2], 128, np.uint8)]))
    cv2.imwrite(str(tmp_path / "a.jpg"), bgr, [cv2.IMWRITE_JPEG_QUALITY, 100])
    cv2.imwrite(str(tmp_path / "a.tiff"), bgr)
    np.testing.assert_array_equal(read_image(tmp_path / "a16.png"), rgb)
    np.testing.assert_array_equal(read_image(tmp_path / "rgba.png"), rgb)
    np.testing.assert_array_equal(read_image(tmp_path / "a.tiff"), rgb)
    grey = read_image(tmp_path / "grey.png")
    assert grey.shape == rgb.shape and (grey[:, :, 0] == grey[:, :, 2]).all()
    assert np.abs(read_image(tmp_path / "a.jpg").astype(int) - rgb).mean() < 3


def test_probe_size_matches_decoded_size(monuseg, tmp_path, samples256):
    tif = next((monuseg / "test" / "images").glob("*.tif"))
    assert probe_size(tif.read_bytes()) == (1000, 1000)
    png = next((samples256 / "images").glob("*.png"))
    assert probe_size(png.read_bytes()) == (256, 256)
    cv2.imwrite(str(tmp_path / "x.jpg"), np.zeros((30, 70, 3), np.uint8))
    assert probe_size((tmp_path / "x.jpg").read_bytes()) == (70, 30)


def test_decompression_bomb_is_refused(tmp_path):
    bomb = huge_png(tmp_path / "bomb.png", 100_000, 100_000)
    with pytest.raises(ImageReadError, match="too large"):
        read_image(bomb)


@pytest.mark.parametrize("content,message", [
    (b"", "empty"),
    (b"this is not an image at all", "not a readable"),
    (b"\x89PNG\r\n\x1a\n" + b"\0" * 40, "no pixels|not a readable|cannot decode"),
])
def test_bad_files_get_clear_errors(tmp_path, content, message):
    path = tmp_path / "bad.png"
    path.write_bytes(content)
    with pytest.raises(ImageReadError, match=message):
        read_image(path)


def test_missing_file(tmp_path):
    with pytest.raises(ImageReadError, match="no such file"):
        read_image(tmp_path / "nope.png")


def test_wrong_masks_are_refused(samples256):
    image_path = next((samples256 / "images").glob("*.png"))
    with pytest.raises(ImageReadError, match="photograph"):
        read_mask(image_path)
    mask_path = samples256 / "masks" / image_path.name
    with pytest.raises(ImageReadError, match="mask is 256 x 256 but the image is 300 x 200"):
        read_mask(mask_path, shape=(200, 300))


def test_png_signature_with_garbage_is_not_a_size(tmp_path):
    path = tmp_path / "garbage.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"lorem ipsum dolor sit amet" * 4)
    assert probe_size(path.read_bytes()) is None
    with pytest.raises(ImageReadError, match="not a readable|cannot decode"):
        read_image(path)


def test_unreadable_file_is_an_image_error(samples256, tmp_path, monkeypatch):
    from helpers import make_unreadable

    path = tmp_path / "locked.png"
    path.write_bytes(sorted((samples256 / "images").glob("*.png"))[0].read_bytes())
    make_unreadable(path, monkeypatch)
    with pytest.raises(ImageReadError, match="locked.png: cannot read the file .Permission denied"):
        read_image(path)
    with pytest.raises(ImageReadError, match="locked.png: cannot read"):
        read_mask(path)


def test_a_bigtiff_dimension_bomb_is_refused_before_decoding(tmp_path):
    import struct

    # a little-endian BigTIFF whose one IFD claims 200000 x 150000 pixels (LONG8 width, LONG height)
    entries = struct.pack("<HHQQ", 256, 16, 1, 200000) + struct.pack("<HHQI4x", 257, 4, 1, 150000)
    data = b"II+\x00" + struct.pack("<HHQ", 8, 0, 16) + struct.pack("<Q", 2) + entries + struct.pack("<Q", 0)
    assert probe_size(data) == (200000, 150000)
    path = tmp_path / "slide.tif"
    path.write_bytes(data + bytes(1000))
    with pytest.raises(ImageReadError, match="slide.tif: 200000 x 150000 pixels is too large"):
        read_image(path)
