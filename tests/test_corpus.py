"""The bad-input corpus (tests/corpus.py) through every entry point a user reaches it by: the core
readers, the viewer's open and load steps (Session.add, then jobs.load_image or jobs.probe_model as
the task layer runs them), ``paipviewer score`` with a good tile beside each bad input, and, for a
few representative cases, ``paipviewer --snapshot`` in a subprocess and ``paip-train prepare`` and
``evaluate``. Each asserts the message the user reads, the exit code, that the good input in the same
batch still succeeds, and that no traceback is printed.
"""
from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import csv
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import corpus
from conftest import REPO
from corpus import GOOD_TILE, SHAPE
from helpers import make_model_file, make_unreadable
from paipviewer.__main__ import main as paipviewer_main
from paipviewer.core.evidence import truth_labels
from paipviewer.core.imageio import ImageReadError, read_image, read_mask
from paipviewer.core.modelfile import ModelFileError, load_model
from paipviewer.viewer import jobs
from paipviewer.viewer.plan import Job
from paipviewer.viewer.session import Session

IMAGES, MASKS, CARDS, MODELS = (corpus.names(kind) for kind in ("image", "mask", "card", "model"))
QUIET = dict(progress=lambda *_: None, cancelled=lambda: False)


@pytest.fixture(scope="module")
def good_model(tmp_path_factory) -> Path:
    return make_model_file(tmp_path_factory.mktemp("good"), "elunet", 4, 3)


@pytest.fixture(scope="module")
def cases(tmp_path_factory, good_model) -> dict:
    return corpus.build(tmp_path_factory.mktemp("corpus"), good_model)


@pytest.fixture
def case(request, cases, monkeypatch):
    """The case named by the test's ``name`` parameter; an unreadable one made so for this test."""
    found = cases[request.node.callspec.params["name"]]
    if found.unreadable:
        make_unreadable(found.path, monkeypatch)
    return found


@pytest.fixture(scope="module")
def loaded_models():
    return {}


@pytest.fixture
def score(monkeypatch, capsys, loaded_models):
    """``paipviewer score`` in this process: (exit code, everything it printed). A model that loads is
    loaded once per module (the shipped one, about a second on 2 cores), a broken one every time."""
    from paipviewer import score as score_module

    real = score_module.load_model

    def load_once(path, *args, **kwargs):
        key = (str(Path(path).resolve()), args, tuple(sorted(kwargs.items())))
        if key not in loaded_models:
            loaded_models[key] = real(path, *args, **kwargs)
        return loaded_models[key]

    monkeypatch.setattr(score_module, "load_model", load_once)

    def run(*argv: str) -> tuple[int, str]:
        code = paipviewer_main(["score", *map(str, argv)])
        printed = capsys.readouterr()
        text = printed.out + printed.err
        assert "Traceback" not in text
        return code, text
    return run


def rows(out: Path) -> dict[str, dict]:
    with open(out / "scores.csv", newline="", encoding="utf-8") as fh:
        return {r["image"]: r for r in csv.DictReader(fh)}


def reason(case) -> str:
    """What the viewer and ``score`` say about the case: the open step's reason, else the reader's."""
    return case.opened or case.message


# ----------------------------------------------------------------------------- images

@pytest.mark.parametrize("name", IMAGES)
def test_image_core_reader(name, case):
    if case.message is None:
        image = read_image(case.path)
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3 and image.size
    else:
        with pytest.raises(ImageReadError, match=case.message) as exc:
            read_image(case.path)
        assert str(exc.value).startswith(f"{case.path.name}: ")


