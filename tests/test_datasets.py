"""Finding images and their ground truth in the layouts we support, on the real folders."""
from __future__ import annotations

import numpy as np

from paipviewer.core.datasets import discover, find_mask, read_mpp_sheet
from paipviewer.core.imageio import read_image, read_mask


def test_paip_layout(paip_fixture):
    samples = {s.name: s for s in discover(paip_fixture)}
    assert sorted(samples) == ["tr_c001", "tr_p001", "tr_p002", "tr_p003", "tr_p004"]
    assert samples["tr_c001"].organ == "colon" and samples["tr_p001"].organ == "pancreas"
    assert samples["tr_p004"].mpp == 0.5 and samples["tr_p001"].mpp == 0.25
    for s in samples.values():
        assert s.mask.name == f"{s.name}_tumor.png"
        image, mask = read_image(s.image), read_mask(s.mask)
        assert image.shape == (1024, 1024, 3) and mask.shape == (1024, 1024) and mask.dtype == bool
        assert 0.01 < mask.mean() < 0.5


def test_paip_mask_is_tumour_only(paip_fixture):
    root = paip_fixture / "2. PAIP2023_Traning masks"
    tumour = read_mask(root / "tumor" / "tr_p001_tumor.png")
    non_tumour = read_mask(root / "non_tumor" / "tr_p001_nontumor.png")
    assert not np.any(tumour & non_tumour)
    assert discover(paip_fixture)[1].mask.parent.name == "tumor"


def test_mpp_sheet(paip_fixture):
    assert read_mpp_sheet(paip_fixture) == {"tr_p001": 0.25, "tr_p002": 0.25, "tr_p003": 0.25,
                                            "tr_p004": 0.5, "tr_c001": 0.25}


def test_monuseg_splits(monuseg):
    samples = discover(monuseg)
    train = [s for s in samples if s.split == "train"]
    test = [s for s in samples if s.split == "test"]
    assert len(train) == 30 and len(test) == 14
    assert all(s.mask is not None and s.mask.stem == s.image.stem for s in samples)
    assert not {s.name for s in train} & {s.name for s in test}


def test_sample_tiles(samples256):
    samples = discover(samples256)
    assert len(samples) == 16
    for s in samples:
        assert s.mask.parent.name == "masks"
        assert read_mask(s.mask, read_image(s.image).shape[:2]).any()


def test_find_mask_for_single_images(samples256, paip_fixture, tmp_path):
    image = next((samples256 / "images").glob("*.png"))
    assert find_mask(image) == samples256 / "masks" / image.name
    paip_image = paip_fixture / "1. PAIP2023_Training" / "tr_p002.png"
    assert find_mask(paip_image).name == "tr_p002_tumor.png"
    (tmp_path / "x.png").write_bytes(image.read_bytes())
    assert find_mask(tmp_path / "x.png") is None
    (tmp_path / "x_mask.png").write_bytes((samples256 / "masks" / image.name).read_bytes())
    assert find_mask(tmp_path / "x.png") == tmp_path / "x_mask.png"
    assert [s.name for s in discover(tmp_path)] == ["x"]
