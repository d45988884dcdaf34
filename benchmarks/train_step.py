"""Training speed per tile: fp32 against mixed bf16, with and without XLA, on whatever Keras trains on.

Usage: python benchmarks/train_step.py [ARCH FILTERS DEPTH] [--steps N] [--xla-only]   (default elunet 8 5)
Prints the Keras backend and device, the CPU's native bf16 support, and ms per 256x256 tile for a
training step at batch 8, after one warm-up step. Run it on an idle machine: other load changes the
figures. On a GPU give more steps (say 50): a step there takes milliseconds.
"""
from __future__ import annotations

import argparse
import time

import numpy as np


def measure(arch: str, filters: int, depth: int, policy: str, xla: bool, steps: int = 3) -> float:
    import keras

    from paip_trainer.models import build_model

    keras.mixed_precision.set_global_policy(policy)
    model = build_model(arch, filters, depth)
    keras.mixed_precision.set_global_policy("float32")
    model.compile(keras.optimizers.Adam(1e-4), "binary_crossentropy", jit_compile=xla)
    rng = np.random.default_rng(0)
    x = rng.random((8, 256, 256, 3), dtype=np.float32)
    y = (rng.random((8, 256, 256, 1)) > 0.7).astype(np.float32)
    model.train_on_batch(x, y)
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)  # returns the loss as a number, so each step has finished
    return (time.perf_counter() - start) / (steps * 8) * 1000


def main() -> None:
    import keras

    from paipviewer.core.cpu import native_bf16
    from paip_trainer.fit import training_device

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variant", nargs="*", default=["elunet", "8", "5"], help="ARCH FILTERS DEPTH")
    parser.add_argument("--steps", type=int, default=3, help="timed steps after the warm-up (3)")
    parser.add_argument("--xla-only", action="store_true", help="skip the runs without XLA")
    args = parser.parse_args()
    arch, filters, depth = args.variant[0], int(args.variant[1]), int(args.variant[2])
    print(f"keras {keras.__version__} on {keras.backend.backend()}, device {training_device()}; "
          f"native bf16 on this CPU: {native_bf16()}")
    print("variant,policy,xla,ms_per_tile")
    for policy in ("float32", "mixed_bfloat16"):
        for xla in (True,) if args.xla_only else (False, True):
            ms = measure(arch, filters, depth, policy, xla, args.steps)
            print(f"{arch}_{filters}_{depth},{policy},{xla},{ms:.2f}", flush=True)


if __name__ == "__main__":
    main()
