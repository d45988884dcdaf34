"""The model zoo: parameter counts to the unit, validated arguments, deterministic names."""
from __future__ import annotations

import csv
import io
import re
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import REPO
from paip_trainer.models import build_model
from paip_trainer.variants import grid_variants


def architectures_md_counts() -> dict[tuple[str, int, int], tuple[int, int | None]]:
    """(arch, n, L) -> (our count, study count or None), parsed from ARCHITECTURES.md's tables."""
    text = (REPO.parent / "shared" / "paper" / "ARCHITECTURES.md").read_text()
    counts = {}
    arch = None
    for line in text.splitlines():
        if line.startswith("## U-Net"):
            arch = "unet"
        elif line.startswith("## ELU-Net"):
            arch = "elunet"
        m = re.match(r"\| (\d+) \|(.+)\|$", line)
        if arch and m:
            for depth, cell in zip((4, 5, 6), m.group(2).split("|")):
                ours = int(re.match(r"\s*([\d,]+)", cell).group(1).replace(",", ""))
                study = re.search(r"study(?: ([\d,]+))?", cell)
                study_n = int(study.group(1).replace(",", "")) if study and study.group(1) else (ours if study else None)
                counts[(arch, int(m.group(1)), depth)] = (ours, study_n)
    return counts


@pytest.fixture(scope="module")
def params_rows():
    out = subprocess.run([sys.executable, "-m", "paip_trainer.cli", "params"], capture_output=True, text=True,
                         check=True, cwd=REPO)
    return list(csv.DictReader(io.StringIO(out.stdout)))


def test_params_cli_matches_architectures_md(params_rows):
    expected = architectures_md_counts()
    assert len(expected) == 18
    assert list(params_rows[0]) == ["architecture", "filters", "depth", "params", "study_params"]
    assert len(params_rows) == 18
    for row in params_rows:
        key = (row["architecture"], int(row["filters"]), int(row["depth"]))
        ours, study = expected[key]
        assert int(row["params"]) == ours, key
        assert (int(row["study_params"]) if row["study_params"] else None) == study, key


def test_study_unet_counts_are_reproduced(params_rows):
    study_unet = {(int(r["filters"]), int(r["depth"])): int(r["params"]) for r in params_rows
                  if r["architecture"] == "unet" and r["study_params"]}
    assert study_unet == {(32, 4): 1926149, (32, 5): 7760645, (64, 4): 7698437, (64, 5): 31032837}


@pytest.mark.parametrize("arch,filters,depth", [("unet", 32, 4), ("elunet", 8, 5)])
def test_fully_convolutional_at_other_sizes(arch, filters, depth):
    model = build_model(arch, filters, depth, input_size=None)
    fixed = build_model(arch, filters, depth)
    assert model.count_params() == fixed.count_params()
    out = model(np.zeros((1, 128, 384, 3), np.float32))
    assert tuple(out.shape) == (1, 128, 384, 1)
    assert float(np.min(out)) >= 0.0 and float(np.max(out)) <= 1.0


def test_layer_names_are_deterministic():
    a = [layer.name for layer in build_model("elunet", 4, 4).layers]
    b = [layer.name for layer in build_model("elunet", 4, 4).layers]
    assert a == b
    assert "dec0_skip2_upsample" in a and "head_sigmoid" in a


def test_elunet_deep_skip_widths():
    """D0 of ELU-Net n/5 concatenates five arrows of n channels each (ARCHITECTURES.md)."""
    model = build_model("elunet", 8, 5)
    assert model.get_layer("dec0_concat").output.shape[-1] == 5 * 8
    assert model.get_layer("dec3_concat").output.shape[-1] == 2 * 64


@pytest.mark.parametrize("kwargs,message", [
    (dict(architecture="vnet", filters=8, depth=5), "unknown architecture"),
    (dict(architecture="unet", filters=0, depth=5), "filters"),
    (dict(architecture="unet", filters=32, depth=1), "depth"),
    (dict(architecture="elunet", filters=8, depth=5, input_size=200), "multiple of 16"),
])
def test_invalid_arguments_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_model(**kwargs)


def test_grid_is_the_studys_18_variants():
    grid = grid_variants()
    assert len(grid) == 18 and len(set(grid)) == 18
    assert ("unet", 128, 6) in grid and ("elunet", 4, 4) in grid
