"""Property-based tests (Hypothesis): image headers, model cards, tiling and streaming inference, and the
metrics, on generated inputs. Example counts are sized so the file runs in well under 20 s on 2 cores."""
from __future__ import annotations

import json
import math
import struct

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from paipviewer.core import imageio
from paipviewer.core.imageio import ImageReadError, probe_size, read_image
from paipviewer.core.inference import predict_image, predict_tiles
from paipviewer.core.metrics import confusion, pooled
from paipviewer.core.modelfile import CARD_FORMAT, ModelCard, ModelFileError, read_card
from paipviewer.core.preprocess import EQUALIZE_MODES, equalize_hist_lut, preprocess
from paipviewer.core.tiling import TileLayout, extract_tiles, stitch
from paipviewer.viewer.paths import shipped_models_dir

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MAGIC = [b"\x89PNG\r\n\x1a\n", b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR", b"\xff\xd8", b"\xff\xd8\xff\xc0",
         b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+", b"II+\x00\x08\x00\x00\x00", b"BM"]


def is_size(value) -> bool:
    return value is None or (isinstance(value, tuple) and len(value) == 2 and all(type(v) is int for v in value))


# --- image headers and decoding --------------------------------------------------------------------

@FAST
@given(st.binary(max_size=256))
@example(b"II*\x00")  # a TIFF magic number and nothing after it
def test_probe_size_of_any_bytes_is_a_size_or_none(data):
    assert is_size(probe_size(data))


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(MAGIC), st.binary(max_size=200))
@example(b"MM\x00*", b"\x00\x00")
def test_probe_size_after_a_magic_number_is_a_size_or_none(magic, rest):
    assert is_size(probe_size(magic + rest))


@st.composite
def encoded_images(draw):
    ext = draw(st.sampled_from([".png", ".jpg", ".tif", ".bmp"]))
    h, w = draw(st.integers(1, 64)), draw(st.integers(1, 64))
    channels = draw(st.sampled_from([1, 3] + ([4] if ext in (".png", ".tif") else [])))
    dtype = draw(st.sampled_from([np.uint8, np.uint16] if ext in (".png", ".tif") else [np.uint8]))
    shape = (h, w) if channels == 1 else (h, w, channels)
    array = draw(hnp.arrays(dtype, shape, elements=st.integers(0, np.iinfo(dtype).max)))
    ok, buf = cv2.imencode(ext, array)
    assert ok
    return ext, array, buf.tobytes()


@FAST
@given(encoded_images())
def test_probe_size_agrees_with_the_decoder(encoded):
    ext, array, data = encoded
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert decoded.shape[:2] == array.shape[:2], ext
    assert probe_size(data) == (array.shape[1], array.shape[0]), ext


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    """A folder for the tests' files: function-scoped tmp_path is not reset between Hypothesis examples."""
    return tmp_path_factory.mktemp("properties")


def _read_only_image_errors(path, data):
    path.write_bytes(data)
    for read in (lambda: imageio._decode(path, cv2.IMREAD_UNCHANGED), lambda: read_image(path),
                 lambda: imageio.read_mask(path)):
        try:
            read()
        except ImageReadError:
            pass


@FAST
@given(st.binary(min_size=0, max_size=300))
def test_decoding_any_bytes_raises_only_image_read_error(scratch, data):
    _read_only_image_errors(scratch / "any.bin", data)


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(MAGIC), st.binary(max_size=300))
@example(b"II*\x00", b"")
def test_decoding_bytes_after_a_magic_number_raises_only_image_read_error(scratch, magic, rest):
    _read_only_image_errors(scratch / "magic.bin", magic + rest)


@FAST
@given(encoded_images(), st.integers(0, 10**6), st.binary(min_size=1, max_size=4))
def test_decoding_a_damaged_image_raises_only_image_read_error(scratch, encoded, where, junk):
    _, _, data = encoded
    where %= len(data)
    _read_only_image_errors(scratch / "damaged.bin", data[:where] + junk + data[where + len(junk):])


