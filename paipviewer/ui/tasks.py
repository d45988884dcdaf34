"""The task layer: the viewer's jobs run off the UI thread, and their results reach the state.

A :class:`Task` runs one function in a thread pool and reports through Qt signals, which are
delivered on the UI thread (the superqt/napari ``thread_worker`` habit): ``started``,
``progress``, ``result``, ``error`` (the exception itself), ``cancelled``, ``finished``.
Cancelling is cooperative: the function checks between batches.

The :class:`Scheduler` keeps the running tasks equal to what :func:`paipviewer.viewer.plan.wanted`
asks for, one job per slot (Orange's habit: a new request cancels the stale one), and hands each
finished job's typed result to :meth:`Session.apply` and each failure to :meth:`Session.fail`. A
cancelled task reports ``cancelled`` and never a result.
"""
from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from PySide6.QtCore import QObject, QTimer, Signal

from paipviewer.core.inference import Cancelled
from paipviewer.viewer import events as ev
from paipviewer.viewer import jobs
from paipviewer.viewer.plan import BACKGROUND_SLOTS, CURRENT_SLOTS, Job, wanted
from paipviewer.viewer.session import Session


class TaskSignals(QObject):
    started = Signal()
    progress = Signal(int, int)
    result = Signal(object)
    error = Signal(object)  # the exception; jobs.message(exc) is its text for the user
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


THRESHOLD_REST_MS = 150  # nuclei follow a dragged threshold once it rests, not at every tick


class Scheduler(QObject):
    """Runs what the state wants, one task per slot, and feeds the results back to it."""

    busy_changed = Signal()
    progress = Signal(int, int)   # of the current image's work
    idle = Signal()               # the current image has everything it was waiting for

    def __init__(self, session: Session, cache: jobs.ModelCache | None = None, threads: int = 2) -> None:
        super().__init__()
        self.session = session
        self.cache = cache or jobs.ModelCache()
        self.pool = WorkerPool(threads)
        self.running: dict[str, tuple[Job, Task]] = {}
        self.closed = False
        self._pending = False
        for name in (ev.IMAGES, ev.CURRENT, ev.ENTRY, ev.MODELS):
            session.events.connect(name, self.request_sync)
        self._threshold_timer = QTimer(self, singleShot=True, interval=THRESHOLD_REST_MS)
        self._threshold_timer.timeout.connect(self.request_sync)
        session.events.connect(ev.THRESHOLD, lambda *_: self._threshold_timer.start())
        session.events.connect(ev.RUNNING, lambda: self.sync())  # Stop stops now, not after the event loop turns

    def request_sync(self, *_) -> None:
        """Sync after the current event has been handled: one state change can emit several events."""
        if not self._pending and not self.closed:
            self._pending = True
            QTimer.singleShot(0, self.sync)

    def sync(self) -> None:
        self._pending = False
        if self.closed:
            return
        want = {job.slot: job for job in wanted(self.session)}
        for slot, (job, task) in list(self.running.items()):
            if want.get(slot) != job:
                task.cancel()
                del self.running[slot]
        for slot, job in want.items():
            if slot not in self.running:
                self._start(job)
        self.busy_changed.emit()
        if not self.current_busy():
            self.idle.emit()

    def _start(self, job: Job) -> None:
        task = Task(self._body(job), tag=job)
        task.signals.result.connect(lambda value, t=task: self._on_result(t, value))
        task.signals.error.connect(lambda exc, t=task: self._on_error(t, exc))
        task.signals.finished.connect(lambda t=task: self._on_finished(t))
        if job.slot not in BACKGROUND_SLOTS:
            task.signals.progress.connect(self.progress)
        self.running[job.slot] = (job, task)
        self.pool.start(task)

    def _body(self, job: Job) -> Callable:
        s, cache = self.session, self.cache
        entry = s.find(job.image_key)
        if job.kind == "probe":
            card, save = s.pending_cards.get(job.model_key, (None, False))
            return lambda **kw: jobs.probe_model(cache, job.model_key, card, save, **kw)
        if job.kind == "load":
            return lambda **kw: jobs.load_image(entry.key, entry.path, entry.mask_path, **kw)
        if job.kind == "run":
            size = s.pixel_size(entry)
            return lambda **kw: jobs.run_on(cache, entry.key, job.model_key, entry.image, size, views=job.views, **kw)
        if job.kind == "objects":
            result, labels = entry.results[job.model_key], entry.truth_labels
            settings = s.object_settings(job.model_key)
            return lambda **kw: jobs.assess_objects(entry.key, job.model_key, result, labels, job.threshold,
                                                    settings, **kw)
        size = s.pixel_size(entry)
        return lambda **kw: jobs.score(cache, entry.key, job.model_key, (entry.path, entry.mask_path),
                                       entry.image, size, views=job.views, **kw)

    def _current(self, task: Task) -> bool:
        job = task.tag
        return self.running.get(job.slot, (None, None))[1] is task

    def _on_result(self, task: Task, value) -> None:
        if self._current(task):
            del self.running[task.tag.slot]
        # A finished result is true of its own image and model, so it is kept even when its task
        # was replaced; the views only draw the current image's own results.
        self.session.apply(value)
        self.request_sync()

    def _on_error(self, task: Task, exc: Exception) -> None:
        if self._current(task):
            del self.running[task.tag.slot]
        self.session.fail(task.tag, exc)
        self.request_sync()

    def _on_finished(self, task: Task) -> None:
        if self._current(task) and task.is_cancelled:
            del self.running[task.tag.slot]
        self.busy_changed.emit()

    def current_busy(self) -> bool:
        return any(slot in self.running for slot in CURRENT_SLOTS + ("probe",))

    def current_waiting(self) -> bool:
        """The current image still wants work, running or about to start (a result has just come
        in, or a threshold moved, and the next job starts when the event loop turns)."""
        waiting = wanted(self.session, current_only=True)
        return self.current_busy() or any(job.slot in CURRENT_SLOTS for job in waiting)

    def jobs(self) -> list[Job]:
        return [job for job, _ in self.running.values()]

    def cancel_all(self) -> None:
        for _, task in self.running.values():
            task.cancel()
        self.running.clear()
        self.busy_changed.emit()

    def close(self, timeout: float = 30) -> None:
        """Cancel everything and wait for the threads; only a model still loading takes seconds."""
        self.closed = True
        self.cancel_all()
        self.pool.wait(timeout)
        self.pool.shutdown()
