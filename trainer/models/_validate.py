"""Argument checks shared by the builders, so a bad variant fails before any layer is made."""
from __future__ import annotations

import keras

from ..variants import MAX_DEPTH, MIN_DEPTH


def check_args(filters: int, depth: int, input_size: int | None) -> None:
    if not isinstance(filters, int) or isinstance(filters, bool) or filters < 1:
        raise ValueError(f"filters must be a positive integer, got {filters!r}")
    if not isinstance(depth, int) or isinstance(depth, bool) or not MIN_DEPTH <= depth <= MAX_DEPTH:
        raise ValueError(f"depth must be an integer in {MIN_DEPTH}..{MAX_DEPTH}, got {depth!r}")
    if input_size is not None:
        step = 2 ** (depth - 1)
        if not isinstance(input_size, int) or input_size < step or input_size % step:
            raise ValueError(f"input_size must be a multiple of {step} for depth {depth}, got {input_size!r}")


def input_layer(input_size: int | None):
    return keras.Input(shape=(input_size, input_size, 3), name="image")
