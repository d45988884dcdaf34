"""The viewer at the image's magnification: a 20x image runs at the shipped model's 40x, the panel
says so, and a pixel size the user states for a folder runs its images again at the new scale."""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from paipviewer.core.imageio import read_image
from paipviewer.core.metrics import confusion
from paipviewer.viewer import describe, jobs
from paipviewer.viewer.catalog import ModelCatalog
from paipviewer.viewer.paths import shipped_models_dir
from paipviewer.viewer.session import Session

STEM = "TCGA-2Z-A9J9-01A-01-TS1"


def png_at(path: Path, rgb: np.ndarray, mpp: float | None) -> Path:
    ok, buf = cv2.imencode(".png", rgb[:, :, ::-1])
    data = buf.tobytes()
    if mpp:
        body = struct.pack(">IIB", round(1e6 / mpp), round(1e6 / mpp), 1)
        data = data[:33] + struct.pack(">I", 9) + b"pHYs" + body + struct.pack(">I", zlib.crc32(b"pHYs" + body)) + data[33:]
    path.write_bytes(data)
    return path


@pytest.fixture(scope="module")
def halved(monuseg, tmp_path_factory):
    folder = tmp_path_factory.mktemp("half")
    image = read_image(monuseg / "test" / "images" / f"{STEM}.tif")
    small = cv2.resize(image, (500, 500), interpolation=cv2.INTER_AREA)
    truth = cv2.imread(str(monuseg / "test" / "masks_instance" / f"{STEM}.png"), cv2.IMREAD_UNCHANGED)
    (folder / "images").mkdir()
    (folder / "masks").mkdir()
    png_at(folder / "images" / "tagged.png", small, 0.5)
    png_at(folder / "images" / "plain.png", small, None)
    for name in ("tagged", "plain"):
        cv2.imwrite(str(folder / "masks" / f"{name}.png"), cv2.resize(truth, (500, 500), interpolation=cv2.INTER_NEAREST))
    return folder


def session_with(folder) -> Session:
    catalog = ModelCatalog()
    catalog.scan(shipped_models_dir())
    s = Session(catalog, background=False)
    s.add([folder])
    s.set_model(str(shipped_models_dir() / "elunet_8_5.keras"))
    return s


def load_and_run(s: Session, entry, cache):
    noop = dict(progress=lambda *_: None, cancelled=lambda: False)
    s.apply(jobs.load_image(entry.key, entry.path, entry.mask_path, **noop))
    ran = jobs.run_on(cache, entry.key, s.model_key, entry.image, s.pixel_size(entry), **noop)
    s.apply(ran)
    return ran.result


def test_a_tagged_20x_image_runs_at_the_models_40x(halved, cache):
    s = session_with(halved)
    tagged = next(e for e in s.entries if e.name == "tagged.png")
    result = load_and_run(s, tagged, cache)
    assert tagged.pixel_size.mpp == pytest.approx(0.5) and result.scale.factor == pytest.approx(2.0)
    column = describe.metric_column(s, tagged, s.model_key)
    assert column["scale"] == "×2 to 0.25 µm/px" and column["pixel_size"].startswith("0.5 µm/px")
    plain = next(e for e in s.entries if e.name == "plain.png")
    as_is = load_and_run(s, plain, cache)
    assert as_is.scale.factor == 1.0
    assert describe.metric_column(s, plain, s.model_key)["scale"] == "as is"
    assert describe.metric_column(s, plain, s.model_key)["pixel_size"] == "unknown"
    # the same pixels: resampled, the model finds the nuclei better (0.80 against 0.75 measured)
    dice = [confusion(r.prediction.probability >= 0.35, e.truth).dice for r, e in ((result, tagged), (as_is, plain))]
    assert dice[0] > dice[1] + 0.02


def test_a_stated_pixel_size_runs_the_folder_again(halved, cache):
    s = session_with(halved)
    plain = next(e for e in s.entries if e.name == "plain.png")
    tagged = next(e for e in s.entries if e.name == "tagged.png")
    load_and_run(s, plain, cache)
    load_and_run(s, tagged, cache)
    changed = s.state_pixel_size(plain, 0.5, folder=True)
    assert changed == [plain] and not plain.results and tagged.results  # the tagged file keeps its own
    assert s.pixel_size(plain).source == "stated"
    assert load_and_run(s, plain, cache).scale.factor == pytest.approx(2.0)
    s.state_pixel_size(plain, None, folder=True)
    assert s.pixel_size(plain).mpp is None
