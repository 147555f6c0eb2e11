#!/usr/bin/env bash
# The zoo's own "ImageNet": the trunk classifiers (zoo/models/classifiers.py) pretrained on the classification view
# of zoo.data (one Fashion-MNIST object per image, 48..128 px, at several training sizes), whose trunks start every
# family (weights_backbone=, recipes/train_shipped.sh). On a 2-core CPU, one run per core (OMP_NUM_THREADS=1).
# All 60,000 Fashion-MNIST train glyphs: apt-get install dataset-fashion-mnist (else the shipped subset of 1,000).
# Each run logs val accuracy per epoch (and the train loss every 100 steps) to its log.jsonl: the curves of the
# README's "Weights trained here".
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1

# ResNet-18 (deep stem, width 0.375): the trunk of pspnet_resnet18. 6 epochs of 60,000 images, ~16 min.
python -m zoo train resnet18_classifier -k width=0.375 --epochs 6 --limit 60000 --batch-size 64 \
    --multi-size 48,64,80 --image-size 64 --lr 2e-3 --val-size 500 --output runs/pretrain/resnet18
python recipes/ship.py runs/pretrain/resnet18 resnet18_classifier.scenes --dtype float16 \
    --recipe recipes/pretrain_backbones.sh

# ZF-5 (width 0.25): the trunk of sppnet_zf5 and, through it, spp_detector_zf5. Trained larger (80..112 px) than
# the others: at 48..80 px its conv5 map is 3x3 to 5x5 and it reached 45 % val top-1 after 3 epochs (ResNet-18: 75).
python -m zoo train zf5_classifier -k width=0.25 --epochs 8 --limit 60000 --batch-size 64 \
    --multi-size 80,96,112 --image-size 96 --lr 2e-3 --val-size 500 --log-every 100 --output runs/pretrain/zf5
python recipes/ship.py runs/pretrain/zf5 zf5_classifier.scenes --dtype float16 --recipe recipes/pretrain_backbones.sh

# VGG-16-BN encoder (width 0.125): the encoder of deconvnet_vgg16.
python -m zoo train vgg16_bn_classifier -k width=0.125 --epochs 6 --limit 60000 --batch-size 64 \
    --multi-size 48,64,80 --image-size 64 --lr 2e-3 --val-size 500 --log-every 100 --channels-last --cpu-amp \
    --output runs/pretrain/vgg16_bn
python recipes/ship.py runs/pretrain/vgg16_bn vgg16_bn_classifier.scenes --dtype float16 \
    --recipe recipes/pretrain_backbones.sh

# VGG-16-BN encoder (width 0.25): the encoder of the 1/4-width DeconvNet (at 1/8 width its last decoder stage has 8
# channels for 11 classes, and it cannot fit even 8 training scenes). 4 epochs: 83.0 % test top-1 in 12 min.
python -m zoo train vgg16_bn_classifier -k width=0.25 --epochs 4 --limit 60000 --batch-size 64 \
    --multi-size 48,64,80 --image-size 64 --lr 2e-3 --val-size 500 --log-every 100 --channels-last --cpu-amp \
    --output runs/pretrain/vgg16_bn_w25
python recipes/ship.py runs/pretrain/vgg16_bn_w25 vgg16_bn_classifier.scenes-w25 --dtype float16 \
    --recipe recipes/pretrain_backbones.sh
