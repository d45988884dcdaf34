"""The trainer end to end on a few real images: split hygiene, caching, a tiny fit, evaluate (resume: test_trainer_resume)."""
from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest

from helpers import tiny_settings
from paipviewer.core.modelfile import load_model, training_totals
from paip_trainer.cli import main as cli
from paip_trainer.fit import FitSettings, fit
from paip_trainer.grid import run_grid
from paip_trainer.prepare import PrepareSettings, load_prepared, prepare, read_manifest, select_samples, split_samples


def test_paip_selection_follows_the_study(paip_fixture):
    names = sorted(s.name for s in select_samples(paip_fixture, PrepareSettings()))
    assert names == ["tr_p001", "tr_p002", "tr_p003"]  # no colon, no 0.5 mpp
    all_names = sorted(s.name for s in select_samples(paip_fixture, PrepareSettings(organs=(), mpp=None)))
    assert len(all_names) == 5


def test_monuseg_split_is_by_image_and_keeps_the_official_test(monuseg):
    settings = PrepareSettings()
    split = split_samples(select_samples(monuseg, settings), settings)
    train, val, test = ({s.name for s in part} for part in (split.train, split.val, split.test))
    assert len(test) == 14 and len(val) == 6 and len(train) == 24
    assert not (train & val) and not (train & test) and not (val & test)
    assert split.names() == split_samples(select_samples(monuseg, settings), settings).names()  # seeded
    other = PrepareSettings(seed=7)
    assert split_samples(select_samples(monuseg, other), other).names()["val"] != split.names()["val"]


def test_no_test_tile_reaches_training(paip_prepared):
    folder, _ = paip_prepared
    manifest = read_manifest(folder)
    split = manifest["split"]
    assert len(split["test"]) == 1 and len(split["val"]) == 1 and len(split["train"]) == 1
    for part in ("train", "val"):
        tile_names = json.loads((folder / f"{part}_tiles.json").read_text())
        sources = {n.split("#")[0] for n in tile_names}
        assert sources == set(split[part])
        assert not sources & set(split["test"])
    x, y = load_prepared(folder, "train")
    assert x.shape == (64, 256, 256, 3) and y.shape == (64, 256, 256)  # 1 image x 4 flips x 16 tiles
    assert x.dtype == np.uint8 and set(np.unique(y)) == {0, 1}
    xv, _ = load_prepared(folder, "val")
    assert len(xv) == 16  # validation is not flipped
    # The flips are the study's: tiles 16..31 are the vertically flipped image (1024x1024, 4x4 tiles).
    for r in range(4):
        for c in range(4):
            np.testing.assert_array_equal(x[16 + 4 * r + c], x[4 * (3 - r) + c][::-1])


def test_prepare_is_cached(paip_fixture, paip_prepared):
    folder, cache = paip_prepared
    stamp = (folder / "train_x.npy").stat().st_mtime_ns
    again = prepare(paip_fixture, PrepareSettings(), cache, log=lambda *_: None)
    assert again == folder and (folder / "train_x.npy").stat().st_mtime_ns == stamp
    other = prepare(paip_fixture, PrepareSettings(equalize="none"), cache, log=lambda *_: None)
    assert other != folder