@pytest.mark.parametrize("name", IMAGES)
def test_image_opened_in_the_viewer(name, case):
    """Open the bad file with a good tile, as a drop does, then read each as the viewer's load job does."""
    session = Session()
    opened = session.add([case.path, GOOD_TILE])
    if case.opened:
        assert [f.path.name for f in opened.failures] == [case.path.name]
        assert re.search(case.opened, opened.failures[0].reason)
        assert [e.name for e in opened.images] == [GOOD_TILE.name]
    else:
        assert not opened.failures and [e.name for e in opened.images] == [case.path.name, GOOD_TILE.name]
    for entry in list(session.entries):
        try:
            session.apply(jobs.load_image(entry.key, entry.path, entry.mask_path, **QUIET))
        except Exception as exc:  # the task layer hands any error to Session.fail
            assert isinstance(exc, ImageReadError), f"{type(exc).__name__}: {exc}"
            session.fail(Job("load", "load", entry.key, ""), exc)
    bad, good = session.find(str(case.path)), session.find(str(GOOD_TILE))
    assert good.loaded and good.error is None and good.truth is not None
    if case.ok:
        assert bad.loaded and bad.error is None
    elif not case.opened:
        assert not bad.loaded and re.search(case.message, bad.error)
        assert not bad.error.startswith(case.path.name)  # the Problems dock names the file once, beside it
    notices = [(n.source, n.message) for n in session.notices]
    assert notices == ([] if case.ok else [(case.path.name, notices[0][1])])
    if notices:
        assert re.search(reason(case), notices[0][1])


@pytest.mark.parametrize("name", IMAGES)
def test_image_scored_beside_a_good_tile(name, case, score, tmp_path):
    out = tmp_path / "out"
    code, text = score(case.path, GOOD_TILE, "--model", "elunet_8_5", "--out", out)
    scored = rows(out)
    assert scored[GOOD_TILE.name]["dice"] != ""  # the good tile, with its ground truth
    if case.ok:
        assert code == 0 and case.path.name in scored
    else:
        assert code == 1 and case.path.name not in scored
        said = [line for line in text.splitlines() if line.startswith("not scored: ") and case.path.name in line]
        assert len(said) == 1 and re.search(reason(case), said[0]), text
        assert "1 input(s) not scored" in text


def test_a_leading_dash_is_a_file_after_double_dash(cases, score, tmp_path, monkeypatch):
    monkeypatch.chdir(cases["-leading-dash.png"].path.parent)
    with pytest.raises(SystemExit) as exc:  # without "--" it is an option, as for every Unix tool
        score("-leading-dash.png", "--model", "elunet_8_5", "--out", tmp_path / "a")
    assert exc.value.code == 2
    code, _ = score("--model", "elunet_8_5", "--out", tmp_path / "b", "--", "-leading-dash.png")
    assert code == 0 and "-leading-dash.png" in rows(tmp_path / "b")


# ----------------------------------------------------------------------------- masks

@pytest.mark.parametrize("name", MASKS)
def test_mask_core_reader(name, case):
    if case.message is None:
        mask = read_mask(case.path, SHAPE)
        assert mask.shape == SHAPE and mask.dtype == bool
        assert truth_labels(case.path, SHAPE).shape == SHAPE
    else:
        for read in (read_mask, truth_labels):
            with pytest.raises(ImageReadError, match=case.message):
                read(case.path, SHAPE)


@pytest.mark.parametrize("name", MASKS)
def test_mask_opened_in_the_viewer(name, case):
    """A bad mask leaves its image usable, without ground truth, and says so in the Problems dock."""
    session = Session()
    opened = session.add([case.image])
    (entry,) = opened.images
    assert entry.mask_path == case.path and not opened.failures
    loaded = jobs.load_image(entry.key, entry.path, entry.mask_path, **QUIET)
    session.apply(loaded)
    assert entry.loaded and entry.error is None
    if case.ok:
        assert loaded.mask_error is None and entry.truth.shape == SHAPE and not session.notices
    else:
        assert entry.truth is None and re.search(case.message, loaded.mask_error)
        (notice,) = session.notices
        assert notice.source == case.path.name and notice.message.startswith("not used as ground truth: ")
        assert re.search(case.message, notice.message)


@pytest.mark.parametrize("name", MASKS)
def test_mask_scored_beside_a_good_tile(name, case, score, tmp_path):
    """A bad mask is reported and its image scored without ground truth; the good tile as ever (exit 0:
    every image was scored)."""
    out = tmp_path / "out"
    code, text = score(case.image, GOOD_TILE, "--model", "elunet_8_5", "--out", out)
    scored = rows(out)
    assert code == 0 and scored[GOOD_TILE.name]["dice"] != ""
    if case.ok:
        assert scored[case.image.name]["dice"] != "" and "ground truth not used" not in text
    else:
        assert scored[case.image.name]["dice"] == ""
        (said,) = [line for line in text.splitlines() if "ground truth not used" in line]
        assert said.startswith(f"{case.image.name}: ground truth not used: {case.path.name}: ")
        assert re.search(case.message, said)


