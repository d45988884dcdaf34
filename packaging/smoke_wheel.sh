#!/usr/bin/env bash
# Install the built wheel in a fresh virtualenv and use it from a folder outside the repository: the
# viewer alone (no TensorFlow) snapshots the shipped samples with the default model; with [train],
# paip-train works. Usage: packaging/smoke_wheel.sh DIST_DIR
set -euo pipefail
dist="$(cd "${1:-dist}" && pwd)"
repo="$(cd "$(dirname "$0")/.." && pwd)"
wheel="$(ls -t "$dist"/paipviewer-*.whl | head -1)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python3 -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet --upgrade pip
"$work/venv/bin/python" -m pip install --quiet -c "$repo/constraints.txt" "$wheel"
cd "$work"  # nothing of the repository on the path from here on
"$work/venv/bin/paipviewer" --version
if "$work/venv/bin/python" -c "import tensorflow" 2>/dev/null; then
    echo "smoke: the viewer's wheel pulled in TensorFlow" >&2; exit 1
fi
QT_QPA_PLATFORM=offscreen "$work/venv/bin/paipviewer" --snapshot "$work/samples.png"
test -s "$work/samples.png"
# The command line scores a shipped sample and reads a slide library from the wheel (openslide-bin).
samples="$("$work/venv/bin/python" -c 'from paipviewer.viewer.paths import sample_dir; print(sample_dir())')"
"$work/venv/bin/paipviewer" score "$samples" --model elunet_8_5 --out "$work/scores" > /dev/null
test "$(wc -l < "$work/scores/scores.csv")" -ge 17
"$work/venv/bin/python" -c "import openslide; print('openslide', openslide.__library_version__)"
"$work/venv/bin/python" -m pip install --quiet -c "$repo/constraints.txt" "$wheel[train]"
"$work/venv/bin/paip-train" --version
"$work/venv/bin/paip-train" params > "$work/params.csv"
test "$(wc -l < "$work/params.csv")" -ge 19
echo "smoke: the wheel works outside the repository (viewer without TensorFlow; trainer with [train])"
