"""``paip-train grid``: train many variants, one subprocess each, resumable, on this machine or on Ray.

Each variant runs ``paip-train fit`` in its own process, so a variant that exhausts memory (the
kernel's OOM killer ends the process, not a Python exception) is recorded and the grid goes on,
like the study's empty rows. A variant whose model file exists is skipped, and one a stopped grid
left half-trained is resumed from its training state, so a stopped grid resumes where it was.
``grid_status.csv`` in the output folder records every variant's outcome, and ``results.csv`` gathers
each variant's outcome with what its model card says (parameters, epochs, validation Dice and Jaccard).

Two engines run the variants:

- ``local`` (the default): one after another on this machine.
- ``ray``: each variant is a Ray Tune trial, on a local Ray started for the grid or on an existing
  cluster (``address``), with ``cpus_per_trial`` and ``gpus_per_trial`` reserved for it, so trials run
  side by side as far as the resources go. A trial runs the very same ``paip-train fit`` subprocess as
  the local engine, with its thread count set to its CPUs. The driver writes the status as each trial
  reports, so an interrupted Ray grid resumes like a local one. Ray is imported only here
  (``pip install "paipviewer[grid]"``). On a cluster, ``--data``, ``--cache`` and ``--out`` must be
  paths every node sees (a shared file system).
"""
from __future__ import annotations

import csv
import io
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from paipviewer.core.atomic import write_text_atomic

from .checkpoint import state_path
from .variants import ARCHITECTURES, grid_variants, parse_variant_id, variant_id

STATUS_FILE = "grid_status.csv"
STATUS_COLUMNS = ["variant", "status", "seconds", "detail"]
RESULTS_FILE = "results.csv"
RESULTS_COLUMNS = ["variant", "architecture", "filters", "depth", "status", "seconds", "detail", "params",
                   "epochs_run", "best_epoch", "train_minutes", "threshold", "val_tiles", "val_dice",
                   "val_jaccard", "val_dice_pooled", "val_jaccard_pooled", "backend", "device", "model"]
ENGINES = ("local", "ray")
# Passed to the trials of a Ray cluster the driver did not start (a local Ray's workers inherit them).
_FORWARDED_ENV = ("KERAS_BACKEND", "TF_CPP_MIN_LOG_LEVEL", "XLA_PYTHON_CLIENT_MEM_FRACTION",
                  "XLA_PYTHON_CLIENT_PREALLOCATE", "TF_FORCE_GPU_ALLOW_GROWTH", "PAIP_SHARED_DATA")


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


def run_variant(out_dir: Path, vid: str, argv: list[str], env: dict[str, str] | None = None,
                cwd: str | None = None) -> dict:
    """Train one variant with ``paip-train fit ARGV`` in a subprocess; returns its status row.

    Both engines train through here. A variant left half-trained carries on from its training state.
    """
    resume = ["--resume"] if state_path(out_dir, vid).is_file() else []
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "paip_trainer.cli", *argv, *resume], stderr=subprocess.PIPE,
                          text=True, env=env, cwd=cwd)
    seconds = f"{time.monotonic() - start:.0f}"
    if proc.returncode == 0 and (out_dir / f"{vid}.keras").is_file():
        return {"variant": vid, "status": "done", "seconds": seconds, "detail": "resumed" if resume else ""}
    kind, detail = _describe_failure(proc.returncode, proc.stderr)
    return {"variant": vid, "status": kind, "seconds": seconds, "detail": detail}


def _to_train(out_dir: Path, only: list[str] | None, status: dict[str, dict], log) -> list[tuple[str, int, int]]:
    """The variants asked for whose model file is not there yet; the others are marked done."""
    variants = [parse_variant_id(v) for v in only] if only else grid_variants()
    todo = []
    for arch, filters, depth in variants:
        vid = variant_id(arch, filters, depth)
        if (out_dir / f"{vid}.keras").is_file():
            log(f"{vid}: done already, skipped")
            status.setdefault(vid, {"variant": vid, "status": "done", "seconds": "", "detail": "found on disk"})
        else:
            todo.append((arch, filters, depth))
    return todo


