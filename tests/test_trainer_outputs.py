"""paip-train checks its arguments and output folders before any work, and reports errors in one line."""
from __future__ import annotations

import csv
import errno
import os

import numpy as np
import pytest

import paip_trainer.evaluate
from paip_trainer.cli import main as cli

FIT = ["--arch", "elunet", "--filters", "4", "--depth", "4", "--epochs", "1", "--steps-per-epoch", "1",
       "--batch", "2", "--no-xla", "--verbose", "0"]


def one_error_line(capsys, command: str) -> str:
    err = capsys.readouterr().err
    assert err.startswith(f"paip-train {command}: error: ") and len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    return err


@pytest.fixture
def no_work(monkeypatch):
    """Fail the test if a command gets as far as preparing tiles, loading a model or timing an import."""
    def refuse(*_, **__):
        raise AssertionError("work began before the output checks")

    import paip_trainer.calibrate
    import paip_trainer.prepare
    monkeypatch.setattr(paip_trainer.prepare, "split_samples", refuse)
    monkeypatch.setattr(paip_trainer.evaluate, "tf_import_seconds", refuse)
    monkeypatch.setattr(paip_trainer.evaluate, "evaluate_model", refuse)
    monkeypatch.setattr(paip_trainer.calibrate, "load_model", refuse)


@pytest.mark.parametrize("how", ["under a file", "read-only"])
@pytest.mark.parametrize("command, option", [("prepare", "--cache"), ("fit", "--out"), ("fit", "--cache"),
                                             ("evaluate", "--out"), ("calibrate", "--out")])
def test_an_unwritable_folder_is_refused_before_any_work(command, option, how, paip_fixture, tmp_path, capsys, no_work,
                                                         monkeypatch):
    from helpers import make_read_only

    if how == "under a file":  # a folder under a regular file can never be made (ENOTDIR), even by root
        afile = tmp_path / "afile"
        afile.write_text("a file, not a folder")
        bad, reason = afile / "out", "Not a directory"
    else:  # an existing folder nothing can be written in (root, whom chmod does not stop, is stopped for the test)
        bad, reason = make_read_only(tmp_path / "read_only", monkeypatch), "Permission denied"
    paths = {"--cache": tmp_path / "cache", "--out": tmp_path / "out", option: bad}
    argv = [command, "--data", str(paip_fixture), "--cache", str(paths["--cache"])]
    if command == "fit":
        argv += ["--out", str(paths["--out"]), *FIT]
    elif command == "evaluate":
        argv += ["--out", str(paths["--out"]), "--models", str(tmp_path / "never_loaded.keras")]
    elif command == "calibrate":
        argv += ["--out", str(paths["--out"] / "calibrated.keras"), "--model", str(tmp_path / "never_loaded.keras")]
    assert cli(argv) == 2
    err = one_error_line(capsys, command)
    assert f"{option} {bad}" in err and f"cannot write there ({reason})" in err  # --cache: a folder in it


def test_a_file_given_as_a_folder_is_named_as_such(paip_fixture, tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("a file, not a folder")
    assert cli(["fit", "--data", str(paip_fixture), "--out", str(afile), *FIT]) == 2
    assert f"--out {afile} is a file, not a folder" in one_error_line(capsys, "fit")


def test_os_errors_during_the_work_reach_the_user_in_one_line(paip_fixture, tmp_path, capsys, monkeypatch):
    def full_disk(fh, array, *_, **__):
        fh.write(b"\x93NUMPY")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), fh.name)

    monkeypatch.setattr(np, "save", full_disk)
    assert cli(["prepare", "--data", str(paip_fixture), "--cache", str(tmp_path)]) == 2
    err = one_error_line(capsys, "prepare")
    assert ".train_x." in err and err.rstrip().endswith(": No space left on device")
    (folder,) = tmp_path.iterdir()
    assert list(folder.iterdir()) == []  # the half-written temporary is gone, and nothing else was written


