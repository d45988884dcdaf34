"""Two threads running OpenVINO at once, as the viewer does when it compares two models.

``hang``: fresh processes in which two threads compile a model each and start their first inference
together (a barrier), straight through OpenVINO's bindings and through the viewer's OpenVinoModel,
which lets one call in at a time; a process that has not finished in 30 s counts as hung.
``speed``: after warming up, two threads x N tiles each, unguarded against guarded, wall clock.

    .venv/bin/python benchmarks/openvino_threads.py [--runs 10] [--tiles 200]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
MODELS = ("elunet_4_4", "elunet_8_4")
sys.path.insert(0, str(REPO))


def raw(name: str):
    """A model compiled and run through OpenVINO directly: no lock."""
    from paipviewer.core.backends import openvino_core, openvino_precision

    core = openvino_core()
    model = core.read_model(str(REPO / "resources" / "models" / f"{name}.onnx"))
    model.reshape([1, 256, 256, 3])
    compiled = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": openvino_precision() or "f32",
                                                 "PERFORMANCE_HINT": "LATENCY"})
    request, output = compiled.create_infer_request(), compiled.output(0)
    return lambda x: request.infer({0: x})[output].copy()


def guarded(name: str):
    """The viewer's path: OpenVinoModel, compiled here for a tile, one call in OpenVINO at a time."""
    from paipviewer.core.backends import load_openvino

    model = load_openvino(REPO / "resources" / "models" / f"{name}.onnx")
    model._request((1, 256, 256, 3))
    return model.predict_on_batch


def child(kind: str) -> None:
    """One process: two threads, their first inferences released together."""
    x = np.random.default_rng(0).random((1, 256, 256, 3), np.float32)
    barrier = threading.Barrier(2)

    def go(name):
        predict = raw(name) if kind == "raw" else guarded(name)
        barrier.wait()
        predict(x)

    threads = [threading.Thread(target=go, args=(m,)) for m in MODELS]
    [t.start() for t in threads]
    [t.join() for t in threads]


def hangs(kind: str, runs: int) -> int:
    hung = 0
    for _ in range(runs):
        try:
            subprocess.run([sys.executable, __file__, "--child", kind], timeout=30, capture_output=True, check=True)
        except subprocess.TimeoutExpired:
            hung += 1
    return hung


def speed(tiles: int) -> tuple[float, float]:
    x = np.random.default_rng(0).random((1, 256, 256, 3), np.float32)
    out = []
    for make in (raw, guarded):
        predicts = [make(m) for m in MODELS]
        for p in predicts:  # warm-up one at a time, so the unguarded run cannot hang
            p(x)

        def loop(p):
            for _ in range(tiles):
                p(x)

        threads = [threading.Thread(target=loop, args=(p,)) for p in predicts]
        t0 = time.perf_counter()
        [t.start() for t in threads]
        [t.join() for t in threads]
        out.append(time.perf_counter() - t0)
    return out[0], out[1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--tiles", type=int, default=200)
    p.add_argument("--child")
    args = p.parse_args()
    if args.child:
        return child(args.child)
    flags = set(Path("/proc/cpuinfo").read_text().split())
    print(f"CPU: {os.cpu_count()} cores, " + ", ".join(f for f in ("avx2", "avx512_bf16", "amx_bf16") if f in flags))
    for kind in ("raw", "guarded"):
        print(f"{kind:8s}: {hangs(kind, args.runs)} of {args.runs} fresh processes hung at the first inference")
    unguarded, locked = speed(args.tiles)
    print(f"2 threads x {args.tiles} tiles: unguarded {unguarded:.1f} s, one call at a time {locked:.1f} s "
          f"({locked / unguarded:.2f}x)")


if __name__ == "__main__":
    main()
