"""Choose how touching nuclei are split, on training images only: mean AJI, detection F1 and PQ of a
model's predicted nuclei for a grid of :class:`ObjectSettings`, and the time to label one image.

    .venv/bin/python benchmarks/object_settings.py [--data ../shared/data/monuseg/train] [--model elunet_8_5]

The model runs once per image (ONNX Runtime); only the labelling is repeated per setting. Components
alone (no splitting) are the first row, for comparison.
"""
from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

import cv2
import numpy as np

from paipviewer.core.datasets import discover
from paipviewer.core.evidence import truth_labels
from paipviewer.core.imageio import read_image
from paipviewer.core.inference import predict_image
from paipviewer.core.objects import ObjectSettings, label_nuclei, match_nuclei
from paipviewer.score import resolve_model
from paipviewer.core.modelfile import load_model

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "monuseg" / "train"))
    p.add_argument("--model", default="elunet_8_5")
    p.add_argument("--images", type=int, default=30)
    args = p.parse_args()
    loaded = load_model(resolve_model(args.model))
    samples = [s for s in discover(args.data) if s.mask is not None][:args.images]
    cases = []
    for s in samples:
        image = read_image(s.image)
        prob = predict_image(loaded.model, image, loaded.card.equalize).probability
        cases.append((prob >= loaded.card.threshold, truth_labels(s.mask, image.shape[:2])))
    print(f"{args.model} ({loaded.runtime}, threshold {loaded.card.threshold:g}) on {len(cases)} images of {args.data}")
    print("| setting | AJI | detection F1 | PQ | nuclei predicted / true | ms per image |")
    print("|---|---:|---:|---:|---:|---:|")

    def report(name, label):
        t0 = time.perf_counter()
        scores = [match_nuclei(truth, label(mask)).scores for mask, truth in cases]
        ms = 1000 * (time.perf_counter() - t0) / len(cases)
        print(f"| {name} | {np.mean([s.aji for s in scores]):.3f} | {np.mean([s.f1 for s in scores]):.3f} "
              f"| {np.mean([s.pq for s in scores]):.3f} | {sum(s.n_pred for s in scores):,} / "
              f"{sum(s.n_true for s in scores):,} | {ms:.0f} |")

    report("components only", lambda m: cv2.connectedComponents(m.astype(np.uint8), connectivity=8)[1])
    for area, distance, depth in itertools.product((10, 30), (3, 4, 6), (0.5, 1.0, 2.0)):
        s = ObjectSettings(min_area=area, min_distance=distance, min_depth=depth)
        report(f"min_area {area}, min_distance {distance}, min_depth {depth:g}", lambda m, s=s: label_nuclei(m, s))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
