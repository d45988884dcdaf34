"""An interrupted fit resumes as if never stopped; its state and the prepared cache survive kills and full disks."""
from __future__ import annotations

import csv
import errno
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import paip_trainer.fit
from conftest import REPO
from helpers import tiny_settings
from paipviewer.core.modelfile import load_model
from paip_trainer.checkpoint import TrainingState, load_state, save_state, state_path
from paip_trainer.cli import main as cli
from paip_trainer.fit import fit, history_csv
from paip_trainer.prepare import PrepareSettings, load_prepared, prepare

# A rate so high that validation loss worsens after epoch 1: the plateau halves the rate after epochs 2 and 3
# and early stopping ends training after epoch 4 (of 5), keeping epoch 1's weights. Resuming right needs
# all of their counters back, and Adam's state.
SETTINGS = dict(learning_rate=3e-2, epochs=5, patience=3, lr_plateau=1)
FIT_ARGS = ["--arch", "elunet", "--filters", "4", "--depth", "4", "--lr", "3e-2", "--epochs", "5", "--patience", "3",
            "--lr-plateau", "1", "--steps-per-epoch", "2", "--batch", "4", "--no-xla", "--verbose", "0"]


def fit_argv(paip_fixture, cache, out, *extra) -> list[str]:
    return ["fit", "--data", str(paip_fixture), "--cache", str(cache), "--out", str(out), *FIT_ARGS, *extra]


def history(out) -> list[dict]:
    return list(csv.DictReader(io.StringIO((out / "elunet_4_4_history.csv").read_text())))


def state_epoch(path) -> int:
    try:
        return load_state(path).epoch
    except ValueError:  # not written yet
        return 0


