"""What a desktop app owes its user when nobody watches a terminal: a log file, a crash handler that
logs the traceback and says where, and faulthandler for crashes Python cannot catch."""
from __future__ import annotations

import faulthandler
import logging
import logging.handlers
import os
import sys
import traceback

from paipviewer.viewer.paths import log_dir

log = logging.getLogger("paipviewer")
LOG_NAME = "paipviewer.log"
_fault_file = None


def log_path():
    return log_dir() / LOG_NAME


def start_logging() -> None:
    """Log to the platform's log folder (rotated at 1 MB, three kept) and keep warnings on stderr."""
    folder = log_dir()
    folder.mkdir(parents=True, exist_ok=True)
    handler = logging.handlers.RotatingFileHandler(log_path(), maxBytes=1_000_000, backupCount=3, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    root.addHandler(handler)
    global _fault_file
    _fault_file = open(folder / "faults.log", "a", encoding="utf-8")  # a segfault's Python stack lands here
    faulthandler.enable(file=_fault_file, all_threads=True)
    log.info("PAIP Viewer started (Python %s, pid %d)", sys.version.split()[0], os.getpid())


def install_excepthook(show) -> None:
    """An exception that reaches the event loop is logged with its traceback, and ``show(text)``
    tells the user what happened and where the log is; the app keeps running."""
    def hook(kind, value, tb):
        text = "".join(traceback.format_exception(kind, value, tb))
        log.error("unexpected error\n%s", text)
        print(f"paipviewer: unexpected error ({kind.__name__}: {value}); logged to {log_path()}", file=sys.stderr)
        try:
            show(f"{kind.__name__}: {value}")
        except Exception:  # the dialog itself must never take the app down
            log.exception("could not show the error dialog")

    sys.excepthook = hook
