#!/bin/bash
# The shipped U-Net 32/5 and ELU-Net 8/5: five candidates trained from scratch side by side on one GPU
# (Keras on JAX), then the best of each architecture chosen on the 6 validation images (whole-image Dice).
# Needs jax with GPU support in the environment (not a project dependency): pip install "jax[cuda13]".
# Run from the repository root; DATA defaults to the shared MoNuSeg folder.
set -eu
DATA=${DATA:-../shared/data/monuseg}; R=${R:-runs/gpu}; PT=${PT:-.venv/bin/paip-train}
export KERAS_BACKEND=jax XLA_PYTHON_CLIENT_MEM_FRACTION=0.15
"$PT" prepare --data "$DATA"
fit() {
  local name=$1; shift
  "$PT" fit --data "$DATA" --loss bce_dice --augment --tune-threshold --steps-per-epoch 48 --epochs 400 \
    --max-minutes 5 --verbose 2 --out "$R/$name" "$@" > "$R/$name.log" 2>&1
}
mkdir -p "$R"
U="--arch unet --filters 32 --depth 5"
fit unet_lr1e-4 $U --lr 1e-4 --patience 25 --lr-plateau 8 &
fit unet_lr2e-4 $U --lr 2e-4 --patience 25 --lr-plateau 8 &
fit unet_lr4e-4 $U --lr 4e-4 --patience 25 --lr-plateau 8 &   # collapses to all background
fit unet_lr2e-4_p4 $U --lr 2e-4 --patience 20 --lr-plateau 4 &  # shipped
fit elunet_lr1e-3 --arch elunet --filters 8 --depth 5 --lr 1e-3 --patience 25 --lr-plateau 8 &  # shipped
wait
# The choice (on the CPU machine is fine too): whole-image Dice on the validation images, never the test set.
KERAS_BACKEND=${CHOOSE_BACKEND:-tensorflow} "$PT" evaluate --data "$DATA" --split val --out "$R/val" --models "$R"/*/*.keras
