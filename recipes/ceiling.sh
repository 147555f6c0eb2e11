#!/usr/bin/env bash
# How far the classification view goes with more training (README, "Weights trained here": the data's ceiling).
# The ResNet-18 trunk classifier of recipes/pretrain_backbones.sh with its schedule doubled (12 epochs instead of
# 6, everything else equal), then its test accuracy at the training size and above. Measured: val top-1 80.2 after
# 12 epochs (the 6-epoch run: 78.0); test acc@1 82.4 at 64x64, 83.2 at 80x80 (the shipped 6-epoch entry: 79.0).
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1

python -m zoo train resnet18_classifier -k width=0.375 --epochs 12 --limit 60000 --batch-size 64 \
    --multi-size 48,64,80 --image-size 64 --lr 2e-3 --val-size 500 --log-every 100 --output runs/ceiling/resnet18_e12
for size in 64 80 96; do
    python -m zoo eval resnet18_classifier --weights runs/ceiling/resnet18_e12 --image-size "$size" --json
done
