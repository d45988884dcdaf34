"""Model files: a ``.keras`` file and a JSON card beside it (``name.keras`` + ``name.json``).

The card says what the model is (architecture, filters, depth, parameters), how to feed it
(input size, preprocessing, threshold), how it was made (training data and settings, epochs,
time) and how well it did. Loading uses Keras safe mode, so a file with a Lambda layer or other
pickled code is refused rather than run, and checks the input and output shapes, so a foreign
Keras model gets a clear error rather than nonsense masks.

Keras is imported only inside the functions that need it: reading cards and listing models
stays instant.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .atomic import atomic_path, write_text_atomic
from .preprocess import DEFAULT_EQUALIZE, check_mode

CARD_FORMAT = "paipviewer-model-card/1"


class ModelFileError(ValueError):
    """A model file that cannot be used; the message says why, for the user."""


DEFAULT_THRESHOLD = 0.5  # the study's: a pixel is nucleus where the probability is at least this
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
        try:
            card = cls(**{k: v for k, v in data.items() if k in known})
            card.filters, card.depth, card.params = int(card.filters), int(card.depth), int(card.params)
            card.threshold = float(card.threshold)
            check_mode(card.equalize)
        except (TypeError, ValueError) as exc:
            raise ModelFileError(f"model card is invalid: {exc}") from None
        if not 0.0 < card.threshold < 1.0:
            raise ModelFileError(f"model card threshold {card.threshold} is not between 0 and 1")
        return card


def card_path(model_path: str | os.PathLike) -> Path:
    return Path(model_path).with_suffix(".json")


def read_card(model_path: str | os.PathLike) -> ModelCard:
    """The card beside a model file, validated."""
    path = card_path(model_path)
    if not path.is_file():
        raise ModelFileError(f"{Path(model_path).name}: no model card ({path.name}) beside it")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{path.name}: unreadable model card ({exc})") from None
    if not isinstance(data, dict):
        raise ModelFileError(f"{path.name}: model card is not a JSON object")
    return ModelCard.from_dict(data)


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def save_model(model, card: ModelCard, path: str | os.PathLike, overwrite: bool = False,
               include_optimizer: bool = False) -> Path:
    """Write ``model`` and its card atomically; refuse to replace an existing file unless asked."""
    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"model files end in .keras, got {path.name}")
    if not overwrite and (path.exists() or card_path(path).exists()):
        raise FileExistsError(f"{path} already exists; choose another name or pass overwrite")
    if not card.created:
        card.created = now_iso()
    if not card.project_version:
        from paipviewer import __version__
        card.project_version = __version__
    with atomic_path(path) as tmp:
        if include_optimizer:
            model.save(tmp)
        else:
            _save_without_optimizer(model, tmp)
    write_text_atomic(card_path(path), card.to_json())
    return path


def _save_without_optimizer(model, tmp: Path) -> None:
    import keras
    bare = keras.Model(model.inputs[0], model.outputs[0], name=model.name)
    bare.save(tmp)


@dataclass
class LoadedModel:
    model: object
    card: ModelCard
    path: Path
    file_bytes: int


def load_model(path: str | os.PathLike, card: ModelCard | None = None) -> LoadedModel:
    """Load a model file and its card safely, checking that it maps RGB tiles to one channel.

    ``card`` stands in for the card beside the file, for a Keras model brought without one (see
    :func:`custom_card`); its parameter count is then taken from the model.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path.name}: no such model file")
    if path.suffix != ".keras":
        raise ModelFileError(f"{path.name}: model files are .keras files")
    if not zipfile.is_zipfile(path):
        raise ModelFileError(f"{path.name}: not a Keras model file (the file is damaged or of another kind)")
    card = read_card(path) if card is None else card
    import keras
    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:  # Keras raises many types for damaged or unsafe files
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelFileError(f"{path.name}: cannot load the model ({message[:300]})") from None
    check_shapes(model, path.name)
    # A reloaded functional model expects its one input wrapped in a list; rewrap it so callers pass arrays.
    model = keras.Model(model.inputs[0], model.outputs[0], name=model.name)
    params = int(model.count_params())
    if card.architecture == CUSTOM:
        check_tile_size(model, path.name, card.input_size)
        card.params = params
    if params != card.params:
        raise ModelFileError(f"{path.name}: the card says {card.params:,} parameters, the model has {params:,}")
    return LoadedModel(model=model, card=card, path=path, file_bytes=path.stat().st_size)


def check_shapes(model, name: str = "model") -> None:
    inputs, outputs = model.inputs, model.outputs
    if len(inputs) != 1 or len(outputs) != 1:
        raise ModelFileError(f"{name}: expected one input and one output, got {len(inputs)} and {len(outputs)}")
    ishape, oshape = tuple(inputs[0].shape), tuple(outputs[0].shape)
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


def check_tile_size(model, name: str, tile: int) -> None:
    """The viewer feeds square tiles of ``tile`` pixels: a model fixed to another size cannot run."""
    size = tuple(model.inputs[0].shape)[1:3]
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