def run_grid(out_dir: str | Path, fit_argv: Callable[[str, int, int], list[str]], only: list[str] | None = None,
             log=print, engine: str = "local", address: str | None = None, cpus_per_trial: float | None = None,
             gpus_per_trial: float | None = None) -> dict[str, dict]:
    """Train each variant not yet done with ``engine``; returns the status table. Writes ``grid_status.csv``
    as each variant ends and ``results.csv`` at the end."""
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    out_dir = Path(out_dir).absolute()
    out_dir.mkdir(parents=True, exist_ok=True)
    status = read_status(out_dir)
    todo = _to_train(out_dir, only, status, log)
    if todo and engine == "ray":
        _run_on_ray(out_dir, todo, fit_argv, status, log, address, cpus_per_trial, gpus_per_trial)
    for arch, filters, depth in todo if engine == "local" else ():
        vid = variant_id(arch, filters, depth)
        log(f"{vid}: {'resuming' if state_path(out_dir, vid).is_file() else 'training'}")
        status[vid] = row = run_variant(out_dir, vid, fit_argv(arch, filters, depth))
        if row["status"] != "done":
            log(f"{vid}: {row['status']}: {row['detail']}")
        write_status(out_dir, status)
    write_status(out_dir, status)
    write_results(out_dir, status)
    return status


# --- results.csv ----------------------------------------------------------------------------------------------

def result_row(out_dir: Path, status_row: dict) -> dict:
    """One row of ``results.csv``: the variant's grid outcome and, when it was built, its card's figures."""
    vid = status_row["variant"]
    row = {k: status_row.get(k, "") for k in ("variant", "status", "seconds", "detail")}
    try:
        row.update(zip(("architecture", "filters", "depth"), parse_variant_id(vid)))
    except ValueError:
        pass
    model = out_dir / f"{vid}.keras"
    if status_row.get("status") != "done" or not model.is_file():
        return row
    from paipviewer.core.modelfile import ModelFileError, read_card

    try:
        card = read_card(model)
    except ModelFileError as exc:
        return {**row, "detail": f"{row['detail']} (card unreadable: {exc})".strip()}
    training, val = card.training, card.metrics.get("validation") or {}
    seconds = training.get("seconds")
    row.update(params=card.params, epochs_run=training.get("epochs_run", ""), best_epoch=training.get("best_epoch", ""),
               train_minutes=f"{seconds / 60:.1f}" if isinstance(seconds, (int, float)) else "",
               threshold=card.threshold, val_tiles=val.get("tiles", ""), backend=training.get("backend", ""),
               device=training.get("device", ""), model=model.name)
    for key, name in (("dice_mean", "val_dice"), ("jaccard_mean", "val_jaccard"), ("dice_pooled", "val_dice_pooled"),
                      ("jaccard_pooled", "val_jaccard_pooled")):
        row[name] = f"{val[key]:.4f}" if isinstance(val.get(key), (int, float)) else ""
    return row


def write_results(out_dir: Path, status: dict[str, dict]) -> Path:
    """``results.csv``: a row per variant of the grid (all runs so far), in the study's Table V order, then
    any others by architecture, filters and depth."""
    order = {variant_id(*v): i for i, v in enumerate(grid_variants())}

    def key(vid: str):
        try:
            arch, filters, depth = parse_variant_id(vid)
            return order.get(vid, len(order)), ARCHITECTURES.index(arch), filters, depth, vid
        except ValueError:
            return len(order), len(ARCHITECTURES), 0, 0, vid

    buf = io.StringIO()
    w = csv.DictWriter(buf, RESULTS_COLUMNS, lineterminator="\n")
    w.writeheader()
    for vid in sorted(status, key=key):
        w.writerow({k: result_row(out_dir, status[vid]).get(k, "") for k in RESULTS_COLUMNS})
    path = out_dir / RESULTS_FILE
    write_text_atomic(path, buf.getvalue())
    return path


# --- the Ray engine -------------------------------------------------------------------------------------------

def ray_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("ray") is not None and importlib.util.find_spec("ray.tune") is not None


def check_engine(engine: str) -> None:
    """Refuse ``--engine ray`` without Ray before any work is done, with what to install."""
    if engine == "ray" and not ray_available():
        raise ValueError('--engine ray needs Ray Tune: pip install "paipviewer[grid]" (or "ray[tune]")')


def default_trial_resources(nodes: list[dict], cpus_per_trial: float | None,
                            gpus_per_trial: float | None) -> tuple[float, float]:
    """(CPUs, GPUs) for each trial from the cluster's nodes' resources (``ray.nodes()[i]["Resources"]``).

    GPUs: 1 if any node has one, else 0. CPUs: with GPUs, the CPUs of the node with the most GPUs shared
    out among its trials (at least 1); without, all the CPUs of the largest node, so CPU trials run
    one at a time with every thread, as the local engine does (two CPU trainings side by side each
    run at about half speed and take twice the memory).
    """
    gpu_nodes = [n for n in nodes if n.get("GPU", 0) > 0]
    if gpus_per_trial is None:
        gpus_per_trial = 1.0 if gpu_nodes else 0.0
    if cpus_per_trial is None:
        if gpus_per_trial > 0 and gpu_nodes:
            node = max(gpu_nodes, key=lambda n: n["GPU"])
            trials = max(1, math.floor(node["GPU"] / gpus_per_trial))
            cpus_per_trial = float(max(1, math.floor(node.get("CPU", 1) / trials)))
        else:
            cpus_per_trial = float(max((n.get("CPU", 1) for n in nodes), default=1))
    return float(cpus_per_trial), float(gpus_per_trial)


