#!/usr/bin/env bash
# Attempts of the pretrain-then-fine-tune round that made no entry (README, "Weights trained here": why, with the
# numbers). Run after recipes/pretrain_backbones.sh and recipes/train_shipped.sh. The trees run reads the installed
# deepforest package's files (pip install --no-deps deepforest).
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1

# SPP-net detector on deepforest's real aerial trees (400 px tiles of the two Yellowstone crops), from the same
# trunk, evaluated on the held-out OSBS_029 photo: mAP@0.5 2.7 (val 3.5).
python -m zoo train spp_detector_zf5 --data trees --weights-backbone SPPNet_ZF5_Weights.SCENES_V2 \
    -k representation_size=256 -k min_size=400 -k max_size=400 -k 'anchor_sizes=[16,32,64,128]' \
    -k rpn_post_nms_top_n_test=300 --epochs 40 --batch-size 4 --lr 2e-4 --log-every 25 --val-size 1 \
    --output runs/ft/spp_detector_zf5_trees
# DeconvNet (VGG-16-BN at 1/8 width, fc6/fc7 of 1024/8), from the pretrained encoder: it predicts background
# everywhere (val mIoU 8.0 after 2 epochs), as the from-scratch SCENES_V1 does (test mIoU 8.17), which stays the
# entry. Also tried: 1/4 width from a 1/4-width encoder (83.0 % top-1 pretrained), lr 1e-3 and 5e-3: val mIoU 7.7
# after the first epoch.
python -m zoo train deconvnet_vgg16 --weights-backbone VGG16BN_Classifier_Weights.SCENES_V1 -k fc_channels=1024 \
    --epochs 2 --limit 8000 --batch-size 8 --image-size 224 --lr 1e-3 --val-size 50 --log-every 50 --channels-last \
    --cpu-amp --output runs/ft/deconvnet_vgg16
