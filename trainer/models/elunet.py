"""ELU-Net (Deng et al., IEEE Access 2022): a light U-Net with deep skip connections.

Structure as in ../shared/paper/ARCHITECTURES.md. Level i has c_i = n * 2**i filters and
CB(f) = [Conv 3x3 (f) -> BatchNormalization -> ReLU] x 2. Decoder level i concatenates, in
this order, the up-sampled D_{i+1} and, for every encoder level j = i .. L-2, E_j up-sampled
by 2**(j-i), each through its own 3x3 conv with c_i filters (no BN), then applies CB(c_i) to
the (L-i)*c_i channels. ELU-Net 8/5 has 648,201 parameters (the study reports 644,697; its
per-depth code departed from this structure, see ARCHITECTURES.md).
"""
from __future__ import annotations

import keras
from keras import layers

from ._validate import check_args, input_layer


def _conv_block(x, filters: int, name: str):
    for k in (1, 2):
        x = layers.Conv2D(filters, 3, padding="same", name=f"{name}_conv{k}")(x)
        x = layers.BatchNormalization(name=f"{name}_bn{k}")(x)
        x = layers.Activation("relu", name=f"{name}_relu{k}")(x)
    return x


def _arrow(x, scale: int, filters: int, name: str):
    if scale > 1:
        x = layers.UpSampling2D(scale, name=f"{name}_upsample")(x)
    return layers.Conv2D(filters, 3, padding="same", name=f"{name}_conv")(x)


def build_elunet(filters: int = 8, depth: int = 5, input_size: int | None = 256) -> keras.Model:
    """Build ELU-Net ``filters``/``depth`` with one sigmoid output channel.

    ``input_size=None`` gives a fully convolutional model that accepts any H, W divisible by
    2**(depth-1); the parameter count does not depend on it.
    """
    check_args(filters, depth, input_size)
    inputs = input_layer(input_size)
    encoders = []
    x = inputs
    for i in range(depth):
        if i:
            x = layers.MaxPooling2D(2, name=f"enc{i - 1}_pool")(x)
        x = _conv_block(x, filters * 2**i, f"enc{i}")
        encoders.append(x)
    decoded = encoders[-1]
    for i in range(depth - 2, -1, -1):
        c = filters * 2**i
        parts = [_arrow(decoded, 2, c, f"dec{i}_up")]
        parts += [_arrow(encoders[j], 2 ** (j - i), c, f"dec{i}_skip{j}") for j in range(i, depth - 1)]
        x = layers.Concatenate(axis=-1, name=f"dec{i}_concat")(parts)
        decoded = _conv_block(x, c, f"dec{i}")
    outputs = layers.Conv2D(1, 1, activation="sigmoid", name="head_sigmoid", dtype="float32")(decoded)
    return keras.Model(inputs, outputs, name=f"elunet_{filters}_{depth}")
