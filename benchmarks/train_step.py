"""Training speed per tile on this CPU: fp32 against mixed bf16, with and without XLA.

Usage: python benchmarks/train_step.py [ARCH FILTERS DEPTH]   (default elunet 8 5)
Prints ms per 256x256 tile for a training step at batch 8, after one warm-up step, and the
CPU's native bf16 support. Run it on an idle machine: other load changes the figures.
"""
from __future__ import annotations

import sys
import time

import numpy as np


def measure(arch: str, filters: int, depth: int, policy: str, xla: bool, steps: int = 3) -> float:
    import keras

    from trainer.models import build_model

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
        model.train_on_batch(x, y)
    return (time.perf_counter() - start) / (steps * 8) * 1000


def main() -> None:
    from trainer.fit import cpu_supports_bf16

    arch, filters, depth = (sys.argv[1], int(sys.argv[2]), int(sys.argv[3])) if len(sys.argv) == 4 else ("elunet", 8, 5)
    print(f"native bf16 on this CPU: {cpu_supports_bf16()}")
    print("variant,policy,xla,ms_per_tile")
    for policy in ("float32", "mixed_bfloat16"):
        for xla in (False, True):
            print(f"{arch}_{filters}_{depth},{policy},{xla},{measure(arch, filters, depth, policy, xla):.0f}", flush=True)


if __name__ == "__main__":
    main()
