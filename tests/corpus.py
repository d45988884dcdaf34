"""The bad-input corpus: every kind of file a user can hand the viewer, ``paipviewer score`` or the
trainer by mistake (or on purpose), built into a folder by real encoders or, for the bombs, byte by byte.

    cases = build(folder, model)                     # name -> Case, every kind
    cases = build(folder, kinds=("image", "mask"))   # no model needed, no Keras imported
    names("image")                                   # the names, without building anything

Each :class:`Case` says what the file is meant to be (``kind``: image, mask, model or card), where it
is, and ``message``: a regular expression of the reason the core reader (``read_image``,
``read_mask`` against a 256 x 256 image, ``load_model``) gives for it, or None where the file is
odd but valid (a 1 x 1 image, a palette PNG, an empty mask) and must simply work. ``opened``
replaces ``message`` where the viewer's open step refuses the path before any reader sees it (a
symbolic link that loops, a folder named like an image). A mask case's ``image`` is the good tile
it lies beside, named so that the layouts pair them (``<stem>_mask.png``). ``unreadable`` marks the
file whose read permission is taken away: as root the kernel ignores modes, so a caller simulates
the refusal with :func:`helpers.make_unreadable`.

Used by tests/test_corpus.py (every case through every entry point) and benchmarks/bad_inputs.py
(the time and memory each refusal takes).
"""
from __future__ import annotations

import io
import json
import os
import shutil
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "resources" / "samples"
# The one good tile every batch holds beside a bad input (256 x 256, with its mask in masks/).
GOOD_TILE = sorted((SAMPLES / "images").glob("*.png"))[0]
SHAPE = (256, 256)

NOT_AN_IMAGE = "not a readable PNG, JPEG, TIFF or BMP image"
DAMAGED_MODEL = r"not a Keras model file \(the file is damaged or of another kind\)"


@dataclass(frozen=True)
class Case:
    name: str
    path: Path
    kind: str                       # "image", "mask", "model" or "card"
    message: str | None             # regex of the reader's reason; None: valid, must work
    image: Path | None = None       # a mask case: the good image it belongs to
    opened: str | None = None       # the reason the open step gives before any reader runs
    unreadable: bool = False        # read permission taken away (see helpers.make_unreadable)

    @property
    def ok(self) -> bool:
        return self.message is None and self.opened is None


# ----------------------------------------------------------------------------- bytes of bombs

def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims ``width x height`` RGB pixels, with a few bytes of data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + _png_chunk(b"IEND", b""))


def jpeg_bomb(width: int = 65000, height: int = 65000) -> bytes:
    """A real JPEG whose SOF0 frame header is rewritten to claim ``width x height`` pixels."""
    ok, buf = cv2.imencode(".jpg", np.full((16, 16, 3), 128, np.uint8))
    data = bytearray(buf.tobytes())
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def tiff_bomb(width: int = 100000, height: int = 100000) -> bytes:
    """A classic little-endian TIFF whose one IFD claims ``width x height`` 8-bit RGB pixels in one strip."""
    entries = [(256, 4, 1, width), (257, 4, 1, height), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 2),
               (273, 4, 1, 200), (277, 3, 1, 3), (278, 4, 1, height), (279, 4, 1, 64)]
    ifd = struct.pack("<H", len(entries))
    for tag, typ, count, value in entries:
        ifd += struct.pack("<HHI", tag, typ, count) + (struct.pack("<HH", value, 0) if typ == 3
                                                       else struct.pack("<I", value))
    ifd += struct.pack("<I", 0)
    data = b"II*\x00" + struct.pack("<I", 8) + ifd
    return data + bytes(264 - len(data))


def bigtiff_bomb(width: int = 200000, height: int = 150000) -> bytes:
    """A little-endian BigTIFF whose one IFD claims ``width x height`` pixels (LONG8 width, LONG height)."""
    entries = struct.pack("<HHQQ", 256, 16, 1, width) + struct.pack("<HHQI4x", 257, 4, 1, height)
    data = b"II+\x00" + struct.pack("<HHQ", 8, 0, 16) + struct.pack("<Q", 2) + entries + struct.pack("<Q", 0)
    return data + bytes(1000)


