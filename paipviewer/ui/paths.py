"""Where the shipped resources live; Qt-free so the session and tests can use it."""
from __future__ import annotations

from pathlib import Path

DEFAULT_MODEL_STEM = "elunet_8_5"


def resources_dir() -> Path:
    # paipviewer/ui/paths.py -> repo root is three levels up (editable install runs from the repo).
    return Path(__file__).resolve().parents[2] / "resources"


def sample_dir() -> Path:
    return resources_dir() / "samples"


def shipped_models_dir() -> Path:
    return resources_dir() / "models"
