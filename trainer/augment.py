"""Training-time augmentation (``paip-train fit --augment``, ``--stain-augment``, ``--scale-augment``),
all off by default as in the study.

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

Recipe v2's two candidates, each measured on and off on validation (``docs/results/recipe_v2.md``):

- ``--stain-augment``: haematoxylin and eosin jitter in HED space (:func:`stain_jitter`);
- ``--scale-augment``: a random rescale about the training magnification, cropped or mirrored back to
  the tile's size, the mask by nearest neighbour (:func:`random_scale`).

Neither lifted validation Dice by the 0.005 the decision rule asks (both about +0.002), so recipe v2
is ``--augment`` alone, as the shipped models were trained, and the two stay opt-in.
"""
from __future__ import annotations

import numpy as np

RECIPE_V2_ADDS: tuple[str, ...] = ()  # what recipe v2 adds to --augment: nothing passed the rule

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


# --- Recipe v2 candidates (``fit --stain-augment``, ``fit --scale-augment``), each opt-in -------------------
#
# Colour deconvolution (Ruifrok & Johnston, "Quantification of histochemical staining by color
# deconvolution", Anal. Quant. Cytol. Histol. 23(4), 2001): each pixel's optical density is a sum of the
# stains' ODs, so in OD space the stains are a linear basis. The matrices are scikit-image's
# (``skimage.color.rgb_from_hed`` / ``hed_from_rgb``), and so is the OD scaling: OD is log(rgb) over
# log(1e-6), with rgb floored at 1e-6, so ``rgb_to_hed`` is ``skimage.color.rgb2hed`` and ``hed_to_rgb``
# is ``hed2rgb``. Written here in a few lines of NumPy rather than adding scikit-image for two matrices.

RGB_FROM_HED = np.array([[0.65, 0.70, 0.29],   # haematoxylin
                         [0.07, 0.99, 0.11],   # eosin
                         [0.27, 0.57, 0.78]])  # DAB (absent in H&E; the third axis of the basis)
HED_FROM_RGB = np.linalg.inv(RGB_FROM_HED)
_OD_FLOOR = 1e-6
_LOG_FLOOR = np.log(_OD_FLOOR)  # OD is scaled so that the darkest representable pixel has OD 1

# Stain jitter (Tellez et al., "Quantifying the effects of data augmentation and stain color
# normalization in convolutional neural networks for computational pathology", Med. Image Anal. 58,
# 2019, their "HED" augmentation): each of H and E is scaled by U(1 - g, 1 + g) and shifted by U(-b, b)
# in these OD units; DAB is left alone. Kept mild (each mean channel moves by up to about 5 %), as the
# tiles are already equalised; for scale, raw MoNuSeg tiles have H about 0.15 in nuclei and 0.05 around
# them, and E about 0.02 to 0.03.
HED_GAIN = 0.05
HED_BIAS = 0.005

# Scale: a factor drawn log-uniformly in [0.8, 1.25] = [1/1.25, 1.25] (enlarging and reducing equally
# likely), about the training magnification the tiles were cut at (the card's mpp): a tile seen
# at 0.25 um/px becomes one at 0.2 to 0.31 um/px (nuclei 25 % larger to 20 % smaller).
SCALE_RANGE = (0.8, 1.25)


def rgb_to_hed(rgb: np.ndarray, clip: bool = True) -> np.ndarray:
    """RGB in [0, 1] (..., 3) -> stain concentrations H, E, D (skimage's ``rgb2hed`` with ``clip``).

    ``clip`` sets negative concentrations to 0 as scikit-image does; without it the transform is exactly
    invertible (``hed_to_rgb`` gives back the input), which the stain jitter relies on.
    """
    rgb = np.maximum(np.asarray(rgb, dtype=np.float64), _OD_FLOOR)
    stains = (np.log(rgb) / _LOG_FLOOR) @ HED_FROM_RGB
    return np.maximum(stains, 0.0) if clip else stains


def hed_to_rgb(hed: np.ndarray) -> np.ndarray:
    """Stain concentrations (..., 3) -> RGB in [0, 1] (skimage's ``hed2rgb``)."""
    log_rgb = (np.asarray(hed, dtype=np.float64) * _LOG_FLOOR) @ RGB_FROM_HED
    return np.clip(np.exp(log_rgb), 0.0, 1.0)


