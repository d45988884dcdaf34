"""A small announcement list: the state owner says what changed, every view that shows it listens.

Callbacks run at once, on the caller's thread: the state only changes on the UI thread, so
listeners may touch widgets.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

# What can change, and what the listener is given.
IMAGES = "images"              # images were added or removed; ()
CURRENT = "current"            # another image is current; ()
ENTRY = "entry"                # one image's pixels, ground truth, results or failures; (key,)
MODELS = "models"              # the model, the compare model or the model list; ()
THRESHOLD = "threshold"        # a model's threshold; (model,)
LAYERS = "layers"              # which layers show, for an image kind; ()
RUNNING = "running"            # stopped by the user, or asked to run again; ()
NOTICE = "notice"              # a problem to tell the user; (Notice,)


class Events:
    def __init__(self) -> None:
        self._listeners: dict[str, list[Callable]] = defaultdict(list)

    def connect(self, name: str, callback: Callable) -> None:
        self._listeners[name].append(callback)

    def emit(self, name: str, *args) -> None:
        for callback in list(self._listeners[name]):
            callback(*args)
