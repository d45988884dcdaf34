"""``paip-train``: the trainer's command line (params, prepare, fit, grid, calibrate, evaluate, table5)."""
from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path

from paipviewer import __version__
from paipviewer.core.inference import VIEWS
from paipviewer.core.preprocess import DEFAULT_EQUALIZE, EQUALIZE_MODES

from .fit import LOSSES
from .variants import ARCHITECTURES, MAX_DEPTH, MIN_DEPTH


def _quiet_tensorflow(command: str) -> None:
    """TensorFlow's native start-up lines (oneDNN notes, "failed call to cuInit") are filtered while
    Keras is imported, for the commands that use it; the training's own output is never held back."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if command != "prepare":
        from paipviewer.core.quiet import native_chatter_filtered
        with native_chatter_filtered():
            import keras
            if keras.backend.backend() == "tensorflow":  # its devices start here: "failed call to cuInit"
                import tensorflow as tf
                tf.config.list_physical_devices()


def _checked(convert: Callable[[str], object], ok: Callable[[object], bool], wording: str):
    """An argparse type: ``convert`` the text, then refuse a value that is not ``ok`` with a clear message."""
    def parse(text: str):
        try:
            value = convert(text)
            good = ok(value)
        except ValueError:
            good = False
        if not good:
            raise argparse.ArgumentTypeError(f"must be {wording}, got {text!r}")
        return value
    return parse


AT_LEAST_1 = _checked(int, lambda v: v >= 1, "an integer >= 1")
AT_LEAST_0 = _checked(int, lambda v: v >= 0, "an integer >= 0")
POSITIVE = _checked(float, lambda v: 0 < v < math.inf, "a number > 0")
AT_LEAST_0_FLOAT = _checked(float, lambda v: 0 <= v < math.inf, "a number >= 0")
FRACTION = _checked(float, lambda v: 0 <= v < 1, "a number from 0 up to, not including, 1")


def _lr_steps(text: str) -> tuple[tuple[int, float], ...]:
    steps = tuple((int(e), float(r)) for e, r in (item.split(":") for item in text.split(",")))
    if not all(e >= 1 and 0 < r < math.inf for e, r in steps):
        raise ValueError(text)
    return steps


LR_STEPS = _checked(_lr_steps, bool, "EPOCH:RATE pairs, comma-separated, e.g. 50:5e-4,58:2.5e-4")
PROBABILITY = _checked(float, lambda v: 0 < v < 1, "a number between 0 and 1")
DEPTH = _checked(int, lambda v: MIN_DEPTH <= v <= MAX_DEPTH, f"an integer from {MIN_DEPTH} to {MAX_DEPTH}")
MPP = _checked(lambda t: None if t == "any" else float(t), lambda v: v is None or 0 < v < math.inf,
               "'any' or a number > 0")


def cmd_params(args) -> int:
    from .params import params_csv
    sys.stdout.write(params_csv())
    return 0


def _prepare_settings(args):
    from .prepare import PrepareSettings
    organs = () if args.organs == "all" else tuple(args.organs.split(","))
    return PrepareSettings(equalize=args.equalize, seed=args.seed, val_fraction=args.val_fraction,
                           organs=organs, mpp=args.mpp, flips=not args.no_flips)


def cmd_prepare(args) -> int:
    from .prepare import prepare
    folder = prepare(args.data, _prepare_settings(args), args.cache)
    print(folder)
    return 0


def _use_xla(args) -> bool:
    """XLA unless --no-xla; bf16 on a CPU always runs without it, since XLA made it 3-5x slower there
    (docs/results/README.md), while fp32 on some CPUs gains 1.75x from it."""
    if args.no_xla:
        return False
    if args.bf16:
        from .fit import training_device
        return training_device() != "cpu"
    return True


def _fit_settings(args, architecture, filters, depth):
    from .fit import FitSettings
    return FitSettings(architecture=architecture, filters=filters, depth=depth, learning_rate=args.lr,
                       loss=args.loss, batch_size=args.batch, epochs=args.epochs, patience=args.patience,
                       mixed_precision=args.bf16, xla=_use_xla(args), seed=args.seed,
                       max_minutes=args.max_minutes, steps_per_epoch=args.steps_per_epoch,
                       init_from=str(args.init_from) if getattr(args, "init_from", None) else None,
                       tune_threshold=args.tune_threshold, lr_plateau=args.lr_plateau, lr_steps=args.lr_steps,
                       augment=args.augment, stain_augment=args.stain_augment,
                       scale_augment=args.scale_augment, threshold=args.threshold)


def cmd_fit(args) -> int:
    from paipviewer.core.cpu import native_bf16

    from .fit import fit, fit_outputs, training_device
    from .prepare import prepare
    settings = _fit_settings(args, args.arch, args.filters, args.depth)
    choices = dict(overwrite=args.overwrite, resume=args.resume, restart=args.restart)
    fit_outputs(args.out, settings, **choices)  # before preparing the data, which can take minutes
    if args.bf16 and not native_bf16() and training_device() == "cpu":
        print("warning: this CPU has no native bf16 (AVX-512 BF16 / AMX); bf16 will be emulated and slower",
              file=sys.stderr)
    prepared = prepare(args.data, _prepare_settings(args), args.cache)
    fit(prepared, settings, args.out, **choices, verbose=args.verbose)
    return 0


GRID_ONLY_OPTIONS = ("--only", "--engine", "--address", "--cpus-per-trial", "--gpus-per-trial")


def cmd_grid(args, argv: list[str]) -> int:
    from .grid import check_engine, run_grid
    from .prepare import prepare
    check_engine(args.engine)  # before preparing the data, which can take minutes
    ray_options = (args.address, args.cpus_per_trial, args.gpus_per_trial)
    if args.engine != "ray" and any(v is not None for v in ray_options):
        raise ValueError("--address, --cpus-per-trial and --gpus-per-trial are for --engine ray")
    prepare(args.data, _prepare_settings(args), args.cache)  # once, before the variants share the cache
    passthrough = argv[1:]
    for option in GRID_ONLY_OPTIONS:
        passthrough = _without_option(passthrough, option)
    status = run_grid(args.out, lambda a, f, d: ["fit", *passthrough, "--arch", a, "--filters", str(f),
                                                 "--depth", str(d)], args.only, engine=args.engine,
                      address=args.address, cpus_per_trial=args.cpus_per_trial, gpus_per_trial=args.gpus_per_trial)
    print(f"grid: results in {Path(args.out) / 'results.csv'}")
    failed = [v for v, row in status.items() if row["status"] != "done"]
    print(f"grid: {len(status) - len(failed)} done, {len(failed)} not built: {', '.join(failed) or 'none'}")
    return 0


def _without_option(argv: list[str], option: str) -> list[str]:
    """``argv`` less ``option`` and the values that follow it (up to the next --flag)."""
    out, skipping = [], False
    for token in argv:
        if token == option:
            skipping = True
        elif token.startswith(option + "="):
            skipping = False
        elif skipping and not token.startswith("--"):
            continue
        else:
            skipping = False
            out.append(token)
    return out


def cmd_calibrate(args) -> int:
    from .calibrate import calibrate, check_calibrate_output
    from .prepare import prepare
    check_calibrate_output(args.model, args.out, args.overwrite)  # before preparing the data
    calibrate(args.model, prepare(args.data, _prepare_settings(args), args.cache), args.out, overwrite=args.overwrite)
    return 0


def cmd_table5(args) -> int:
    from .table5 import table5
    table5(args.results, args.data, args.out, _prepare_settings(args), runs=args.runs, tiles=args.tiles,
           measure=not args.no_measure, overwrite=args.overwrite)
    return 0


def cmd_evaluate(args) -> int:
    from .evaluate import evaluate
    _, failed = evaluate(args.models, args.data, args.out, _prepare_settings(args), seed=args.seed, runs=args.runs,
                         tiles=args.tiles, split=args.split, overwrite=args.overwrite, views=args.views)
    for reason in failed.values():
        print(f"paip-train evaluate: error: not scored: {reason}", file=sys.stderr)
    return 1 if failed else 0


def _add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, type=Path,
                   help="PAIP 2023 training folder, a train/+test/ folder (MoNuSeg) or an images/+masks/ folder")
    p.add_argument("--equalize", choices=EQUALIZE_MODES, default=DEFAULT_EQUALIZE,
                   help=f"histogram equalisation colour handling (default {DEFAULT_EQUALIZE}, see preprocess.py)")
    p.add_argument("--seed", type=AT_LEAST_0, default=42, help="seed of the image split and shuffling (default 42)")
    p.add_argument("--val-fraction", type=FRACTION, default=0.2, help="share of training images held out for validation (0.2; 0 trains on all of them)")
    p.add_argument("--organs", default="pancreas", help="PAIP organs, comma-separated, or 'all' (pancreas)")
    p.add_argument("--mpp", type=MPP, default="0.25", help="microns per pixel of the training images, recorded in the model card so inference "
                   "resamples other magnifications to it; PAIP 2023 images at another size are left out; "
                   "'any' keeps all and records none (0.25, MoNuSeg's and the study's 40x)")
    p.add_argument("--no-flips", action="store_true", help="skip the x4 flip augmentation")
    p.add_argument("--cache", type=Path, default=None, help="where prepared tiles are cached "
                   "(default ~/.cache/paipviewer/prepared)")


def _add_fit_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, default=Path("runs"), help="folder for model files (default runs/)")
    p.add_argument("--lr", type=POSITIVE, default=1e-4, help="Adam learning rate (study: 1e-4)")
    p.add_argument("--loss", choices=LOSSES, default="bce", help="loss (study: bce)")
    p.add_argument("--batch", type=AT_LEAST_1, default=8, help="batch size (study: 8)")
    p.add_argument("--epochs", type=AT_LEAST_1, default=40, help="maximum epochs (study: 40)")
    p.add_argument("--patience", type=AT_LEAST_0, default=5, help="early-stopping patience in epochs (5)")
    p.add_argument("--lr-plateau", type=AT_LEAST_1, default=None, metavar="EPOCHS",
                   help="halve the learning rate after this many epochs without improvement (default: off, as the study)")
    p.add_argument("--lr-steps", type=LR_STEPS, default=(), metavar="EPOCH:RATE,...",
                   help="from each EPOCH on, train at RATE: a schedule a run with validation found, for a final fit "
                        "without it (e.g. 50:5e-4,58:2.5e-4)")
    p.add_argument("--augment", action="store_true",
                   help="random quarter turns and a mild colour jitter on training tiles (default: off, as the study)")
    p.add_argument("--stain-augment", action="store_true",
                   help="recipe v2 candidate: jitter haematoxylin and eosin in HED colour-deconvolution space "
                        "(default: off)")
    p.add_argument("--scale-augment", action="store_true",
                   help="recipe v2 candidate: rescale training tiles by a random factor in 0.8..1.25 about the "
                        "training magnification, cropped or mirrored back to the tile size (default: off)")
    p.add_argument("--steps-per-epoch", type=AT_LEAST_1, default=None, help="batches per epoch (default: all tiles)")
    p.add_argument("--max-minutes", type=POSITIVE, default=None, help="stop after this many minutes, keeping the best")
    p.add_argument("--bf16", action="store_true", help="mixed bfloat16 training: fast on GPUs and on CPUs with native bf16 (AVX-512 BF16 "
                   "or AMX); on a CPU it runs without XLA")
    p.add_argument("--no-xla", action="store_true", help="do not JIT-compile the training step with XLA")
    p.add_argument("--tune-threshold", action="store_true",
                   help="pick the mask threshold (0.30..0.80) with the best validation Dice and store it in the card "
                        "(default: 0.5, as the study)")
    p.add_argument("--threshold", type=PROBABILITY, default=None,
                   help="the mask threshold to store in the card, e.g. one a run with validation images tuned, for a "
                        "final fit on all training images (--val-fraction 0) (default: 0.5, as the study)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing model file of the same name")
    p.add_argument("--verbose", type=int, default=2, choices=(0, 1, 2), help="Keras progress: 0 none, 1 bar, 2 epoch")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="paip-train", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("params", help="print the study's 18 variants and their parameter counts as CSV")
    p.set_defaults(func=cmd_params)

    p = sub.add_parser("prepare", help="split by image, preprocess, flip and tile a dataset (cached)")
    _add_data_args(p)
    p.set_defaults(func=cmd_prepare)

    p = sub.add_parser("fit", help="train one variant and write its model file and card")
    _add_data_args(p)
    _add_fit_args(p)
    p.add_argument("--arch", required=True, choices=ARCHITECTURES)
    p.add_argument("--filters", required=True, type=AT_LEAST_1, help="initial filters n")
    p.add_argument("--depth", required=True, type=DEPTH, help=f"resolution levels L ({MIN_DEPTH}..{MAX_DEPTH})")
    p.add_argument("--resume", action="store_true",
                   help="carry on from the training state an interrupted run left (epoch, optimizer, history)")
    p.add_argument("--restart", action="store_true", help="drop an interrupted run's training state and start over")
    p.add_argument("--init-from", type=Path, default=None, metavar="MODEL.keras",
                   help="start from this model file's weights (same variant), e.g. to train a shipped model further")
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser("grid", help="train the study's 18 variants or a subset; finished ones are skipped")
    _add_data_args(p)
    _add_fit_args(p)
    p.add_argument("--only", nargs="*", default=None, metavar="ARCH_N_L",
                   help="variants to train, e.g. elunet_8_5 unet_32_5 (default: all 18)")
    p.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local: one variant after another on this machine (default); ray: each variant a Ray Tune "
                        "trial, side by side as the resources allow (pip install \"paipviewer[grid]\")")
    p.add_argument("--address", default=None, metavar="HOST:PORT",
                   help="--engine ray: an existing Ray cluster (default: start a local Ray for the grid); "
                        "--data, --cache and --out must then be paths every node sees")
    p.add_argument("--cpus-per-trial", type=POSITIVE, default=None, metavar="N",
                   help="--engine ray: CPUs reserved for each trial, which is also its training threads (default: "
                        "with GPUs, a GPU node's CPUs shared among its trials; without, all of a node's)")
    p.add_argument("--gpus-per-trial", type=AT_LEAST_0_FLOAT, default=None, metavar="N",
                   help="--engine ray: GPUs for each trial, a fraction to share one (default: 1 if Ray sees a GPU, else 0)")
    p.set_defaults(func=cmd_grid)

    p = sub.add_parser("calibrate", help="copy a model with the threshold that maximises validation Dice")
    _add_data_args(p)
    p.add_argument("--model", required=True, type=Path, help="the .keras model file to calibrate (not changed)")
    p.add_argument("--out", required=True, type=Path, help="the calibrated copy to write (.keras)")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser("evaluate", help="score models on the test split: Jaccard, Dice, size, CPU time")
    _add_data_args(p)
    p.add_argument("--models", nargs="+", required=True, type=Path, help=".keras model files")
    p.add_argument("--out", required=True, type=Path, help="folder for results.csv, report.md and the plot")
    p.add_argument("--runs", type=AT_LEAST_1, default=3, help="timing repeats; the median is reported (3)")
    p.add_argument("--tiles", type=AT_LEAST_1, default=57, help="random test tiles for the study's protocol (57)")
    p.add_argument("--split", choices=("test", "val", "all"), default="test",
                   help="score the test images (default); the validation images, to choose between models "
                        "without looking at the test set; or every image of the folder (data no model trained on)")
    p.add_argument("--views", type=int, choices=VIEWS, default=1,
                   help="test-time augmentation: predict each tile in this many dihedral views (quarter turns, "
                        "mirrored or not) and average them; about that many times slower (default 1: none)")
    p.add_argument("--overwrite", action="store_true", help="replace the results of an earlier evaluation in --out")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("table5", help="the 18 variants beside the study's Table V: evaluated rows, the rest "
                                      "marked not trained; every row timed in this one run")
    _add_data_args(p)
    p.add_argument("--results", nargs="+", required=True, type=Path,
                   help="results.csv files of paip-train evaluate (the first that scored a variant wins)")
    p.add_argument("--out", required=True, type=Path, help="folder for table5.csv, table5.md and the plot")
    p.add_argument("--runs", type=AT_LEAST_1, default=1, help="timing repeats of each variant (1)")
    p.add_argument("--tiles", type=AT_LEAST_1, default=57, help="test tiles timed, as evaluate (57)")
    p.add_argument("--no-measure", action="store_true",
                   help="time nothing (U-Net 128/6 alone takes minutes): the untrained variants' size and time "
                        "stay empty, the trained rows keep their evaluate runs' times")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier table in --out")
    p.set_defaults(func=cmd_table5)
    return parser


def _message(exc: Exception) -> str:
    """One line for the user. An OSError from the system says which file and why; ours carry a sentence."""
    if isinstance(exc, OSError) and exc.strerror:
        text = f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    _quiet_tensorflow(args.command)
    try:
        return args.func(args, argv) if args.func is cmd_grid else args.func(args)
    except (ValueError, OSError) as exc:
        print(f"paip-train {args.command}: error: {_message(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; nothing half-written was left behind", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