# ----------------------------------------------------------------------------- cards and models

def open_model_in_the_viewer(session: Session, cache, path: Path) -> str | None:
    """Open a model file as a drop does and load it as the probe job does: the message the user reads
    (the Problems dock's), or None once it is the model that runs."""
    opened = session.add([path])
    if opened.failures:
        (failure,) = opened.failures
        return failure.reason
    if opened.needs_card:  # the card dialog opens; the list says why
        return session.catalog.find(opened.needs_card[0]).error
    (key,) = opened.models
    try:
        session.apply(jobs.probe_model(cache, key, **QUIET))
    except Exception as exc:
        assert isinstance(exc, ModelFileError), f"{type(exc).__name__}: {exc}"
        session.fail(Job("probe", "probe", "", key), exc)
        (notice,) = session.notices
        assert notice.source == Path(key).name
        return notice.message
    assert session.model_key == key
    return None


@pytest.mark.parametrize("name", CARDS + MODELS)
def test_model_loaded(name, case):
    with pytest.raises(ModelFileError, match=case.message):
        load_model(case.path)


@pytest.mark.parametrize("name", CARDS + MODELS)
def test_model_opened_in_the_viewer(name, case, cache):
    session = Session()
    told = open_model_in_the_viewer(session, cache, case.path)
    if name == "model_without_card.keras":
        assert told == "model_without_card.keras: no model card; choose its preprocessing and threshold to use it"
    else:
        assert told is not None and re.search(case.message, told), told
        assert session.model_key == ""
    assert not list(case.path.parent.glob("*_ran"))  # the Lambda layer never ran


@pytest.mark.parametrize("name", CARDS + MODELS)
def test_model_given_to_score(name, case, score, tmp_path):
    """An unusable model stops ``score`` before any work, with the reason (exit 2)."""
    out = tmp_path / "out"
    code, text = score(GOOD_TILE, "--model", case.path, "--out", out)
    assert code == 2 and not out.exists()
    (said,) = text.splitlines()
    assert said.startswith(f"paipviewer score: error: model {case.path}: ") and re.search(case.message, said)


# ----------------------------------------------------------------------------- the trainer

def dataset(folder: Path, count: int = 4) -> Path:
    """An images/ + masks/ folder of ``count`` good sample tiles."""
    for sub in ("images", "masks"):
        (folder / sub).mkdir(parents=True)
        for tile in sorted((GOOD_TILE.parent.parent / sub).glob("*.png"))[:count]:
            shutil.copyfile(tile, folder / sub / tile.name)
    return folder


def with_bad(folder: Path, case) -> Path:
    """``folder``'s dataset with the case's bad image (with a good mask) or bad mask (with its image) added."""
    if case.kind == "image":
        shutil.copyfile(case.path, folder / "images" / case.path.name)
        shutil.copyfile(GOOD_TILE.parent.parent / "masks" / GOOD_TILE.name,
                        folder / "masks" / f"{case.path.stem}.png")
        return folder / "images" / case.path.name
    shutil.copyfile(case.image, folder / "images" / case.image.name)
    shutil.copyfile(case.path, folder / "masks" / case.image.name)
    return folder / "masks" / case.image.name


def trainer(argv: list[str], capsys) -> tuple[int, list[str]]:
    from paip_trainer.cli import main

    code = main(argv)
    printed = capsys.readouterr()
    assert "Traceback" not in printed.out + printed.err
    return code, [line for line in printed.err.splitlines() if line.startswith("paip-train")]


