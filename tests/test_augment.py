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


# --- Recipe v2 candidates: HED stain jitter and scale augmentation -------------------------------------------

from paip_trainer.augment import (HED_FROM_RGB, RGB_FROM_HED, hed_to_rgb, random_scale, recipe_v2_settings,
                                  rgb_to_hed, stain_jitter)


def test_hed_deconvolution_is_ruifrok_johnston_and_round_trips():
    np.testing.assert_allclose(RGB_FROM_HED @ HED_FROM_RGB, np.eye(3), atol=1e-12)
    rng = np.random.default_rng(0)
    rgb = rng.random((64, 64, 3))
    # Unclipped, the transform is exactly invertible (above the 1e-6 floor on intensities).
    np.testing.assert_allclose(hed_to_rgb(rgb_to_hed(rgb, clip=False)), np.maximum(rgb, 1e-6), atol=1e-12)
    # Colours made of non-negative amounts of the three stains survive even scikit-image's clipping.
    stains = rng.random((500, 3)) * 0.3
    np.testing.assert_allclose(rgb_to_hed(hed_to_rgb(stains)), stains, atol=1e-9)
    # Pure haematoxylin is H only, and its colour is the matrix's first row: OD of each channel ~ 0.65, 0.70, 0.29.
    pure = hed_to_rgb(np.array([0.1, 0.0, 0.0]))
    np.testing.assert_allclose(rgb_to_hed(pure), [0.1, 0.0, 0.0], atol=1e-12)
    od = -np.log(pure)
    np.testing.assert_allclose(od / od[0], RGB_FROM_HED[0] / RGB_FROM_HED[0, 0], atol=1e-12)
    assert pure[2] > pure[0] and pure[2] > pure[1]  # a blue-purple, as haematoxylin is
    # White is no stain; negative amounts are clipped to 0 as scikit-image does.
    np.testing.assert_allclose(rgb_to_hed(np.ones(3)), 0.0, atol=1e-12)
    assert rgb_to_hed(rgb).min() >= 0 and rgb_to_hed(rgb, clip=False).min() < 0


def test_hed_deconvolution_agrees_with_scikit_image():
    color = pytest.importorskip("skimage.color")
    rng = np.random.default_rng(1)
    rgb = rng.random((32, 48, 3))
    rgb[0, :3] = [[0, 0, 0], [1, 1, 1], [0, 1, 0.5]]
    np.testing.assert_allclose(rgb_to_hed(rgb), color.rgb2hed(rgb), atol=1e-12)
    stains = rng.random((32, 48, 3)) * 0.4
    np.testing.assert_allclose(hed_to_rgb(stains), color.hed2rgb(stains), atol=1e-12)
    np.testing.assert_allclose(RGB_FROM_HED, color.rgb_from_hed)


def test_stain_jitter_is_seeded_mild_and_the_identity_at_zero(tiles):
    x, _ = tiles
    image = x[0].astype(np.float32) / 255
    same = stain_jitter(image, np.random.default_rng(3), gain=0.0, bias=0.0)
    assert same.dtype == np.float32 and same.shape == image.shape
    np.testing.assert_allclose(same, image, atol=2e-6)
    a = stain_jitter(image, np.random.default_rng(5))
    np.testing.assert_array_equal(a, stain_jitter(image, np.random.default_rng(5)))
    assert a.dtype == np.float32 and a.shape == image.shape and 0.0 <= a.min() and a.max() <= 1.0
    means = np.array([stain_jitter(image, np.random.default_rng(s)).mean(axis=(0, 1)) for s in range(16)])
    assert means.std(axis=0).min() > 0.002 and np.abs(means - image.mean(axis=(0, 1))).max() < 0.08


def test_stain_jitter_moves_haematoxylin_and_eosin_only(tiles):
    x, _ = tiles
    image = x[1].astype(np.float32) / 255
    out = stain_jitter(image, np.random.default_rng(11), gain=0.1, bias=0.01)
    before, after = rgb_to_hed(image, clip=False), rgb_to_hed(out, clip=False)
    # Where no channel was clipped at 0 or 1, DAB is unchanged and H, E are an affine map of what they were.
    inside = ((image > 1e-3) & (image < 1 - 1e-3) & (out > 1e-3) & (out < 1 - 1e-3)).all(axis=-1)
    assert inside.mean() > 0.5
    np.testing.assert_allclose(after[inside, 2], before[inside, 2], atol=1e-4)
    for c in (0, 1):
        slope, offset = np.polyfit(before[inside, c], after[inside, c], 1)
        assert 0.9 <= slope <= 1.1 and abs(offset) <= 0.01 and (slope, offset) != pytest.approx((1, 0), abs=1e-4)


def _disc(size: int, centre: tuple[int, int], radius: int) -> tuple[np.ndarray, np.ndarray]:
    """A dark nucleus on a light background, and its mask (h, w, 1)."""
    yy, xx = np.mgrid[:size, :size]
    mask = (((yy - centre[0]) ** 2 + (xx - centre[1]) ** 2) <= radius ** 2).astype(np.float32)[..., None]
    image = np.where(mask > 0, np.float32(0.1), np.float32(0.9)) * np.ones(3, np.float32)
    return image.astype(np.float32), mask