def test_tiny_fit_writes_model_card_and_history(paip_prepared, tmp_path):
    folder, _ = paip_prepared
    path = fit(folder, tiny_settings(), tmp_path, verbose=0)
    loaded = load_model(path, backend="onnx")
    card = loaded.card
    # the .onnx beside it computes what the .keras computes
    keras_ = load_model(path, backend="keras")
    assert card.files == ["elunet_4_4.keras", "elunet_4_4.onnx"]
    from paip_trainer.prepare import load_prepared
    xv, _ = load_prepared(folder, "val")
    from paip_trainer.fit import predict_uint8_tiles
    a, b = predict_uint8_tiles(loaded.model, xv[:16]), predict_uint8_tiles(keras_.model, xv[:16])
    assert np.abs(a - b).max() <= 1e-4 and np.array_equal(a >= card.threshold, b >= card.threshold)
    assert card.label == "ELU-Net 4/4" and card.params == 40377 and card.equalize == "rgb"
    assert card.training["epochs_run"] == 2 and card.training["train_tiles"] == 64
    assert card.training["split"] == {"train": 1, "val": 1, "test": 1}
    assert (card.training["backend"], card.training["device"]) == ("tensorflow", "cpu")  # the tests' machine
    assert 0.0 <= card.metrics["validation"]["jaccard_mean"] <= 1.0 and card.threshold == 0.5
    rows = list(csv.DictReader(open(tmp_path / "elunet_4_4_history.csv")))
    assert [r["epoch"] for r in rows] == ["1", "2"] and "val_loss" in rows[0]
    assert [float(r["lr"]) for r in rows] == pytest.approx([1e-3, 1e-3])
    seconds = [float(r["seconds"]) for r in rows]
    assert 0 < seconds[0] < seconds[1] <= card.training["seconds"]  # time since training began
    assert not list(tmp_path.glob(".*"))  # no checkpoint or temporary file left behind
    with pytest.raises(FileExistsError):
        fit(folder, tiny_settings(), tmp_path, verbose=0)



def test_a_final_fit_trains_on_every_training_image_with_a_given_threshold(paip_fixture, paip_prepared, tmp_path):
    """--val-fraction 0: the held-out image joins training; the card keeps the threshold it is given, and
    the learning rate follows the schedule it is given (no validation loss to halve it on)."""
    _, cache = paip_prepared
    folder = prepare(paip_fixture, PrepareSettings(val_fraction=0), cache, log=lambda *_: None)
    split = read_manifest(folder)["split"]
    assert len(split["val"]) == 0 and len(split["train"]) == 2 and len(split["test"]) == 1
    assert len(load_prepared(folder, "train")[0]) == 128 and len(load_prepared(folder, "val")[0]) == 0
    settings = tiny_settings(threshold=0.4, lr_steps=((2, 5e-4),))
    card = load_model(fit(folder, settings, tmp_path, verbose=0), backend="onnx").card
    assert card.threshold == 0.4 and card.metrics["validation"] == {}
    assert card.training["monitor"] == "loss" and card.training["val_tiles"] == 0
    rows = list(csv.DictReader((tmp_path / "elunet_4_4_history.csv").open()))
    assert len(rows) == 2 and "val_loss" not in rows[0]
    assert [float(r["lr"]) for r in rows] == pytest.approx([1e-3, 5e-4])
    assert card.training["lr_steps"] == [[2, 5e-4]]
    with pytest.raises(ValueError, match="give one of them"):
        fit(folder, tiny_settings(lr_steps=((2, 5e-4),), lr_plateau=4), tmp_path / "both", verbose=0)
    with pytest.raises(ValueError, match="give one of them"):
        fit(folder, tiny_settings(threshold=0.4, tune_threshold=True), tmp_path / "both", verbose=0)
    with pytest.raises(SystemExit) as exc:
        cli(["fit", "--data", str(paip_fixture), "--arch", "elunet", "--filters", "4", "--depth", "4",
             "--threshold", "1.5", "--out", str(tmp_path / "cli")])
    assert exc.value.code == 2 and not (tmp_path / "cli").exists()
    from paip_trainer.cli import build_parser
    fit_args = ["fit", "--data", "d", "--arch", "elunet", "--filters", "4", "--depth", "4"]
    assert build_parser().parse_args([*fit_args, "--lr-steps", "50:5e-4,58:2.5e-4"]).lr_steps == ((50, 5e-4), (58, 2.5e-4))
    for bad in ("50", "0:1e-3", "50:-1", "a:b"):
        with pytest.raises(SystemExit):
            build_parser().parse_args([*fit_args, "--lr-steps", bad])

