"""``paipviewer``: the desktop viewer. TensorFlow is imported in the worker, never here."""
from __future__ import annotations

import argparse
import sys


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="paipviewer", description="View tumour-nucleus segmentations of H&E "
                                "images: prediction, ground truth and TP/FP/FN, per model or side by side.")
    p.add_argument("paths", nargs="*", help="images, folders or .keras models (default: the sample tiles)")
    p.add_argument("--model", help="model file or name (file stem) to run; default elunet_8_5 if shipped")
    p.add_argument("--compare", help="second model to show side by side")
    p.add_argument("--models-dir", help="folder of your own .keras models (default ~/.local/share/paipviewer/models)")
    p.add_argument("--snapshot", metavar="OUT.png", help="render the window to OUT.png once inference is done, then exit")
    p.add_argument("--layers", help="layers to show, comma-separated: errors,prediction,truth,probability,disagree")
    p.add_argument("--outline", action="store_true", help="draw masks as outlines instead of filled")
    p.add_argument("--threshold", type=float, help="probability threshold for the masks (default 0.5)")
    p.add_argument("--overwrite", action="store_true", help="let --snapshot replace an existing file")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from paipviewer.ui.overlay_colors import LAYERS

    if args.layers is not None:
        unknown = set(args.layers.split(",")) - set(LAYERS) - {""}
        if unknown:
            raise SystemExit(f"paipviewer: unknown layer(s) {', '.join(sorted(unknown))}; choose from {', '.join(LAYERS)}")
    if args.threshold is not None and not 0 < args.threshold < 1:
        raise SystemExit("paipviewer: --threshold must be between 0 and 1")
    from paipviewer.ui.app import run  # Qt only after argument errors are out of the way

    return run(args)


if __name__ == "__main__":
    sys.exit(main())