@pytest.mark.parametrize("factor", [0.8, 1.25])
def test_random_scale_rescales_nuclei_and_labels_follow_pixels(factor):
    image, mask = _disc(256, (128, 128), 20)
    out_image, out_mask = random_scale(image, mask, np.random.default_rng(0), (factor, factor))
    assert out_image.shape == image.shape and out_mask.shape == mask.shape
    assert out_image.dtype == np.float32 and out_mask.dtype == np.float32
    assert set(np.unique(out_mask)) <= {0.0, 1.0}
    assert out_mask.sum() / mask.sum() == pytest.approx(factor ** 2, rel=0.08)
    assert np.mean((out_image[..., 0] < 0.5) == (out_mask[..., 0] > 0)) > 0.998
    # Near an edge, a reduced tile is mirrored out to size: the mirrored nucleus is labelled as well.
    image, mask = _disc(256, (128, 12), 10)
    for seed in range(6):
        out_image, out_mask = random_scale(image, mask, np.random.default_rng(seed), (0.8, 0.8))
        assert np.mean((out_image[..., 0] < 0.5) == (out_mask[..., 0] > 0)) > 0.998


def test_random_scale_is_seeded_and_the_identity_at_one(tiles):
    x, y = tiles
    image, mask = x[2].astype(np.float32) / 255, y[2][..., None].astype(np.float32)
    same_image, same_mask = random_scale(image, mask, np.random.default_rng(1), (1.0, 1.0))
    np.testing.assert_array_equal(same_image, image)
    np.testing.assert_array_equal(same_mask, mask)
    factors = set()
    for seed in range(8):
        a = random_scale(image, mask, np.random.default_rng(seed))
        b = random_scale(image, mask, np.random.default_rng(seed))
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
        assert a[0].shape == image.shape and a[1].shape == mask.shape and a[0].dtype == np.float32
        assert set(np.unique(a[1])) <= {0.0, 1.0} and 0.0 <= a[0].min() and a[0].max() <= 1.0
        factors.add(a[0].tobytes())
    assert len(factors) == 8  # a new factor or window per draw


def test_batches_draw_each_augmentation_from_its_own_stream(tiles):
    x, y = tiles

    def batch(**flags):
        return TileBatches(x, y, batch=len(x), shuffle=True, seed=9, steps=1, **flags)[0]

    scaled_x, scaled_y = batch(scale=True)
    both_x, both_y = batch(scale=True, stain=True)
    np.testing.assert_array_equal(both_y, scaled_y)  # the stain jitter neither moves pixels nor shifts the scale's draws
    assert not np.allclose(both_x, scaled_x)
    np.testing.assert_array_equal(batch(scale=True, stain=True)[0], both_x)  # repeatable
    stained_x, stained_y = batch(stain=True)
    plain_x, plain_y = batch()
    np.testing.assert_array_equal(stained_y, plain_y)
    assert stained_x.dtype == np.float32 and stained_x.shape == plain_x.shape
    assert set(np.unique(scaled_y)) <= {0.0, 1.0} and scaled_y.shape == plain_y.shape
    # --augment's draws are those it had before the new augmentations existed.
    turned_x, turned_y = batch(augment=True)
    all_x, all_y = batch(augment=True, stain=True)
    np.testing.assert_array_equal(all_y, turned_y)


def test_fit_with_stain_and_scale_augment_records_them_in_the_card(paip_prepared, tmp_path):
    from paip_trainer.cli import _fit_settings, build_parser

    args = build_parser().parse_args(["fit", "--data", "d", "--arch", "elunet", "--filters", "4", "--depth", "4",
                                      "--stain-augment", "--scale-augment"])
    settings = _fit_settings(args, "elunet", 4, 4)
    assert settings.stain_augment and settings.scale_augment and not settings.augment
    folder, _ = paip_prepared
    card = load_model(fit(folder, tiny_settings(epochs=1, stain_augment=True, scale_augment=True), tmp_path,
                          verbose=0)).card
    assert card.training["stain_augment"] is True and card.training["scale_augment"] is True
    assert card.training["augment_ranges"] == recipe_v2_settings()
    assert card.training["recipe"] == "study + stain jitter + scale jitter"  # tiny_settings leaves --augment off
    plain = _fit_settings(build_parser().parse_args(["fit", "--data", "d", "--arch", "elunet", "--filters", "4",
                                                     "--depth", "4"]), "elunet", 4, 4)
    assert not plain.stain_augment and not plain.scale_augment  # off unless asked: the study's recipe stays


def test_recipe_names_follow_the_measured_decision():
    from paip_trainer.augment import RECIPE_V2_ADDS, recipe_name

    assert recipe_name(False, False, False) == "study"
    # docs/results/recipe_v2.md: neither candidate passed the rule, so v2 is --augment alone
    assert RECIPE_V2_ADDS == () and recipe_name(True, False, False) == "v2"
    assert recipe_name(True, True, False) == "v2 + stain jitter"
    assert recipe_name(True, False, True) == "v2 + scale jitter"
