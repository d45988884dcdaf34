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
