"""Training augmentation (fit --augment) on real sample tiles: labels follow pixels, runs repeat."""
from __future__ import annotations

import numpy as np
import pytest

from helpers import tiny_settings
from paipviewer.core.datasets import discover
from paipviewer.core.imageio import read_image, read_mask
from paipviewer.core.modelfile import load_model
from paipviewer.core.preprocess import preprocess
from trainer.augment import augment_pair
from trainer.fit import _dataset, fit


@pytest.fixture(scope="module")
def tiles(samples256):
    samples = discover(samples256)[:4]
    x = np.stack([(preprocess(read_image(s.image)) * 255).round().astype(np.uint8) for s in samples])
    y = np.stack([(read_mask(s.mask) > 0).astype(np.uint8) for s in samples])
    return x, y


def _run(image_u8, mask_u8, seed):
    out_image, out_mask = augment_pair(image_u8.astype(np.float32) / 255, mask_u8[..., None].astype(np.float32),
                                       np.array([7, seed], np.int64))
    return out_image.numpy(), out_mask.numpy()[..., 0]


def _turn_of(original: np.ndarray, turned: np.ndarray) -> int:
    matches = [k for k in range(4) if np.array_equal(np.rot90(original, k), turned)]
    assert len(matches) >= 1, "the mask is not a quarter turn of the original"
    return matches[0]


def test_image_and_mask_turn_together_and_labels_stay_binary(tiles):
    x, y = tiles
    turns = set()
    for seed in range(24):
        image, mask = _run(x[0], y[0], seed)
        assert image.shape == (256, 256, 3) and 0.0 <= image.min() and image.max() <= 1.0
        assert set(np.unique(mask)) <= {0.0, 1.0} and mask.sum() == y[0].sum()
        k = _turn_of(y[0].astype(np.float32), mask)
        turns.add(k)
        # The image turned by the same k: its pixels correlate with the jittered image far above any other turn.
        corr = [np.corrcoef(np.rot90(x[0], j).ravel(), image.ravel())[0, 1] for j in range(4)]
        assert int(np.argmax(corr)) == k and corr[k] > 0.95
    assert turns == {0, 1, 2, 3}


def test_colour_jitter_is_mild_and_varies(tiles):
    x, y = tiles
    original = x[1].astype(np.float32).mean(axis=(0, 1)) / 255
    means = np.array([_run(x[1], y[1], seed)[0].mean(axis=(0, 1)) for seed in range(16)])
    assert means.std(axis=0).min() > 0.005  # every channel actually changes from draw to draw
    assert np.abs(means - original).max() < 0.15  # but stays a plausible H&E colour


def test_same_seed_repeats_and_epochs_see_new_draws(tiles):
    x, y = tiles
    a, _ = _run(x[2], y[2], 3)
    b, _ = _run(x[2], y[2], 3)
    np.testing.assert_array_equal(a, b)
    # Unshuffled endless stream: tile i appears at positions i and n + i, with different augmentations.
    ds = _dataset(x, y, batch=len(x), shuffle=False, seed=5, repeat=True, augment=True)
    batches = [tuple(t.numpy() for t in batch) for batch, _ in zip(ds, range(2))]
    (x1, y1), (x2, y2) = batches
    assert x1.shape == (len(x), 256, 256, 3) and y1.shape == (len(x), 256, 256, 1)
    for i in range(len(x)):
        _turn_of(y[i].astype(np.float32), y1[i, ..., 0])
        _turn_of(y[i].astype(np.float32), y2[i, ..., 0])
        assert not np.allclose(x1[i], x2[i])
    plain = next(iter(_dataset(x, y, batch=len(x), shuffle=False, seed=5)))[0].numpy()
    np.testing.assert_allclose(plain, x.astype(np.float32) / 255, atol=1e-6)  # off by default: untouched


def test_fit_with_augment_records_it_in_the_card(paip_prepared, tmp_path):
    folder, _ = paip_prepared
    card = load_model(fit(folder, tiny_settings(epochs=1, augment=True), tmp_path, verbose=0)).card
    assert card.training["augment"] is True and card.training["epochs_run"] == 1
