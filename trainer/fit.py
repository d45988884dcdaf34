"""``paip-train fit``: train one variant on prepared tiles and write its model file.

Defaults are the study's recipe: Adam 1e-4, binary cross-entropy, batch 8, up to 40 epochs,
early stopping on validation loss keeping the best weights. Everything is overridable; the
card records what was used. The model file, card and history CSV are written atomically at the
end, so an interrupted run leaves no half-written model; the training state of the last epoch
(:mod:`paip_trainer.checkpoint`) is kept beside them so ``--resume`` carries on as if uninterrupted.
"""
from __future__ import annotations

import csv
import io
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from paipviewer.core.atomic import remove_temporaries, write_text_atomic
from paipviewer.core.cpu import native_bf16
from paipviewer.core.modelfile import DEFAULT_THRESHOLD, ModelCard, card_path, load_model, save_model
from paipviewer.core.scoring import tile_scores, tune_threshold

from .augment import recipe_name, recipe_v2_settings
from .checkpoint import CheckpointError, TrainingState, check_state_choice, load_state, save_state, state_path
from paipviewer.core.outputs import check_new_files, check_writable_folder
from .prepare import load_prepared, read_manifest
from .variants import variant_id

LOSSES = ("bce", "bce_dice")


@dataclass
class FitSettings:
    architecture: str
    filters: int
    depth: int
    learning_rate: float = 1e-4
    loss: str = "bce"
    batch_size: int = 8
    epochs: int = 40
    patience: int = 5
    mixed_precision: bool = False
    xla: bool = True
    seed: int = 42
    max_minutes: float | None = None
    steps_per_epoch: int | None = None
    init_from: str | None = None
    tune_threshold: bool = False
    lr_plateau: int | None = None
    lr_steps: tuple[tuple[int, float], ...] = ()  # (epoch, rate): from that epoch (1-based) on, that rate
    augment: bool = False
    stain_augment: bool = False  # recipe v2 candidates (trainer/augment.py), off by default
    scale_augment: bool = False
    threshold: float | None = None  # the card's threshold when none is tuned (a final fit without validation)


def variant_name(s: FitSettings) -> str:
    return variant_id(s.architecture, s.filters, s.depth)


def training_device() -> str:
    """The accelerator Keras trains on ("NVIDIA H200", say), or "cpu", for the card."""
    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        device = jax.devices()[0]
        return "cpu" if device.platform == "cpu" else device.device_kind
    if backend == "torch":
        import torch

        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        return tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU") if gpus else "cpu"
    return "unknown"


def _loss(name: str):
    import keras
    from keras import ops

    bce = keras.losses.BinaryCrossentropy()
    if name == "bce":
        return bce

    def bce_dice(y_true, y_pred):
        y_true = ops.cast(y_true, y_pred.dtype)
        inter = ops.sum(y_true * y_pred)
        dice = (2.0 * inter + 1.0) / (ops.sum(y_true) + ops.sum(y_pred) + 1.0)
        return bce(y_true, y_pred) + (1.0 - dice)

    return bce_dice


class _Clock:
    """Seconds of training, counting those of the run a resumed one carries on."""

    def __init__(self, before: float = 0.0):
        self.before, self.start = before, time.monotonic()

    def __call__(self) -> float:
        return self.before + time.monotonic() - self.start


