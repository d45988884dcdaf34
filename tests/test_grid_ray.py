"""``paip-train grid --engine ray``: variants as Ray Tune trials on a local Ray, resumable, gathered in results.csv.

The Ray run needs the optional extra (``pip install "paipviewer[grid]"``) and is skipped without it; the
rest (resources, thread settings, the options the grid keeps from ``fit``, results.csv) runs everywhere.
"""
from __future__ import annotations

import csv
import os

import pytest

from paipviewer.core.modelfile import ModelCard, card_path, read_card
from paip_trainer import grid
from paip_trainer.cli import build_parser, main as cli
from paip_trainer.grid import default_trial_resources, run_grid, trial_env, write_results


def _rows(path):
    with open(path, newline="") as fh:
        return {row["variant"]: row for row in csv.DictReader(fh)}


def test_ray_grid_trains_trials_side_by_side_records_failures_and_resumes(paip_fixture, paip_prepared, tmp_path,
                                                                          capsys):
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.tune")
    _, cache = paip_prepared
    out = tmp_path / "grid"
    common = ["--data", str(paip_fixture), "--cache", str(cache), "--out", str(out), "--epochs", "1",
              "--steps-per-epoch", "1", "--batch", "2", "--no-xla", "--verbose", "0"]
    # Two tiny variants and one that cannot be built (depth 9): one CPU each, so two run at once on 2 cores.
    assert cli(["grid", *common, "--engine", "ray", "--cpus-per-trial", "1",
                "--only", "elunet_4_4", "unet_4_4", "unet_2_9"]) == 0
    printed = capsys.readouterr().out
    assert "1 CPU and 0 GPU each" in printed and "grid: 2 done, 1 not built: unet_2_9" in printed
    assert not ray.is_initialized()  # the Ray the grid started is shut down
    for vid, arch in (("elunet_4_4", "elunet"), ("unet_4_4", "unet")):
        card = read_card(out / f"{vid}.keras")
        assert (out / f"{vid}.onnx").is_file() and card.architecture == arch and card.training["epochs_run"] == 1
        assert card.training["host_cores"] == os.cpu_count()
    status = _rows(out / "grid_status.csv")
    assert {v: r["status"] for v, r in status.items()} == {"elunet_4_4": "done", "unet_4_4": "done",
                                                           "unet_2_9": "failed"}
    assert "depth" in status["unet_2_9"]["detail"]
    results = _rows(out / "results.csv")
    assert list(results) == ["elunet_4_4", "unet_2_9", "unet_4_4"]  # Table V's first, then the others
    for vid in ("elunet_4_4", "unet_4_4"):
        row, card = results[vid], read_card(out / f"{vid}.keras")
        assert row["status"] == "done" and int(row["params"]) == card.params and row["val_tiles"] == "16"
        assert float(row["val_dice"]) == pytest.approx(card.metrics["validation"]["dice_mean"], abs=1e-4)
    assert results["unet_2_9"]["status"] == "failed" and results["unet_2_9"]["params"] == ""

    # Run again: the finished variants are not trained again (Ray is not even started).
    mtimes = {p.name: p.stat().st_mtime_ns for p in out.glob("*.keras")}
    calls = []

    def argv(a, f, d):
        calls.append((a, f, d))
        return ["fit", *common, "--arch", a, "--filters", str(f), "--depth", str(d)]

    status = run_grid(out, argv, ["elunet_4_4", "unet_4_4"], log=lambda *_: None, engine="ray", cpus_per_trial=1)
    assert calls == [] and {status[v]["status"] for v in ("elunet_4_4", "unet_4_4")} == {"done"}
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.keras")} == mtimes
    assert set(_rows(out / "results.csv")) == {"elunet_4_4", "unet_4_4", "unet_2_9"}


def test_trial_resources_default_to_a_gpu_when_there_is_one():
    cpu_node, gpu_node = {"CPU": 16.0, "memory": 1e11}, {"CPU": 32.0, "GPU": 4.0}
    assert default_trial_resources([{"CPU": 2.0}], None, None) == (2.0, 0.0)  # one CPU trial at a time, all threads
    assert default_trial_resources([{"CPU": 2.0}], 1, None) == (1.0, 0.0)
    assert default_trial_resources([cpu_node, gpu_node], None, None) == (8.0, 1.0)  # a GPU each, its node's CPUs shared
    assert default_trial_resources([gpu_node], None, 0.5) == (4.0, 0.5)  # two trials share each GPU
    assert default_trial_resources([gpu_node], 3, 0) == (3.0, 0.0)  # asked for: kept


