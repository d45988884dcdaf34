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

The mask is never resampled, so labels stay exactly binary. Randomness is stateless and seeded per
drawn tile (``seed`` and the tile's position in the stream), so a run is repeatable.
"""
from __future__ import annotations

CONTRAST = (0.85, 1.15)
BRIGHTNESS = 0.06
CHANNEL_GAIN = 0.06


def augment_pair(image, mask, seed):
    """Augment one float image (h, w, 3) in [0, 1] and its mask (h, w, 1); ``seed`` is an int64 pair."""
    import tensorflow as tf

    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=4)
    k = tf.random.stateless_uniform((), seeds[0], 0, 4, dtype=tf.int32)
    image = tf.image.rot90(image, k)
    mask = tf.image.rot90(mask, k)
    contrast = tf.random.stateless_uniform((), seeds[1], *CONTRAST)
    brightness = tf.random.stateless_uniform((), seeds[2], -BRIGHTNESS, BRIGHTNESS)
    gain = tf.random.stateless_uniform((3,), seeds[3], 1 - CHANNEL_GAIN, 1 + CHANNEL_GAIN)
    mean = tf.reduce_mean(image)
    image = ((image - mean) * contrast + mean + brightness) * gain
    return tf.clip_by_value(image, 0.0, 1.0), mask