class _TimeLimit:
    """Keras callback factory: stop after ``minutes`` of training (best weights are still restored)."""

    @staticmethod
    def make(minutes: float | None, clock: _Clock):
        import keras

        class TimeLimit(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                if minutes is not None and clock() > minutes * 60:
                    print(f"time limit of {minutes} min reached after epoch {epoch + 1}; stopping")
                    self.model.stop_training = True

        return TimeLimit()


def predict_uint8_tiles(model, x: np.ndarray, batch: int = 8, views: int = 1) -> np.ndarray:
    """Probabilities (N, h, w) of uint8 tiles, converted to the network's float input in chunks
    (``views``: see :func:`paipviewer.core.inference.predict_tiles`)."""
    from paipviewer.core.inference import predict_tiles
    from paipviewer.core.preprocess import to_float

    return np.concatenate([predict_tiles(model, to_float(np.asarray(x[i:i + 64])), batch, views=views)
                           for i in range(0, len(x), 64)])


@dataclass(frozen=True)
class FitOutputs:
    model: Path
    history: Path
    state: Path  # the interrupted run's training state, for --resume

    def written(self) -> tuple[Path, ...]:
        return self.model, self.model.with_suffix(".onnx"), card_path(self.model), self.history, self.state


def fit_outputs(out_dir: str | Path, settings: FitSettings, overwrite: bool = False, resume: bool = False,
                restart: bool = False) -> FitOutputs:
    """Where ``fit`` writes, checked: a writable folder, no model to replace unless ``overwrite``, and
    an interrupted run's state neither ignored nor dropped unless the user says (``resume``, ``restart``)."""
    out_dir = check_writable_folder(out_dir, "--out")
    name = variant_name(settings)
    outputs = FitOutputs(out_dir / f"{name}.keras", out_dir / f"{name}_history.csv", state_path(out_dir, name))
    check_new_files([outputs.model, outputs.model.with_suffix(".onnx"), card_path(outputs.model)], "--out", overwrite)
    check_state_choice(outputs.state, resume, restart)
    return outputs


def fit(prepared: str | Path, settings: FitSettings, out_dir: str | Path, overwrite: bool = False,
        resume: bool = False, restart: bool = False, verbose: int = 2) -> Path:
    """Train one variant; returns the path of the written model file.

    ``resume`` carries on from the training state an interrupted run left; ``restart`` drops it.
    """
    import keras

    from .batches import TileBatches
    from .models import build_model

    if settings.loss not in LOSSES:
        raise ValueError(f"unknown loss {settings.loss!r}; choose one of {', '.join(LOSSES)}")
    if settings.lr_steps and settings.lr_plateau:
        raise ValueError("--lr-steps fixes the learning rate that --lr-plateau would change: give one of them")
    if settings.tune_threshold and settings.threshold is not None:
        raise ValueError("--threshold sets the threshold that --tune-threshold would pick: give one of them")
    prepared = Path(prepared)
    manifest = read_manifest(prepared)
    outputs = fit_outputs(out_dir, settings, overwrite, resume, restart)
    for path in outputs.written():
        remove_temporaries(path)  # a killed run's; an atomic write removes its own otherwise
    state = load_state(outputs.state) if resume else None
    if restart:
        outputs.state.unlink(missing_ok=True)
    name = variant_name(settings)
    if state is not None and state.variant != name:
        raise CheckpointError(f"{outputs.state} is a state of {state.variant}, not {name}")

    keras.utils.set_random_seed(settings.seed)
    model = build_training_model(settings.architecture, settings.filters, settings.depth, settings.mixed_precision)
    previous = _init_weights(model, settings) if settings.init_from else None
    model.compile(optimizer=keras.optimizers.Adam(settings.learning_rate), loss=_loss(settings.loss),
                  metrics=["accuracy"], jit_compile=settings.xla)
    if state is not None:
        _restore_model(model, state, outputs.state)
        print(f"resumed from {outputs.state} after epoch {state.epoch}")

    first_epoch = state.epoch if state is not None else 0
    xt, yt = load_prepared(prepared, "train")
    xv, yv = load_prepared(prepared, "val")
    train = TileBatches(xt, yt, settings.batch_size, shuffle=True, seed=settings.seed,
                        steps=settings.steps_per_epoch, augment=settings.augment, epoch=first_epoch,
                        stain=settings.stain_augment, scale=settings.scale_augment)
    val = TileBatches(xv, yv, settings.batch_size, shuffle=False, seed=settings.seed) if len(xv) else None
    monitor = "val_loss" if val is not None else "loss"
    clock = _Clock(state.seconds if state is not None else 0.0)
    rows = list(state.rows) if state is not None else []
    early = keras.callbacks.EarlyStopping(monitor=monitor, patience=settings.patience, restore_best_weights=True)
    plateau = plateau_callback(settings, monitor) if settings.lr_plateau else None
    steps = [keras.callbacks.LearningRateScheduler(lambda epoch, _: step_rate(settings, epoch + 1))] \
        if settings.lr_steps else []
    # The state is saved last, once the others have updated their counters and the learning rate.
    callbacks = [early, _HistoryCallback.make(rows, clock), _TimeLimit.make(settings.max_minutes, clock),
                 *([plateau] if plateau else []), *steps,
                 _StateKeeper.make(outputs.state, name, state, clock, rows, early, plateau)]
    # A state saved as training ended (early stopping, time limit) trains no further: it only keeps the best weights.
    last_epoch = first_epoch if state is not None and state.stopped else settings.epochs
    model.fit(train, validation_data=val, initial_epoch=first_epoch, epochs=last_epoch, callbacks=callbacks,
              verbose=verbose, shuffle=False)  # TileBatches shuffles tiles itself; Keras would only reorder batches
    seconds = clock()
    epochs_run = len(rows)
    best_epoch = early.best_epoch + 1 if early.best_weights is not None else None  # its weights are the model's now

    final = build_model(settings.architecture, settings.filters, settings.depth, input_size=None)
    final.set_weights(model.get_weights())
    threshold, scan = settings.threshold if settings.threshold is not None else DEFAULT_THRESHOLD, None
    val_scores = {}
    if len(xv):
        val_probs = predict_uint8_tiles(final, xv)
        if settings.tune_threshold:
            threshold, scan = tune_threshold(val_probs, yv)
        val_scores = tile_scores(val_probs, yv, threshold)
    card = ModelCard(
        architecture=settings.architecture, filters=settings.filters, depth=settings.depth,
        params=int(final.count_params()), input_size=int(xt.shape[1]),
        equalize=manifest["settings"]["equalize"], threshold=threshold,
        mpp=manifest["settings"].get("mpp"),  # the pixel size the tiles were selected at (prepare --mpp)
        training={**asdict(settings), "data": manifest["root"], "prepared": prepared.name,
                  "split": {k: len(v) for k, v in manifest["split"].items()},
                  "train_tiles": int(len(xt)), "val_tiles": int(len(xv)), "epochs_run": epochs_run,
                  "best_epoch": best_epoch, "seconds": round(seconds, 1), "monitor": monitor,
                  "cpu_bf16_native": native_bf16(), "host_cores": os.cpu_count(),
                  "backend": keras.backend.backend(), "device": training_device(),
                  "continued_from": previous,
                  "recipe": recipe_name(settings.augment, settings.stain_augment, settings.scale_augment),
                  **({"augment_ranges": recipe_v2_settings()}
                     if settings.stain_augment or settings.scale_augment else {})},
        metrics={"validation": val_scores, **({"threshold_scan_dice": scan} if scan else {})},
    )
    save_model(final, card, outputs.model, overwrite=overwrite, onnx=True)
    write_text_atomic(outputs.history, history_csv(rows))
    outputs.state.unlink(missing_ok=True)
    print(f"wrote {outputs.model} ({epochs_run} epochs, {seconds / 60:.1f} min, val {val_scores})")
    return outputs.model


def build_training_model(architecture: str, filters: int, depth: int, bf16: bool):
    """The network to train, in mixed bfloat16 with ``bf16``; the global policy is float32 again after."""
    import keras

    from .models import build_model

    keras.mixed_precision.set_global_policy("mixed_bfloat16" if bf16 else "float32")
    try:
        return build_model(architecture, filters, depth, input_size=None)
    finally:
        keras.mixed_precision.set_global_policy("float32")


def step_rate(settings: FitSettings, epoch: int) -> float:
    """The learning rate of ``epoch`` (1-based) under ``lr_steps``: a run with validation found the
    schedule, a final fit without it repeats the schedule, since the rule that made it has nothing to watch."""
    rate = settings.learning_rate
    for start, step in sorted(settings.lr_steps):
        if epoch >= start:
            rate = step
    return float(rate)


def plateau_callback(settings: FitSettings, monitor: str):
    """Halve the learning rate after ``lr_plateau`` epochs without improvement, down to 1/16 of it.

    Halving lets a continued run settle instead of hopping around the minimum.
    """
    import keras

    return keras.callbacks.ReduceLROnPlateau(monitor=monitor, factor=0.5, patience=settings.lr_plateau,
                                             min_lr=settings.learning_rate / 16)


def _init_weights(model, settings: FitSettings) -> dict:
    """Start from another model file of the same variant (to train a shipped model further)."""
    loaded = load_model(settings.init_from, backend="keras")  # its weights are trained further
    card = loaded.card
    if (card.architecture, card.filters, card.depth) != (settings.architecture, settings.filters, settings.depth):
        raise ValueError(f"{settings.init_from} is {card.label}, not {settings.architecture} "
                         f"{settings.filters}/{settings.depth}")
    model.set_weights(loaded.model.get_weights())
    print(f"starting from the weights of {settings.init_from}")
    return {"file": str(settings.init_from), "epochs_run": card.training.get("epochs_run"),
            "seconds": card.training.get("seconds"), "continued_from": card.training.get("continued_from")}


class _HistoryCallback:
    """Keras callback factory: a row per epoch in ``rows``: the logs, the learning rate, the seconds so far."""

    @staticmethod
    def make(rows: list[dict], clock: _Clock):
        import keras

        class History(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                logs = {k: float(v) for k, v in (logs or {}).items() if k != "learning_rate"}
                lr = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
                rows.append({"epoch": epoch + 1, **logs, "lr": lr, "seconds": clock()})

        return History()


def history_csv(rows: list[dict]) -> str:
    if not rows:
        return ""
    keys = sorted(k for k in rows[0] if k not in ("epoch", "lr", "seconds"))
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["epoch", *keys, "lr", "seconds"])
    for row in rows:
        writer.writerow([row["epoch"], *[f"{row.get(k, float('nan')):.6g}" for k in keys], f"{row['lr']:.6g}",
                         f"{row['seconds']:.1f}"])
    return buf.getvalue()


# What each callback counts; Keras resets it when training begins, a resumed run puts it back.
_COUNTERS = {"early_stopping": ("wait", "best", "best_epoch"), "plateau": ("wait", "best", "cooldown_counter")}


def _counters(callback, kind: str) -> dict | None:
    if callback is None:
        return None
    return {k: None if getattr(callback, k) is None else float(getattr(callback, k)) for k in _COUNTERS[kind]}


def _set_counters(callback, saved: dict | None) -> None:
    if callback is not None and saved:
        for k, v in saved.items():
            setattr(callback, k, v if v is None or k == "best" else int(v))


class _StateKeeper:
    """Keras callback factory: save the training state after every epoch; when resuming, restore the
    other callbacks' counters after they have reset them."""

    @staticmethod
    def make(path: Path, variant: str, resumed: TrainingState | None, clock: _Clock, rows: list[dict],
             early, plateau):
        import keras

        class StateKeeper(keras.callbacks.Callback):
            def on_train_begin(self, logs=None):
                if resumed is not None:
                    _set_counters(early, resumed.early_stopping)
                    _set_counters(plateau, resumed.plateau)
                    early.best_weights = resumed.best_weights

            def on_epoch_end(self, epoch, logs=None):
                save_state(path, TrainingState(
                    variant=variant, epoch=epoch + 1, stopped=bool(self.model.stop_training), seconds=clock(),
                    rows=rows, early_stopping=_counters(early, "early_stopping"),
                    plateau=_counters(plateau, "plateau"), weights=self.model.get_weights(),
                    optimizer=[keras.ops.convert_to_numpy(v) for v in self.model.optimizer.variables],
                    best_weights=early.best_weights))

        return StateKeeper()


def _restore_model(model, state: TrainingState, path: Path) -> None:
    """Put the state's weights and optimizer variables (moments, iteration, learning rate) into ``model``."""
    model.optimizer.build(model.trainable_variables)
    for group, variables in (("weights", model.weights), ("optimizer", model.optimizer.variables)):
        saved = getattr(state, group)
        if [tuple(v.shape) for v in variables] != [a.shape for a in saved]:
            raise CheckpointError(f"{path} does not fit this model (its {group} differ); pass --restart to start over")
        for variable, array in zip(variables, saved):
            variable.assign(array)
