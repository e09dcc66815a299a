#!/usr/bin/env bash
# Trains three ResNet-20s on Fashion-MNIST (seeds 1, 2, 3) and evaluates each and their ensemble.
# A documented benchmark run (docs/training.md), not a test: about 45 minutes on 2 cores.
# An interrupted member is resumed from its checkpoint. CONVNET picks the binary (default build/convnet).
# Usage: bench/fashion_resnet20_ensemble.sh [OUT_DIR] [EPOCHS]
set -euo pipefail
cd "$(dirname "$0")/.."
convnet=${CONVNET:-build/convnet}
out=${1:-runs/resnet20-ensemble}
epochs=${2:-6}
mkdir -p "$out"
for seed in 1 2 3; do
  if [ -f "$out/seed$seed/checkpoint.safetensors" ]; then
    "$convnet" train --resume --out "$out/seed$seed" --epochs "$epochs"
  else
    "$convnet" train resnet20 --epochs "$epochs" --batch 128 --lr 0.1 --momentum 0.9 --weight-decay 5e-4 \
      --schedule cosine --crop-padding 2 --flip --seed "$seed" --out "$out/seed$seed"
  fi
done
"$convnet" eval "$out/seed1" "$out/seed2" "$out/seed3"
