"""Atomic file writes: a reader sees the old file or the new one, never half of one."""
from __future__ import annotations

import contextlib
import glob
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def _temporary_affixes(path: Path) -> tuple[str, str]:
    """Prefix and suffix of the temporaries :func:`atomic_path` makes for ``path``."""
    return f".{path.stem}.", ".part" + path.suffix


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside ``path``; on success it replaces ``path``, on error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix, suffix = _temporary_affixes(path)
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        # mkstemp makes the file private (0600); give it the mode a plain open() would have.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if exc.filename is None and exc.errno is not None:  # a full disk's write() names no file: name ours
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def remove_temporaries(path: str | os.PathLike) -> list[Path]:
    """Delete the temporaries of ``path`` that a killed process left (they are never removed otherwise).

    Call it only where no other process can be writing ``path`` at the same time: its temporary would go too.
    """
    path = Path(path)
    prefix, suffix = _temporary_affixes(path)
    orphans = [p for p in path.parent.glob(f"{glob.escape(prefix)}*{glob.escape(suffix)}") if p.is_file()]
    for orphan in orphans:
        with contextlib.suppress(FileNotFoundError):
            orphan.unlink()
    return orphans


def write_atomic(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> None:
    """Write ``path`` through ``write(file)``, atomically and flushed to the disk."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    write_atomic(path, lambda fh: fh.write(data))


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))