def bmp_bomb(width: int = 60000, height: int = 60000) -> bytes:
    """A BMP whose info header claims ``width x height`` 24-bit pixels, with none of them."""
    header = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 14 + len(header) + 64, 0, 0, 14 + len(header)) + header + bytes(64)


def zip_bomb_model(path: Path, megabytes: int = 256) -> Path:
    """A .keras-named zip whose weights member unpacks to ``megabytes`` MiB of zeros (about 250 kB stored)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("config.json", "{}")
        with archive.open("model.weights.h5", "w", force_zip64=True) as member:
            for _ in range(megabytes):
                member.write(bytes(2**20))
    return path


# ----------------------------------------------------------------------------- the corpus

@dataclass
class Context:
    """What the builders make their files from."""
    good_bgr: np.ndarray             # the good tile as OpenCV reads it
    truth: np.ndarray                # its ground-truth nuclei (int32 labels)
    rng: np.random.Generator
    model: Path | None = None        # a good small model file with its card
    card: dict | None = None         # that card

    def png(self) -> bytes:
        return encode(".png", self.good_bgr)


@dataclass(frozen=True)
class Spec:
    name: str
    kind: str
    message: str | None
    make: Callable[[Path, Context], object]   # writes the case's file (a mask's, a card's) at the path
    opened: str | None = None
    unreadable: bool = False


def encode(suffix: str, array: np.ndarray, *params) -> bytes:
    ok, buf = cv2.imencode(suffix, array, list(params))
    assert ok, suffix
    return buf.tobytes()


def data(produce: Callable[[Context], bytes]) -> Callable[[Path, Context], object]:
    return lambda path, ctx: path.write_bytes(produce(ctx))


def _cut(suffix: str, keep: Callable[[int], int], *params) -> Callable[[Path, Context], object]:
    def make(path: Path, ctx: Context) -> None:
        whole = encode(suffix, ctx.good_bgr, *params)
        path.write_bytes(whole[:keep(len(whole))])
    return make


def _pillow(save: Callable) -> Callable[[Path, Context], object]:
    def make(path: Path, ctx: Context) -> None:
        from PIL import Image

        buf = io.BytesIO()
        save(Image.fromarray(np.ascontiguousarray(ctx.good_bgr[:, :, ::-1])), buf)
        path.write_bytes(buf.getvalue())
    return make


def _tiff(pages: Callable[[np.ndarray], np.ndarray], **options) -> Callable[[Path, Context], object]:
    def make(path: Path, ctx: Context) -> None:
        import tifffile

        tifffile.imwrite(path, pages(np.ascontiguousarray(ctx.good_bgr[:, :, ::-1])), photometric="rgb", **options)
    return make


def _fifo(path: Path, ctx: Context) -> None:
    os.mkfifo(path)


def _symlink(target: str) -> Callable[[Path, Context], object]:
    return lambda path, ctx: os.symlink(target if target else path.name, path)


IMAGES = [
    Spec("zero_bytes.png", "image", "the file is empty", data(lambda c: b"")),
    Spec("zero_bytes.tif", "image", "the file is empty", data(lambda c: b"")),
    # Cut inside the image data: every decoder refuses it (OpenCV drops a JPEG that ends early, too).
    Spec("truncated.png", "image", NOT_AN_IMAGE, _cut(".png", lambda n: n // 2)),
    Spec("truncated.tif", "image", NOT_AN_IMAGE, _cut(".tiff", lambda n: n // 2)),
    Spec("truncated.jpg", "image", NOT_AN_IMAGE, _cut(".jpg", lambda n: n // 2)),
    Spec("truncated_header.jpg", "image", NOT_AN_IMAGE, _cut(".jpg", lambda n: 40)),
    *(Spec(f"random{suffix}", "image", NOT_AN_IMAGE, data(lambda c: c.rng.bytes(4096)))
      for suffix in (".png", ".jpg", ".tif", ".bmp")),
    Spec("png_signature_then_noise.png", "image", NOT_AN_IMAGE,
         data(lambda c: b"\x89PNG\r\n\x1a\n" + c.rng.bytes(4096))),
    Spec("text.png", "image", NOT_AN_IMAGE, data(lambda c: b"a text file that says it is a picture\n" * 20)),
    # Dimension bombs: a few hundred bytes that declare billions of pixels.
    Spec("bomb.png", "image", "100000 x 100000 pixels is too large", data(lambda c: png_header_only(100_000, 100_000))),
    Spec("bomb.jpg", "image", "65000 x 65000 pixels is too large", data(lambda c: jpeg_bomb())),
    Spec("bomb.tif", "image", "100000 x 100000 pixels is too large", data(lambda c: tiff_bomb())),
    Spec("bomb_bigtiff.tif", "image", "200000 x 150000 pixels is too large", data(lambda c: bigtiff_bomb())),
    Spec("bomb.bmp", "image", "60000 x 60000 pixels is too large", data(lambda c: bmp_bomb())),
    Spec("no_pixels.png", "image", "the image has no pixels", data(lambda c: png_header_only(0, 256))),
    # Odd but valid: each must read as an RGB uint8 image and be scored.
    Spec("one_pixel.png", "image", None, data(lambda c: encode(".png", c.good_bgr[:1, :1]))),
    Spec("three_pixels.png", "image", None, data(lambda c: encode(".png", c.good_bgr[:3, :3]))),
    Spec("sixteen_bit.png", "image", None, data(lambda c: encode(".png", c.good_bgr.astype(np.uint16) * 257))),
    Spec("rgba.png", "image", None,
         data(lambda c: encode(".png", np.dstack([c.good_bgr, np.full(SHAPE, 200, np.uint8)])))),
    Spec("grey.png", "image", None, data(lambda c: encode(".png", cv2.cvtColor(c.good_bgr, cv2.COLOR_BGR2GRAY)))),
    Spec("palette.png", "image", None, _pillow(lambda im, fh: im.quantize(64).save(fh, "PNG"))),
    Spec("cmyk.jpg", "image", None, _pillow(lambda im, fh: im.convert("CMYK").save(fh, "JPEG", quality=90))),
    Spec("multipage.tif", "image", None, _tiff(lambda rgb: np.stack([rgb, 255 - rgb]))),
    Spec("bigtiff.tif", "image", None, _tiff(lambda rgb: rgb, bigtiff=True)),
    # Names a shell or an argument parser can trip on.
    Spec("name with spaces.png", "image", None, data(Context.png)),
    Spec("ünïcødé 核.png", "image", None, data(Context.png)),
    Spec("-leading-dash.png", "image", None, data(Context.png)),
    # Not files at all, or files that cannot be read.
    Spec("symlink_loop.png", "image", r"cannot read the file \(Too many levels of symbolic links\)", _symlink(""),
         opened="no such file or folder"),
    Spec("dangling.png", "image", "no such file", _symlink("nowhere.png"), opened="no such file or folder"),
    Spec("fifo.png", "image", r"not a regular file \(a named pipe\)", _fifo),
    Spec("folder.png", "image", r"not a regular file \(a folder\)", lambda path, c: path.mkdir(),
         opened="no images found"),
    Spec("locked.png", "image", r"cannot read the file \(Permission denied\)", data(Context.png), unreadable=True),
]

MASKS = [
    Spec("mask_zero_bytes", "mask", "the file is empty", data(lambda c: b"")),
    Spec("mask_random", "mask", NOT_AN_IMAGE, data(lambda c: c.rng.bytes(4096))),
    Spec("mask_mismatched", "mask", "mask is 100 x 80 but the image is 256 x 256",
         data(lambda c: encode(".png", (c.truth[:80, :100] > 0).astype(np.uint8) * 255))),
    Spec("mask_rgb_photo", "mask", "looks like a colour photograph, not a mask",
         data(lambda c: encode(".png", c.good_bgr))),
    Spec("mask_bomb", "mask", "100000 x 100000 pixels is too large", data(lambda c: png_header_only(100_000, 100_000))),
    Spec("mask_empty", "mask", None, data(lambda c: encode(".png", np.zeros(SHAPE, np.uint8)))),
    Spec("mask_uint16", "mask", None,
         data(lambda c: encode(".png", (c.truth + (c.truth > 0) * 300).astype(np.uint16)))),
    Spec("mask_rgb_binary", "mask", None,
         data(lambda c: encode(".png", np.dstack([(c.truth > 0).astype(np.uint8) * 255] * 3)))),
]


def _card(change: Callable[[dict], object]) -> Callable[[Path, Context], object]:
    """The good card with ``change`` made to it (a dict back is the new card; text or bytes are written as are)."""
    def make(path: Path, ctx: Context) -> None:
        new = change(dict(ctx.card))
        if isinstance(new, dict):
            new = json.dumps(new)
        path.write_bytes(new.encode() if isinstance(new, str) else new)
    return make


CARDS = [
    Spec("card_not_json", "card", "unreadable model card", _card(lambda c: b"{not json")),
    Spec("card_empty", "card", "unreadable model card", _card(lambda c: b"")),
    Spec("card_bad_utf8", "card", "unreadable model card", _card(lambda c: b'{"architecture": "\xff\xfe"}')),
    Spec("card_nested", "card", r"unreadable model card \(nested too deeply\)",
         _card(lambda c: b"[" * 5000 + b"]" * 5000)),
    Spec("card_list", "card", "model card is not a JSON object", _card(lambda c: b"[1, 2, 3]")),
    Spec("card_huge", "card", "2,000,002 bytes is too large for a model card",
         _card(lambda c: b" " * 2_000_000 + b"{}")),
    Spec("card_foreign", "card", r"not a PAIP Viewer model card \(format None\)",
         _card(lambda c: {"name": "someone else's"})),
    Spec("card_wrong_type", "card", "architecture is list, not str",
         _card(lambda c: {**c, "architecture": ["elunet"]})),
    Spec("card_threshold_nan", "card", "threshold nan is not between 0 and 1",
         _card(lambda c: {**c, "threshold": float("nan")})),
    Spec("card_threshold_above_one", "card", "threshold 1.5 is not between 0 and 1",
         _card(lambda c: {**c, "threshold": 1.5})),
    Spec("card_huge_integer", "card", "unreadable model card .Exceeds the limit",
         _card(lambda c: json.dumps({**c, "filters": 0}).replace('"filters": 0', '"filters": ' + "9" * 5000))),
    Spec("card_equalize_unknown", "card", "unknown equalisation 'sepia'", _card(lambda c: {**c, "equalize": "sepia"})),
    Spec("card_mpp_absurd", "card", "mpp 1000 is not a microscope's pixel size", _card(lambda c: {**c, "mpp": 1000})),
    Spec("card_params_lie", "card", "the card says 12 parameters", _card(lambda c: {**c, "params": 12})),
]


def _with_card(write: Callable[[Path, Context], object]) -> Callable[[Path, Context], object]:
    """A model file, and the good card beside it (so the file is what is wrong)."""
    def make(path: Path, ctx: Context) -> None:
        write(path, ctx)
        path.with_suffix(".json").write_text(json.dumps(ctx.card))
    return make


def _keras(build_net: Callable) -> Callable[[Path, Context], object]:
    """A real Keras model breaking the contract, saved with the good card but its own parameter count."""
    def make(path: Path, ctx: Context) -> None:
        import keras

        net = build_net(keras, path)
        net.save(path)
        path.with_name(f"{path.stem}_ran").unlink(missing_ok=True)  # building a Lambda layer calls it; loading must not
        path.with_suffix(".json").write_text(json.dumps({**ctx.card, "params": int(net.count_params())}))
    return make


def _lambda_net(keras, path: Path):
    """A Lambda layer whose function would touch ``<name>_ran`` if it ever ran."""
    marker = path.with_name(f"{path.stem}_ran")
    inp = keras.Input((None, None, 3))
    payload = eval(f"lambda x: (__import__('pathlib').Path({str(marker)!r}).touch(), x[..., :1])[1]")
    return keras.Model(inp, keras.layers.Lambda(payload)(inp))


MODELS = [
    Spec("model_zero_bytes.keras", "model", DAMAGED_MODEL, _with_card(data(lambda c: b""))),
    Spec("model_random.keras", "model", DAMAGED_MODEL, _with_card(data(lambda c: c.rng.bytes(20000)))),
    Spec("model_truncated.keras", "model", DAMAGED_MODEL,
         _with_card(data(lambda c: c.model.read_bytes()[: c.model.stat().st_size // 3]))),
    Spec("model_text.keras", "model", DAMAGED_MODEL, _with_card(data(lambda c: b"a text file, not a model\n"))),
    Spec("model_random_bytes.onnx", "model",
         r"cannot load the ONNX model \((Unable to read the model|\[ONNXRuntimeError\])",
         _with_card(data(lambda c: c.rng.bytes(20000)))),
    Spec("model_zip_bomb.keras", "model", r"model.weights.h5 unpacks [\d,]+ times larger than it is stored",
         _with_card(lambda path, c: zip_bomb_model(path))),
    Spec("model_without_card.keras", "model", r"no model card \(model_without_card.json\) beside it",
         data(lambda c: c.model.read_bytes())),
    Spec("model_lambda.keras", "model", r"cannot load the model \(Requested the deserialization of a .Lambda. layer",
         _keras(_lambda_net)),
    Spec("model_two_channels.keras", "model", r"output shape \(None, None, None, 2\) is not a one-channel mask",
         _keras(lambda keras, p: keras.Sequential([keras.Input((None, None, 3)), keras.layers.Conv2D(2, 1)]))),
    Spec("model_valid_conv.keras", "model", r"a 256 x 256 tile gives an output of shape \(254, 254, 1\)",
         _keras(lambda keras, p: keras.Sequential([keras.Input((None, None, 3)),
                                                   keras.layers.Conv2D(1, 3, activation="sigmoid")]))),
    Spec("model_fixed_size.keras", "model", "takes 64 x 64 inputs; the viewer feeds 256 x 256 tiles",
         _keras(lambda keras, p: keras.Sequential([keras.Input((64, 64, 3)),
                                                   keras.layers.Conv2D(1, 1, activation="sigmoid")]))),
]

SPECS = {"image": IMAGES, "mask": MASKS, "card": CARDS, "model": MODELS}


def names(kind: str) -> list[str]:
    """The cases of one kind, without building them (for pytest's parametrisation)."""
    return [s.name for s in SPECS[kind]]


def build(folder: str | os.PathLike, model: Path | None = None, kinds=("image", "mask", "card", "model"),
          seed: int = 15) -> dict[str, Case]:
    """The cases of ``kinds`` built under ``folder``, by name.

    Card and model cases need ``model``, a good small model file with its card
    (tests.helpers.make_model_file); model cases build real Keras models (Keras is imported).
    """
    folder = Path(folder)
    truth_path = GOOD_TILE.parent.parent / "masks" / GOOD_TILE.name
    from paipviewer.core.imageio import read_labels

    ctx = Context(cv2.imread(str(GOOD_TILE), cv2.IMREAD_COLOR), read_labels(truth_path), np.random.default_rng(seed),
                  Path(model) if model else None,
                  json.loads(Path(model).with_suffix(".json").read_text()) if model else None)
    cases: dict[str, Case] = {}
    for kind in kinds:
        if kind in ("card", "model") and model is None:
            raise ValueError(f"{kind} cases need a good model file")
        where = folder / f"{kind}s"
        where.mkdir(parents=True, exist_ok=True)
        for spec in SPECS[kind]:
            image = None
            if kind == "mask":  # a folder of its own: a copy of the good tile and <stem>_mask.png beside it
                (where / spec.name).mkdir()
                image = where / spec.name / f"{spec.name}_tile.png"
                shutil.copyfile(GOOD_TILE, image)
                path = where / spec.name / f"{spec.name}_tile_mask.png"
                spec.make(path, ctx)
            elif kind == "card":  # a copy of the good model, the card is what is wrong
                path = where / f"{spec.name}.keras"
                shutil.copyfile(model, path)
                spec.make(path.with_suffix(".json"), ctx)
            else:
                path = where / spec.name
                spec.make(path, ctx)
            cases[spec.name] = Case(spec.name, path, kind, spec.message, image, spec.opened, spec.unreadable)
    return cases
