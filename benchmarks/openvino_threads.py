"""Two threads running OpenVINO at once, as the viewer does when it compares two models.

The viewer's OpenVinoModel is run as it is (one call in OpenVINO at a time) and with its lock taken
out ("unguarded"). Hangs: fresh processes in which two threads compile a model each and start their
first inference together (a barrier); one not finished in 30 s counts as hung. Speed: after a
warm-up one at a time, two threads x N tiles each, wall clock.

    .venv/bin/python benchmarks/openvino_threads.py [--runs 10] [--tiles 200]
"""
from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
MODELS = ("elunet_4_4", "elunet_8_4")


@contextlib.contextmanager
def lock_taken_out(unguarded: bool):
    from paipviewer.core import backends

    kept = backends._openvino_calls
    if unguarded:
        backends._openvino_calls = contextlib.nullcontext()
    try:
        yield
    finally:
        backends._openvino_calls = kept


def compiled(name: str):
    """The viewer's OpenVinoModel, compiled for a tile; its predict_on_batch."""
    from paipviewer.core.backends import load_openvino

    model = load_openvino(REPO / "resources" / "models" / f"{name}.onnx")
    model._request((1, 256, 256, 3))
    return model.predict_on_batch


def child(kind: str) -> None:
    """One process: two threads, their first inferences released together."""
    x = np.random.default_rng(0).random((1, 256, 256, 3), np.float32)
    barrier = threading.Barrier(2)

    def go(name):
        predict = compiled(name)
        barrier.wait()
        predict(x)

    with lock_taken_out(kind == "unguarded"):
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
    for unguarded in (True, False):
        predicts = [compiled(m) for m in MODELS]
        for p in predicts:  # warm-up one at a time, so the unguarded run cannot hang
            p(x)

        def loop(p):
            for _ in range(tiles):
                p(x)

        with lock_taken_out(unguarded):
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
    for kind in ("unguarded", "guarded"):
        print(f"{kind:9s}: {hangs(kind, args.runs)} of {args.runs} fresh processes hung at the first inference")
    unguarded, locked = speed(args.tiles)
    print(f"2 threads x {args.tiles} tiles: unguarded {unguarded:.1f} s, one call at a time {locked:.1f} s "
          f"({locked / unguarded:.2f}x)")


if __name__ == "__main__":
    main()
