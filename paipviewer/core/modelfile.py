"""Model files: a JSON card and the model's weights beside it, ``name.json`` + ``name.keras`` (the
source of truth and the training format) + ``name.onnx`` (the same network for ONNX Runtime, the
viewer's fast path).

The card says what the model is (architecture, filters, depth, parameters), how to feed it
(input size, preprocessing, threshold), how it was made (training data and settings, epochs,
time) and how well it did. Loading never runs code from a file: Keras loads in safe mode (a Lambda
layer or other pickled code is refused) and an ONNX file is operators and weights; the input and
output shapes are checked, so a foreign model gets a clear error rather than nonsense masks.

Keras and ONNX Runtime are imported only inside the functions that need them: reading cards and
listing models stays instant, and the viewer runs without TensorFlow when the ``.onnx`` is there.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .atomic import atomic_path, write_text_atomic
from .objects import ObjectSettings
from .preprocess import DEFAULT_EQUALIZE, check_mode

CARD_FORMAT = "paipviewer-model-card/1"


class ModelFileError(ValueError):
    """A model file that cannot be used; the message says why, for the user."""


DEFAULT_THRESHOLD = 0.5  # the study's: a pixel is nucleus where the probability is at least this
MAX_CARD_BYTES = 1_000_000  # a card is a page of JSON; the largest shipped one is 2 kB
CARD_TYPES = {"architecture": (str,), "filters": (int,), "depth": (int,), "params": (int,), "input_size": (int,),
              "equalize": (str,), "threshold": (int, float), "training": (dict,), "metrics": (dict,),
              "created": (str,), "project_version": (str,), "files": (list,), "objects": (dict,),
              "mpp": (int, float)}
# A .keras is a zip of weights, barely compressible; a far higher ratio is a decompression bomb.
MAX_MODEL_UNZIPPED = 8 * 2**30
MAX_ZIP_RATIO = 20
CUSTOM = "custom"  # the architecture of a model brought without a card: the user says how to feed it


@dataclass
class ModelCard:
    architecture: str
    filters: int
    depth: int
    params: int
    input_size: int = 256
    equalize: str = DEFAULT_EQUALIZE
    threshold: float = DEFAULT_THRESHOLD
    training: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    created: str = ""
    project_version: str = ""
    files: list = field(default_factory=list)  # the model's files beside the card: name.keras, name.onnx
    objects: dict = field(default_factory=dict)  # how nuclei are split (paipviewer.core.objects.ObjectSettings)
    mpp: float | None = None  # microns per pixel of the training images; None: not recorded
    format: str = CARD_FORMAT

    @property
    def label(self) -> str:
        if self.architecture == CUSTOM:
            return "Custom model"
        name = {"unet": "U-Net", "elunet": "ELU-Net"}.get(self.architecture, self.architecture)
        return f"{name} {self.filters}/{self.depth}"

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=False) + "\n"

    @classmethod
    def from_dict(cls, data: dict) -> "ModelCard":
        if data.get("format") != CARD_FORMAT:
            raise ModelFileError(f"not a PAIP Viewer model card (format {data.get('format')!r})")
        known = {f for f in cls.__dataclass_fields__}
        fields = {k: v for k, v in data.items() if k in known and not (k == "mpp" and v is None)}
        for name, kinds in CARD_TYPES.items():
            if name in fields and not (isinstance(fields[name], kinds) and not isinstance(fields[name], bool)):
                wanted = " or ".join(k.__name__ for k in kinds)
                raise ModelFileError(f"model card is invalid: {name} is {type(fields[name]).__name__}, not {wanted}")
        try:
            card = cls(**fields)
            card.filters, card.depth, card.params = int(card.filters), int(card.depth), int(card.params)
            card.threshold = float(card.threshold)
            check_mode(card.equalize)
            ObjectSettings.from_dict(card.objects)
            if card.mpp is not None and not 0.05 <= float(card.mpp) <= 20:
                raise ValueError(f"mpp {card.mpp} is not a microscope's pixel size (0.05 to 20 um)")
        except (TypeError, ValueError, OverflowError) as exc:  # OverflowError: an integer past float's range
            raise ModelFileError(f"model card is invalid: {exc}") from None
        if not 0.0 < card.threshold < 1.0:
            raise ModelFileError(f"model card threshold {card.threshold} is not between 0 and 1")
        return card


def card_path(model_path: str | os.PathLike) -> Path:
    return Path(model_path).with_suffix(".json")


def read_card(model_path: str | os.PathLike) -> ModelCard:
    """The card beside a model file, validated: size capped, parsed without unbounded recursion, every
    field type-checked, so a damaged or hostile card is a message, never a traceback."""
    path = card_path(model_path)
    if not path.is_file():
        raise ModelFileError(f"{Path(model_path).name}: no model card ({path.name}) beside it")
    try:
        if path.stat().st_size > MAX_CARD_BYTES:
            raise ModelFileError(f"{path.name}: {path.stat().st_size:,} bytes is too large for a model card")
        data = json.loads(path.read_text(encoding="utf-8"))
    except RecursionError:
        raise ModelFileError(f"{path.name}: unreadable model card (nested too deeply)") from None
    except ModelFileError:
        raise
    except (OSError, ValueError) as exc:  # ValueError: bad UTF-8, bad JSON, an integer past 4300 digits
        raise ModelFileError(f"{path.name}: unreadable model card ({exc})") from None
    if not isinstance(data, dict):
        raise ModelFileError(f"{path.name}: model card is not a JSON object")
    return ModelCard.from_dict(data)


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def save_model(model, card: ModelCard, path: str | os.PathLike, overwrite: bool = False,
               include_optimizer: bool = False, onnx: bool = False) -> Path:
    """Write ``model`` and its card atomically, and with ``onnx`` the same network as ``.onnx`` for
    ONNX Runtime; refuse to replace an existing file unless asked. The card lists the files.

    Every file is written to a temporary first and none is put in place until all are written, card
    last: a full disk or a failed export leaves the folder as it was, never a model without its card
    or new weights beside an old card."""
    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"model files end in .keras, got {path.name}")
    onnx_path = path.with_suffix(".onnx")
    if not overwrite and (path.exists() or card_path(path).exists() or (onnx and onnx_path.exists())):
        raise FileExistsError(f"{path} already exists; choose another name or pass overwrite")
    if not card.created:
        card.created = now_iso()
    if not card.project_version:
        from paipviewer import __version__
        card.project_version = __version__
    card.files = [path.name] + ([onnx_path.name] if onnx else [])
    finals: dict[str, Path] = {}  # temporary -> the file it becomes, to name that one in an error
    # atomic_path puts its file in place on leaving, so the one entered first (the card) lands last.
    with contextlib.ExitStack() as staged:
        try:
            card_tmp = staged.enter_context(atomic_path(card_path(path)))
            onnx_tmp = staged.enter_context(atomic_path(onnx_path)) if onnx else None
            keras_tmp = staged.enter_context(atomic_path(path))
            finals = {str(card_tmp): card_path(path), str(keras_tmp): path,
                      **({str(onnx_tmp): onnx_path} if onnx_tmp is not None else {})}
            if include_optimizer:
                model.save(keras_tmp)
            else:
                _save_without_optimizer(model, keras_tmp)
            if onnx_tmp is not None:
                from .backends import export_onnx, load_onnx
                export_onnx(keras_tmp, onnx_tmp, card.input_size)
                check_shapes(load_onnx(onnx_tmp), onnx_path.name)  # an export that went wrong fails here, not in a viewer
            write_text_atomic(card_tmp, card.to_json())
        except OSError as exc:
            if str(exc.filename) in finals and exc.errno is not None:
                raise OSError(exc.errno, exc.strerror, str(finals[str(exc.filename)])) from exc
            raise
    if not onnx and onnx_path.exists():
        onnx_path.unlink()  # an older network's export must not stand beside the new weights
    return path


def _save_without_optimizer(model, tmp: Path) -> None:
    import keras
    bare = keras.Model(model.inputs[0], model.outputs[0], name=model.name)
    bare.save(tmp)


@dataclass
class LoadedModel:
    model: object      # has predict_on_batch (see paipviewer.core.backends)
    card: ModelCard
    path: Path         # the file that was loaded
    file_bytes: int
    backend: str = "keras"  # "openvino", "onnx" (ONNX Runtime) or "keras"

    @property
    def runtime(self) -> str:
        """What runs the model, for the user: "ONNX Runtime", "OpenVINO bf16", "Keras"."""
        if self.backend == "openvino":
            return f"OpenVINO {self.model.precision}"
        return {"onnx": "ONNX Runtime", "keras": "Keras"}[self.backend]


MODEL_SUFFIXES = (".onnx", ".keras")


def model_files(path: str | os.PathLike) -> dict[str, Path]:
    """The files of one model (any of them, or its card, given): suffix -> path, those that exist."""
    base = Path(path).with_suffix("")
    return {s: base.with_suffix(s) for s in MODEL_SUFFIXES if base.with_suffix(s).is_file()}


def load_model(path: str | os.PathLike, card: ModelCard | None = None, backend: str | None = None) -> LoadedModel:
    """Load a model, given any of its files or its card, safely, checking that it maps RGB tiles to
    one channel of the same size.

    ``backend`` ("openvino", "onnx" or "keras") picks the runtime; by default the fastest whose file
    exists (see :func:`paipviewer.core.backends.speed_order`). ``card`` stands in for the card beside the file, for a model brought
    without one (see :func:`custom_card`); its parameter count is then taken from the model.
    """
    from .backends import BACKENDS, speed_order

    path = Path(path)
    if path.suffix not in (*MODEL_SUFFIXES, ".json"):
        raise ModelFileError(f"{path.name}: model files are .keras or .onnx files")
    if path.suffix != ".json" and not path.is_file():
        raise ModelFileError(f"{path.name}: no such model file")
    files = model_files(path)
    if backend is not None and backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    # Only a .onnx has a choice of runtimes; asking which is fastest imports OpenVINO (0.4 s, 35 MB), which a
    # .keras alone, a zip bomb say, must not wait for.
    wanted = [backend] if backend else list(speed_order()) if ".onnx" in files else ["keras"]
    backend = next((b for b in wanted if BACKENDS[b][0] in files), None)
    if backend is None:
        needed = " or ".join(dict.fromkeys(BACKENDS[b][0] for b in wanted))
        raise ModelFileError(f"{path.stem}: no {needed} file beside {path.name}")
    suffix, loader = BACKENDS[backend]
    chosen = files[suffix]
    if suffix == ".keras":  # before the card: the file is what is wrong
        check_keras_archive(chosen)
    card = read_card(chosen) if card is None else card
    model = loader(chosen)
    check_shapes(model, chosen.name)
    if suffix == ".keras":
        params = int(model.count_params())
        if card.architecture == CUSTOM:
            card.params = params
        if params != card.params:
            raise ModelFileError(f"{chosen.name}: the card says {card.params:,} parameters, the model has {params:,}")
    check_tile_size(model, chosen.name, card.input_size)
    probe_contract(model, chosen.name, card.input_size)
    return LoadedModel(model=model, card=card, path=chosen, file_bytes=chosen.stat().st_size, backend=backend)


def check_keras_archive(path: Path) -> None:
    """A .keras is a zip: its directory is read (never the members) to refuse a damaged file or a
    decompression bomb before Keras unpacks it."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        raise ModelFileError(f"{path.name}: not a Keras model file (the file is damaged or of another kind)") from None
    total = sum(m.file_size for m in members)
    if total > MAX_MODEL_UNZIPPED:
        raise ModelFileError(f"{path.name}: unpacks to {total / 2**30:.1f} GiB, more than any model of this kind")
    for m in members:
        if m.file_size > 2**20 and m.file_size > MAX_ZIP_RATIO * max(m.compress_size, 1):
            raise ModelFileError(f"{path.name}: {m.filename} unpacks {m.file_size // max(m.compress_size, 1):,} "
                                 "times larger than it is stored: not a model's weights (a decompression bomb?)")


