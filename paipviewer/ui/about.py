"""Help > About: what this is, its versions, and its licences (code MIT, data CC BY-NC-SA 4.0)."""
from __future__ import annotations

import sys
from importlib.metadata import PackageNotFoundError, version

from PySide6 import __version__ as pyside_version
from PySide6.QtCore import qVersion
from PySide6.QtWidgets import QMessageBox

from paipviewer import __version__


def _version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def about_text() -> str:
    runtimes = ", ".join(f"{name} {_version(dist)}" for name, dist in
                         (("ONNX Runtime", "onnxruntime"), ("OpenVINO", "openvino"), ("TensorFlow", "tensorflow")))
    return (f"<h3>PAIP Viewer {__version__}</h3>"
            "<p>Segment tumour nuclei in H&amp;E images with U-Net and ELU-Net models, see where a model is "
            "right and wrong against the ground truth, and compare two models side by side.</p>"
            f"<p>Python {sys.version.split()[0]}, Qt {qVersion()}, PySide6 {pyside_version}<br>{runtimes}</p>"
            "<p><b>Licences.</b> The code is MIT. The default models and the sample tiles derive from MoNuSeg "
            "2018 and keep its licence, CC BY-NC-SA 4.0 (non-commercial, share alike): Kumar N. et al., "
            "IEEE TMI 36(7):1550-1560, 2017, and IEEE TMI 2019. The study reproduced: Ramdhani et al., "
            "JNTETI 14(1), 2025.</p>"
            "<p>Not a medical device: for research and education.</p>")


def show_about(parent) -> None:
    QMessageBox.about(parent, "About PAIP Viewer", about_text())
