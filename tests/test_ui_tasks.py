"""The task layer: signals in order, cooperative cancel, typed errors reported rather than raised."""
from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import threading
import time
from types import SimpleNamespace

import pytest

from paipviewer.core.imageio import read_image
from paipviewer.core.inference import Cancelled
from paipviewer.ui.tasks import Task, WorkerPool
from paipviewer.viewer import jobs
from ui_fixtures import SAMPLES


def count_up(n, gate=None, *, progress, cancelled):
    """A real loop that checks for cancel between steps, as predict_image does between batches."""
    for i in range(n):
        if cancelled():
            raise Cancelled()
        if gate is not None:
            gate.wait(5)
        progress(i + 1, n)
        time.sleep(0.01)
    return n * 2


@pytest.fixture
def pool():
    p = WorkerPool(2)
    yield p
    assert p.wait(10)


def test_signals_started_progress_result_finished(qtbot, pool):
    task = Task(count_up, 5)
    seen = []
    for name in ("started", "result", "finished"):
        getattr(task.signals, name).connect(lambda *a, n=name: seen.append(n))
    task.signals.progress.connect(lambda d, t: seen.append((d, t)))
    with qtbot.waitSignal(task.signals.finished, timeout=10000):
        pool.start(task)
    assert seen == ["started", (1, 5), (2, 5), (3, 5), (4, 5), (5, 5), "result", "finished"]


def test_cancel_stops_between_steps_and_no_result(qtbot, pool):
    gate = threading.Event()
    task = Task(count_up, 1000, gate)
    results = []
    task.signals.result.connect(results.append)
    with qtbot.waitSignal(task.signals.progress, timeout=10000):
        pool.start(task)
        gate.set()
    with qtbot.waitSignal(task.signals.cancelled, timeout=10000):
        task.cancel()
    qtbot.waitUntil(task.done.is_set)
    assert results == []


def test_error_is_a_message(qtbot, pool):
    def fails(*, progress, cancelled):
        raise ValueError("model.keras: not a Keras model file")

    task = Task(fails)
    with qtbot.waitSignal(task.signals.error, timeout=10000) as blocker:
        pool.start(task)
    (exc,) = blocker.args
    assert isinstance(exc, ValueError) and jobs.message(exc) == "model.keras: not a Keras model file"


def test_failures_are_typed_by_what_failed(tmp_path):
    """A model that cannot load is the model's failure; one that fails on an image is that pair's."""
    from paipviewer.core.inference import InferenceError
    from paipviewer.core.modelfile import ModelFileError

    image = read_image(next((SAMPLES / "images").glob("*.png")))
    broken = tmp_path / "m.keras"
    broken.write_bytes(b"not a zip")
    with pytest.raises(ModelFileError, match="m.keras"):
        jobs.run_model(jobs.ModelCache(), str(broken), image, progress=lambda *_: None, cancelled=lambda: False)

    class Fails:
        def predict_on_batch(self, x):
            raise RuntimeError("shapes do not broadcast")

    cache = jobs.ModelCache()  # a model that loaded, whose predictions fail (a wrong output size, say)
    cache._models["fails"] = SimpleNamespace(model=Fails(), card=SimpleNamespace(equalize="rgb", label="Odd model", mpp=None))
    with pytest.raises(InferenceError, match="Odd model failed on this image: shapes do not broadcast"):
        jobs.run_model(cache, "fails", image, progress=lambda *_: None, cancelled=lambda: False)


def test_run_model_cancelled_before_start_does_not_load(tmp_path):
    image = read_image(next((SAMPLES / "images").glob("*.png")))
    cache = jobs.ModelCache()
    with pytest.raises(Cancelled):
        jobs.run_model(cache, str(tmp_path / "never_loaded.keras"), image,
                         progress=lambda *_: None, cancelled=lambda: True)
    assert cache._models == {}
