"""Peak memory of predict_image on large flat images: streaming against the old whole-image path.

Each size runs in a fresh process: load the model (ONNX Runtime by default), predict one warm-up tile
so the runtime's arena is allocated, note the peak RSS so far (the baseline), build a square H&E-like
image by tiling a real 1000x1000 MoNuSeg test image (so the model sees tissue, and no temporary copy
is made), run ``predict_image`` with the model card's preprocessing, and report the process's peak RSS
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``), the growth over the baseline, seconds and tiles.
``--old`` runs instead a copy of the previous implementation, which preprocessed the whole image to
float32 and cut every tile at once before predicting (kept here only to measure it).

    .venv/bin/python benchmarks/memory.py [--sizes 1000 4000 8000 16000] [--model PATH] [--old]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("PAIP_SHARED_DATA", REPO.parent / "shared" / "data")) / "monuseg"
DEFAULT_MODEL = REPO / "resources" / "models" / "elunet_8_5.onnx"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def old_predict_image(model, image, equalize, tile=256, overlap=32, batch=None):
    """predict_image before streaming: the whole image as float32, padded, every tile stacked, then stitched."""
    from paipviewer.core.inference import Prediction, predict_tiles
    from paipviewer.core.preprocess import preprocess
    from paipviewer.core.tiling import extract_tiles, stitch

    t0 = time.perf_counter()
    x = preprocess(image, equalize)
    tiles, layout = extract_tiles(x, tile, overlap)
    t1 = time.perf_counter()
    probs = predict_tiles(model, tiles, batch)
    t2 = time.perf_counter()
    return Prediction(probability=stitch(probs, layout), tiles=len(tiles),
                      timing={"preprocess": t1 - t0, "inference": t2 - t1, "total": t2 - t0})


def tissue(size: int, source: Path) -> np.ndarray:
    """A size x size RGB image tiled from a real one, written block by block into one array."""
    from paipviewer.core.imageio import read_image

    block = read_image(source)
    out = np.empty((size, size, 3), np.uint8)
    bh, bw = block.shape[:2]
    for y in range(0, size, bh):
        for x in range(0, size, bw):
            h, w = min(bh, size - y), min(bw, size - x)
            out[y:y + h, x:x + w] = block[:h, :w]
    return out


def child(size: int, model_path: Path, backend: str, old: bool, source: Path) -> dict:
    from paipviewer.core.inference import predict_image
    from paipviewer.core.modelfile import load_model

    loaded = load_model(model_path, backend=backend)
    loaded.model.predict_on_batch(np.zeros((1, 256, 256, 3), np.float32))
    baseline = peak_rss_mb()
    image = tissue(size, source)
    run = old_predict_image if old else predict_image
    t0 = time.perf_counter()
    pred = run(loaded.model, image, loaded.card.equalize)
    seconds = time.perf_counter() - t0
    peak = peak_rss_mb()
    return {"size": size, "path": "old" if old else "streaming", "backend": loaded.backend,
            "baseline_mb": round(baseline), "image_mb": round(image.nbytes / 2**20),
            "map_mb": round(pred.probability.nbytes / 2**20), "peak_mb": round(peak),
            "growth_mb": round(peak - baseline), "seconds": round(seconds, 1), "tiles": pred.tiles,
            "preprocess_s": round(pred.timing["preprocess"], 1), "inference_s": round(pred.timing["inference"], 1),
            "mean_probability": float(pred.probability.mean(dtype=np.float64))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 4000, 8000, 16000])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="a model file with its card")
    parser.add_argument("--backend", default="onnx", help="onnx (default), openvino or keras")
    parser.add_argument("--old", action="store_true", help="measure the previous whole-image implementation")
    parser.add_argument("--source", type=Path, help="the image to tile (default: the first MoNuSeg test image)")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    source = args.source or sorted((DATA / "test" / "images").glob("*.tif"))[0]
    if args.child:
        print(json.dumps(child(args.child, args.model, args.backend, args.old, source)))
        return 0

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(REPO)}
    print(f"model {args.model.name} ({args.backend}), {'old whole-image' if args.old else 'streaming'} path, "
          f"tissue tiled from {source.name}", flush=True)
    header = f"{'size':>6} {'tiles':>6} {'baseline MB':>11} {'image MB':>8} {'map MB':>6} {'peak MB':>7} " \
             f"{'growth MB':>9} {'seconds':>7}"
    print(header, flush=True)
    rows = []
    for size in args.sizes:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child", str(size), "--model", str(args.model),
               "--backend", args.backend, "--source", str(source)] + (["--old"] if args.old else [])
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
        if done.returncode:
            print(f"{size:>6} failed (exit {done.returncode}): {done.stderr.strip().splitlines()[-1:]}", flush=True)
            continue
        r = json.loads(done.stdout.strip().splitlines()[-1])
        rows.append(r)
        print(f"{r['size']:>6} {r['tiles']:>6} {r['baseline_mb']:>11} {r['image_mb']:>8} {r['map_mb']:>6} "
              f"{r['peak_mb']:>7} {r['growth_mb']:>9} {r['seconds']:>7}", flush=True)
    print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