# --- model cards ----------------------------------------------------------------------------------

SHIPPED_CARD = json.loads((shipped_models_dir() / "elunet_8_5.json").read_text())
scalars = (st.none() | st.booleans() | st.integers() | st.integers(-10**400, 10**400)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20)
           | st.sampled_from(list(EQUALIZE_MODES) + [CARD_FORMAT, "elunet", "unet", "custom"]))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=12), inner, max_size=4), max_leaves=12)


@st.composite
def near_cards(draw):
    """The shipped card with one field replaced by any JSON value, removed, or one field added."""
    card = dict(SHIPPED_CARD)
    key = draw(st.sampled_from(sorted(card) + ["label", "format"]) | st.text(max_size=12))
    if draw(st.booleans()) and key in card:
        del card[key]
    else:
        card[key] = draw(json_values)
    return card


def _parse_or_model_file_error(data):
    try:
        card = ModelCard.from_dict(data) if isinstance(data, dict) else None
    except ModelFileError:
        return None
    if card is not None:
        assert isinstance(card.threshold, float) and 0.0 < card.threshold < 1.0
        assert card.equalize in EQUALIZE_MODES and card.format == CARD_FORMAT
        assert all(type(getattr(card, f)) is int for f in ("filters", "depth", "params"))
    return card


@settings(max_examples=120, deadline=None)
@given(json_values | near_cards())
@example({**SHIPPED_CARD, "threshold": 10**400})  # float() overflows
def test_any_json_is_a_card_or_a_model_file_error(scratch, data):
    _parse_or_model_file_error(data)
    path = scratch / "m.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    try:
        card = read_card(scratch / "m.keras")
    except ModelFileError:
        return
    assert card.to_json() == ModelCard.from_dict(data).to_json()


@pytest.mark.parametrize("text", [
    '{"format": "paipviewer-model-card/1", "threshold": 1' + "0" * 5000 + "}",  # past int's 4300 digits
    "[" * 100_000 + "]" * 100_000,
    '{"format": "paipviewer-model-card/1", "architecture": "\\ud800"}',
    "\ufeff{}",
])
def test_hostile_card_text_is_a_model_file_error(tmp_path, text):
    (tmp_path / "m.json").write_text(text, encoding="utf-8", errors="surrogatepass")
    with pytest.raises(ModelFileError):
        read_card(tmp_path / "m.keras")


def test_the_shipped_card_parses():
    assert _parse_or_model_file_error(SHIPPED_CARD) is not None


# --- tiling and streaming inference ---------------------------------------------------------------

