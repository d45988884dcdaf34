"""``paipviewer``: the desktop viewer. TensorFlow is imported in the worker, never here."""
from __future__ import annotations

import argparse
import os
import sys

from paipviewer import __version__


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="paipviewer", description="View tumour-nucleus segmentations of H&E "
                                "images: prediction, ground truth and TP/FP/FN, per model or side by side.",
                                epilog="`paipviewer score --help`: score images and export masks, overlays, "
                                "GeoJSON and a CSV without the window.")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    p.add_argument("paths", nargs="*", help="images, folders or model files, .keras or .onnx (default: the sample tiles)")
    p.add_argument("--model", help="model file or name (file stem) to run; default elunet_8_5 if shipped")
    p.add_argument("--compare", help="second model to show side by side")
    p.add_argument("--models-dir", help="folder of your own models (default ~/.local/share/paipviewer/models)")
    p.add_argument("--snapshot", metavar="OUT.png", help="write a figure of the first image (each model's view with "
                   "its title, and a legend) to OUT.png once inference is done, then exit")
    p.add_argument("--snapshot-scale", type=float, default=1.0, metavar="S",
                   help="figure pixels per image pixel (default 1: the image's own resolution)")
    p.add_argument("--snapshot-timeout", type=float, default=600, metavar="SECONDS",
                   help="how long --snapshot waits for inference before it writes what there is (default 600)")
    p.add_argument("--layers", help="layers to show, comma-separated: errors,prediction,truth,probability,disagree")
    p.add_argument("--outline", action="store_true", help="draw masks as outlines instead of filled")
    p.add_argument("--threshold", type=float, help="probability threshold of the first model's masks "
                   "(default: the threshold in its card)")
    p.add_argument("--overwrite", action="store_true", help="let --snapshot replace an existing file")
    return p.parse_args(argv)


def quiet_native_logs() -> None:
    """TensorFlow's C++ start-up lines (oneDNN notes, "failed call to cuInit" on machines without a
    GPU) are not the user's business; real errors still reach the viewer as exceptions."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["score"]:  # `paipviewer score ...`: no window, no Qt
        from paipviewer.score import main as score

        return score(argv[1:])
    args = parse_args(argv)
    from paipviewer.viewer.layers import LAYERS

    if args.layers is not None:
        unknown = set(args.layers.split(",")) - set(LAYERS) - {""}
        if unknown:
            raise SystemExit(f"paipviewer: unknown layer(s) {', '.join(sorted(unknown))}; choose from {', '.join(LAYERS)}")
    if args.threshold is not None and not 0 < args.threshold < 1:
        raise SystemExit("paipviewer: --threshold must be between 0 and 1")
    if not 0.05 <= args.snapshot_scale <= 16:
        raise SystemExit("paipviewer: --snapshot-scale must be between 0.05 and 16")
    if not 1 <= args.snapshot_timeout <= 86400:
        raise SystemExit("paipviewer: --snapshot-timeout must be between 1 and 86400 seconds")
    quiet_native_logs()
    from paipviewer.ui.app import run  # Qt only after argument errors are out of the way

    return run(args)


if __name__ == "__main__":
    sys.exit(main())
