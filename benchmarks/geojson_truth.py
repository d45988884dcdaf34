"""Memory and time of a whole slide's nuclei as QuPath GeoJSON: written, and read back as ground truth.

A realistic export: the 6,697 real nuclei of ``mosaic_40x_instances.png`` traced to QuPath polygons
(``geojson.features``) and repeated over a ``--grid`` x ``--grid`` mosaic of the 5000 px slide, so a
grid of 7 is a 35,000 px slide with 328k nuclei. Each step runs in a fresh process:

- ``write``: ``geojson.write``, one feature at a time (as ``paipviewer score`` writes a slide's);
  ``write-old``: the previous way, every feature in a list, then one ``json.dumps`` of the document;
- ``read``: ``evidence.truth_labels`` into a memory-mapped file (the slide window and ``score``), the
  file parsed one feature at a time; ``read-old``: the same with the previous ``json.loads`` of the
  whole document; ``read-memory``: the labels in an array in memory instead of the mapped file.

``--draw`` instead times drawing alone on the 40x slide's own 6,697 nuclei, each polygon's rows at
once (now) against row by row (before: ``geojson.ALL_ROWS_AT_ONCE = 0``), best of 3 in one process,
and checks that both give the same labels.

A thread samples ``/proc/self/status`` every 10 ms: the report gives the peak of anonymous memory (what
the process itself holds: Python objects, arrays in memory) and of resident file pages (the mapped
labels, which the kernel may write back and evict), with ``ru_maxrss`` and seconds.

    .venv/bin/python benchmarks/geojson_truth.py [--grid 7] [--steps write write-old read read-old read-memory]
    .venv/bin/python benchmarks/geojson_truth.py --draw
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SLIDES = Path(os.environ.get("PAIP_SHARED_DATA", REPO.parent / "shared" / "data")) / "slides"
CELL = 5000  # mosaic_40x is 5000 x 5000
STEPS = ["write", "write-old", "read", "read-old", "read-memory"]


def mosaic_features(grid: int):
    """The real nuclei's features, shifted to each cell of a grid x grid mosaic, made as they are asked for."""
    import numpy as np

    from paipviewer.core.geojson import features
    from paipviewer.core.imageio import read_labels

    base = list(features(read_labels(SLIDES / "mosaic_40x_instances.png")))
    for gy in range(grid):
        for gx in range(grid):
            for f in base:
                ring = (np.asarray(f["geometry"]["coordinates"][0]) + (gx * CELL, gy * CELL)).tolist()
                yield {**f, "geometry": {"type": "Polygon", "coordinates": [ring]}}


def old_write(path: Path, items) -> int:
    """How a slide's GeoJSON was written before: one document in memory, then one string."""
    from paipviewer.core.atomic import write_text_atomic

    collection = {"type": "FeatureCollection", "features": list(items)}
    write_text_atomic(path, json.dumps(collection, separators=(",", ":")) + "\n")
    return len(collection["features"])


def old_read(path):
    """How a GeoJSON was parsed before: the whole document by ``json.loads``."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    items = data.get("features") if isinstance(data, dict) else data
    for k, item in enumerate(items):
        yield item, k, len(items)


class Sampler(threading.Thread):
    """Peak RssAnon and RssFile+RssShmem of this process, in MB, sampled every 10 ms."""

    def __init__(self):
        super().__init__(daemon=True)
        self.anon = self.file = 0.0
        self.stop = threading.Event()

    def run(self):
        while not self.stop.wait(0.01):
            fields = {}
            with open("/proc/self/status") as fh:
                for line in fh:
                    key, _, value = line.partition(":")
                    if key in ("RssAnon", "RssFile", "RssShmem"):
                        fields[key] = int(value.split()[0]) / 1024
            self.anon = max(self.anon, fields.get("RssAnon", 0))
            self.file = max(self.file, fields.get("RssFile", 0) + fields.get("RssShmem", 0))


def child(step: str, path: Path, grid: int) -> dict:
    from paipviewer.core import geojson
    from paipviewer.core.evidence import truth_labels

    sampler = Sampler()
    sampler.start()
    time.sleep(0.05)
    baseline = sampler.anon
    size = grid * CELL
    with tempfile.TemporaryDirectory() as folder:
        t0 = time.perf_counter()
        if step.startswith("write"):
            count = (old_write if step == "write-old" else geojson.write)(path, mosaic_features(grid))
        else:
            if step == "read-old":
                geojson.read = old_read
            labels = truth_labels(path, (size, size), None if step == "read-memory" else Path(folder))
        seconds = time.perf_counter() - t0
        sampler.stop.set()
        sampler.join()
        if not step.startswith("write"):
            count = int(labels.max())  # after the sampler: this reads every page, which showing them need not
            del labels
    return {"step": step, "nuclei": count, "seconds": round(seconds, 1), "baseline_anon_mb": round(baseline),
            "peak_anon_mb": round(sampler.anon), "peak_file_mb": round(sampler.file),
            "maxrss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "file_mb": round(path.stat().st_size / 2**20)}


def draw() -> None:
    import numpy as np

    from paipviewer.core import geojson
    from paipviewer.core.imageio import read_labels

    labels = read_labels(SLIDES / "mosaic_40x_instances.png")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "slide.geojson"
        geojson.write(path, geojson.features(labels))
        got, best = {}, {}
        for name, limit in (("row by row (before)", 0), ("rows at once (now)", geojson.ALL_ROWS_AT_ONCE)):
            geojson.ALL_ROWS_AT_ONCE, times = limit, []
            for _ in range(3):
                t0 = time.perf_counter()
                got[name] = geojson.read_labels_geojson(path, labels.shape)
                times.append(time.perf_counter() - t0)
            best[name] = min(times)
            print(f"{name:>20}: {best[name]:.2f} s for {int(got[name].max()):,} nuclei", flush=True)
    before, now = best.values()
    same = np.array_equal(*got.values())
    print(f"ratio {before / now:.2f}x; labels {'identical' if same else 'DIFFER'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", type=int, default=7, help="slides per side of the mosaic (7: 35,000 px)")
    parser.add_argument("--steps", nargs="+", default=STEPS, choices=STEPS,
                        help="what to measure, in order; a read needs a write before it")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--path", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--draw", action="store_true", help="time drawing alone, now against before")
    args = parser.parse_args()
    if args.draw:
        draw()
        return 0
    if args.child:
        print(json.dumps(child(args.child, args.path, args.grid)))
        return 0

    size = args.grid * CELL
    print(f"a {size:,} x {size:,} px slide, {args.grid}x{args.grid} copies of mosaic_40x's real nuclei; "
          f"labels {size * size * 4 / 2**20:,.0f} MB as int32", flush=True)
    print(f"{'step':>11} {'nuclei':>8} {'file MB':>7} {'seconds':>7} {'anon MB':>8} {'mapped MB':>9} "
          f"{'maxrss MB':>9}", flush=True)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "export.geojson"
        for step in args.steps:
            cmd = [sys.executable, str(Path(__file__).resolve()), "--child", step, "--path", str(path),
                   "--grid", str(args.grid)]
            done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
            if done.returncode:
                print(f"{step:>11} failed (exit {done.returncode}): {done.stderr.strip().splitlines()[-1:]}")
                continue
            r = json.loads(done.stdout.strip().splitlines()[-1])
            print(f"{r['step']:>11} {r['nuclei']:>8,} {r['file_mb']:>7} {r['seconds']:>7} {r['peak_anon_mb']:>8} "
                  f"{r['peak_file_mb']:>9} {r['maxrss_mb']:>9}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