@st.composite
def layouts(draw, max_tiles):
    tile = draw(st.sampled_from([16, 32, 64, 256]))
    overlap = 2 * draw(st.integers(0, tile // 2 - 1))
    height, width = draw(st.integers(1, 600)), draw(st.integers(1, 600))
    layout = TileLayout(height, width, tile, overlap)
    assume(len(layout) <= max_tiles)
    return layout


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(layouts(max_tiles=3000), st.sampled_from([0, 1, 3]), st.integers(0, 2**32 - 1))
def test_stitching_the_tiles_gives_back_the_image(layout, channels, seed):
    shape = (layout.height, layout.width) + ((channels,) if channels else ())
    image = np.random.default_rng(seed).integers(0, 2**16, shape, dtype=np.uint16)
    tiles, got = extract_tiles(image, layout.tile, layout.overlap)
    assert got == layout and tiles.shape == (len(layout), layout.tile, layout.tile) + shape[2:]
    np.testing.assert_array_equal(stitch(tiles, layout), image)
    rows, cols = layout.index_maps()
    for k in (0, len(layout) - 1):
        y, x = layout.origins()[k]
        np.testing.assert_array_equal(tiles[k], image[np.ix_(rows[y:y + layout.tile], cols[x:x + layout.tile])])


class MeanModel:
    """A deterministic stand-in for a network: each pixel's mean over R, G and B, shaped (N, h, w, 1)."""

    def predict_on_batch(self, x):
        return np.asarray(x, np.float32).mean(axis=-1, keepdims=True)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(layouts(max_tiles=200), st.sampled_from(EQUALIZE_MODES), st.integers(1, 9), st.integers(0, 2**32 - 1))
def test_streaming_equals_whole_image_extract_predict_stitch(layout, mode, batch, seed):
    rng = np.random.default_rng(seed)
    low = rng.integers(0, 200)  # a narrow range as well as a full one: equalisation then matters
    image = rng.integers(low, rng.integers(low + 1, 257), (layout.height, layout.width, 3), dtype=np.uint8)
    tiles, _ = extract_tiles(preprocess(image, mode), layout.tile, layout.overlap)
    whole = stitch(predict_tiles(MeanModel(), tiles, batch), layout)
    streamed = predict_image(MeanModel(), image, mode, tile=layout.tile, overlap=layout.overlap, batch=batch)
    assert streamed.tiles == len(layout)
    np.testing.assert_array_equal(streamed.probability, whole)


@FAST
@given(hnp.arrays(np.uint8, st.tuples(st.integers(1, 64), st.integers(1, 64)),
                  elements=st.integers(0, 255)) | hnp.arrays(np.uint8, st.tuples(st.integers(1, 64),
                                                                                 st.integers(1, 64))))
def test_equalisation_table_is_opencvs(a):
    lut = equalize_hist_lut(np.bincount(a.ravel(), minlength=256))
    np.testing.assert_array_equal(lut[a], cv2.equalizeHist(a))


# --- metrics --------------------------------------------------------------------------------------

mask_pairs = st.tuples(st.integers(0, 40), st.integers(1, 40), st.floats(0, 1), st.floats(0, 1),
                       st.integers(0, 2**32 - 1))


def _masks(shape_h, shape_w, p_pred, p_truth, seed):
    rng = np.random.default_rng(seed)
    return rng.random((shape_h, shape_w)) < p_pred, rng.random((shape_h, shape_w)) < p_truth


@settings(max_examples=150, deadline=None)
@given(mask_pairs)
@example((1, 1, 0.0, 0.0, 0))  # both empty
@example((3, 3, 1.0, 0.0, 0))  # predicted on an empty tile
@example((0, 5, 0.5, 0.5, 0))  # no pixels at all
def test_scores_are_ratios_and_counts_are_numpys(args):
    pred, truth = _masks(*args)
    c = confusion(pred, truth)
    assert (c.tp, c.fp, c.fn, c.tn) == (int(np.sum(pred & truth)), int(np.sum(pred & ~truth)),
                                        int(np.sum(~pred & truth)), int(np.sum(~pred & ~truth)))
    assert c.tp + c.fp + c.fn + c.tn == pred.size
    for name, value in c.scores().items():
        assert isinstance(value, float) and 0.0 <= value <= 1.0, name
    j = c.jaccard
    assert math.isclose(c.dice, 2 * j / (1 + j), rel_tol=1e-12, abs_tol=1e-12)
    if c.tp + c.fp + c.fn:
        assert math.isclose(j, c.tp / (c.tp + c.fp + c.fn))
    assert confusion(truth, pred).jaccard == j and confusion(truth, pred).dice == c.dice


@settings(max_examples=100, deadline=None)
@given(mask_pairs, st.lists(st.integers(0, 40), max_size=4), st.sampled_from([0, 1]))
def test_pooled_of_a_split_is_the_confusion_of_the_whole(args, cuts, axis):
    pred, truth = _masks(*args)
    edges = sorted({min(c, pred.shape[axis]) for c in cuts})
    parts = [confusion(p, t) for p, t in zip(np.split(pred, edges, axis), np.split(truth, edges, axis))]
    assert pooled(parts) == confusion(pred, truth)
    assert pooled([]) == confusion(np.zeros((0, 0), bool), np.zeros((0, 0), bool))
