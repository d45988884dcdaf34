"""The study's grid of variants (Table V), without importing Keras."""
from __future__ import annotations

ARCHITECTURES = ("unet", "elunet")
GRID_FILTERS = {"unet": (32, 64, 128), "elunet": (4, 8, 16)}
GRID_DEPTHS = (4, 5, 6)
MIN_DEPTH, MAX_DEPTH = 2, 8  # resolution levels any architecture can be built with


def grid_variants(architectures=ARCHITECTURES) -> list[tuple[str, int, int]]:
    """The study's 18 variants as (architecture, filters, depth), in Table V order."""
    return [(a, f, d) for a in architectures for f in GRID_FILTERS[a] for d in GRID_DEPTHS]


def variant_id(architecture: str, filters: int, depth: int) -> str:
    return f"{architecture}_{filters}_{depth}"


def parse_variant_id(text: str) -> tuple[str, int, int]:
    """``elunet_8_5`` -> ("elunet", 8, 5)."""
    try:
        arch, filters, depth = text.split("_")
        if arch not in ARCHITECTURES:
            raise ValueError
        return arch, int(filters), int(depth)
    except ValueError:
        raise ValueError(f"bad variant {text!r}; expected e.g. elunet_8_5 or unet_32_5") from None
