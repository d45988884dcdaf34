"""Inference speed, the study's protocol: from loading a model file to the last of 57 predictions.

Each way runs in a fresh process on the same 57 seeded, equalised 256x256 MoNuSeg test tiles:

- ``keras-predict``: plain Keras, ``model.predict(x, batch_size=8)``
- ``keras-one``: plain Keras, one tile at a time with ``predict_on_batch``
- ``project-keras``: the project's Keras path (``load_model(backend="keras")`` + ``predict_tiles``)
- ``project-onnx``: the project's ONNX Runtime path in fp32 (``load_model(backend="onnx")``)
- ``project-default``: the project's default path (``load_model`` + ``predict_tiles``), the viewer's:
  OpenVINO in bf16 where installed and the CPU has native bf16, else ONNX Runtime

Printed per way: import, load, 57 tiles and per tile, GFLOP/s against this machine's measured
float32 GEMM rate, the largest difference from plain Keras' output and the share of mask pixels that
agree at the card's threshold; then the ratio of the project's default path to the fastest plain
Keras way. ``--variants`` also times ONNX Runtime settings (threads, graph optimisation, batch).

    .venv/bin/python benchmarks/inference.py [--models elunet_8_5 unet_32_5] [--markdown OUT.md]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from paip_trainer.flops import conv_gflop, sgemm_gflops

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("PAIP_SHARED_DATA", REPO.parent / "shared" / "data")) / "monuseg"
WAYS = ("keras-predict", "keras-one", "project-keras", "project-onnx", "project-default")
N_TILES, SEED = 57, 42


def make_tiles(card, out: Path) -> Path:
    """The 57 tiles evaluate scores: test images equalised whole, cut without overlap, seeded pick."""
    from paipviewer.core.datasets import discover
    from paipviewer.core.preprocess import to_float
    from paip_trainer.evaluate import pick_tiles
    from paip_trainer.prepare import PrepareSettings, tiles_of

    test = discover(DATA / "test")
    x, _, _ = tiles_of(test, PrepareSettings(equalize=card.equalize, flips=False))
    np.save(out, to_float(x[pick_tiles(len(x), N_TILES, SEED)]))
    return out


def conv_gflop_per_tile(keras_path: Path, tile: int = 256) -> float:
    import keras

    return conv_gflop(keras.saving.load_model(keras_path, compile=False, safe_mode=True), tile)


def run_way(way: str, model: Path, tiles: Path, out: Path, ort_options: dict | None = None) -> dict:
    """One way, timed in this (fresh) process."""
    t0 = time.perf_counter()
    x = np.load(tiles)
    if way.startswith("keras"):
        import keras  # noqa: F401  (the import is part of what plain Keras costs)
        t1 = time.perf_counter()
        m = keras.saving.load_model(model, compile=False, safe_mode=True)
        t2 = time.perf_counter()
        if way == "keras-predict":
            y = m.predict(x, batch_size=8, verbose=0)[..., 0]
        else:
            y = np.concatenate([m.predict_on_batch(x[i:i + 1]) for i in range(len(x))])[..., 0]
    else:
        from paipviewer.core.backends import speed_order
        from paipviewer.core.inference import predict_tiles
        from paipviewer.core.modelfile import load_model
        backend = {"project-keras": "keras", "project-onnx": "onnx", "project-default": speed_order()[0]}[way]
        __import__({"keras": "keras", "onnx": "onnxruntime", "openvino": "openvino"}[backend])
        t1 = time.perf_counter()
        loaded = load_model(model, backend=backend)
        if ort_options:
            loaded.model.session = _session(loaded.path, **ort_options)
        t2 = time.perf_counter()
        y = predict_tiles(loaded.model, x, batch=(ort_options or {}).get("batch"))
    t3 = time.perf_counter()
    np.save(out, y.astype(np.float32))
    backend = way if way.startswith("keras") else loaded.backend + (
        f" {loaded.model.precision}" if loaded.backend == "openvino" else "")
    return {"import_s": t1 - t0, "load_s": t2 - t1, "predict_s": t3 - t2, "backend": backend}


def _session(path: Path, threads: int, level: str, batch: int | None = None):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def in_fresh_process(way: str, model: Path, tiles: Path, out: Path, ort_options: dict | None = None) -> dict:
    args = [sys.executable, __file__, "--child", way, str(model), str(tiles), str(out), json.dumps(ort_options)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(args, capture_output=True, text=True, env=env, cwd=REPO, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench_model(stem: str, gemm: float, scratch: Path, variants: bool) -> list[dict]:
    from paipviewer.core.modelfile import read_card
    from paipviewer.viewer.paths import shipped_models_dir

    keras_path = shipped_models_dir() / f"{stem}.keras"
    card = read_card(keras_path)
    tiles = make_tiles(card, scratch / f"{stem}_tiles.npy")
    gflop = conv_gflop_per_tile(keras_path)
    ways = [(w, None) for w in WAYS]
    if variants:
        ways += [(f"onnx {level.split('_')[-1].lower()}, {t} thread(s), batch {b}", {"threads": t, "level": level, "batch": b})
                 for level in ("ORT_ENABLE_ALL", "ORT_ENABLE_BASIC") for t in (1, 2) for b in (1, 8)]
    rows, reference = [], None
    for way, options in ways:
        out = scratch / f"{stem}_{len(rows)}.npy"
        kind = "project-onnx" if options else way
        timing = in_fresh_process(kind, keras_path, tiles, out, options)
        y = np.load(out)
        if reference is None:
            reference = y
        agree = float(np.mean((y >= card.threshold) == (reference >= card.threshold)))
        per_tile = timing["predict_s"] / N_TILES
        rows.append({"model": card.label, "way": way, **timing, "per_tile_ms": 1000 * per_tile,
                     "gflops": gflop / per_tile, "of_gemm": gflop / per_tile / gemm,
                     "max_diff": float(np.abs(y - reference).max()), "mask_agree": agree})
    return rows


def table(rows: list[dict], gemm: float) -> str:
    lines = [f"float32 GEMM on this machine: {gemm:.0f} GFLOP/s (NumPy, 2048x2048)", "",
             "| model | way | runs on | import s | load + 57 tiles s | per tile ms | GFLOP/s (of GEMM) | max diff "
             "| masks agree |", "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['way']} | {r['backend']} | {r['import_s']:.2f} | {r['load_s'] + r['predict_s']:.2f} | "
                     f"{r['per_tile_ms']:.0f} | {r['gflops']:.0f} ({100 * r['of_gemm']:.0f}%) | {r['max_diff']:.1e} | "
                     f"{100 * r['mask_agree']:.3f}% |")
    for model in dict.fromkeys(r["model"] for r in rows):
        mine = {r["way"]: r["load_s"] + r["predict_s"] for r in rows if r["model"] == model}
        plain = min(mine["keras-predict"], mine["keras-one"])
        lines.append(f"\n{model}, load + 57 tiles against the fastest plain Keras way: the project's default "
                     f"path {mine['project-default'] / plain:.2f}x, its ONNX Runtime fp32 path "
                     f"{mine['project-onnx'] / plain:.2f}x, its Keras path {mine['project-keras'] / plain:.2f}x.")
    return "\n".join(lines)


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        way, model, tiles, out, options = sys.argv[2:7]
        print(json.dumps(run_way(way, Path(model), Path(tiles), Path(out), json.loads(options))))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["elunet_8_5", "unet_32_5"])
    parser.add_argument("--variants", action="store_true", help="also time ONNX Runtime settings")
    parser.add_argument("--markdown", type=Path, help="write the table here too")
    args = parser.parse_args()
    gemm = sgemm_gflops()
    with tempfile.TemporaryDirectory() as scratch:
        rows = [r for stem in args.models for r in bench_model(stem, gemm, Path(scratch), args.variants)]
    text = table(rows, gemm)
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
