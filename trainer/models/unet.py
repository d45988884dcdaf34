"""U-Net (Ronneberger et al. 2015) in the classic Keras layout the study trained.

Generalised over initial filters ``n`` and depth ``L`` (resolution levels, L-1 poolings);
level i has c_i = n * 2**i filters. See ../shared/paper/ARCHITECTURES.md: no batch
normalisation, ReLU, he_normal, Dropout(0.5) on the two deepest levels, a 2x2 conv after each
up-sampling, and a 2-filter 3x3 conv before the 1x1 sigmoid head. U-Net 64/5 has 31,032,837
parameters.
"""
from __future__ import annotations

import math

import keras
from keras import layers

from ._validate import check_args, input_layer


# Nuclei cover ~20% of a tile. Starting the sigmoid at that prior, and the 2-channel ReLU layer
# before it slightly open, stops the first updates from pushing every pixel to background and
# killing both ReLU channels: with zero biases U-Net 32/5 collapsed to a constant output within
# one epoch on MoNuSeg (Lin et al. 2017 use the same prior trick). Parameter counts are unchanged.
FOREGROUND_PRIOR = 0.2


def _conv(x, filters: int, kernel: int, name: str, bias: float = 0.0):
    return layers.Conv2D(filters, kernel, activation="relu", padding="same", kernel_initializer="he_normal",
                         bias_initializer=keras.initializers.Constant(bias), name=name)(x)


def build_unet(filters: int = 64, depth: int = 5, input_size: int | None = 256) -> keras.Model:
    """Build U-Net ``filters``/``depth`` with one sigmoid output channel.

    ``input_size=None`` gives a fully convolutional model that accepts any H, W divisible by
    2**(depth-1); the parameter count does not depend on it.
    """
    check_args(filters, depth, input_size)
    inputs = input_layer(input_size)
    skips = []
    x = inputs
    for i in range(depth):
        c = filters * 2**i
        x = _conv(x, c, 3, f"enc{i}_conv1")
        x = _conv(x, c, 3, f"enc{i}_conv2")
        if i >= depth - 2:
            x = layers.Dropout(0.5, name=f"enc{i}_dropout")(x)
        if i < depth - 1:
            skips.append(x)
            x = layers.MaxPooling2D(2, name=f"enc{i}_pool")(x)
    for i in range(depth - 2, -1, -1):
        c = filters * 2**i
        up = layers.UpSampling2D(2, name=f"dec{i}_upsample")(x)
        up = _conv(up, c, 2, f"dec{i}_upconv")
        x = layers.Concatenate(axis=-1, name=f"dec{i}_concat")([skips[i], up])
        x = _conv(x, c, 3, f"dec{i}_conv1")
        x = _conv(x, c, 3, f"dec{i}_conv2")
    x = _conv(x, 2, 3, "head_conv", bias=0.1)
    prior = keras.initializers.Constant(math.log(FOREGROUND_PRIOR / (1 - FOREGROUND_PRIOR)))
    outputs = layers.Conv2D(1, 1, activation="sigmoid", bias_initializer=prior, name="head_sigmoid",
                            dtype="float32")(x)
    return keras.Model(inputs, outputs, name=f"unet_{filters}_{depth}")
