"""Qt-free test helpers: real model files and hostile image files, made on the fly."""
from __future__ import annotations

from pathlib import Path


def make_model_file(folder: Path, architecture: str = "elunet", filters: int = 4, depth: int = 3,
                    threshold: float = 0.5) -> Path:
    """Build and save a small real model with its card (untrained: weights are Keras' init)."""
    from paipviewer.core.modelfile import ModelCard, save_model
    from paip_trainer.models import build_model

    path = Path(folder) / f"{architecture}_{filters}_{depth}.keras"
    model = build_model(architecture, filters, depth, input_size=None)
    card = ModelCard(architecture=architecture, filters=filters, depth=depth, params=int(model.count_params()),
                     equalize="rgb", threshold=threshold, training={"data": "untrained (tests)"})
    return save_model(model, card, path)


def huge_png(path: Path, width: int = 40000, height: int = 40000) -> Path:
    """A PNG whose header claims more pixels than the reader allows (a decompression bomb)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))
    return path


def tiny_settings(**overrides):
    """FitSettings for a seconds-long ELU-Net 4/4 fit on a few tiles."""
    from paip_trainer.fit import FitSettings

    settings = dict(learning_rate=1e-3, epochs=2, steps_per_epoch=2, batch_size=4, xla=False)
    return FitSettings(architecture="elunet", filters=4, depth=4, **{**settings, **overrides})


def make_unreadable(path: Path, monkeypatch) -> Path:
    """Take away read permission; as root (CI here) modes are not enforced, so reads of it fail as
    the kernel would fail them for a user."""
    import errno
    import os

    path = Path(path)
    path.chmod(0)
    if os.geteuid() == 0:
        real = Path.read_bytes

        def read_bytes(self):
            if self.resolve() == path.resolve():
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))
            return real(self)

        monkeypatch.setattr(Path, "read_bytes", read_bytes)
    return path


def make_read_only(folder: Path, monkeypatch) -> Path:
    """A folder nothing can be created in (a read-only share, a folder of someone else's). As root (CI
    here) modes are not enforced, so creating a file or folder in it fails as the kernel would fail it
    for a user: os.open (tempfile's and mkstemp's way in) and os.mkdir refuse with EACCES."""
    import errno
    import os

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o555)
    if os.geteuid() == 0:
        inside = folder.resolve()

        def refused(path) -> bool:
            path = Path(os.fsdecode(path)).absolute()
            return path == inside or path.parent == inside

        real_open, real_mkdir = os.open, os.mkdir

        def guarded_open(path, flags, *args, **kwargs):
            creating = flags & (os.O_CREAT | getattr(os, "O_TMPFILE", 0) | os.O_WRONLY | os.O_RDWR)
            if creating and refused(path):
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fsdecode(path))
            return real_open(path, flags, *args, **kwargs)

        def guarded_mkdir(path, *args, **kwargs):
            if refused(path) and not Path(os.fsdecode(path)).is_dir():
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fsdecode(path))
            return real_mkdir(path, *args, **kwargs)

        monkeypatch.setattr(os, "open", guarded_open)
        monkeypatch.setattr(os, "mkdir", guarded_mkdir)
    return folder


def full_disk_after(writes: int, monkeypatch) -> list[Path]:
    """From the ``writes``-th atomic write on (paipviewer.core.atomic.atomic_path, which every result
    file goes through), the disk is full: the write gets half its bytes down, then ENOSPC, as a
    write() on a full disk fails (naming no file). Returns the target of each write tried, in order."""
    import contextlib
    import errno
    import os
    import sys

    from paipviewer.core import atomic

    real = atomic.atomic_path
    tried: list[Path] = []

    @contextlib.contextmanager
    def filling(path):
        tried.append(Path(path))
        with real(path) as tmp:
            yield tmp
            if len(tried) >= writes:
                if tmp.exists():
                    os.truncate(tmp, tmp.stat().st_size // 2)
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    for name, module in list(sys.modules.items()):
        if name.split(".")[0] in ("paipviewer", "paip_trainer") and getattr(module, "atomic_path", None) is real:
            monkeypatch.setattr(module, "atomic_path", filling)
    return tried