def test_lr_plateau_halves_the_learning_rate_when_validation_stalls():
    import keras
    from paip_trainer.fit import plateau_callback
    from paip_trainer.models import build_model

    model = build_model("elunet", 4, 4)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy")
    callback = plateau_callback(tiny_settings(learning_rate=1e-3, lr_plateau=2), "val_loss")
    callback.set_model(model)
    callback.on_train_begin()
    rates = []
    for epoch, val_loss in enumerate([1.0, 0.9, 0.9, 0.9, 0.8, 0.8, 0.8] + [0.8] * 10):
        callback.on_epoch_end(epoch, {"val_loss": val_loss})
        rates.append(float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)))
    assert rates[:7] == pytest.approx([1e-3, 1e-3, 1e-3, 5e-4, 5e-4, 5e-4, 2.5e-4])
    assert rates[-1] == pytest.approx(1e-3 / 16)  # never below the floor


def test_grid_resumes_and_records_failures(paip_fixture, tmp_path, paip_prepared):
    _, cache = paip_prepared
    out = tmp_path / "grid"
    common = ["--data", str(paip_fixture), "--cache", str(cache), "--out", str(out), "--epochs", "1",
              "--steps-per-epoch", "1", "--batch", "2", "--no-xla", "--verbose", "0"]
    calls = []

    def argv(a, f, d):
        calls.append((a, f, d))
        return ["fit", *common, "--arch", a, "--filters", str(f), "--depth", str(d)]

    status = run_grid(out, argv, ["elunet_4_4", "unet_2_9"], log=lambda *_: None)
    assert status["elunet_4_4"]["status"] == "done" and (out / "elunet_4_4.keras").is_file()
    assert status["unet_2_9"]["status"] == "failed" and "depth" in status["unet_2_9"]["detail"]
    calls.clear()
    status = run_grid(out, argv, ["elunet_4_4"], log=lambda *_: None)
    assert calls == [] and status["elunet_4_4"]["status"] == "done"
    rows = list(csv.DictReader(open(out / "grid_status.csv")))
    assert {r["variant"]: r["status"] for r in rows} == {"elunet_4_4": "done", "unet_2_9": "failed"}


