#!/bin/bash
# Recipe v2, chosen on validation only: ELU-Net 8/5 trained four ways on MoNuSeg train with the same
# budget (baseline = the shipped ELU-Net's recipe; + --stain-augment; + --scale-augment; + both), then
# each scored on its validation images (the card's validation tiles, and the whole validation images
# with `evaluate --split val`). The test images are never read. docs/results/recipe_v2.md says how
# the numbers decide.
#
# Run from the repository root. On a GPU (the four side by side, as docs/results/monuseg_gpu.sh):
#   KERAS_BACKEND=jax XLA_PYTHON_CLIENT_MEM_FRACTION=0.2 SEEDS="42 43 44" bash benchmarks/recipe_v2.sh
# On a CPU, one after another: PARALLEL=0 bash benchmarks/recipe_v2.sh
# A smoke run (a few minutes, not a measurement):
#   ARCH="--arch elunet --filters 4 --depth 4" BUDGET="--steps-per-epoch 16 --epochs 5 --max-minutes 10" \
#   VARIANTS="baseline stain" PARALLEL=0 bash benchmarks/recipe_v2.sh
# Rerunning skips the runs whose model file exists (delete $R to start over). Prints a table at the end;
# summary.csv beside the runs holds it.
set -eu
DATA=${DATA:-../shared/data/monuseg}; R=${R:-runs/recipe_v2}; PT=${PT:-.venv/bin/paip-train}
PY=${PY:-.venv/bin/python}
SEEDS=${SEEDS:-42}                   # each seed is its own split of train into train/val: comparisons are paired within it
PARALLEL=${PARALLEL:-1}              # 1: the variants of a seed side by side (a GPU); 0: one after another
VARIANTS=${VARIANTS:-baseline stain scale both}
ARCH=${ARCH:---arch elunet --filters 8 --depth 5}
# The shipped ELU-Net 8/5's recipe (docs/results/README.md); only the augmentation flags differ between runs.
RECIPE=${RECIPE:---loss bce_dice --augment --tune-threshold --lr 1e-3 --patience 25 --lr-plateau 8}
# The same budget for every run: the shipped model stopped early at epoch 85 of 48 batches; the cap is
# generous so that epochs (early stopping), not minutes, end each run, also four to a GPU.
BUDGET=${BUDGET:---steps-per-epoch 48 --epochs 150 --max-minutes 20}

flags() {
  case $1 in
    baseline) echo "" ;;
    stain) echo "--stain-augment" ;;
    scale) echo "--scale-augment" ;;
    both) echo "--stain-augment --scale-augment" ;;
    *) echo "unknown variant $1" >&2; exit 2 ;;
  esac
}

train() {  # seed variant
  local out="$R/seed$1/$2"
  mkdir -p "$out"
  if ls "$out"/*.keras > /dev/null 2>&1; then echo "$out: done already"; return; fi
  local resume=""; ls "$out"/.*.state.npz > /dev/null 2>&1 && resume="--resume"
  # shellcheck disable=SC2046,SC2086
  "$PT" fit --data "$DATA" --seed "$1" $ARCH $RECIPE $BUDGET $(flags "$2") $resume --verbose 2 --out "$out" \
    > "$out/fit.log" 2>&1 || echo "$out: fit failed (see $out/fit.log)"
}

for seed in $SEEDS; do
  "$PT" prepare --data "$DATA" --seed "$seed" > /dev/null  # once per split, before the runs share it
  for v in $VARIANTS; do
    if [ "$PARALLEL" = 1 ]; then train "$seed" "$v" & else train "$seed" "$v"; fi
  done
  wait
  for v in $VARIANTS; do  # whole validation images, as the shipped models were chosen
    out="$R/seed$seed/$v"
    if ls "$out"/*.keras > /dev/null 2>&1 && [ ! -f "$out/val/results.csv" ]; then
      KERAS_BACKEND=${CHOOSE_BACKEND:-tensorflow} "$PT" evaluate --data "$DATA" --seed "$seed" --split val \
        --runs 1 --out "$out/val" --models "$out"/*.keras > "$out/evaluate.log" 2>&1 \
        || echo "$out: evaluate failed (see $out/evaluate.log)"
    fi
  done
done

"$PY" - "$R" $SEEDS <<'PYEOF'
import csv, json, sys
from pathlib import Path

root, seeds = Path(sys.argv[1]), sys.argv[2:]
rows = []
for seed in seeds:
    for run in sorted((root / f"seed{seed}").iterdir()):
        cards = sorted(run.glob("*.json"))
        if not cards:
            continue
        card = json.loads(cards[0].read_text())
        t, val = card["training"], card["metrics"].get("validation", {})
        whole = {}
        if (run / "val" / "results.csv").is_file():
            with open(run / "val" / "results.csv", newline="") as fh:
                whole = next(csv.DictReader(fh), {})
        rows.append({"seed": seed, "variant": run.name, "stain": t.get("stain_augment"), "scale": t.get("scale_augment"),
                     "epochs": t["epochs_run"], "best_epoch": t["best_epoch"], "minutes": round(t["seconds"] / 60, 1),
                     "threshold": card["threshold"], "val_dice_tiles": round(val.get("dice_mean", float("nan")), 4),
                     "val_dice_images": whole.get("dice_image", ""), "val_dice_pooled": whole.get("dice_pooled", "")})
if rows:
    with open(root / "summary.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    print(" | ".join(rows[0]))
    for r in rows:
        print(" | ".join(str(v) for v in r.values()))
    base = {r["seed"]: r for r in rows if r["variant"] == "baseline"}
    for variant in sorted({r["variant"] for r in rows} - {"baseline"}):
        for key in ("val_dice_tiles", "val_dice_images"):
            d = [float(r[key]) - float(base[r["seed"]][key]) for r in rows
                 if r["variant"] == variant and r["seed"] in base and r[key] != "" and base[r["seed"]][key] != ""]
            if d:
                print(f"{variant} - baseline, {key}: mean {sum(d) / len(d):+.4f} over {len(d)} seed(s): "
                      + ", ".join(f"{x:+.4f}" for x in d))
PYEOF
