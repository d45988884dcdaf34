"""Shared test fixtures: the real data in ../shared/data and small real model files."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("PAIP_SHARED_DATA", REPO.parent / "shared" / "data"))


def _data(name: str) -> Path:
    path = SHARED_DATA / name
    if not path.is_dir():
        pytest.fail(f"test data {path} is missing; set PAIP_SHARED_DATA to the shared/data folder")
    return path


@pytest.fixture(scope="session")
def monuseg() -> Path:
    return _data("monuseg")


@pytest.fixture(scope="session")
def samples256() -> Path:
    return _data("monuseg_sample256")


@pytest.fixture(scope="session")
def paip_fixture() -> Path:
    return _data("paip2023_layout_fixture")


@pytest.fixture(scope="session")
def tiny_model_file(tmp_path_factory) -> Path:
    """A real, untrained ELU-Net 4/4 saved as a model file with its card."""
    from helpers import make_model_file

    return make_model_file(tmp_path_factory.mktemp("models"), "elunet", 4, 4)


@pytest.fixture(scope="session")
def paip_prepared(paip_fixture, tmp_path_factory):
    """The PAIP layout fixture prepared with the study's settings, and the cache folder it lives in."""
    from paip_trainer.prepare import PrepareSettings, prepare

    cache = tmp_path_factory.mktemp("cache")
    return prepare(paip_fixture, PrepareSettings(), cache, log=lambda *_: None), cache


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Two small real (untrained) models, ELU-Net 4/3 and U-Net 4/3, for the UI tests."""
    from helpers import make_model_file

    folder = tmp_path_factory.mktemp("models")
    return make_model_file(folder, "elunet", 4, 3), make_model_file(folder, "unet", 4, 3)


@pytest.fixture(scope="module")
def cache():
    """One model cache per test module: TensorFlow loads once."""
    from paipviewer.viewer.jobs import ModelCache

    return ModelCache()
