"""Training-time augmentation (``paip-train fit --augment``), off by default as in the study.

MoNuSeg's test organs (bladder, brain, colon, lung, stomach...) are not all in train, so a model
that only ever saw the training organs' exact colours and orientations generalises worse than its
validation loss suggests. Each training tile, every time it is drawn, gets:

- a random quarter turn (k in 0..3), applied identically to image and mask; with the flips that
  ``prepare`` already stores this covers all eight symmetries of the square;
- a colour jitter on the (already equalised) image: contrast x U(0.85, 1.15) about the tile's mean,
  brightness + U(-0.06, 0.06), and a gain U(0.94, 1.06) on each of R, G and B, clipped to [0, 1].
  Equalisation removes most stain variation, so the jitter is kept mild: it stands in for what
  equalisation leaves of a scanner's or a lab's colour.

The mask is never resampled, so labels stay exactly binary. It is plain NumPy, so training runs the
same on every Keras backend; the caller seeds ``rng`` per drawn tile, so a run is repeatable.
"""
from __future__ import annotations

import numpy as np

CONTRAST = (0.85, 1.15)
BRIGHTNESS = 0.06
CHANNEL_GAIN = 0.06


def augment_pair(image: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Augment one float image (h, w, 3) in [0, 1] and its mask (h, w, 1); returns new float32 arrays."""
    k = int(rng.integers(4))
    contrast = rng.uniform(*CONTRAST)
    brightness = rng.uniform(-BRIGHTNESS, BRIGHTNESS)
    gain = rng.uniform(1 - CHANNEL_GAIN, 1 + CHANNEL_GAIN, size=3)
    image = np.rot90(image, k)
    mean = image.mean()
    image = ((image - mean) * contrast + mean + brightness) * gain
    return (np.clip(image, 0.0, 1.0).astype(np.float32),
            np.ascontiguousarray(np.rot90(mask, k), dtype=np.float32))
