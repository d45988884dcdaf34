"""Streaming inference: tile by tile from the uint8 image, the same map as preprocessing, cutting and
stitching the whole image, in a fraction of the memory."""
from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from paipviewer.core.imageio import read_image
from paipviewer.core.inference import Cancelled, predict_image, predict_tiles
from paipviewer.core.modelfile import load_model
from paipviewer.core.preprocess import EQUALIZE_MODES, WindowPreprocessor, preprocess
from paipviewer.core.tiling import TILE, extract_tiles, stitch
from paipviewer.viewer.paths import shipped_models_dir


def whole_image_predict(model, image, equalize, tile=TILE, overlap=32, batch=None):
    """The previous predict_image: preprocess the whole image, cut every tile, predict, stitch."""
    tiles, layout = extract_tiles(preprocess(image, equalize), tile, overlap)
    return stitch(predict_tiles(model, tiles, batch), layout)


class MeanModel:
    """A deterministic stand-in for a network: each pixel's mean over R, G and B."""

    def predict_on_batch(self, x):
        return np.asarray(x, np.float32).mean(axis=-1, keepdims=True)


@pytest.fixture(scope="module")
def elunet():
    return load_model(shipped_models_dir() / "elunet_8_5.onnx", backend="onnx")


def test_shipped_model_gives_the_whole_image_map_on_real_images(elunet, samples256, monuseg):
    images = [read_image(p) for p in sorted((samples256 / "images").glob("*.png"))]
    big = read_image(sorted((monuseg / "test" / "images").glob("*.tif"))[0])
    assert big.shape == (1000, 1000, 3) and len(images) >= 8
    for image in images + [big]:
        new = predict_image(elunet.model, image, elunet.card.equalize)
        old = whole_image_predict(elunet.model, image, elunet.card.equalize)
        assert new.probability.shape == image.shape[:2] and new.probability.dtype == np.float32
        np.testing.assert_allclose(new.probability, old, rtol=0, atol=1e-6)
    assert new.tiles == 25  # 1000 px at stride 224


def test_batches_and_other_equalisations_agree_with_the_whole_image_path(elunet, monuseg):
    image = read_image(sorted((monuseg / "test" / "images").glob("*.tif"))[1])[:400, :517]
    for equalize, batch in (("luma", 3), ("clahe", 4), ("none", 1), ("rgb", 8)):
        new = predict_image(elunet.model, image, equalize, batch=batch).probability
        np.testing.assert_allclose(new, whole_image_predict(elunet.model, image, equalize, batch=batch),
                                   rtol=0, atol=1e-6)


@pytest.mark.parametrize("mode", EQUALIZE_MODES)
def test_window_preprocessing_equals_whole_image_preprocessing(monuseg, mode):
    image = read_image(sorted((monuseg / "test" / "images").glob("*.tif"))[2])
    rng = np.random.default_rng(3)
    for crop, tile, overlap in (((slice(None), slice(None)), 256, 32), ((slice(0, 300), slice(5, 522)), 64, 16),
                                ((slice(7, 8), slice(0, 200)), 32, 0), ((slice(0, 1), slice(0, 1)), 32, 4)):
        im = np.ascontiguousarray(image[crop]) if rng.random() < 0.5 else image[crop]
        ref, layout = extract_tiles(preprocess(im, mode), tile, overlap)
        source = WindowPreprocessor(im, mode)
        rows, cols = layout.index_maps()
        got = np.stack([source.window(rows[y:y + tile], cols[x:x + tile]) for y, x in layout.origins()])
        np.testing.assert_array_equal(got, ref)


def test_progress_after_every_batch_and_cancel_before_each():
    image = np.random.default_rng(0).integers(0, 256, (500, 700, 3), dtype=np.uint8)
    seen = []
    pred = predict_image(MeanModel(), image, "rgb", batch=4, progress=lambda done, total: seen.append((done, total)))
    assert pred.tiles == 12 and seen == [(4, 12), (8, 12), (12, 12)]
    assert set(pred.timing) == {"preprocess", "inference", "total"}
    assert pred.timing["total"] >= pred.timing["preprocess"] + pred.timing["inference"]
    np.testing.assert_array_equal(pred.probability, whole_image_predict(MeanModel(), image, "rgb", batch=4))
    calls = []

    def cancel():
        calls.append(1)
        return len(calls) > 2

    with pytest.raises(Cancelled):
        predict_image(MeanModel(), image, "rgb", batch=4, cancelled=cancel)
    assert len(calls) == 3


def test_bad_input_is_refused_as_before():
    with pytest.raises(ValueError, match="unknown equalisation"):
        predict_image(MeanModel(), np.zeros((10, 10, 3), np.uint8), "histogram")
    with pytest.raises(ValueError, match="expected an RGB uint8 image"):
        predict_image(MeanModel(), np.zeros((10, 10, 3), np.float32), "rgb")
    with pytest.raises(ValueError, match="no pixels"):
        predict_image(MeanModel(), np.zeros((0, 10, 3), np.uint8), "none")


@pytest.mark.parametrize("mode", ["rgb", "luma", "clahe"])
def test_memory_is_the_image_the_map_and_a_batch(mode):
    """numpy reports its allocations to tracemalloc: the old path allocated the float32 image, its padded
    copy and every tile (about 40 bytes a pixel beyond the uint8 image); streaming needs the map."""
    image = np.random.default_rng(1).integers(0, 256, (2000, 2100, 3), dtype=np.uint8)
    tracemalloc.start()
    try:
        pred = predict_image(MeanModel(), image, mode, batch=2)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    map_bytes = pred.probability.nbytes
    extra = map_bytes + (image.nbytes // 3 if mode == "clahe" else 0)  # clahe keeps its equalised L plane
    assert peak < extra + 2 * image.nbytes // 3 + 8 * 2**20, (peak / 2**20, map_bytes / 2**20)
