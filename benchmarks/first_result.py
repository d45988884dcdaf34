"""A first result: from starting ``paipviewer TILE --snapshot OUT.png`` to the figure on disk, against
``python -c "import tensorflow"`` measured in the same run, each in a fresh process, alternating.

    .venv/bin/python benchmarks/first_result.py [--repeats 5]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def timed(args: list[str], env: dict) -> float:
    t0 = time.perf_counter()
    subprocess.run(args, env=env, check=True, capture_output=True, cwd=REPO)
    return time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    tile = sorted((REPO / "resources" / "samples" / "images").glob("*.png"))[0]
    env = {**os.environ, "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen")}
    snapshots, imports = [], []
    with tempfile.TemporaryDirectory() as scratch:
        for i in range(args.repeats):
            out = Path(scratch) / f"first_{i}.png"
            snapshots.append(timed([sys.executable, "-m", "paipviewer", str(tile), "--snapshot", str(out)], env))
            imports.append(timed([sys.executable, "-c", "import tensorflow"], env))
    snap, imp = statistics.median(snapshots), statistics.median(imports)
    print(f"paipviewer TILE --snapshot OUT.png: median {snap:.2f} s ({', '.join(f'{t:.2f}' for t in snapshots)})")
    print(f'python -c "import tensorflow":     median {imp:.2f} s ({", ".join(f"{t:.2f}" for t in imports)})')
    print(f"first result / TensorFlow's import: {snap / imp:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