def test_trial_env_sets_threads_and_shares_a_gpu():
    env = trial_env({"KERAS_BACKEND": "jax"}, 1.5, 0)
    assert env["KERAS_BACKEND"] == "jax" and env["TF_NUM_INTRAOP_THREADS"] == env["OMP_NUM_THREADS"] == "2"
    assert "XLA_PYTHON_CLIENT_MEM_FRACTION" not in env
    shared = trial_env({}, 4, 0.25)
    assert shared["XLA_PYTHON_CLIENT_MEM_FRACTION"] == "0.23" and shared["TF_FORCE_GPU_ALLOW_GROWTH"] == "true"
    assert trial_env({"XLA_PYTHON_CLIENT_MEM_FRACTION": "0.1"}, 4, 0.25)["XLA_PYTHON_CLIENT_MEM_FRACTION"] == "0.1"


def test_grid_options_are_not_passed_to_fit(monkeypatch, tmp_path, paip_fixture, paip_prepared):
    _, cache = paip_prepared
    seen = {}

    def fake_run_grid(out, fit_argv, only, **engine):
        seen.update(argv=fit_argv("elunet", 4, 4), only=only, **engine)
        return {}

    monkeypatch.setattr(grid, "run_grid", fake_run_grid)
    monkeypatch.setattr(grid, "check_engine", lambda engine: None)
    assert cli(["grid", "--data", str(paip_fixture), "--cache", str(cache), "--out", str(tmp_path), "--engine=ray",
                "--address", "10.0.0.1:6379", "--cpus-per-trial", "2", "--gpus-per-trial", "0.5", "--only",
                "elunet_4_4", "--stain-augment"]) == 0
    assert seen["engine"] == "ray" and seen["address"] == "10.0.0.1:6379" and seen["only"] == ["elunet_4_4"]
    assert seen["cpus_per_trial"] == 2 and seen["gpus_per_trial"] == 0.5
    fit_args = build_parser().parse_args(seen["argv"])  # what each trial runs parses as a fit
    assert fit_args.command == "fit" and fit_args.stain_augment and fit_args.cache == cache
    assert not {"--engine", "--engine=ray", "--address", "--cpus-per-trial", "--gpus-per-trial", "--only"} & set(seen["argv"])


def test_engine_choices_are_checked_before_any_work(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(grid, "ray_available", lambda: False)
    assert cli(["grid", "--data", str(tmp_path / "none"), "--out", str(tmp_path), "--engine", "ray"]) == 2
    assert 'pip install "paipviewer[grid]"' in capsys.readouterr().err
    assert cli(["grid", "--data", str(tmp_path / "none"), "--out", str(tmp_path), "--address", "x:1"]) == 2
    assert "are for --engine ray" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        build_parser().parse_args(["grid", "--data", "d", "--engine", "dask"])
    with pytest.raises(ValueError, match="unknown engine"):
        run_grid(tmp_path, lambda *v: [], ["elunet_4_4"], engine="dask")


def test_results_csv_gathers_status_and_cards(tmp_path):
    (tmp_path / "elunet_8_5.keras").write_bytes(b"")  # only the card is read
    card = ModelCard(architecture="elunet", filters=8, depth=5, params=648201, threshold=0.35,
                     training={"epochs_run": 85, "best_epoch": 60, "seconds": 240.0, "backend": "jax",
                               "device": "NVIDIA H200"},
                     metrics={"validation": {"tiles": 96, "dice_mean": 0.79539, "jaccard_mean": 0.66351}})
    card_path(tmp_path / "elunet_8_5.keras").write_text(card.to_json())
    status = {"unet_128_6": {"variant": "unet_128_6", "status": "out_of_memory", "seconds": "12", "detail": "killed"},
              "elunet_8_5": {"variant": "elunet_8_5", "status": "done", "seconds": "250", "detail": ""}}
    rows = _rows(write_results(tmp_path, status))
    assert list(rows) == ["unet_128_6", "elunet_8_5"]  # Table V order: U-Nets first
    e = rows["elunet_8_5"]
    assert (e["params"], e["epochs_run"], e["best_epoch"], e["train_minutes"]) == ("648201", "85", "60", "4.0")
    assert (e["val_dice"], e["val_jaccard"], e["threshold"], e["device"]) == ("0.7954", "0.6635", "0.35", "NVIDIA H200")
    u = rows["unet_128_6"]
    assert (u["status"], u["architecture"], u["filters"], u["depth"], u["params"]) == ("out_of_memory", "unet", "128",
                                                                                      "6", "")


def test_ray_is_imported_only_for_the_ray_engine():
    import subprocess
    import sys

    code = ("import sys; import paip_trainer.cli, paip_trainer.grid; "
            "from paip_trainer.cli import build_parser; build_parser().parse_args(['grid', '--data', 'd']); "
            "assert 'ray' not in sys.modules, 'ray imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
