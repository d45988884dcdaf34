"""Running a model file: one small interface over each format, chosen by the file's suffix.

Every backend returns an object with ``predict_on_batch(x)``: float32 tiles (N, h, w, 3) in, the
sigmoid map (N, h, w, 1) out; :func:`paipviewer.core.inference.predict_tiles` drives either.

- ``.onnx`` through OpenVINO in bf16 where that is installed and the CPU has native bf16 (AVX-512
  BF16, AMX): about twice as fast there.
- ``.onnx`` through ONNX Runtime in fp32: the default elsewhere. No TensorFlow is imported, the
  graph is optimised once at load, and an ONNX file holds operators and weights only, never code.
- ``.keras`` through Keras in safe mode (a Lambda layer or other pickled code is refused): the
  source of truth and the training format.
"""
from __future__ import annotations

import os
import threading
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


def runtime_reason(exc: BaseException, limit: int = 300) -> str:
    """A runtime's error in one line for the user: its first line that says something. OpenVINO opens
    with where in its C++ sources the exception passed ("Exception from src/inference/src/cpp/core.cpp:84:"),
    which tells a user nothing; the reason follows on a later line."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    told = [line for line in lines if not line.startswith("Exception from src/")]
    return ((told or lines or [type(exc).__name__])[0])[:limit]


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
        raise ModelFileError(f"{path.name}: cannot load the ONNX model ({runtime_reason(exc)})") from None
    if len(session.get_inputs()) != 1 or len(session.get_outputs()) != 1:
        raise ModelFileError(f"{path.name}: expected one input and one output")
    return OnnxModel(session)


# OpenVINO's Python bindings deadlock when two threads make their first inference at the same time:
# both stop for good in the input tensor's `.data` (7 of 10 fresh processes, benchmarks/
# openvino_threads.py, 4 of 6 on a rerun; the viewer comparing two models hung so in CI). One call at
# a time costs nothing: a LATENCY-hinted request already uses every core, and two threads x 100 tiles
# took 0.99x the unguarded time on a quiet machine (0.83x with a training run beside them).
# Making the Core, reading and compiling a model take the same lock.
_openvino_calls = threading.RLock()
_core = None


class OpenVinoModel:
    """An ONNX file compiled by OpenVINO for this CPU, in bf16 where the CPU has it natively (about
    twice ONNX Runtime's fp32 speed there; masks agree with fp32 on 99.95% of pixels). One compiled
    network per tile size: a static shape runs 20-30% faster than a dynamic one."""

    def __init__(self, core, path: Path, precision: str) -> None:
        self._core, self._path, self.precision = core, path, precision
        self._compiled: dict[tuple, object] = {}
        with _openvino_calls:
            model = core.read_model(str(path))
            self.input_shape = tuple(d.get_length() if d.is_static else None
                                     for d in model.inputs[0].get_partial_shape())
            self.output_shape = tuple(d.get_length() if d.is_static else None
                                      for d in model.outputs[0].get_partial_shape())

    def _request(self, shape: tuple):
        with _openvino_calls:
            if shape not in self._compiled:
                model = self._core.read_model(str(self._path))
                model.reshape(list(shape))
                compiled = self._core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": self.precision,
                                                                    "PERFORMANCE_HINT": "LATENCY"})
                self._compiled[shape] = (compiled.create_infer_request(), compiled.output(0))
            return self._compiled[shape]

    def predict_on_batch(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, np.float32)
        out = []
        for tile in x:  # one tile per call, the static shape compiled once
            with _openvino_calls:
                request, output = self._request((1, *tile.shape))
                out.append(request.infer({0: tile[None]})[output].copy())
        return np.concatenate(out)


def openvino_precision() -> str | None:
    """"bf16" where OpenVINO is installed and the CPU computes bf16 natively; else None (ONNX Runtime
    in fp32 is as fast as OpenVINO in fp32 here, and needs no extra install). PAIPVIEWER_PRECISION=fp32
    asks for exact fp32 everywhere."""
    from .cpu import native_bf16

    if os.environ.get("PAIPVIEWER_PRECISION", "").lower() == "fp32" or not native_bf16():
        return None
    try:
        import openvino  # noqa: F401
    except ImportError:
        return None
    return "bf16"


def openvino_core():
    """The process's one OpenVINO Core, made on first use. OpenVINO recommends one per application:
    each Core loads its own CPU plugin with its own thread pool, and the viewer loads two models at
    once from two worker threads."""
    global _core
    with _openvino_calls:
        if _core is None:
            import openvino

            _core = openvino.Core()
        return _core


def load_openvino(path: Path) -> OpenVinoModel:
    try:
        return OpenVinoModel(openvino_core(), path, openvino_precision() or "f32")
    except Exception as exc:  # OpenVINO raises RuntimeError for damaged or foreign files
        raise ModelFileError(f"{path.name}: cannot load the ONNX model ({runtime_reason(exc)})") from None


def load_keras(path: Path):
    """A Keras model in safe mode, rewrapped so that callers pass plain arrays."""
    try:
        import keras
    except ImportError:
        raise ModelFileError(f"{path.name}: running a .keras needs TensorFlow (pip install paipviewer[train]); "
                             "a model with its .onnx beside it does not") from None

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


BACKENDS = {"openvino": (".onnx", load_openvino), "onnx": (".onnx", load_onnx), "keras": (".keras", load_keras)}


def speed_order() -> tuple[str, ...]:
    """Backends fastest first; the default is the first whose file exists (benchmarks/inference.py)."""
    return ("openvino", "onnx", "keras") if openvino_precision() else ("onnx", "keras")


def shapes(model) -> tuple[tuple, tuple]:
    """(input shape, output shape) of a loaded model of any backend, None for a free dimension."""
    if isinstance(model, (OnnxModel, OpenVinoModel)):
        return model.input_shape, model.output_shape
    return tuple(model.inputs[0].shape), tuple(model.outputs[0].shape)


def export_onnx(keras_path: Path, path: Path, tile: int = 256) -> Path:
    """Write the ONNX twin of a saved .keras file, atomically. The export runs in a fresh process: in a
    process that had already exported or run other models, Keras' exporter now and then traced a
    five-dimensional graph, which the check on load then refused."""
    import subprocess
    import sys

    from .atomic import atomic_path

    code = "import sys; from paipviewer.core.backends import _export; _export(sys.argv[1], sys.argv[2], int(sys.argv[3]))"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    # The five-dimensional trace still comes now and then in a fresh process (twice in about 60 exports
    # under load); the graph is checked here and the export made again, at most three times.
    ranks = None
    for _ in range(3):
        try:
            with atomic_path(path) as tmp:
                done = subprocess.run([sys.executable, "-c", code, str(keras_path), str(tmp), str(tile)],
                                      env=env, capture_output=True, text=True)
                if done.returncode != 0:
                    last = (done.stderr.strip().splitlines() or ["no message"])[-1]
                    raise ModelFileError(f"{path.name}: the ONNX export failed ({last[:300]})")
                ranks = _onnx_ranks(tmp)
                if ranks != (4, 4):
                    raise _WrongTrace()  # the temporary is removed, never committed
            return path
        except _WrongTrace:
            continue
    raise ModelFileError(f"{path.name}: the ONNX export gave a graph of ranks {ranks}, not images in and out")


class _WrongTrace(Exception):
    pass


def _onnx_ranks(path: Path) -> tuple[int, int]:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return len(session.get_inputs()[0].shape), len(session.get_outputs()[0].shape)


def _export(keras_path: str, out: str, tile: int) -> None:
    """The export itself, in its own process (see :func:`export_onnx`)."""
    import keras

    model = load_keras(Path(keras_path))
    model.predict_on_batch(np.zeros((1, tile, tile, 3), np.float32))
    signature = [keras.InputSpec(shape=(None, None, None, 3), dtype="float32")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # tf2onnx probes np.object, gone from NumPy 2
        model.export(out, format="onnx", verbose=False, input_signature=signature)
