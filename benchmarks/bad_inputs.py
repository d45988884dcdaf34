"""How bad inputs are refused: the zip-bomb model's time and memory, and every case of the corpus
(tests/corpus.py) through the core readers with its message, time and allocation.

The zip bomb (a .keras whose weights member unpacks to 256 MiB of zeros, 255 kB on disk) is loaded
with ``load_model`` as ``paipviewer score --model`` and the viewer load it, in a fresh process per
run: wall time of the call, peak Python allocation during it (tracemalloc), and the process's peak
resident memory (VmHWM) at start, after the imports and after the call. Then each corpus case goes
through ``read_image``, ``read_mask`` (against a 256 x 256 image) or ``load_model``, timed, with
tracemalloc's peak.

    .venv/bin/python benchmarks/bad_inputs.py [--runs 5]
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

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ZIP_BOMB_PROBE = r"""
import json, sys, time, tracemalloc
from pathlib import Path

def peak_mb():  # this process's own peak resident memory (ru_maxrss would carry the parent's across exec)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024

before = peak_mb()
from paipviewer.core.modelfile import ModelFileError, load_model
imported = peak_mb()
tracemalloc.start()
t0 = time.perf_counter()
try:
    load_model(Path(sys.argv[1]))
    message = None
except ModelFileError as exc:
    message = str(exc)
seconds = time.perf_counter() - t0
_, peak = tracemalloc.get_traced_memory()
print(json.dumps({"seconds": seconds, "traced_peak_mb": peak / 2**20, "rss_start_mb": before,
                  "rss_imported_mb": imported, "rss_peak_mb": peak_mb(), "message": message,
                  "tensorflow_imported": "tensorflow" in sys.modules, "openvino_imported": "openvino" in sys.modules}))
"""

def zip_bomb(folder: Path, runs: int) -> list[dict]:
    from corpus import zip_bomb_model

    bomb = zip_bomb_model(folder / "bomb.keras")
    bomb.with_suffix(".json").write_text((REPO / "resources" / "models" / "elunet_8_5.json").read_text())
    results = []
    for _ in range(runs):
        done = subprocess.run([sys.executable, "-c", ZIP_BOMB_PROBE, str(bomb)], cwd=REPO, capture_output=True,
                              text=True, check=True)
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    for r in results:
        r["file_kb"] = bomb.stat().st_size / 1024
    return results


def corpus_run(folder: Path) -> list[tuple]:
    import tracemalloc

    import pytest

    import corpus
    from helpers import make_unreadable
    from paipviewer.core.imageio import ImageReadError, read_image, read_mask
    from paipviewer.core.modelfile import ModelFileError, load_model

    model = REPO / "resources" / "models" / "elunet_8_5.keras"
    cases = corpus.build(folder / "corpus", model)
    readers = {"image": read_image, "mask": lambda p: read_mask(p, corpus.SHAPE), "card": load_model,
               "model": load_model}
    rows = []
    for case in cases.values():
        with pytest.MonkeyPatch.context() as mp:
            if case.unreadable:
                make_unreadable(case.path, mp)
            tracemalloc.start()
            t0 = time.perf_counter()
            try:
                readers[case.kind](case.path)
                told = "read" if case.kind in ("image", "mask") else "loaded"
            except (ImageReadError, ModelFileError) as exc:
                told = str(exc)
            except Exception as exc:  # noqa: BLE001 (a case that escapes as another type is a finding)
                told = f"UNEXPECTED {type(exc).__name__}: {exc}"
            seconds = time.perf_counter() - t0
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        rows.append((case.kind, case.name, seconds, peak / 2**20, told))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="fresh processes for the zip bomb (5)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="paipviewer-bad-") as tmp:
        tmp = Path(tmp)
        bombs = zip_bomb(tmp, args.runs)
        print(f"zip-bomb model ({bombs[0]['file_kb']:.0f} kB on disk, 256 MiB inside), load_model in a fresh "
              f"process, {len(bombs)} runs:")
        print(f"  refused with: {bombs[0]['message']}")
        for r in bombs:
            print(f"  {r['seconds'] * 1000:7.1f} ms, traced peak {r['traced_peak_mb']:.2f} MB, RSS peak "
                  f"{r['rss_peak_mb']:.0f} MB (after imports {r['rss_imported_mb']:.0f} MB, at start "
                  f"{r['rss_start_mb']:.0f} MB), TensorFlow imported: {r['tensorflow_imported']}, "
                  f"OpenVINO imported: {r['openvino_imported']}")
        worst = max(bombs, key=lambda r: r["seconds"])
        print(f"  worst: {worst['seconds'] * 1000:.1f} ms, RSS peak {max(r['rss_peak_mb'] for r in bombs):.0f} MB")
        rows = corpus_run(tmp)
        print(f"\n{len(rows)} corpus cases through the core readers (read_image, read_mask, load_model):")
        print("| kind | case | ms | traced peak MB | message |")
        print("|---|---|---:|---:|---|")
        for kind, name, seconds, peak, told in rows:
            told = told.replace("|", "\\|")
            print(f"| {kind} | `{name}` | {seconds * 1000:.1f} | {peak:.2f} | {told[:160]} |")
        unexpected = [r for r in rows if r[4].startswith("UNEXPECTED")]
        print(f"\n{len(unexpected)} case(s) escaped as an unexpected error type")
    return 1 if unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
