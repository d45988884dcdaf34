"""``paip-train grid``: train many variants, one subprocess each, resumable.

Each variant runs ``paip-train fit`` in its own process, so a variant that exhausts memory (the
kernel's OOM killer ends the process, not a Python exception) is recorded and the grid goes on,
like the study's empty rows. A variant whose model file exists is skipped, and one a stopped grid
left half-trained is resumed from its training state, so a stopped grid resumes where it was.
``grid_status.csv`` in the output folder records every variant's outcome.
"""
from __future__ import annotations

import csv
import io
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from paipviewer.core.atomic import write_text_atomic

from .checkpoint import state_path
from .variants import grid_variants, parse_variant_id, variant_id

STATUS_FILE = "grid_status.csv"
STATUS_COLUMNS = ["variant", "status", "seconds", "detail"]


def read_status(out_dir: Path) -> dict[str, dict]:
    path = out_dir / STATUS_FILE
    if not path.is_file():
        return {}
    with open(path, newline="") as fh:
        return {row["variant"]: row for row in csv.DictReader(fh)}


def write_status(out_dir: Path, rows: dict[str, dict]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, STATUS_COLUMNS, lineterminator="\n")
    w.writeheader()
    for row in rows.values():
        w.writerow({k: row.get(k, "") for k in STATUS_COLUMNS})
    write_text_atomic(out_dir / STATUS_FILE, buf.getvalue())


def _describe_failure(returncode: int, stderr: str) -> tuple[str, str]:
    if returncode < 0 and -returncode == signal.SIGKILL or returncode == 137:
        return "out_of_memory", "killed by the system (most likely out of memory)"
    tail = [line for line in stderr.strip().splitlines() if line.strip()][-1:] or [f"exit code {returncode}"]
    if "ResourceExhausted" in stderr or "MemoryError" in stderr or "OOM" in stderr:
        return "out_of_memory", tail[0][:300]
    return "failed", tail[0][:300]


def run_grid(out_dir: str | Path, fit_argv: Callable[[str, int, int], list[str]], only: list[str] | None = None,
             log=print) -> dict[str, dict]:
    """Train each variant not yet done; returns the status table."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    variants = [parse_variant_id(v) for v in only] if only else grid_variants()
    status = read_status(out_dir)
    for arch, filters, depth in variants:
        vid = variant_id(arch, filters, depth)
        if (out_dir / f"{vid}.keras").is_file():
            log(f"{vid}: done already, skipped")
            status.setdefault(vid, {"variant": vid, "status": "done", "seconds": "", "detail": "found on disk"})
            continue
        # A variant the last grid left half-trained carries on from its training state.
        resume = ["--resume"] if state_path(out_dir, vid).is_file() else []
        log(f"{vid}: {'resuming' if resume else 'training'}")
        start = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "paip_trainer.cli", *fit_argv(arch, filters, depth), *resume],
                              stderr=subprocess.PIPE, text=True)
        seconds = f"{time.monotonic() - start:.0f}"
        if proc.returncode == 0 and (out_dir / f"{vid}.keras").is_file():
            status[vid] = {"variant": vid, "status": "done", "seconds": seconds, "detail": ""}
        else:
            kind, detail = _describe_failure(proc.returncode, proc.stderr)
            status[vid] = {"variant": vid, "status": kind, "seconds": seconds, "detail": detail}
            log(f"{vid}: {kind}: {detail}")
        write_status(out_dir, status)
    write_status(out_dir, status)
    return status