def test_evaluate_writes_results_report_and_plot(paip_fixture, tmp_path, paip_prepared, tiny_model_file):
    _, cache = paip_prepared
    out = tmp_path / "eval"
    assert cli(["evaluate", "--data", str(paip_fixture), "--cache", str(cache), "--models", str(tiny_model_file),
                "--out", str(out), "--runs", "1", "--tiles", "5"]) == 0
    rows = list(csv.DictReader(open(out / "results.csv")))
    required = ("model,architecture,filters,depth,params,file_mb,jaccard_57,jaccard_tiles,dice_tiles,"
                "jaccard_image,dice_image,load_s,predict57_s").split(",")
    assert set(required) <= set(rows[0]) and len(rows) == 1
    row = rows[0]
    assert row["params"] == "40377" and float(row["file_mb_with_optimizer"]) > 1.5 * float(row["file_mb"])
    assert 0 <= float(row["jaccard_57"]) <= 1 and float(row["predict57_s"]) > 0
    assert (out / "tradeoff.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "ELU-Net 4/4" in (out / "report.md").read_text()
    assert row["train_device"] == ""  # an untrained model names no training device


def test_evaluate_on_the_validation_split_scores_the_validation_images(paip_fixture, tmp_path, paip_prepared,
                                                                        tiny_model_file):
    from paipviewer.core.imageio import read_image, read_mask
    from paipviewer.core.inference import DEFAULT_OVERLAP, predict_image
    from paipviewer.core.metrics import confusion

    _, cache = paip_prepared
    out = tmp_path / "val"
    same_name = tmp_path / "continued" / tiny_model_file.name  # as a model trained further and its start
    same_name.parent.mkdir()
    for suffix in (".keras", ".json"):
        shutil.copy(tiny_model_file.with_suffix(suffix), same_name.with_suffix(suffix))
    assert cli(["evaluate", "--data", str(paip_fixture), "--cache", str(cache), "--models", str(tiny_model_file),
                str(same_name), "--out", str(out), "--runs", "1", "--tiles", "5", "--split", "val"]) == 0
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert [r["model"] for r in rows] == [f"{tiny_model_file.parent.name}/elunet_4_4.keras",
                                          "continued/elunet_4_4.keras"]
    assert "(`continued/elunet_4_4.keras`)" in (out / "report.md").read_text()
    row = rows[0]
    settings = PrepareSettings()
    (sample,) = split_samples(select_samples(paip_fixture, settings), settings).val
    loaded = load_model(tiny_model_file)
    image = read_image(sample.image)
    pred = predict_image(loaded.model, image, loaded.card.equalize, overlap=DEFAULT_OVERLAP, batch=8)
    expected = confusion(pred.mask(loaded.card.threshold), read_mask(sample.mask, image.shape[:2])).dice
    assert float(row["dice_image"]) == pytest.approx(expected, abs=1e-4)
    assert "1 validation images" in (out / "report.md").read_text()


def test_evaluate_with_views_scores_and_times_the_averaged_model(paip_fixture, tmp_path, paip_prepared,
                                                                  tiny_model_file):
    from paipviewer.core.imageio import read_image, read_mask
    from paipviewer.core.inference import DEFAULT_OVERLAP, predict_image
    from paipviewer.core.metrics import confusion

    _, cache = paip_prepared
    base = ["evaluate", "--data", str(paip_fixture), "--cache", str(cache), "--models", str(tiny_model_file),
            "--runs", "1", "--tiles", "5", "--split", "val"]
    assert cli(base + ["--out", str(tmp_path / "one")]) == 0
    assert cli(base + ["--out", str(tmp_path / "eight"), "--views", "8"]) == 0
    (one,) = csv.DictReader(open(tmp_path / "one" / "results.csv"))
    (eight,) = csv.DictReader(open(tmp_path / "eight" / "results.csv"))
    assert (one["views"], eight["views"]) == ("1", "8")
    settings = PrepareSettings()
    (sample,) = split_samples(select_samples(paip_fixture, settings), settings).val
    loaded = load_model(tiny_model_file)
    image = read_image(sample.image)
    pred = predict_image(loaded.model, image, loaded.card.equalize, overlap=DEFAULT_OVERLAP, batch=8, views=8)
    expected = confusion(pred.mask(loaded.card.threshold), read_mask(sample.mask, image.shape[:2])).dice
    assert float(eight["dice_image"]) == pytest.approx(expected, abs=1e-4)
    assert eight["dice_image"] != one["dice_image"]
    assert "8 dihedral views" in (tmp_path / "eight" / "report.md").read_text()
    assert "dihedral" not in (tmp_path / "one" / "report.md").read_text()
    with pytest.raises(SystemExit):
        cli(base + ["--out", str(tmp_path / "three"), "--views", "3"])


def test_evaluate_split_all_scores_every_image_as_paipviewer_score_does(paip_fixture, tmp_path, paip_prepared,
                                                                        tiny_model_file, capsys):
    from paipviewer.__main__ import main as viewer_main

    _, cache = paip_prepared
    base = ["evaluate", "--data", str(paip_fixture), "--cache", str(cache), "--models", str(tiny_model_file),
            "--runs", "1", "--tiles", "3"]
    assert cli(base + ["--out", str(tmp_path / "test")]) == 0
    said = capsys.readouterr().out
    assert "has no test/ folder" in said and "1 of 3" in said and "--split all" in said
    assert len(list(csv.DictReader(open(tmp_path / "test" / "images.csv")))) == 1

    assert cli(base + ["--out", str(tmp_path / "all"), "--split", "all"]) == 0
    images = list(csv.DictReader(open(tmp_path / "all" / "images.csv")))
    # every image the selection keeps: the pancreas images at 0.25 um/px (tr_p004 is marked 0.5)
    assert [r["image"] for r in images] == ["tr_p001.png", "tr_p002.png", "tr_p003.png"]
    assert {r["model"] for r in images} == {tiny_model_file.name}
    (result,) = csv.DictReader(open(tmp_path / "all" / "results.csv"))
    assert int(result["nuclei_true"]) == sum(int(r["nuclei_true"]) for r in images) > 500
    assert float(result["aji"]) == pytest.approx(np.mean([float(r["aji"]) for r in images]), abs=1e-3)
    assert "| detection F1 | AJI | PQ |" in (tmp_path / "all" / "report.md").read_text()

    # The viewer's command line scores the same images with the same function: the same figures.
    assert viewer_main(["score", str(paip_fixture), "--model", str(tiny_model_file), "--out",
                        str(tmp_path / "score")]) == 0
    scored = {r["image"]: r for r in csv.DictReader(open(tmp_path / "score" / "scores.csv"))}
    for r in images:
        for key in ("dice", "aji", "det_f1", "nuclei_pred", "nuclei_true"):
            assert float(scored[r["image"]][key]) == pytest.approx(float(r[key]), abs=0.005)


def test_params_and_help():
    for sub in ("params", "prepare", "fit", "grid", "calibrate", "evaluate"):
        with pytest.raises(SystemExit) as exc:
            cli([sub, "--help"])
        assert exc.value.code == 0


def test_init_from_continues_a_model_file(paip_prepared, tmp_path, tiny_model_file):
    folder, _ = paip_prepared
    start = load_model(tiny_model_file).model.get_layer("enc0_conv1").kernel.numpy()
    path = fit(folder, tiny_settings(epochs=1, learning_rate=1e-9, init_from=str(tiny_model_file)), tmp_path, verbose=0)
    loaded = load_model(path, backend="keras")
    np.testing.assert_allclose(loaded.model.get_layer("enc0_conv1").kernel.numpy(), start, atol=1e-4)
    assert loaded.card.training["continued_from"]["file"] == str(tiny_model_file)
    again = fit(folder, tiny_settings(epochs=2, init_from=str(path)), tmp_path / "again", verbose=0)
    first, second = loaded.card.training, load_model(again).card.training
    assert training_totals(second) == (3, pytest.approx(first["seconds"] + second["seconds"]))
    with pytest.raises(ValueError, match="not unet 4/4"):
        fit(folder, FitSettings("unet", 4, 4, init_from=str(tiny_model_file), epochs=1), tmp_path / "x", verbose=0)


def test_calibrate_writes_a_copy_with_the_tuned_threshold(paip_fixture, paip_prepared, tiny_model_file, tmp_path):
    _, cache = paip_prepared
    before = tiny_model_file.read_bytes()
    out = tmp_path / "calibrated.keras"
    assert cli(["calibrate", "--data", str(paip_fixture), "--cache", str(cache), "--model", str(tiny_model_file),
                "--out", str(out)]) == 0
    card = load_model(out).card
    scan = card.metrics["threshold_scan_dice"]
    assert card.threshold == float(max(scan, key=scan.get))
    assert card.metrics["validation"]["dice_mean"] >= card.metrics["validation_at_0.5"]["dice_mean"]
    assert tiny_model_file.read_bytes() == before
    assert cli(["calibrate", "--data", str(paip_fixture), "--cache", str(cache), "--model", str(tiny_model_file),
                "--out", str(tiny_model_file)]) == 2


def test_bf16_on_the_cpu_trains_without_xla():
    from paip_trainer.cli import _fit_settings, build_parser

    def settings(*flags):
        args = build_parser().parse_args(["fit", "--data", "x", "--arch", "elunet", "--filters", "4", "--depth", "4",
                                          *flags])
        return _fit_settings(args, args.arch, args.filters, args.depth)

    assert settings().xla and not settings().mixed_precision
    assert settings("--no-xla").xla is False
    bf16 = settings("--bf16")
    assert bf16.mixed_precision and bf16.xla is False  # these tests run on a CPU: XLA made bf16 3-5x slower
