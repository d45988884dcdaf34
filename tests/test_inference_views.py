"""Test-time augmentation: each tile predicted in several dihedral views, every output turned back
to the tile's frame and averaged (paipviewer.core.inference)."""
from __future__ import annotations

import numpy as np
import pytest

from paipviewer.core import metrics
from paipviewer.core.imageio import read_image, read_mask
from paipviewer.core.inference import Cancelled, _unview, _view, predict_image, predict_tiles
from paipviewer.core.modelfile import load_model
from paipviewer.core.preprocess import preprocess
from paipviewer.viewer.paths import shipped_models_dir


@pytest.fixture(scope="module")
def elunet():
    return load_model(shipped_models_dir() / "elunet_4_4.onnx", backend="onnx")


def _tiles(samples256, n=3):
    paths = sorted((samples256 / "images").glob("*.png"))[:n]
    return np.stack([preprocess(read_image(p), "rgb") for p in paths])


def test_each_view_is_undone_by_its_inverse():
    x = np.arange(2 * 5 * 5 * 3, dtype=np.float32).reshape(2, 5, 5, 3)
    seen = set()
    for k in range(8):
        v = _view(x, k)
        seen.add(v.tobytes())
        np.testing.assert_array_equal(_unview(v, k), x)
    assert len(seen) == 8  # eight different views, not one repeated


def test_eight_views_are_the_mean_of_the_model_on_each_turned_and_mirrored_tile(elunet, samples256):
    x = _tiles(samples256)
    by_hand = []
    for turns in range(4):
        for mirrored in (False, True):
            view = np.rot90(x, turns, axes=(1, 2))
            view = view[:, :, ::-1] if mirrored else view
            y = np.asarray(elunet.model.predict_on_batch(np.ascontiguousarray(view)), np.float32)[..., 0]
            y = y[:, :, ::-1] if mirrored else y
            by_hand.append(np.rot90(y, -turns, axes=(1, 2)))
    np.testing.assert_allclose(predict_tiles(elunet.model, x, views=8), np.mean(by_hand, axis=0), atol=1e-5)


@pytest.mark.parametrize("views", [2, 4, 8])
def test_the_averaged_map_turns_with_the_tile(elunet, samples256, views):
    """The average over a group of views is equivariant under that group; one view is not: so a
    wrong inverse would fail here."""
    x = _tiles(samples256, 2)
    mirrored = np.ascontiguousarray(x[:, :, ::-1])
    together = predict_tiles(elunet.model, np.concatenate([x, mirrored]), views=views)
    np.testing.assert_allclose(together[2:], together[:2, :, ::-1], atol=1e-5)
    if views == 8:
        turned = np.ascontiguousarray(np.rot90(x, 1, axes=(1, 2)))
        np.testing.assert_allclose(predict_tiles(elunet.model, turned, views=8),
                                   np.rot90(together[:2], 1, axes=(1, 2)), atol=1e-5)
    single = predict_tiles(elunet.model, np.concatenate([x, mirrored]), views=1)
    assert np.abs(single[2:] - single[:2, :, ::-1]).max() > 1e-3


def test_views_on_a_whole_image_keep_its_size_and_score_as_well(elunet, samples256):
    path = sorted((samples256 / "images").glob("*.png"))[0]
    image, truth = read_image(path), read_mask(samples256 / "masks" / path.name) > 0
    one = predict_image(elunet.model, image, elunet.card.equalize)
    eight = predict_image(elunet.model, image, elunet.card.equalize, views=8)
    assert one.views == 1 and eight.views == 8
    assert eight.probability.shape == image.shape[:2] and eight.probability.dtype == np.float32
    assert 0.0 <= eight.probability.min() and eight.probability.max() <= 1.0
    assert not np.allclose(one.probability, eight.probability)
    dice = [metrics.confusion(p.mask(elunet.card.threshold), truth).dice for p in (one, eight)]
    assert dice[1] > 0.6 and abs(dice[1] - dice[0]) < 0.1


def test_bad_view_counts_are_refused_and_cancel_still_works(elunet, samples256):
    x = _tiles(samples256, 2)
    for bad in (0, 3, 16):
        with pytest.raises(ValueError, match="views must be one of"):
            predict_tiles(elunet.model, x, views=bad)
    with pytest.raises(ValueError, match="square"):
        predict_tiles(elunet.model, np.zeros((1, 64, 128, 3), np.float32), views=8)
    with pytest.raises(Cancelled):
        predict_image(elunet.model, read_image(sorted((samples256 / "images").glob("*.png"))[0]), "rgb",
                      views=8, cancelled=lambda: True)