def kill_after_epoch(argv: list[str], state, epoch: int) -> None:
    """Run ``paip-train`` and SIGKILL it once its training state has ``epoch`` epochs, wherever it then is."""
    proc = subprocess.Popen([sys.executable, "-m", "paip_trainer.cli", *argv], cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    try:
        deadline = time.monotonic() + 240
        while state_epoch(state) < epoch and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()


def killed_while_writing(path) -> Path:
    """The temporary an atomic write of ``path`` leaves when its process dies mid-write."""
    code = ("import os, sys; from paipviewer.core.atomic import atomic_path; "
            "tmp = atomic_path(sys.argv[1]).__enter__(); tmp.write_bytes(b'half of it'); print(tmp); os._exit(9)")
    out = subprocess.run([sys.executable, "-c", code, str(path)], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 9, out.stderr
    tmp = Path(out.stdout.strip())
    assert tmp.is_file() and tmp.parent == Path(path).parent
    return tmp


def test_fit_killed_after_an_epoch_resumes_as_if_uninterrupted(paip_fixture, paip_prepared, tmp_path, monkeypatch,
                                                                capsys):
    folder, cache = paip_prepared
    whole = fit(folder, tiny_settings(**SETTINGS), tmp_path / "whole", verbose=0)
    reference = load_model(whole, backend="keras")
    epochs_run = reference.card.training["epochs_run"]
    out = tmp_path / "killed"
    state = state_path(out, "elunet_4_4")
    kill_after_epoch(fit_argv(paip_fixture, cache, out), state, 2)
    killed = load_state(state)  # epoch 2's, or a later one if the kill came after its state was written
    k = killed.epoch
    assert 2 <= k <= epochs_run and not (out / "elunet_4_4.keras").exists()
    assert killed.optimizer[0] == 2 * k  # Adam's iteration count: 2 steps an epoch

    saved = []
    real_save = paip_trainer.fit.save_state
    monkeypatch.setattr(paip_trainer.fit, "save_state", lambda path, s: (saved.append(s), real_save(path, s)))
    assert cli(fit_argv(paip_fixture, cache, out, "--resume")) == 0, capsys.readouterr().err
    assert [(s.epoch, int(s.optimizer[0])) for s in saved] == [(e, 2 * e) for e in range(k + 1, epochs_run + 1)]

    resumed = load_model(out / "elunet_4_4.keras", backend="keras")
    card = resumed.card
    assert (epochs_run, reference.card.training["best_epoch"]) == (4, 1)
    assert (card.training["epochs_run"], card.training["best_epoch"]) == (epochs_run, 1)
    assert card.training["seconds"] >= killed.seconds
    rows, uninterrupted = history(out), history(tmp_path / "whole")
    assert [r["epoch"] for r in rows] == [r["epoch"] for r in uninterrupted] == ["1", "2", "3", "4"]
    assert rows[:k] == list(csv.DictReader(io.StringIO(history_csv(killed.rows))))  # the killed run's epochs, kept
    # The same batches, weights, Adam moments and learning-rate schedule: every epoch matches the uninterrupted run.
    assert [r["lr"] for r in rows] == [r["lr"] for r in uninterrupted] == ["0.03", "0.03", "0.015", "0.0075"]
    assert [float(r["val_loss"]) for r in rows] == pytest.approx([float(r["val_loss"]) for r in uninterrupted],
                                                                  rel=1e-3)
    for mine, theirs in zip(resumed.model.get_weights(), reference.model.get_weights()):
        np.testing.assert_allclose(mine, theirs, rtol=1e-3, atol=1e-5)  # the best epoch's weights
    assert not list(out.glob(".*"))  # the state is gone once the model is written


def test_fit_neither_ignores_nor_drops_an_interrupted_run(paip_fixture, tmp_path, capsys):
    out, cache = tmp_path / "out", tmp_path / "cache"
    state = state_path(out, "elunet_4_4")
    out.mkdir()
    state.write_bytes(b"an interrupted run's state")
    assert cli(fit_argv(paip_fixture, cache, out)) == 2
    err = capsys.readouterr().err
    assert err.startswith("paip-train fit: error: ") and "--resume" in err and "--restart" in err
    assert len(err.splitlines()) == 1 and state.read_bytes() == b"an interrupted run's state"
    assert not cache.exists()  # refused before preparing anything
    assert cli(fit_argv(paip_fixture, cache, tmp_path / "fresh", "--resume")) == 2
    assert "no interrupted run to resume" in capsys.readouterr().err
    assert cli(fit_argv(paip_fixture, cache, out, "--resume", "--restart")) == 2
    assert "not both" in capsys.readouterr().err


def test_a_damaged_state_is_refused_clearly_and_restart_starts_over(paip_fixture, paip_prepared, tmp_path, capsys):
    folder, cache = paip_prepared
    out = tmp_path / "out"
    state = state_path(out, "elunet_4_4")
    save_state(state, TrainingState("elunet_4_4", 1, False, 9.0, [], {}, None, [np.ones((3, 3, 3, 4))] * 40,
                                    [np.zeros(9)] * 40, None))
    state.write_bytes(state.read_bytes()[: state.stat().st_size // 2])  # as a disk that filled, before this fix
    # A killed run's temporaries beside the files fit writes are never replaced, so fit removes them.
    orphans = [killed_while_writing(state), killed_while_writing(out / "elunet_4_4.keras")]
    argv = [*fit_argv(paip_fixture, cache, out), "--epochs", "1"]
    assert cli([*argv, "--resume"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"paip-train fit: error: {state} is damaged") and "--restart" in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert cli([*argv, "--restart"]) == 0
    assert load_model(out / "elunet_4_4.keras").card.training["epochs_run"] == 1
    assert not state.exists() and not any(p.exists() for p in orphans)


def test_a_full_disk_keeps_the_previous_epochs_state(paip_fixture, paip_prepared, tmp_path, monkeypatch, capsys):
    import paip_trainer.checkpoint

    _, cache = paip_prepared
    out = tmp_path / "out"
    writes = []
    real_write = paip_trainer.checkpoint._write_npz

    def fill_the_disk(fh, arrays):
        writes.append(len(writes) + 1)
        if len(writes) == 2:  # epoch 2's state: half written when the disk fills
            fh.write(b"\0" * 1000)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_write(fh, arrays)

    monkeypatch.setattr(paip_trainer.checkpoint, "_write_npz", fill_the_disk)
    assert cli(fit_argv(paip_fixture, cache, out)) == 2
    err = capsys.readouterr().err
    assert err.startswith("paip-train fit: error: cannot write the training state") and len(err.splitlines()) == 1
    assert "No space left on device" in err and "previous epoch's state is kept" in err
    state = load_state(state_path(out, "elunet_4_4"))
    assert state.epoch == 1 and [r["epoch"] for r in state.rows] == [1]
    assert sorted(p.name for p in out.iterdir()) == [".elunet_4_4.state.npz"]  # no temporary, no model
    # Space freed, the run resumes; with --epochs 1 its state is complete, so it only writes the model.
    monkeypatch.undo()
    assert cli([*fit_argv(paip_fixture, cache, out, "--resume"), "--epochs", "1"]) == 0
    assert load_model(out / "elunet_4_4.keras").card.training["epochs_run"] == 1
    assert [r["epoch"] for r in history(out)] == ["1"]


def test_prepare_removes_a_killed_runs_temporary_and_prepares_right(paip_fixture, paip_prepared, tmp_path):
    reference, _ = paip_prepared
    folder = prepare(paip_fixture, PrepareSettings(), tmp_path, log=lambda *_: None)
    (folder / "split.json").unlink()  # as if killed while writing the tiles
    orphan = killed_while_writing(folder / "train_x.npy")
    assert prepare(paip_fixture, PrepareSettings(), tmp_path, log=lambda *_: None) == folder
    assert not orphan.exists() and (folder / "split.json").is_file()
    for part in ("train", "val"):
        for mine, theirs in zip(load_prepared(folder, part), load_prepared(reference, part)):
            np.testing.assert_array_equal(mine, theirs)
    orphan = killed_while_writing(folder / "val_y.npy")  # a run killed beside one that finished
    prepare(paip_fixture, PrepareSettings(), tmp_path, log=lambda *_: None)
    assert not orphan.exists()
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]


def test_prepare_killed_at_random_points_leaves_no_half_file_and_prepares_right(paip_fixture, paip_prepared,
                                                                                 tmp_path):
    """``paip-train prepare`` in a real process, SIGKILLed once its first temporary appears and then at
    seeded random moments over the span in which it writes the cache (measured first), then run again:
    whatever a kill left, no file under its final name is half-written, split.json (written last)
    stands only beside complete tiles, and the next run removes the temporaries and prepares exactly
    what an uninterrupted run does."""
    import json
    import random

    from paip_trainer.prepare import FILES

    reference, _ = paip_prepared
    argv = [sys.executable, "-m", "paip_trainer.cli", "prepare", "--data", str(paip_fixture), "--cache"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}

    def start(cache):
        proc = subprocess.Popen([*argv, str(cache)], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while not (cache.is_dir() and any(cache.iterdir())) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.0005)  # the cache's folder is made just before the tiles are cut and written
        return proc

    proc = start(tmp_path / "timing")
    t0 = time.monotonic()
    proc.wait()
    span = time.monotonic() - t0  # about 0.2 s here: cutting, then seven files written and fsync'd
    rng = random.Random(15)
    left = []
    for trial in range(8):
        cache = tmp_path / f"cache{trial}"
        proc = start(cache)
        try:
            if trial == 0:  # at the first temporary: a kill in the middle of writing train_x.npy
                while proc.poll() is None and not any(p.name.startswith(".") for p in next(cache.iterdir()).iterdir()):
                    time.sleep(0.0005)
            else:
                time.sleep(rng.uniform(0, span))
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        (folder,) = cache.iterdir()
        final = {p.name for p in folder.iterdir() if not p.name.startswith(".")}
        left.append((sorted(final), sorted(p.name for p in folder.iterdir() if p.name.startswith("."))))
        for name in final:  # each one whole
            if name.endswith(".npy"):
                array = np.load(folder / name)
                assert len(array) in (64, 16) and array.dtype == np.uint8
            else:
                json.loads((folder / name).read_text())
        assert "split.json" not in final or final == set(FILES)
        assert prepare(paip_fixture, PrepareSettings(), cache, log=lambda *_: None) == folder
        assert sorted(p.name for p in folder.iterdir()) == sorted(FILES)  # the temporaries are gone
        for part in ("train", "val"):
            for mine, theirs in zip(load_prepared(folder, part), load_prepared(reference, part)):
                np.testing.assert_array_equal(mine, theirs)
    print("\nwhat each kill left (final files, temporaries):", *left, sep="\n")
    assert any(temporaries for _, temporaries in left)  # some kill did land in the middle of a write


def test_a_full_disk_while_writing_the_model_keeps_the_training(paip_fixture, paip_prepared, tmp_path, monkeypatch,
                                                                capsys):
    """The disk fills as the trained model is written (the largest file fit writes): one line names it,
    no half model is left, and the training state stays, so --resume writes the model without training again."""
    from helpers import full_disk_after

    _, cache = paip_prepared
    out = tmp_path / "out"
    argv = [*fit_argv(paip_fixture, cache, out), "--epochs", "1"]
    tried = full_disk_after(2, monkeypatch)  # the epoch's state, then the model's files
    assert cli(argv) == 2
    # The model's three files are staged before any is put in place; the first whole write to fail is
    # the ONNX export (the .keras goes to its temporary directly), and the error names the file, not a temporary.
    assert capsys.readouterr().err == f"paip-train fit: error: {out / 'elunet_4_4.onnx'}: No space left on device\n"
    assert [p.name for p in tried[:4]] == [".elunet_4_4.state.npz", "elunet_4_4.json", "elunet_4_4.onnx",
                                           "elunet_4_4.keras"]
    assert sorted(p.name for p in out.iterdir()) == [".elunet_4_4.state.npz"] and load_state(tried[0]).epoch == 1
    monkeypatch.undo()
    saved = []
    monkeypatch.setattr(paip_trainer.fit, "save_state", lambda path, s: saved.append(s))
    assert cli([*argv, "--resume"]) == 0
    assert saved == [] and load_model(out / "elunet_4_4.keras").card.training["epochs_run"] == 1
    assert sorted(p.name for p in out.iterdir()) == ["elunet_4_4.json", "elunet_4_4.keras", "elunet_4_4.onnx",
                                                     "elunet_4_4_history.csv"]