def trial_env(base: dict[str, str], cpus: float, gpus: float) -> dict[str, str]:
    """The environment of a trial's ``fit``: its thread pools sized to its CPUs; with a fraction of a GPU,
    JAX and TensorFlow told not to take the whole card."""
    env = dict(base)
    threads = str(max(1, math.ceil(cpus)))
    for name in ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
        env[name] = threads
    if 0 < gpus < 1:
        env.setdefault("XLA_PYTHON_CLIENT_MEM_FRACTION", f"{0.9 * gpus:.2f}")
        env.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
    return env


def _ray_trial(config: dict) -> None:
    """A Ray Tune trial: one variant's ``paip-train fit`` subprocess, reported back as its status row."""
    from ray import tune

    out_dir = Path(config["out"])
    cwd = config["cwd"] if Path(config["cwd"]).is_dir() else None  # relative paths mean the driver's folder
    row = run_variant(out_dir, config["variant"], config["argv_by_variant"][config["variant"]],
                      env=trial_env(dict(os.environ), config["cpus"], config["gpus"]), cwd=cwd)
    tune.report(row)


def _run_on_ray(out_dir: Path, todo: list[tuple[str, int, int]], fit_argv, status: dict[str, dict], log,
                address: str | None, cpus_per_trial: float | None, gpus_per_trial: float | None) -> None:
    check_engine("ray")
    import ray
    from ray import tune

    started = not ray.is_initialized()
    if started:
        if address:
            env = {k: os.environ[k] for k in _FORWARDED_ENV if k in os.environ}
            ray.init(address=address, runtime_env={"env_vars": env} if env else None, log_to_driver=True)
        else:
            ray.init(include_dashboard=False)
    try:
        nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
        cpus, gpus = default_trial_resources(nodes, cpus_per_trial, gpus_per_trial)
        log(f"grid on Ray ({'cluster ' + address if address else 'local'}): {len(todo)} trials, "
            f"{cpus:g} CPU and {gpus:g} GPU each")
        argv = {variant_id(*v): fit_argv(*v) for v in todo}
        for vid in argv:
            log(f"{vid}: {'resuming' if state_path(out_dir, vid).is_file() else 'training'} (Ray trial)")

        class StatusKeeper(tune.Callback):
            """On the driver: the status file is written as each trial ends, so an interrupted grid resumes."""

            def on_trial_result(self, iteration, trials, trial, result, **info):
                row = {k: str(result.get(k, "")) for k in STATUS_COLUMNS}
                status[row["variant"]] = row
                if row["status"] != "done":
                    log(f"{row['variant']}: {row['status']}: {row['detail']}")
                write_status(out_dir, status)

            def on_trial_error(self, iteration, trials, trial, **info):
                vid = trial.config["variant"]
                detail = " ".join(str(trial.get_error() or "the Ray trial failed").split())[-300:]
                status[vid] = {"variant": vid, "status": "failed", "seconds": "", "detail": detail}
                log(f"{vid}: failed: {detail}")
                write_status(out_dir, status)

        trainable = tune.with_resources(_ray_trial, {"cpu": cpus, "gpu": gpus})
        tuner = tune.Tuner(
            trainable,
            param_space={"variant": tune.grid_search(list(argv)), "argv_by_variant": argv, "out": str(out_dir),
                         "cwd": os.getcwd(), "cpus": cpus, "gpus": gpus},
            tune_config=tune.TuneConfig(trial_name_creator=lambda t: t.config["variant"],
                                        trial_dirname_creator=lambda t: t.config["variant"]),
            run_config=tune.RunConfig(name=time.strftime("grid_%Y%m%d-%H%M%S"),
                                      storage_path=str(out_dir / "ray_results"), verbose=0,
                                      failure_config=tune.FailureConfig(max_failures=0, fail_fast=False),
                                      callbacks=[StatusKeeper()]))
        tuner.fit()
        unfinished = [vid for vid in argv if vid not in status]
        if unfinished:  # Tune stopped them (Ctrl+C): their training states are kept for the next run
            log(f"not finished: {', '.join(unfinished)}; run the same grid command again to carry on")
    finally:
        if started:
            ray.shutdown()
