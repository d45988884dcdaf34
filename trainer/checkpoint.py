"""The training state ``fit`` leaves after every epoch, so ``--resume`` carries on as if never stopped.

One file per variant, ``.NAME.state.npz`` in the output folder, holds the model's weights, the
optimizer's variables (Adam's moments, its iteration count and the current learning rate), the
best weights so far and a JSON record: epochs done, early-stopping and learning-rate-plateau
counters, the history rows and the training seconds. It is written atomically after each epoch,
so a kill or a full disk leaves the previous epoch's state whole. It is NumPy's format, not
HDF5: h5py crashed the process (rc 139) when the disk filled while it wrote a checkpoint.

Keras is not imported here: the grid and the CLI look for checkpoints without it.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from paipviewer.core.atomic import write_atomic

FORMAT = "paip-train-state/1"
_GROUPS = ("weights", "optimizer", "best_weights")


class CheckpointError(ValueError):
    """A checkpoint that cannot be resumed from; the message says why, for the user."""


@dataclass
class TrainingState:
    variant: str
    epoch: int  # epochs done
    stopped: bool  # early stopping or the time limit ended training after this epoch
    seconds: float
    rows: list[dict]  # the history CSV's rows so far
    early_stopping: dict
    plateau: dict | None
    weights: list[np.ndarray] = field(repr=False)
    optimizer: list[np.ndarray] = field(repr=False)
    best_weights: list[np.ndarray] | None = field(repr=False)


def state_path(out_dir: str | Path, variant: str) -> Path:
    return Path(out_dir) / f".{variant}.state.npz"


def check_state_choice(path: Path, resume: bool, restart: bool) -> None:
    """An interrupted run's state is used or dropped only when the user says which."""
    if resume and restart:
        raise ValueError("pass --resume or --restart, not both")
    if resume and not path.is_file():
        raise FileNotFoundError(f"--resume: no interrupted run to resume ({path} does not exist)")
    if path.is_file() and not (resume or restart):
        raise FileExistsError(f"{path} holds an interrupted run; pass --resume to carry on or --restart to start over")


def _write_npz(fh, arrays: dict[str, np.ndarray]) -> None:
    np.savez(fh, **arrays)


def save_state(path: Path, state: TrainingState) -> None:
    record = {k: v for k, v in asdict(state).items() if k not in _GROUPS}
    arrays = {"state": np.frombuffer(json.dumps({"format": FORMAT, **record}).encode(), np.uint8)}
    for group in _GROUPS:
        for i, array in enumerate(getattr(state, group) or []):
            arrays[f"{group}_{i:05d}"] = np.asarray(array)
    try:
        write_atomic(path, lambda fh: _write_npz(fh, arrays))
    except OSError as exc:
        raise OSError(exc.errno, f"cannot write the training state {path} ({exc.strerror or exc}); "
                                 f"the previous epoch's state is kept") from None


def load_state(path: Path) -> TrainingState:
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
        record = json.loads(arrays.pop("state").tobytes())
    # A truncated or foreign file fails in many ways (zip, npy header, JSON, a missing member); all mean the same.
    except Exception as exc:
        raise CheckpointError(f"{path} is damaged ({type(exc).__name__}: {str(exc)[:200]}); "
                              f"pass --restart to start over") from None
    if not isinstance(record, dict) or record.pop("format", None) != FORMAT:
        raise CheckpointError(f"{path} is not a paip-train training state; pass --restart to start over")
    groups = {g: [arrays[k] for k in sorted(arrays) if k.startswith(f"{g}_")] for g in _GROUPS}
    groups["best_weights"] = groups["best_weights"] or None
    try:
        return TrainingState(**record, **groups)
    except TypeError as exc:
        raise CheckpointError(f"{path} is incomplete ({exc}); pass --restart to start over") from None
