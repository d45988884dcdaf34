"""The study's model zoo: one builder per architecture."""
from __future__ import annotations

from ..variants import ARCHITECTURES
from .elunet import build_elunet
from .unet import build_unet

BUILDERS = {"unet": build_unet, "elunet": build_elunet}
assert tuple(BUILDERS) == ARCHITECTURES


def build_model(architecture: str, filters: int, depth: int, input_size: int | None = 256):
    """Build one variant by name; ``architecture`` is ``unet`` or ``elunet``."""
    try:
        builder = BUILDERS[architecture]
    except KeyError:
        raise ValueError(f"unknown architecture {architecture!r}; choose one of {', '.join(ARCHITECTURES)}") from None
    return builder(filters=filters, depth=depth, input_size=input_size)


__all__ = ["BUILDERS", "build_elunet", "build_model", "build_unet"]
