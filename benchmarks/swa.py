"""Stochastic weight averaging (Izmailov et al. 2018) of a trained model, as an experiment for issue 16.

Trains a model file further at a constant learning rate, keeps the running mean of its weights at the
end of every epoch, then re-estimates the batch-normalisation statistics of the averaged network on
the training tiles (the averaged weights change every layer's inputs, so the kept statistics no
longer fit) and writes it as a model file with its card, the threshold tuned on the validation tiles
as ``fit`` does. Whether it is better is then read with ``paip-train evaluate --split val``.

    .venv/bin/python benchmarks/swa.py --init resources/models/elunet_8_5.keras \
        --data ../shared/data/monuseg --epochs 20 --lr 5e-4 --out runs/swa
"""
from __future__ import annotations

import argparse
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np


def average_weights(model, batches, epochs: int, log=print) -> list[np.ndarray]:
    """Train ``model`` for ``epochs`` epochs of ``batches``; the mean of its weights after each epoch."""
    import keras

    total, count = None, 0

    class Average(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            nonlocal total, count
            weights = [np.asarray(w, np.float64) for w in self.model.get_weights()]
            total = weights if total is None else [t + w for t, w in zip(total, weights)]
            count += 1
            log(f"epoch {epoch + 1}: loss {logs['loss']:.4f}, averaged {count}")

    model.fit(batches, epochs=epochs, callbacks=[Average()], verbose=0, shuffle=False)
    return [(t / count).astype(np.float32) for t in total]


def refresh_batch_norm(model, batches) -> int:
    """Replace every BatchNormalization layer's moving mean and variance by the mean of their batch
    statistics over ``batches`` (the training stream: shuffled and augmented, as the statistics were
    gathered in training; tiles in file order would give one image's statistics per batch). Momentum
    k/(k+1) at step k makes the moving value the running mean. Returns the number of layers refreshed."""
    import keras

    layers = [l for l in model.layers if isinstance(l, keras.layers.BatchNormalization)]
    saved = [l.momentum for l in layers]
    try:
        for k in range(len(batches)):
            for layer in layers:
                layer.momentum = k / (k + 1)
            model(batches[k][0], training=True)
    finally:
        for layer, momentum in zip(layers, saved):
            layer.momentum = momentum
    return len(layers)


def main() -> int:
    import keras

    from paip_trainer.batches import TileBatches
    from paip_trainer.fit import _loss, build_training_model, predict_uint8_tiles
    from paip_trainer.models import build_model
    from paip_trainer.prepare import PrepareSettings, load_prepared, prepare
    from paipviewer.core.modelfile import ModelCard, load_model, save_model
    from paipviewer.core.scoring import tile_scores, tune_threshold

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--init", required=True, help="the .keras model to average from")
    p.add_argument("--data", required=True)
    p.add_argument("--epochs", type=int, default=20, help="0: only refresh the statistics")
    p.add_argument("--steps-per-epoch", type=int, default=48)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--bf16", action="store_true", help="train in mixed bfloat16 (no XLA), as fit --bf16")
    p.add_argument("--out", required=True)
    args = p.parse_args()

    start = time.monotonic()
    shipped = load_model(args.init, backend="keras")
    card = shipped.card
    prepared = prepare(args.data, PrepareSettings(equalize=card.equalize, seed=args.seed))
    xt, yt = load_prepared(prepared, "train")
    xv, yv = load_prepared(prepared, "val")
    keras.utils.set_random_seed(args.seed)
    model = build_training_model(card.architecture, card.filters, card.depth, args.bf16)
    model.set_weights(shipped.model.get_weights())
    model.compile(optimizer=keras.optimizers.Adam(args.lr), loss=_loss(card.training.get("loss", "bce")),
                  jit_compile=not args.bf16)
    # Epoch numbers past the shipped run's, so the augmentations are draws its training never saw.
    first = int(card.training.get("epochs_run") or 0)
    batches = TileBatches(xt, yt, args.batch, shuffle=True, seed=args.seed, steps=args.steps_per_epoch,
                          augment=True, epoch=first)
    # --epochs 0 only refreshes the statistics, to tell their share of the change from the averaging's
    averaged = average_weights(model, batches, args.epochs) if args.epochs else shipped.model.get_weights()
    final = build_model(card.architecture, card.filters, card.depth, input_size=None)
    final.set_weights(averaged)
    one_pass = TileBatches(xt, yt, args.batch, shuffle=True, seed=args.seed, augment=True,
                           epoch=first + args.epochs)
    layers = refresh_batch_norm(final, one_pass)
    val_probs = predict_uint8_tiles(final, xv)
    threshold, scan = tune_threshold(val_probs, yv)
    scores = tile_scores(val_probs, yv, threshold)
    seconds = time.monotonic() - start
    out = Path(args.out) / Path(args.init).name
    new = ModelCard(**{**asdict(card), "threshold": threshold, "files": [], "created": "",
                       "metrics": {"validation": scores, "threshold_scan_dice": scan},
                       "training": {**card.training, "swa": {
                           "from": str(args.init), "epochs": args.epochs, "steps_per_epoch": args.steps_per_epoch,
                           "learning_rate": args.lr, "bf16": args.bf16, "batch_norm_layers_refreshed": layers,
                           "seconds": round(seconds, 1)}}})
    save_model(final, new, out, overwrite=True, onnx=True)
    print(f"wrote {out}: threshold {threshold}, validation tiles {scores}, {seconds / 60:.1f} min")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
