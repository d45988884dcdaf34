"""Where the shipped resources and the user's own models live."""
from __future__ import annotations

import os
import sys
from pathlib import Path

DEFAULT_MODEL_STEM = "elunet_8_5"


def resources_dir() -> Path:
    """PAIPVIEWER_RESOURCES if set; the PyInstaller bundle's copy; else the repository's resources/."""
    if os.environ.get("PAIPVIEWER_RESOURCES"):
        return Path(os.environ["PAIPVIEWER_RESOURCES"])
    if getattr(sys, "frozen", False) and hasattr(sys, "_MEIPASS"):
        return Path(sys._MEIPASS) / "resources"
    # paipviewer/ui/paths.py -> the repository root is three levels up (editable install).
    return Path(__file__).resolve().parents[2] / "resources"


def sample_dir() -> Path:
    return resources_dir() / "samples"


def shipped_models_dir() -> Path:
    return resources_dir() / "models"


def user_models_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "paipviewer" / "models"
