"""Training augmentation (fit --augment) on real sample tiles: labels follow pixels, runs repeat."""
from __future__ import annotations

import numpy as np
import pytest

from helpers import tiny_settings
from paipviewer.core.datasets import discover
from paipviewer.core.imageio import read_image, read_mask
from paipviewer.core.modelfile import load_model
from paipviewer.core.preprocess import preprocess
from paip_trainer.augment import augment_pair
from paip_trainer.batches import TileBatches
from paip_trainer.fit import fit


@pytest.fixture(scope="module")
def tiles(samples256):
    samples = discover(samples256)[:4]
    x = np.stack([(preprocess(read_image(s.image)) * 255).round().astype(np.uint8) for s in samples])
    y = np.stack([(read_mask(s.mask) > 0).astype(np.uint8) for s in samples])
    return x, y


def _run(image_u8, mask_u8, seed):
    out_image, out_mask = augment_pair(image_u8.astype(np.float32) / 255, mask_u8[..., None].astype(np.float32),
                                       np.random.default_rng((7, seed)))
    return out_image, out_mask[..., 0]


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
    stream = TileBatches(x, y, batch=len(x), shuffle=False, seed=5, steps=1, augment=True)
    x1, y1 = stream[0]
    stream.on_epoch_end()
    x2, y2 = stream[0]
    assert x1.shape == (len(x), 256, 256, 3) and y1.shape == (len(x), 256, 256, 1)
    for i in range(len(x)):
        _turn_of(y[i].astype(np.float32), y1[i, ..., 0])
        _turn_of(y[i].astype(np.float32), y2[i, ..., 0])
        assert not np.allclose(x1[i], x2[i])
    again = TileBatches(x, y, batch=len(x), shuffle=False, seed=5, steps=1, augment=True)
    np.testing.assert_array_equal(again[0][0], x1)  # a new run repeats the first epoch exactly
    plain = TileBatches(x, y, batch=len(x), shuffle=False, seed=5)[0][0]
    np.testing.assert_allclose(plain, x.astype(np.float32) / 255, atol=1e-6)  # off by default: untouched


def test_shuffled_passes_visit_every_tile_once_and_epochs_continue_the_stream(tiles):
    x, y = tiles
    n = len(x)
    # Batches of 3 over 4 tiles: an epoch of 2 steps spans passes, and the next epoch carries on.
    stream = TileBatches(x, y, batch=3, shuffle=True, seed=11, steps=2)
    drawn = [stream.tile_index(*p) for i in range(2) for p in stream.positions(i)]
    stream.on_epoch_end()
    drawn += [stream.tile_index(*p) for i in range(2) for p in stream.positions(i)]
    assert sorted(drawn[:n]) == list(range(n)) and sorted(drawn[n:2 * n]) == list(range(n))
    assert drawn[:n] != drawn[n:2 * n]  # each pass is shuffled anew (seeded: this holds for seed 11)
    batch_x, batch_y = stream[1]
    expected = [stream.tile_index(*p) for p in stream.positions(1)]
    np.testing.assert_allclose(batch_x, x[expected].astype(np.float32) / 255, atol=1e-6)
    np.testing.assert_array_equal(batch_y[..., 0], y[expected])
    # One pass per epoch without steps: the last batch is short, and no tile is drawn twice.
    passes = TileBatches(x, y, batch=3, shuffle=True, seed=11)
    assert len(passes) == 2 and len(passes[1][0]) == n - 3
    assert sorted(passes.tile_index(*p) for i in range(2) for p in passes.positions(i)) == list(range(n))


def test_fit_with_augment_records_it_in_the_card(paip_prepared, tmp_path):
    folder, _ = paip_prepared
    card = load_model(fit(folder, tiny_settings(epochs=1, augment=True), tmp_path, verbose=0)).card
    assert card.training["augment"] is True and card.training["epochs_run"] == 1


def test_keras_fit_moves_the_stream_on_each_epoch(tiles):
    import keras

    x, y = tiles
    drawn: list[list[int]] = [[]]

    class Recording(TileBatches):
        def __getitem__(self, index):
            drawn[-1].append(self.epoch)
            return super().__getitem__(index)

    class NextEpoch(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            drawn.append([])

    model = keras.Sequential([keras.Input((256, 256, 3)), keras.layers.Conv2D(1, 1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy")
    model.fit(Recording(x, y, batch=2, shuffle=True, seed=3, steps=2, augment=True), epochs=3, verbose=0,
              shuffle=False, callbacks=[NextEpoch()])
    # Keras may peek at batches before training (drawn[0]); each training epoch then reads its own stretch.
    per_epoch = [set(e) for e in drawn[1:]]
    assert all(len(e) == 1 for e in per_epoch) and len(set.union(*per_epoch)) == 3