def stain_jitter(image: np.ndarray, rng: np.random.Generator, gain: float = HED_GAIN,
                 bias: float = HED_BIAS) -> np.ndarray:
    """Jitter the haematoxylin and eosin of a float image (h, w, 3) in [0, 1]; returns float32.

    Unclipped deconvolution, so with ``gain`` and ``bias`` 0 the image comes back unchanged (up to float
    rounding and the 1e-6 floor).
    """
    alpha = np.ones(3)
    beta = np.zeros(3)
    alpha[:2] = rng.uniform(1 - gain, 1 + gain, size=2)
    beta[:2] = rng.uniform(-bias, bias, size=2)
    hed = rgb_to_hed(image, clip=False)
    return hed_to_rgb(hed * alpha + beta).astype(np.float32)


def random_scale(image: np.ndarray, mask: np.ndarray, rng: np.random.Generator,
                 scale_range: tuple[float, float] = SCALE_RANGE) -> tuple[np.ndarray, np.ndarray]:
    """Rescale a float image (h, w, 3) and its mask (h, w, 1) by a random factor, back to (h, w).

    Enlarged: a random (h, w) window of it. Reduced: placed at a random offset and mirrored at its edges
    out to (h, w), image and mask alike, so a mirrored nucleus is labelled too. The image is resampled
    bilinearly (area-averaged when reduced), the mask by nearest neighbour, so labels stay exactly binary.
    """
    import cv2

    h, w = mask.shape[:2]
    factor = float(np.exp(rng.uniform(np.log(scale_range[0]), np.log(scale_range[1]))))
    nh, nw = max(1, round(h * factor)), max(1, round(w * factor))
    if (nh, nw) == (h, w):
        return image.astype(np.float32), mask.astype(np.float32)
    interp = cv2.INTER_LINEAR if factor > 1 else cv2.INTER_AREA
    big_image = cv2.resize(np.ascontiguousarray(image, dtype=np.float32), (nw, nh), interpolation=interp)
    big_mask = cv2.resize(np.ascontiguousarray(mask[..., 0], dtype=np.float32), (nw, nh),
                          interpolation=cv2.INTER_NEAREST)
    # Per axis: crop a random window where the rescaled tile is larger, mirror out where it is smaller.
    crop, pads = [], []
    for old_size, new_size in ((h, nh), (w, nw)):
        start = int(rng.integers(abs(new_size - old_size) + 1))
        if new_size >= old_size:
            crop.append(slice(start, start + old_size))
            pads += [0, 0]
        else:
            crop.append(slice(None))
            pads += [start, old_size - new_size - start]
    big_image, big_mask = big_image[tuple(crop)], big_mask[tuple(crop)]
    if any(pads):
        big_image = cv2.copyMakeBorder(np.ascontiguousarray(big_image), *pads, cv2.BORDER_REFLECT_101)
        big_mask = cv2.copyMakeBorder(np.ascontiguousarray(big_mask), *pads, cv2.BORDER_REFLECT_101)
    return (np.clip(big_image, 0.0, 1.0).astype(np.float32),
            np.ascontiguousarray(big_mask[..., None], dtype=np.float32))


def recipe_name(augment: bool, stain: bool, scale: bool) -> str:
    """What a card calls its training recipe: "study" (no augmentation, as the paper), "v2" (the chosen
    recipe, docs/results/recipe_v2.md), or either with the candidates it was measured with."""
    adds = tuple(name for name, on in (("stain", stain), ("scale", scale)) if on)
    if augment and adds == RECIPE_V2_ADDS:
        return "v2"
    base = ("v2" if not RECIPE_V2_ADDS else "v1") if augment else "study"
    return " + ".join([base, *(f"{name} jitter" for name in adds if name not in RECIPE_V2_ADDS)])


def recipe_v2_settings() -> dict:
    """The ranges behind ``--stain-augment`` and ``--scale-augment``, for the model card."""
    return {"stain": {"space": "HED (Ruifrok-Johnston, scikit-image matrices)", "channels": ["H", "E"],
                      "gain": HED_GAIN, "bias": HED_BIAS},
            "scale": {"range": list(SCALE_RANGE), "draw": "log-uniform", "mask": "nearest",
                      "border": "reflect_101"}}
