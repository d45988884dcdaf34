"""Work and the machine's limit: convolution GFLOP per tile of a model, and this CPU's float32 GEMM rate,
so a speed figure can be read as a share of what the machine can do."""
from __future__ import annotations

import time

import numpy as np


def sgemm_gflops(n: int = 2048, repeats: int = 5) -> float:
    """float32 GEMM rate of this machine through NumPy's BLAS, GFLOP/s."""
    a = np.random.default_rng(0).random((n, n), dtype=np.float32)
    a @ a
    t0 = time.perf_counter()
    for _ in range(repeats):
        a @ a
    return 2 * n ** 3 * repeats / (time.perf_counter() - t0) / 1e9


def conv_gflop(model, tile: int = 256) -> float:
    """Multiply-adds of every convolution at a ``tile`` x ``tile`` input, x2 (what a GEMM-based kernel
    executes). The feature-map sizes come from one forward pass, since the models take any input size."""
    import keras

    convs = [layer for layer in model.layers if isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv2DTranspose))]
    probe = keras.Model(model.inputs, [layer.output for layer in convs])
    maps = probe.predict(np.zeros((1, tile, tile, 3), np.float32), verbose=0)
    total = 0
    for layer, out in zip(convs, maps):
        kh, kw = layer.kernel.shape[:2]
        h, w = out.shape[1:3]
        if isinstance(layer, keras.layers.Conv2DTranspose):  # each input pixel scatters one kernel
            cout, cin = layer.kernel.shape[2:]
            h, w = h // layer.strides[0], w // layer.strides[1]
        else:
            cin, cout = layer.kernel.shape[2:]
        total += 2 * h * w * kh * kw * cin * cout
    return total / 1e9