@pytest.mark.parametrize("argv, message", [
    (["--batch", "0"], "argument --batch: must be an integer >= 1, got '0'"),
    (["--epochs", "0"], "argument --epochs: must be an integer >= 1"),
    (["--steps-per-epoch", "0"], "argument --steps-per-epoch: must be an integer >= 1"),
    (["--patience", "-1"], "argument --patience: must be an integer >= 0"),
    (["--lr-plateau", "0"], "argument --lr-plateau: must be an integer >= 1"),
    (["--lr", "0"], "argument --lr: must be a number > 0"),
    (["--lr", "nan"], "argument --lr: must be a number > 0"),
    (["--lr", "fast"], "argument --lr: must be a number > 0, got 'fast'"),
    (["--max-minutes", "-5"], "argument --max-minutes: must be a number > 0"),
    (["--val-fraction", "-1"], "argument --val-fraction: must be a number from 0 up to, not including, 1"),
    (["--val-fraction", "1"], "argument --val-fraction: must be a number from 0 up to, not including, 1"),
    (["--mpp", "-0.25"], "argument --mpp: must be 'any' or a number > 0"),
    (["--seed", "-1"], "argument --seed: must be an integer >= 0"),
    (["--filters", "0"], "argument --filters: must be an integer >= 1"),
    (["--depth", "9"], "argument --depth: must be an integer from 2 to 8, got '9'"),
    (["--depth", "1"], "argument --depth: must be an integer from 2 to 8"),
])
def test_numeric_arguments_are_checked(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        cli(["fit", "--data", "x", *FIT, *argv])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("option", ["--runs", "--tiles"])
def test_evaluate_counts_are_checked(option, capsys):
    with pytest.raises(SystemExit) as exc:
        cli(["evaluate", "--data", "x", "--models", "m.keras", "--out", "o", option, "0"])
    assert exc.value.code == 2 and f"argument {option}: must be an integer >= 1" in capsys.readouterr().err


def test_evaluate_refuses_earlier_results_before_any_work(paip_fixture, tmp_path, capsys, no_work):
    out = tmp_path / "eval"
    out.mkdir()
    (out / "results.csv").write_text("model\nearlier.keras\n")
    broken = tmp_path / "broken.keras"
    broken.write_bytes(os.urandom(2000))
    argv = ["evaluate", "--data", str(paip_fixture), "--models", str(broken), "--out", str(out)]
    assert cli(argv) == 2
    err = one_error_line(capsys, "evaluate")
    assert f"{out / 'results.csv'} already exists; pass --overwrite" in err
    assert (out / "results.csv").read_text() == "model\nearlier.keras\n"


def test_evaluate_scores_the_good_models_and_names_the_broken_ones(paip_fixture, paip_prepared, tiny_model_file,
                                                                   tmp_path, capsys):
    _, cache = paip_prepared
    out = tmp_path / "eval"
    out.mkdir()
    (out / "results.csv").write_text("model\nearlier.keras\n")
    broken = tmp_path / "broken.keras"
    broken.write_bytes(os.urandom(2000))
    text = tmp_path / "notes.keras"
    text.write_text("a text file, not a model")
    assert cli(["evaluate", "--data", str(paip_fixture), "--cache", str(cache), "--models", str(broken),
                str(tiny_model_file), str(text), "--out", str(out), "--runs", "1", "--tiles", "3",
                "--overwrite"]) == 1
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert [r["model"] for r in rows] == [tiny_model_file.name]
    assert "ELU-Net 4/4" in (out / "report.md").read_text() and (out / "tradeoff.png").is_file()
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("paip-train")]
    assert errors == [
        "paip-train evaluate: error: not scored: broken.keras: not a Keras model file "
        "(the file is damaged or of another kind)",
        "paip-train evaluate: error: not scored: notes.keras: not a Keras model file "
        "(the file is damaged or of another kind)"]


@pytest.fixture(scope="module")
def evaluated_once(paip_fixture, tiny_model_file):
    """One real evaluation of the tiny model on the PAIP fixture's test images: its results row and image rows."""
    from paip_trainer.evaluate import evaluate_model, images_to_score
    from paip_trainer.prepare import PrepareSettings

    images = images_to_score(paip_fixture, PrepareSettings(), "test", log=lambda *_: None)
    return evaluate_model(tiny_model_file, images, 3, 42, 1, log=lambda *_: None)


@pytest.mark.parametrize("fail_at", [1, 2, 3, 4])
def test_a_full_disk_during_evaluate_leaves_every_file_whole(fail_at, paip_fixture, tiny_model_file, evaluated_once,
                                                             tmp_path, capsys, monkeypatch):
    """evaluate writes results.csv, images.csv, the plot and report.md over an earlier evaluation
    (--overwrite); the disk fills at each in turn. One line names the file (exit 2); the files written
    before it are whole and new, the rest still the earlier ones, and no temporary is left."""
    import cv2

    import paip_trainer.report  # noqa: F401 (imported before the disk fills, so its writes fill it too)
    from helpers import full_disk_after
    from paip_trainer.evaluate import IMAGES, RESULTS
    from paip_trainer.report import PLOT, REPORT

    out = tmp_path / "eval"
    out.mkdir()
    earlier = {name: f"an earlier evaluation's {name}\n".encode() for name in (RESULTS, IMAGES, PLOT, REPORT)}
    for name, data in earlier.items():
        (out / name).write_bytes(data)
    row, image_rows = evaluated_once
    monkeypatch.setattr(paip_trainer.evaluate, "evaluate_model", lambda *_, **__: (dict(row), list(image_rows)))
    monkeypatch.setattr(paip_trainer.evaluate, "tf_import_seconds", lambda: 0.0)
    tried = full_disk_after(fail_at, monkeypatch)
    assert cli(["evaluate", "--data", str(paip_fixture), "--models", str(tiny_model_file), "--out", str(out),
                "--overwrite"]) == 2
    assert one_error_line(capsys, "evaluate") == f"paip-train evaluate: error: {tried[-1]}: No space left on device\n"
    assert len(tried) == fail_at and sorted(p.name for p in out.iterdir()) == sorted(earlier)
    for name, data in earlier.items():
        path = out / name
        if path in tried[:-1]:  # written in full before the disk filled
            assert path.read_bytes() != data
            if name == PLOT:
                assert cv2.imread(str(path)) is not None
            elif name.endswith(".csv"):
                assert list(csv.DictReader(open(path)))[0]["model"] == tiny_model_file.name
            else:
                assert path.read_text().endswith("\n") and "ELU-Net 4/4" in path.read_text()
        else:
            assert path.read_bytes() == data
