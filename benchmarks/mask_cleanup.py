"""Would cleaning the masks lift the default model's Dice? Measured on the 6 validation images only.

The shipped ELU-Net 8/5 (ONNX Runtime, fp32) predicts each validation image whole, as `paip-train
evaluate` does; its mask at the card's threshold is then cleaned by filling holes and by dropping
connected specks smaller than k pixels, and the mean whole-image Dice of each variant is printed.

    .venv/bin/python benchmarks/mask_cleanup.py [--data ../shared/data/monuseg]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
from scipy import ndimage

from paip_trainer.evaluate import images_to_score
from paip_trainer.prepare import PrepareSettings
from paipviewer.core.evidence import truth_labels
from paipviewer.core.imageio import read_image
from paipviewer.core.inference import DEFAULT_OVERLAP
from paipviewer.core.magnification import image_pixel_size, plan_scale, predict_at_scale
from paipviewer.core.metrics import confusion, mean_score
from paipviewer.core.modelfile import load_model
from paipviewer.viewer.paths import shipped_models_dir


def without_specks(mask: np.ndarray, k: int) -> np.ndarray:
    _, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    keep = stats[:, cv2.CC_STAT_AREA] >= k
    keep[0] = False
    return keep[labels]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "monuseg"))
    args = p.parse_args()
    loaded = load_model(shipped_models_dir() / "elunet_8_5.onnx", backend="onnx")
    card = loaded.card
    scores: dict[str, list] = {}
    for s in images_to_score(Path(args.data), PrepareSettings(), "val"):
        image = read_image(s.image)
        scale = plan_scale(image_pixel_size(s.image), card.mpp)
        prob = predict_at_scale(loaded.model, image, card.equalize, scale, overlap=DEFAULT_OVERLAP, batch=8).probability
        truth = truth_labels(s.mask, image.shape[:2]) > 0
        mask = prob >= card.threshold
        variants = {"as predicted": mask, "holes filled": ndimage.binary_fill_holes(mask)}
        for k in (10, 20, 50, 80):
            variants[f"specks < {k} px dropped"] = without_specks(mask, k)
            variants[f"both, k = {k}"] = without_specks(ndimage.binary_fill_holes(mask), k)
        for name, v in variants.items():
            scores.setdefault(name, []).append(confusion(v, truth))
    print(f"ELU-Net 8/5 at threshold {card.threshold}, mean whole-image Dice on {len(scores['as predicted'])} "
          "validation images:")
    for name, values in scores.items():
        print(f"  {name:26s} {mean_score(values, 'dice'):.4f}")


if __name__ == "__main__":
    main()
