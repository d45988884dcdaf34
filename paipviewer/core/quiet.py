"""Keep TensorFlow's native start-up chatter off the user's terminal, and nothing else.

TensorFlow 2.21 logs through absl before its log level is read ("All log messages before
absl::InitializeLog() ...", oneDNN notes, "Could not find cuda drivers", "failed call to
cuInit"), so TF_CPP_MIN_LOG_LEVEL does not silence it. While Keras is imported and a model first
loads, the process's stderr (file descriptor 2) goes to a temporary file; afterwards every line
that is not such chatter is written out, so no real message is lost, only delayed.
"""
from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import threading

NOISE = (re.compile(r"^WARNING: All log messages before absl::InitializeLog\(\)"),
         re.compile(r"^I\d{4} "),                                  # absl INFO lines
         re.compile(r"^[WE]\d{4} .*(cuInit|cuda|CUDA|TensorRT)"),  # no GPU here is not a problem
         re.compile(r"oneDNN custom operations are on"))

_lock = threading.Lock()
_depth = 0
_saved = -1       # the real stderr, duplicated, while a block runs
_capture = None   # where file descriptor 2 points meanwhile


def is_noise(line: str) -> bool:
    return any(p.search(line) for p in NOISE)


@contextlib.contextmanager
def native_chatter_filtered():
    """Filter stderr of the whole process while the block runs. Re-entrant across threads: two models
    load at once, and the last block out, not the first, puts stderr back and writes what was said."""
    global _depth, _saved, _capture
    with _lock:
        if _depth == 0:
            sys.stderr.flush()
            _saved = os.dup(2)
            _capture = tempfile.TemporaryFile()
            os.dup2(_capture.fileno(), 2)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                sys.stderr.flush()
                os.dup2(_saved, 2)
                os.close(_saved)
                _capture.seek(0)
                kept = [line for line in _capture.read().decode("utf-8", "replace").splitlines(keepends=True)
                        if not is_noise(line)]
                _capture.close()
                _saved, _capture = -1, None
                if kept:
                    os.write(2, "".join(kept).encode())
