"""The core, the viewer's state and the trainer never import Qt: the viewer and the trainer share
them as they are, and the state is tested without a display."""
from __future__ import annotations

import subprocess
import sys

from conftest import REPO

CHECK = """
import sys, pkgutil, importlib
import paipviewer.core, paipviewer.viewer, paip_trainer, paipviewer.score
packages = (paipviewer.core, paipviewer.viewer, paip_trainer)
names = [m.name for p in packages for m in pkgutil.walk_packages(p.__path__, p.__name__ + '.')] + ['paipviewer.score']
for name in names:
    importlib.import_module(name)
qt = sorted(m for m in sys.modules if m.split('.')[0] in ('PySide6', 'PyQt5', 'PyQt6', 'shiboken6', 'pyqtgraph', 'qtawesome'))
print(len(names), qt)
assert not qt, qt
"""


def test_core_viewer_state_and_trainer_import_without_qt():
    out = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr[-2000:]
    n_modules = int(out.stdout.split()[0])
    assert n_modules >= 10


def test_core_does_not_load_tensorflow_for_cards_and_metrics():
    code = ("import sys, paipviewer.core.modelfile, paipviewer.core.metrics, paipviewer.core.datasets, "
            "paipviewer.viewer.session, paipviewer.viewer.plan, paipviewer.viewer.describe; "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
