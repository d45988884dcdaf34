"""Running a model file: one small interface over each format, chosen by the file's suffix.

Every backend returns an object with ``predict_on_batch(x)``: float32 tiles (N, h, w, 3) in, the
sigmoid map (N, h, w, 1) out. :func:`preferred_batch` is the batch size measured fastest for each on
a CPU (``benchmarks/inference.py``); :func:`paipviewer.core.inference.predict_tiles` drives either.

- ``.onnx`` through ONNX Runtime: the viewer's default. No TensorFlow is imported, the graph is
  optimised once at load, and an ONNX file holds operators and weights only, never code.
- ``.keras`` through Keras in safe mode (a Lambda layer or other pickled code is refused): the
  source of truth and the training format.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from .modelfile import ModelFileError


class OnnxModel:
    def __init__(self, session) -> None:
        self.session = session
        (self._input,) = session.get_inputs()
        (self._output,) = session.get_outputs()
        self.input_shape = tuple(d if isinstance(d, int) else None for d in self._input.shape)
        self.output_shape = tuple(d if isinstance(d, int) else None for d in self._output.shape)

    def predict_on_batch(self, x: np.ndarray) -> np.ndarray:
        return self.session.run([self._output.name], {self._input.name: np.ascontiguousarray(x, np.float32)})[0]


def onnx_threads() -> int:
    """Intra-op threads: the cores this process may use (a container may allow fewer than exist)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def load_onnx(path: Path) -> OnnxModel:
    try:
        import onnxruntime as ort
    except ImportError:
        raise ModelFileError(f"{path.name}: ONNX Runtime is not installed (pip install onnxruntime)") from None
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = onnx_threads()
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # warnings about unused initialisers are not the user's business
    try:
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises its own types for damaged or foreign files
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelFileError(f"{path.name}: cannot load the ONNX model ({message[:300]})") from None
    if len(session.get_inputs()) != 1 or len(session.get_outputs()) != 1:
        raise ModelFileError(f"{path.name}: expected one input and one output")
    return OnnxModel(session)


def load_keras(path: Path):
    """A Keras model in safe mode, rewrapped so that callers pass plain arrays."""
    import keras

    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:  # Keras raises many types for damaged or unsafe files
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelFileError(f"{path.name}: cannot load the model ({message[:300]})") from None
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ModelFileError(f"{path.name}: expected one input and one output, got {len(model.inputs)} and "
                           f"{len(model.outputs)}")
    # A reloaded functional model expects its one input wrapped in a list; rewrap it.
    return keras.Model(model.inputs[0], model.outputs[0], name=model.name)


FORMATS = {".onnx": load_onnx, ".keras": load_keras}
SPEED_ORDER = (".onnx", ".keras")  # the default backend is the first whose file exists


def preferred_batch(model) -> int:
    """Tiles per call, by measurement (benchmarks/inference.py, 2 cores): ONNX Runtime runs batches
    of 1 to 8 within a few percent of each other, and 4 keeps cancel checks and progress frequent;
    Keras' predict_on_batch is fastest one tile at a time."""
    return 4 if isinstance(model, OnnxModel) else 1


def shapes(model) -> tuple[tuple, tuple]:
    """(input shape, output shape) of a loaded model of any backend, None for a free dimension."""
    if isinstance(model, OnnxModel):
        return model.input_shape, model.output_shape
    return tuple(model.inputs[0].shape), tuple(model.outputs[0].shape)


def export_onnx(model, path: Path, tile: int = 256) -> Path:
    """Write a Keras model as ONNX (Keras' own exporter), atomically. The model must take any
    spatial size; it is called once first, since the exporter needs a traced model."""
    from .atomic import atomic_path

    model.predict_on_batch(np.zeros((1, tile, tile, 3), np.float32))
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # tf2onnx probes np.object, gone from NumPy 2
        model.export(str(tmp), format="onnx", verbose=False)
    return path
