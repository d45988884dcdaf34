"""Settings are the user's file: a damaged one never stops the app, each bad value falls back."""
from __future__ import annotations

import logging
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest

from paipviewer.viewer.layers import LayerState
from paipviewer.ui.settings import Settings

DAMAGED = """[General]
opacity=abc
model_files=[not json
layers_annotated={"outline": "yes"}
geometry=@ByteArray(not qt geometry)
model=/models/elunet_8_5.keras
"""


def test_damaged_values_fall_back_to_defaults_and_are_logged(tmp_path, caplog):
    path = tmp_path / "settings.ini"
    path.write_text(DAMAGED)
    s = Settings(path)
    with caplog.at_level(logging.WARNING, logger="paipviewer.ui.settings"):
        assert s.opacity == pytest.approx(0.6)
        assert s.model_files == []
        assert s.layer_set("annotated") == LayerState.default("annotated")
        assert s.layer_set("plain") == LayerState.default("plain")
    assert s.model == "/models/elunet_8_5.keras"  # a good value beside bad ones is kept
    logged = caplog.text
    assert "opacity='abc'" in logged and "model_files" in logged and "layers_annotated" in logged


@pytest.mark.parametrize("stored, expected", [("nan", 0.6), ("7", 1.0), ("-1", 0.0), ("0.25", 0.25)])
def test_opacity_is_a_fraction(tmp_path, stored, expected):
    path = tmp_path / "settings.ini"
    path.write_text(f"[General]\nopacity={stored}\n")
    assert Settings(path).opacity == pytest.approx(expected)


def test_model_list_must_be_file_names(tmp_path):
    path = tmp_path / "settings.ini"
    path.write_text('[General]\nmodel_files="{\\"a\\": 1}"\n')
    assert Settings(path).model_files == []
    s = Settings(tmp_path / "fresh.ini")
    s.model_files = ["/b.keras", "/a.keras", "/a.keras"]
    assert Settings(tmp_path / "fresh.ini").model_files == ["/a.keras", "/b.keras"]


def test_window_starts_on_a_damaged_settings_file(qtbot, tmp_path):
    from paipviewer.ui.app import build_window

    path = tmp_path / "settings.ini"
    path.write_text(DAMAGED)
    window = build_window([], settings=Settings(path), background_scoring=False)
    qtbot.addWidget(window)
    assert window.layers_panel.opacity.value() == 60 and window.model_key  # the default model
    assert window.width() > 300  # Qt refused the damaged geometry; the window took its default size
    window.close()
