"""Where the shipped resources, the user's own models and the app's folders live."""
from __future__ import annotations

import os
import sys
from importlib.resources import files
from pathlib import Path

from platformdirs import PlatformDirs

DEFAULT_MODEL_STEM = "elunet_8_5"
APP = PlatformDirs("paipviewer", appauthor=False)


def resources_dir() -> Path:
    """PAIPVIEWER_RESOURCES if set; the PyInstaller bundle's copy; else the installed package's data
    (in a checkout, the repository's resources/, which installs as paipviewer.resources)."""
    if os.environ.get("PAIPVIEWER_RESOURCES"):
        return Path(os.environ["PAIPVIEWER_RESOURCES"])
    if getattr(sys, "frozen", False) and hasattr(sys, "_MEIPASS"):
        return Path(sys._MEIPASS) / "resources"
    return Path(str(files("paipviewer.resources")))


def sample_dir() -> Path:
    return resources_dir() / "samples"


def shipped_models_dir() -> Path:
    return resources_dir() / "models"


def user_models_dir() -> Path:
    """The user's own models: ~/.local/share/paipviewer/models on Linux (XDG_DATA_HOME respected)."""
    return Path(APP.user_data_dir) / "models"


def log_dir() -> Path:
    return Path(APP.user_log_dir)


def cache_dir() -> Path:
    return Path(APP.user_cache_dir)
