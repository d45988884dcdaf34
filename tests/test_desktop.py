"""Desktop-app habits: versions, a log file, a crash that is logged and shown, recent files, close all,
and the resources found through the installed package."""
from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import subprocess
import sys

from paipviewer import __version__
from paipviewer.viewer.paths import resources_dir, sample_dir, shipped_models_dir
from ui_fixtures import copy_samples


def cli(*args, env=None, timeout=240):
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "QT_QPA_PLATFORM": "offscreen", **(env or {})})


def test_both_commands_say_their_version():
    for module in ("paipviewer", "paip_trainer.cli"):
        done = cli(module, "--version", timeout=60)
        assert done.returncode == 0 and done.stdout.strip().endswith(__version__)


def test_the_resources_come_from_the_package():
    assert resources_dir().name == "resources" and (resources_dir() / "__init__.py").is_file()
    assert (shipped_models_dir() / "elunet_8_5.onnx").is_file() and (shipped_models_dir() / "SOURCE.txt").is_file()
    assert len(list((sample_dir() / "images").glob("*.png"))) == 16 and (sample_dir() / "SOURCE.txt").is_file()


def test_a_crash_on_purpose_is_logged_and_shown_and_the_app_goes_on(tmp_path):
    tile = sorted((copy_samples(tmp_path / "tiles", 1) / "images").glob("*.png"))[0]
    state = tmp_path / "state"
    done = cli("paipviewer", str(tile), "--snapshot", str(tmp_path / "fig.png"),
               env={"PAIPVIEWER_CRASH_TEST": "1", "XDG_STATE_HOME": str(state), "XDG_CONFIG_HOME": str(tmp_path)})
    assert done.returncode == 0 and (tmp_path / "fig.png").is_file()  # the app went on to its figure
    log = state / "paipviewer" / "log" / "paipviewer.log"
    assert f"logged to {log}" in done.stderr
    text = log.read_text()
    assert "Traceback" in text and "crash on purpose" in text and "PAIP Viewer started" in text


def test_recent_files_and_close_all(qtbot, tmp_path):
    from paipviewer.ui.app import build_window
    from paipviewer.ui.settings import Settings

    w = build_window([], settings=Settings(tmp_path / "s.ini"), background_scoring=False)
    qtbot.addWidget(w)
    folder = copy_samples(tmp_path / "tiles", 2)
    w.open_paths([folder])
    assert w.settings.recent[0] == str(folder.resolve())
    w.close_all()
    assert not w.session.entries and w.image_list.count() == 0 and w.view.image_shape is None
    w.open_recent(str(tmp_path / "gone"))
    assert "no longer exists" in w.notifications.messages()[0]
    w.open_recent(w.settings.recent[0])
    assert len(w.session.entries) == 2
    w.close()
