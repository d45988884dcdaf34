"""Test-time scales: does averaging ELU-Net 8/5's maps at several image scales lift Dice beyond the
dihedral views? Measured on the 6 validation images only (whole images, ONNX Runtime or OpenVINO as
the viewer picks), mean whole-image Dice at four thresholds.

    .venv/bin/python benchmarks/scale_views.py --views 1     # about a minute on 2 cores
    .venv/bin/python benchmarks/scale_views.py --views 8     # about eight minutes
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from paip_trainer.evaluate import images_to_score
from paip_trainer.prepare import PrepareSettings
from paipviewer.core.evidence import truth_labels
from paipviewer.core.imageio import read_image
from paipviewer.core.inference import DEFAULT_OVERLAP
from paipviewer.core.magnification import UNKNOWN, Scale, predict_at_scale
from paipviewer.core.metrics import confusion, mean_score
from paipviewer.core.modelfile import load_model
from paipviewer.viewer.paths import shipped_models_dir

SCALES = (0.8, 0.9, 1.0, 1.1, 1.25)
SETS = [(1.0,), (1.0, 1.1), (0.9, 1.0, 1.1), (0.8, 1.0, 1.25), SCALES]
THRESHOLDS = (0.3, 0.35, 0.4, 0.45)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "monuseg"))
    p.add_argument("--views", type=int, default=1)
    args = p.parse_args()
    loaded = load_model(shipped_models_dir() / "elunet_8_5.onnx")
    probs: dict[float, list[np.ndarray]] = {f: [] for f in SCALES}
    truths = []
    for s in images_to_score(Path(args.data), PrepareSettings(), "val"):
        image = read_image(s.image)
        truths.append(truth_labels(s.mask, image.shape[:2]) > 0)
        for f in SCALES:
            probs[f].append(predict_at_scale(loaded.model, image, loaded.card.equalize, Scale(UNKNOWN, None, f),
                                             overlap=DEFAULT_OVERLAP, batch=8, views=args.views).probability)
    print(f"ELU-Net 8/5 ({loaded.backend}), {args.views} view(s), mean whole-image Dice on {len(truths)} "
          f"validation images; card threshold {loaded.card.threshold}")
    print("scales averaged          " + "  ".join(f"t={t:<5}" for t in THRESHOLDS))
    for chosen in SETS:
        cells = []
        for t in THRESHOLDS:
            maps = [np.mean([probs[f][i] for f in chosen], axis=0) for i in range(len(truths))]
            cells.append(mean_score([confusion(m >= t, truth) for m, truth in zip(maps, truths)], "dice"))
        print(f"{', '.join(map(str, chosen)):24s} " + "  ".join(f"{c:.4f} " for c in cells))


if __name__ == "__main__":
    main()