def check_shapes(model, name: str = "model") -> None:
    from .backends import shapes

    ishape, oshape = shapes(model)
    if len(ishape) != 4 or ishape[-1] != 3:
        raise ModelFileError(f"{name}: input shape {ishape} is not a batch of RGB images")
    if len(oshape) != 4 or oshape[-1] != 1:
        raise ModelFileError(f"{name}: output shape {oshape} is not a one-channel mask")
    if ishape[1:3] != oshape[1:3]:
        raise ModelFileError(f"{name}: output size {oshape[1:3]} differs from input size {ishape[1:3]}")


def custom_card(equalize: str, threshold: float, input_size: int = 256) -> ModelCard:
    """A card for a Keras model brought without one: the user's preprocessing and threshold."""
    check_mode(equalize)
    if not 0.0 < threshold < 1.0:
        raise ModelFileError(f"threshold {threshold} is not between 0 and 1")
    return ModelCard(architecture=CUSTOM, filters=0, depth=0, params=0, input_size=input_size, equalize=equalize,
                     threshold=threshold, training={"data": "not recorded (brought without a card)"},
                     created=now_iso())


def probe_contract(model, name: str, tile: int) -> None:
    """Run one blank tile through the model before first use: a model whose output is not a one-channel
    map of the tile's own size ('valid' convolutions, say) is refused here, clearly, and not inside
    the tiling with a broadcast error."""
    import numpy as np

    from .backends import runtime_reason

    try:
        out = np.asarray(model.predict_on_batch(np.zeros((1, tile, tile, 3), np.float32)))
    except Exception as exc:  # any runtime's error on a plain tile is the model's
        raise ModelFileError(f"{name}: fails on a blank {tile} x {tile} tile ({runtime_reason(exc, 200)})") from None
    if out.shape != (1, tile, tile, 1):
        raise ModelFileError(f"{name}: a {tile} x {tile} tile gives an output of shape {tuple(out.shape[1:])}; "
                             f"the tiling needs ({tile}, {tile}, 1)")


def check_tile_size(model, name: str, tile: int) -> None:
    """The viewer feeds square tiles of ``tile`` pixels: a model fixed to another size cannot run."""
    from .backends import shapes

    size = shapes(model)[0][1:3]
    if any(s is not None and s != tile for s in size):
        raise ModelFileError(f"{name}: the model takes {size[1]} x {size[0]} inputs; the viewer feeds "
                             f"{tile} x {tile} tiles")


def training_totals(training: dict) -> tuple[int | None, float | None]:
    """Epochs and seconds of a model's whole training, over every run it was continued from.

    Returns None for a figure that no run in the chain recorded.
    """
    epochs = seconds = None
    stage = training
    while stage:
        if stage.get("epochs_run") is not None:
            epochs = (epochs or 0) + int(stage["epochs_run"])
        if stage.get("seconds") is not None:
            seconds = (seconds or 0.0) + float(stage["seconds"])
        stage = stage.get("continued_from")
    return epochs, seconds
