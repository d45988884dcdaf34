"""The Qt binding must not lose references when C++ calls a Python override.

PySide6 6.12.0 on Python 3.11 drops a reference to None on every Python ``paint`` or
``QIconEngine`` override called from C++; after a few thousand repaints the interpreter aborts with
"none_dealloc". pyproject.toml excludes that release; this test catches the next one that leaks.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

PROBE = Path(__file__).with_name("refcount_probe.py")
CALLS = 5000  # a leak of one reference a call empties None's ~8000 well within this


def test_python_overrides_called_from_cpp_keep_their_references():
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    run = subprocess.run([sys.executable, str(PROBE), str(CALLS)], capture_output=True, text=True,
                         env=env, timeout=300)
    assert run.returncode == 0, (f"the probe died (rc {run.returncode}) after Python overrides were called "
                                 f"from C++: {run.stderr.strip()[-400:]}")
    result = json.loads(run.stdout.strip().splitlines()[-1])
    for path in ("paint", "icon"):
        for name, moved in result[path].items():
            # A small fall could be a cache letting go of objects; a leak falls by ~1 per call.
            assert moved > -50, (f"PySide6 {result['pyside']} on Python {result['python']} lost {-moved} "
                                 f"references to {name} in {result['calls']} {path} calls")
