"""Checks of where results go, made before any work, so a wrong --out or --cache fails at once
(``paipviewer score`` and the trainer alike)."""
from __future__ import annotations

import tempfile
from collections.abc import Iterable
from pathlib import Path


def check_writable_folder(folder: str | Path, option: str) -> Path:
    """``folder``, created if need be, once a file has been written in it."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"{option} {folder} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        # Permissions, read-only mounts, quotas and a full disk all decide this; only a real write tells.
        with tempfile.TemporaryFile(dir=folder) as probe:
            probe.write(b"\0")
            probe.flush()
    except OSError as exc:
        raise OSError(exc.errno, f"{option} {folder}: cannot write there ({exc.strerror or exc})") from None
    return folder


def check_new_files(paths: Iterable[Path], option: str, overwrite: bool) -> None:
    """Refuse to replace earlier results unless ``overwrite``."""
    existing = [p for p in paths if p.exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{existing[0]} already exists; pass --overwrite or choose another {option}")
