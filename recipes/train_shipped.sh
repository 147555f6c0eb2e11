#!/usr/bin/env bash
# The commands that trained the weights spp-zoo ships (zoo/weights/), on a 2-core CPU, then put them into the
# package with their test metrics (recipes/ship.py prints the sha256, size and metrics of each weights entry).
# Full Fashion-MNIST train glyphs: apt-get install dataset-fashion-mnist (else the shipped subset is used).
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1

# SPP-net classifier, multi-size training (the entry); the single-size run of the comparison drops --multi-size.
# The shipped entry was trained on the classification view before its smallest object was raised to
# max(20 px, 0.35 x side): re-running this trains on the current data (README: run 2 of the comparison).
python -m zoo train sppnet_zf5 -k width=0.25 -k representation_size=256 --epochs 8 --batch-size 32 \
    --image-size 64 --multi-size 48,64,80 --lr 3e-4 --output runs/sppnet_zf5_multi
python -m zoo train sppnet_zf5 -k width=0.25 -k representation_size=256 --epochs 8 --batch-size 32 \
    --image-size 64 --lr 3e-4 --output runs/sppnet_zf5_single
python recipes/ship.py runs/sppnet_zf5_multi sppnet_zf5.scenes

# SPP-net detector.
python -m zoo train spp_detector_zf5 -k trunk_width=0.25 -k representation_size=256 -k min_size=256 \
    -k max_size=384 -k 'anchor_sizes=[16,32,64,128,256]' -k rpn_pre_nms_top_n_train=1000 \
    -k rpn_post_nms_top_n_train=500 -k rpn_pre_nms_top_n_test=500 -k rpn_post_nms_top_n_test=300 \
    -k box_batch_size_per_image=128 --epochs 3 --limit 640 --batch-size 8 --lr 1e-3 --output runs/spp_detector_zf5
python recipes/ship.py runs/spp_detector_zf5 spp_detector_zf5.scenes

# PSPNet (ResNet-18, width 0.375).
python -m zoo train pspnet_resnet18 -k width=0.375 --epochs 4 --limit 2400 --batch-size 8 --image-size 128 \
    --lr 1e-3 --output runs/pspnet_resnet18
python recipes/ship.py runs/pspnet_resnet18 pspnet_resnet18.scenes

# DeconvNet (VGG-16 at 1/8 width).
python -m zoo train deconvnet_vgg16 -k width=0.125 -k fc_channels=1024 --epochs 2 --limit 640 --batch-size 8 \
    --image-size 224 --lr 1e-3 --output runs/deconvnet_vgg16
python recipes/ship.py runs/deconvnet_vgg16 deconvnet_vgg16.scenes

# SPP-net single- vs multi-size table (README).
python recipes/sppnet_multisize.py --single runs/sppnet_zf5_single --multi runs/sppnet_zf5_multi
