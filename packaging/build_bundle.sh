#!/usr/bin/env bash
# Build the one-folder desktop bundle (PyInstaller, no TensorFlow) and smoke-test it: its size, and a
# --snapshot of the shipped samples run from outside the repository. Usage: packaging/build_bundle.sh
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
py="$repo/.venv/bin/python"
"$py" -m pip install --quiet -c "$repo/constraints.txt" "pyinstaller>=6.10"
cd "$repo"
"$py" -m PyInstaller --noconfirm --clean --log-level WARN --distpath dist --workpath build/pyinstaller \
    packaging/paipviewer.spec
# The interpreter's library carries its debugging symbols: 23 MB, 5.7 MB without.
strip --strip-unneeded dist/paipviewer/_internal/libpython3*.so*
size_mb=$(du -sm dist/paipviewer | cut -f1)
echo "bundle: dist/paipviewer is ${size_mb} MB"
test "$size_mb" -le 400 || { echo "bundle: over 400 MB" >&2; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
QT_QPA_PLATFORM=offscreen "$repo/dist/paipviewer/paipviewer" --version
QT_QPA_PLATFORM=offscreen "$repo/dist/paipviewer/paipviewer" --snapshot "$work/bundle.png"
test -s "$work/bundle.png"
echo "bundle: the snapshot of the samples works from outside the repository"
# Whole slides need libopenslide inside the bundle: score the test slide where the shared data lies.
slide="${PAIP_SHARED_DATA:-$repo/../shared/data}/slides/mosaic_20x.svs"
if [ -f "$slide" ]; then
    QT_QPA_PLATFORM=offscreen "$repo/dist/paipviewer/paipviewer" score "$slide" --model elunet_8_5 --out "$work/slide"
    awk -F, 'NR == 2 && $1 == "mosaic_20x.svs" && $4 > 0.7 {ok = 1} END {exit !ok}' "$work/slide/scores.csv"
    echo "bundle: the 20x test slide is read through OpenSlide and scored"
fi
