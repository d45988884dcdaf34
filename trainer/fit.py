"""``paip-train fit``: train one variant on prepared tiles and write its model file.

Defaults are the study's recipe: Adam 1e-4, binary cross-entropy, batch 8, up to 40 epochs,
early stopping on validation loss keeping the best weights. Everything is overridable; the
card records what was used. The model file, card and history CSV are written atomically at the
end, so an interrupted run leaves no half-written model; a checkpoint of the best weights so
far is kept beside them so ``--resume`` can carry on after an interruption.
"""
from __future__ import annotations

import csv
import io
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from paipviewer.core.atomic import write_text_atomic
from paipviewer.core.metrics import confusion, mean_score, pooled
from paipviewer.core.modelfile import DEFAULT_THRESHOLD, ModelCard, load_model, save_model

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
    augment: bool = False


def variant_name(s: FitSettings) -> str:
    return variant_id(s.architecture, s.filters, s.depth)


def cpu_supports_bf16() -> bool:
    """True where the CPU has native bf16 (AVX-512 BF16 or AMX); elsewhere bf16 is emulated and slow."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


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


class _TimeLimit:
    """Keras callback factory: stop after ``minutes`` of wall time (best weights are still restored)."""

    @staticmethod
    def make(minutes: float | None):
        import keras

        class TimeLimit(keras.callbacks.Callback):
            def on_train_begin(self, logs=None):
                self.start = time.monotonic()

            def on_epoch_end(self, epoch, logs=None):
                if minutes is not None and time.monotonic() - self.start > minutes * 60:
                    print(f"time limit of {minutes} min reached after epoch {epoch + 1}; stopping")
                    self.model.stop_training = True

        return TimeLimit()


THRESHOLDS = tuple(round(t, 2) for t in np.arange(0.30, 0.801, 0.05))


def predict_uint8_tiles(model, x: np.ndarray, batch: int = 8) -> np.ndarray:
    """Probabilities (N, h, w) of uint8 tiles, converted to the network's float input in chunks."""
    from paipviewer.core.inference import predict_tiles
    from paipviewer.core.preprocess import to_float

    return np.concatenate([predict_tiles(model, to_float(np.asarray(x[i:i + 64])), batch)
                           for i in range(0, len(x), 64)])


def tile_scores(probs: np.ndarray, y: np.ndarray, threshold: float) -> dict:
    """Per-tile mean Jaccard and Dice, and pooled scores, at ``threshold``."""
    conf = [confusion(p >= threshold, t > 0) for p, t in zip(probs, np.asarray(y))]
    total = pooled(conf)
    return {"tiles": len(conf), "threshold": threshold, "jaccard_mean": mean_score(conf, "jaccard"),
            "dice_mean": mean_score(conf, "dice"), "jaccard_pooled": total.jaccard, "dice_pooled": total.dice}


def tune_threshold(probs: np.ndarray, y: np.ndarray) -> tuple[float, dict[str, float]]:
    """The threshold in :data:`THRESHOLDS` with the best mean per-tile Dice on validation tiles."""
    scan = {f"{t:.2f}": tile_scores(probs, y, t)["dice_mean"] for t in THRESHOLDS}
    best = max(scan, key=scan.get)
    return float(best), scan


