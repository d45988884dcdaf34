"""Work off the UI thread (superqt/napari ``thread_worker`` habit).

A :class:`Task` runs one function in a thread pool and reports through Qt signals, which are
delivered on the UI thread. The function gets ``progress(done, total)`` and ``cancelled()``
callables; cancelling is cooperative (the function checks between steps). A task whose
cancel was requested reports ``cancelled`` instead of ``result``, so a stale result never
reaches the window through this path either. ``error`` carries the exception itself: its type says
what failed (``ModelFileError``: the model; ``ImageReadError``: the image; ``InferenceError``: this
model on this image), so the window can report it against the right thing and go on.
"""
from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from concurrent.futures import ThreadPoolExecutor

from PySide6.QtCore import QObject, Signal

from paipviewer.core.inference import Cancelled, InferenceError
from paipviewer.core.modelfile import ModelFileError


class TaskSignals(QObject):
    started = Signal()
    progress = Signal(int, int)
    result = Signal(object)
    error = Signal(object)  # the exception; message(exc) is its text for the user
    cancelled = Signal()
    finished = Signal()


class Task:
    def __init__(self, fn: Callable, *args, tag=None, **kwargs) -> None:
        self.fn, self.args, self.kwargs, self.tag = fn, args, kwargs, tag
        self.signals = TaskSignals()
        self._cancel = threading.Event()
        self.done = threading.Event()

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def is_cancelled(self) -> bool:
        return self._cancel.is_set()

    def run(self) -> None:
        s = self.signals
        try:
            if self.is_cancelled:
                raise Cancelled()
            s.started.emit()
            value = self.fn(*self.args, progress=s.progress.emit, cancelled=self._cancel.is_set, **self.kwargs)
            if self.is_cancelled:
                raise Cancelled()
            s.result.emit(value)
        except Cancelled:
            s.cancelled.emit()
        except Exception as exc:  # reported to the user; the viewer keeps working
            if not isinstance(exc, ValueError):  # the core's user-facing errors are ValueErrors
                traceback.print_exc()
            s.error.emit(exc)
        finally:
            self.done.set()
            s.finished.emit()


def message(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


class ModelCache:
    """Loaded models by file, and one lock per model: a Keras model runs one call at a time."""

    def __init__(self) -> None:
        self._models: dict[str, object] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def lock(self, key: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def get(self, key: str):
        """(LoadedModel, seconds spent loading it now); caller holds ``lock(key)``."""
        loaded = self._models.get(key)
        if loaded is not None:
            return loaded, 0.0
        from paipviewer.core.modelfile import load_model  # imports Keras/TensorFlow, here in the worker

        t0 = time.perf_counter()
        try:
            loaded = load_model(key)
        except ModelFileError:
            raise
        except Exception as exc:  # an I/O or memory error while loading is still the model's failure
            raise ModelFileError(f"{Path(key).name}: cannot load the model ({message(exc)})") from None
        self._models[key] = loaded
        return loaded, time.perf_counter() - t0


def run_model(cache: ModelCache, model_key: str, image, *, progress, cancelled):
    """Worker body: load (once) and run a model over an image. Returns a session ``Result``."""
    from paipviewer.core.inference import predict_image

    from .session import Result

    with cache.lock(model_key):
        if cancelled():
            raise Cancelled()
        loaded, load_seconds = cache.get(model_key)
        try:
            prediction = predict_image(loaded.model, image, loaded.card.equalize,
                                       progress=progress, cancelled=cancelled)
        except Cancelled:
            raise
        except Exception as exc:
            raise InferenceError(f"{loaded.card.label} failed on this image: {message(exc)}") from exc
    prediction.timing["model_load"] = load_seconds
    return Result(prediction, load_seconds)


def probe_model(cache: ModelCache, model_key: str, *, progress, cancelled) -> str:
    """Worker body: load a model the user has just opened, so only one that works gets selected."""
    with cache.lock(model_key):
        if cancelled():
            raise Cancelled()
        cache.get(model_key)
    return model_key


class WorkerPool:
    """Python threads, not QThreadPool's: TensorFlow's pybind11 code can deadlock on the GIL in
    threads that Python did not create (seen as a hang inside conv2d while the UI painted)."""

    def __init__(self, threads: int = 2) -> None:
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="paipviewer-worker")
        self._tasks: set[Task] = set()

    def start(self, task: Task) -> None:
        self._tasks = {t for t in self._tasks if not t.done.is_set()} | {task}
        self._executor.submit(task.run)

    def active(self) -> int:
        return sum(1 for t in self._tasks if not t.done.is_set())

    def wait(self, timeout: float) -> bool:
        """Wait until every started task has finished (cancelled ones stop at their next check)."""
        deadline = time.perf_counter() + timeout
        for task in list(self._tasks):
            if not task.done.wait(max(0.0, deadline - time.perf_counter())):
                return False
        return True


    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def make_pool(threads: int = 2) -> WorkerPool:
    return WorkerPool(threads)


def load_image(image_path, mask_path, *, progress, cancelled):
    """Worker body: read an image and its ground truth (a large file can take seconds)."""
    from .session import load_pixels

    return load_pixels(image_path, mask_path)


def load_and_run(cache, model_key, entry_paths, image, *, progress, cancelled):
    """Worker body for background scoring: an image that may not be loaded yet, then the model.

    An image that cannot be read raises ``ImageReadError``: the failure is the image's, and
    scoring goes on with the next one.
    """
    from .session import load_pixels

    out = {"image": image, "truth": None, "mask_error": None}
    if image is None:
        out["image"], out["truth"], out["mask_error"] = load_pixels(*entry_paths)
    out["result"] = run_model(cache, model_key, out["image"], progress=progress, cancelled=cancelled)
    return out
