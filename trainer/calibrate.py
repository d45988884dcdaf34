"""``paip-train calibrate``: choose a model's mask threshold on the validation images.

Writes a copy of the model file whose card carries the threshold with the best mean per-tile Dice
on the validation tiles of the given data (the same split ``fit`` used), and the scan behind it.
The input file is never changed.
"""
from __future__ import annotations

from pathlib import Path

from paipviewer.core.modelfile import card_path, load_model, save_model
from paipviewer.core.scoring import tile_scores, tune_threshold

from .fit import predict_uint8_tiles
from paipviewer.core.outputs import check_new_files, check_writable_folder
from .prepare import load_prepared


def check_calibrate_output(model_path: Path, out: Path, overwrite: bool) -> None:
    """``out`` can take the calibrated copy: a new .keras file (unless ``overwrite``) in a writable folder."""
    if out.suffix != ".keras":
        raise ValueError(f"--out must be a .keras file, got {out.name}")
    if out.resolve() == model_path.resolve():
        raise ValueError("--out must differ from --model: calibrate writes a copy and never changes the input")
    check_writable_folder(out.parent, "--out")
    check_new_files([out, out.with_suffix(".onnx"), card_path(out)], "--out", overwrite)


def calibrate(model_path: Path, prepared: Path, out: Path, overwrite: bool = False, log=print) -> Path:
    check_calibrate_output(model_path, out, overwrite)
    loaded = load_model(model_path, backend="keras")  # its weights are copied
    card = loaded.card
    if card.training.get("prepared") not in (None, prepared.name):
        log(f"note: {model_path.name} was trained on prepared data {card.training['prepared']}, "
            f"calibrating on {prepared.name}")
    xv, yv = load_prepared(prepared, "val")
    if not len(xv):
        raise ValueError("the prepared data has no validation tiles to calibrate on")
    probs = predict_uint8_tiles(loaded.model, xv)
    before = tile_scores(probs, yv, card.threshold)
    card.threshold, scan = tune_threshold(probs, yv)
    card.metrics = {**card.metrics, "validation": tile_scores(probs, yv, card.threshold),
                    "threshold_scan_dice": scan, "validation_at_0.5": before}
    card.training = {**card.training, "threshold_tuned_on": "validation tiles"}
    save_model(loaded.model, card, out, overwrite=overwrite, onnx=True)
    log(f"{model_path.name}: threshold {card.threshold:.2f}, validation Dice {before['dice_mean']:.3f} -> "
        f"{card.metrics['validation']['dice_mean']:.3f}; wrote {out}")
    return out