def fit(prepared: str | Path, settings: FitSettings, out_dir: str | Path, overwrite: bool = False,
        resume: bool = False, verbose: int = 2) -> Path:
    """Train one variant; returns the path of the written model file."""
    import keras

    from .batches import TileBatches
    from .models import build_model

    if settings.loss not in LOSSES:
        raise ValueError(f"unknown loss {settings.loss!r}; choose one of {', '.join(LOSSES)}")
    prepared = Path(prepared)
    manifest = read_manifest(prepared)
    out_dir = Path(out_dir)
    name = variant_name(settings)
    model_path = out_dir / f"{name}.keras"
    if model_path.exists() and not overwrite:
        raise FileExistsError(f"{model_path} already exists; pass --overwrite or choose another --out")
    out_dir.mkdir(parents=True, exist_ok=True)
    checkpoint = out_dir / f".{name}.best.weights.h5"

    keras.utils.set_random_seed(settings.seed)
    keras.mixed_precision.set_global_policy("mixed_bfloat16" if settings.mixed_precision else "float32")
    try:
        model = build_model(settings.architecture, settings.filters, settings.depth, input_size=None)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    previous = _init_weights(model, settings) if settings.init_from else None
    if resume and checkpoint.is_file():
        model.load_weights(checkpoint)
        print(f"resumed from {checkpoint}")
    model.compile(optimizer=keras.optimizers.Adam(settings.learning_rate), loss=_loss(settings.loss),
                  metrics=["accuracy"], jit_compile=settings.xla)

    xt, yt = load_prepared(prepared, "train")
    xv, yv = load_prepared(prepared, "val")
    train = TileBatches(xt, yt, settings.batch_size, shuffle=True, seed=settings.seed,
                        steps=settings.steps_per_epoch, augment=settings.augment)
    val = TileBatches(xv, yv, settings.batch_size, shuffle=False, seed=settings.seed) if len(xv) else None
    monitor = "val_loss" if val is not None else "loss"
    history_buf = io.StringIO()
    callbacks = [
        keras.callbacks.EarlyStopping(monitor=monitor, patience=settings.patience, restore_best_weights=True),
        keras.callbacks.ModelCheckpoint(checkpoint, monitor=monitor, save_best_only=True, save_weights_only=True),
        _HistoryCallback.make(history_buf),
        _TimeLimit.make(settings.max_minutes),
    ]
    if settings.lr_plateau:
        callbacks.append(plateau_callback(settings, monitor))
    start = time.monotonic()
    hist = model.fit(train, validation_data=val, epochs=settings.epochs, callbacks=callbacks, verbose=verbose,
                     shuffle=False)  # TileBatches shuffles tiles itself; Keras would only reorder batches
    seconds = time.monotonic() - start
    epochs_run = len(hist.history.get("loss", []))
    losses = hist.history.get(monitor, [])
    best_epoch = int(np.argmin(losses)) + 1 if losses else None
    if checkpoint.is_file():
        model.load_weights(checkpoint)  # the best epoch, whether or not early stopping fired

    final = build_model(settings.architecture, settings.filters, settings.depth, input_size=None)
    final.set_weights(model.get_weights())
    threshold, scan = DEFAULT_THRESHOLD, None
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
        training={**asdict(settings), "data": manifest["root"], "prepared": prepared.name,
                  "split": {k: len(v) for k, v in manifest["split"].items()},
                  "train_tiles": int(len(xt)), "val_tiles": int(len(xv)), "epochs_run": epochs_run,
                  "best_epoch": best_epoch, "seconds": round(seconds, 1), "monitor": monitor,
                  "cpu_bf16_native": cpu_supports_bf16(), "host_cores": os.cpu_count(),
                  "backend": keras.backend.backend(), "device": training_device(),
                  "continued_from": previous},
        metrics={"validation": val_scores, **({"threshold_scan_dice": scan} if scan else {})},
    )
    save_model(final, card, model_path, overwrite=overwrite)
    write_text_atomic(out_dir / f"{name}_history.csv", history_buf.getvalue())
    checkpoint.unlink(missing_ok=True)
    print(f"wrote {model_path} ({epochs_run} epochs, {seconds / 60:.1f} min, val {val_scores})")
    return model_path


def plateau_callback(settings: FitSettings, monitor: str):
    """Halve the learning rate after ``lr_plateau`` epochs without improvement, down to 1/16 of it.

    Halving lets a continued run settle instead of hopping around the minimum.
    """
    import keras

    return keras.callbacks.ReduceLROnPlateau(monitor=monitor, factor=0.5, patience=settings.lr_plateau,
                                             min_lr=settings.learning_rate / 16)


def _init_weights(model, settings: FitSettings) -> dict:
    """Start from another model file of the same variant (to train a shipped model further)."""
    loaded = load_model(settings.init_from)
    card = loaded.card
    if (card.architecture, card.filters, card.depth) != (settings.architecture, settings.filters, settings.depth):
        raise ValueError(f"{settings.init_from} is {card.label}, not {settings.architecture} "
                         f"{settings.filters}/{settings.depth}")
    model.set_weights(loaded.model.get_weights())
    print(f"starting from the weights of {settings.init_from}")
    return {"file": str(settings.init_from), "epochs_run": card.training.get("epochs_run"),
            "seconds": card.training.get("seconds"), "continued_from": card.training.get("continued_from")}


class _HistoryCallback:
    @staticmethod
    def make(buf: io.StringIO):
        import keras

        class History(keras.callbacks.Callback):
            def on_train_begin(self, logs=None):
                self.t0 = time.monotonic()

            def on_epoch_end(self, epoch, logs=None):
                logs = logs or {}
                if not buf.tell():
                    self.keys = sorted(k for k in logs if k != "learning_rate")
                    csv.writer(buf).writerow(["epoch", *self.keys, "lr", "seconds"])
                lr = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
                csv.writer(buf).writerow([epoch + 1, *[f"{logs.get(k, float('nan')):.6g}" for k in self.keys],
                                          f"{lr:.6g}", f"{time.monotonic() - self.t0:.1f}"])

        return History()