@pytest.mark.parametrize("name", ["zero_bytes.png", "bomb.png", "truncated.jpg", "mask_mismatched", "mask_rgb_photo"])
def test_prepare_refuses_a_dataset_with_a_bad_file_and_names_it(name, case, tmp_path, capsys):
    """Training data with a file that cannot be read is refused whole, naming the file: a training set
    silently one image short would change the model without anyone knowing."""
    bad = with_bad(dataset(tmp_path / "data"), case)
    cache = tmp_path / "cache"
    code, errors = trainer(["prepare", "--data", str(tmp_path / "data"), "--cache", str(cache)], capsys)
    assert code == 2 and len(errors) == 1
    assert errors[0].startswith(f"paip-train prepare: error: {bad.name}: ") and re.search(case.message, errors[0])
    assert not list(cache.rglob("split.json")) and not list(cache.rglob(".*"))  # nothing half-written


@pytest.fixture
def no_tf_timing(monkeypatch):
    import paip_trainer.evaluate

    monkeypatch.setattr(paip_trainer.evaluate, "tf_import_seconds", lambda: 0.0)


def test_evaluate_scores_the_good_model_and_names_each_bad_one(cases, good_model, tmp_path, capsys, no_tf_timing):
    bad = [cases[n] for n in ("model_zip_bomb.keras", "model_lambda.keras", "model_random_bytes.onnx",
                              "model_valid_conv.keras", "card_nested", "card_threshold_nan")]
    out = tmp_path / "eval"
    models = [*(str(c.path) for c in bad), str(good_model)]
    code, errors = trainer(["evaluate", "--data", str(dataset(tmp_path / "data")), "--models", *models,
                            "--out", str(out), "--runs", "1", "--tiles", "2", "--split", "all"], capsys)
    assert code == 1
    assert [r["model"] for r in csv.DictReader(open(out / "results.csv"))] == [good_model.name]
    assert len(errors) == len(bad), errors
    for case, line in zip(bad, errors):
        assert line.startswith(f"paip-train evaluate: error: not scored: {case.path.name}: ")
        assert re.search(case.message, line), line


@pytest.mark.parametrize("name", ["zero_bytes.png", "mask_rgb_photo"])
def test_evaluate_blames_a_bad_image_not_the_models(name, case, good_model, tmp_path, capsys, no_tf_timing):
    """A bad file in the data would fail every model alike: evaluate stops and names the file (exit 2)."""
    bad = with_bad(dataset(tmp_path / "data"), case)
    out = tmp_path / "eval"
    code, errors = trainer(["evaluate", "--data", str(tmp_path / "data"), "--models", str(good_model), "--out",
                            str(out), "--runs", "1", "--tiles", "2", "--split", "all"], capsys)
    assert code == 2 and len(errors) == 1
    assert errors[0].startswith(f"paip-train evaluate: error: {bad.name}: ") and re.search(case.message, errors[0])
    assert not (out / "results.csv").exists()


# ----------------------------------------------------------------------------- the window, in a subprocess

def snapshot(tmp_path: Path, *args) -> subprocess.CompletedProcess:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": str(tmp_path / "config"),
           "XDG_STATE_HOME": str(tmp_path / "state"), "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-m", "paipviewer", *map(str, args), "--snapshot", tmp_path / "fig.png"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert "Traceback" not in done.stderr and "unexpected error" not in done.stderr, done.stderr[-2000:]
    return done


@pytest.mark.parametrize("name", ["zero_bytes.png", "bomb_bigtiff.tif", "fifo.png"])
def test_snapshot_of_a_bad_image_says_why(name, case, tmp_path):
    """The figure is of the first image given: a bad one is refused with the reason (exit 1), at once."""
    done = snapshot(tmp_path, case.path, GOOD_TILE, "--model", "elunet_8_5")
    assert done.returncode == 1 and not (tmp_path / "fig.png").exists()
    assert re.search(f"paipviewer: cannot snapshot {re.escape(case.path.name)}: {case.message}", done.stderr)


def test_snapshot_with_a_symlink_loop_beside_a_good_tile(cases, tmp_path):
    done = snapshot(tmp_path, cases["symlink_loop.png"].path, GOOD_TILE, "--model", "elunet_8_5")
    assert done.returncode == 0 and (tmp_path / "fig.png").is_file()


def test_snapshot_with_a_broken_model_says_so(cases, tmp_path):
    bomb = cases["model_zip_bomb.keras"]
    done = snapshot(tmp_path, GOOD_TILE, "--model", bomb.path)
    assert done.returncode != 0 and re.search(bomb.message, done.stderr)
