"""SPP-net object detection (He et al., 2014, Sec. 4) on the fused RoI spatial-pyramid-pooling kernel.

The conv trunk runs ONCE on the whole (resized) image; every region is pooled from that shared
feature map by :class:`kernels.RoISPP` at levels {6, 3, 2, 1} (50 bins, torchvision's ``roi_pool``
conventions, ``spatial_scale`` = 1 / feature stride), then fc6/fc7 (4096, ReLU, dropout), class
scores over ``num_classes`` (background included, torchvision's convention) and per-class box
regression, then per-class NMS (``torchvision.ops.batched_nms`` inside torchvision's ``RoIHeads``).

Region proposals come from a built-in region proposal network (so the model runs end to end from an
image, is trainable and scriptable), or from boxes the caller passes in (e.g. selective search, as in
the paper): ``model(images, proposals=[boxes_of_image_0, ...])`` with boxes in original image pixels.
Everything else is torchvision's detection machinery (``GeneralizedRCNN``, ``RegionProposalNetwork``,
``RoIHeads``, ``GeneralizedRCNNTransform``), so inputs, targets, losses and outputs follow
torchvision's detection API.

A TorchScript file of a detector needs ``import torchvision`` before ``torch.jit.load`` (its
``roi_pool``/``nms`` operators), not ``zoo`` nor ``kernels``. Note that torchvision's
``GeneralizedRCNNTransform`` rounds the resized image size differently when scripted (a 100-pixel
side scaled by 1.28 gives 128 eager, 127 scripted), so eager and scripted detections agree exactly
only where the resize factor is exact.
"""

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor
from torchvision.models.detection.generalized_rcnn import GeneralizedRCNN
from torchvision.models.detection.roi_heads import RoIHeads
from torchvision.models.detection.rpn import RegionProposalNetwork, RPNHead
from torchvision.models.detection.transform import GeneralizedRCNNTransform, resize_boxes
from torchvision.ops import FrozenBatchNorm2d
from torchvision.ops._utils import convert_boxes_to_roi_format

import kernels
from kernels import reference

from ._api import WeightsEnum, load_weights, override_num_classes, register_model, verify_weights
from .backbones import RESNET_WEIGHTS, ZF5, resnet_trunk

__all__ = [
    "RoISPPPooler",
    "SPPBoxHead",
    "SPPNetDetector",
    "SPPDetector_ZF5_Weights",
    "SPPDetector_ResNet50_Weights",
    "spp_detector_zf5",
    "spp_detector_resnet50",
]

SPP_LEVELS = (6, 3, 2, 1)


class RoISPPPooler(nn.Module):
    """RoI spatial pyramid pooling with ``MultiScaleRoIAlign``'s interface, for ``RoIHeads.box_roi_pool``.

    ``forward(features, proposals, image_shapes)`` pools every box of ``proposals`` (one (L_i, 4)
    tensor per image, in resized-image pixels) from ``features[featmap_name]`` and returns
    (sum L_i, C * sum(n*n)).
    """

    def __init__(self, featmap_name: str = "0", levels: Sequence[int] = SPP_LEVELS, spatial_scale: float = 1 / 16):
        super().__init__()
        self.featmap_name = featmap_name
        self.roi_spp = kernels.RoISPP(levels, spatial_scale)
        self.levels: list[int] = list(self.roi_spp.levels)
        self.spatial_scale: float = float(self.roi_spp.spatial_scale)
        self.use_kernels: bool = True

    def output_features(self, channels: int) -> int:
        return self.roi_spp.output_features(channels)

    def forward(
        self, features: dict[str, Tensor], proposals: list[Tensor], image_shapes: list[tuple[int, int]]
    ) -> Tensor:
        fmap = features[self.featmap_name]
        rois = convert_boxes_to_roi_format(proposals)
        if self.use_kernels:
            return self.roi_spp(fmap, rois)
        return reference.roi_spp(fmap, rois, self.levels, self.spatial_scale)


class SPPBoxHead(nn.Module):
    """SPP-net's fc6 and fc7: Linear + ReLU + Dropout, twice."""

    def __init__(self, in_features: int, representation_size: int = 4096, dropout: float = 0.5):
        super().__init__()
        self.fc6 = nn.Linear(in_features, representation_size)
        self.fc7 = nn.Linear(representation_size, representation_size)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        x = self.dropout(torch.relu(self.fc6(x.flatten(1))))
        return self.dropout(torch.relu(self.fc7(x)))


class SPPNetDetector(GeneralizedRCNN):
    """SPP-net detector: shared conv trunk + (RPN or given proposals) + RoI-SPP + fc6/fc7 + predictor.

    ``forward(images, targets=None, proposals=None)``: ``images`` a list of (3, H, W) tensors (any
    sizes), ``targets`` (training) torchvision-style dicts with ``boxes``/``labels``, ``proposals``
    an optional list of (L_i, 4) boxes in original image pixels (then the RPN is skipped). Returns the
    losses in training and a list of ``{"boxes", "labels", "scores"}`` in eval (a ``(losses,
    detections)`` tuple when scripted), like torchvision's Faster R-CNN.

    Args:
        backbone: conv trunk returning one feature map; needs ``out_channels``.
        num_classes: classes including background.
        feature_stride: the trunk's total stride (16 for ZF-5); RoIs map by ``1 / feature_stride``.
        min_size, max_size: image resizing (SPP-net's single-scale detection uses a shorter side of 688).
        rpn_*, box_*: as torchvision's ``FasterRCNN``.
    """

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int = 21,
        feature_stride: int = 16,
        levels: Sequence[int] = SPP_LEVELS,
        representation_size: int = 4096,
        dropout: float = 0.5,
        min_size: int = 688,
        max_size: int = 2000,
        image_mean: Sequence[float] = (0.485, 0.456, 0.406),
        image_std: Sequence[float] = (0.229, 0.224, 0.225),
        anchor_sizes: Sequence[int] = (32, 64, 128, 256, 512),
        aspect_ratios: Sequence[float] = (0.5, 1.0, 2.0),
        rpn_pre_nms_top_n_train: int = 2000,
        rpn_pre_nms_top_n_test: int = 1000,
        rpn_post_nms_top_n_train: int = 2000,
        rpn_post_nms_top_n_test: int = 1000,
        rpn_nms_thresh: float = 0.7,
        rpn_fg_iou_thresh: float = 0.7,
        rpn_bg_iou_thresh: float = 0.3,
        rpn_batch_size_per_image: int = 256,
        rpn_positive_fraction: float = 0.5,
        box_score_thresh: float = 0.05,
        box_nms_thresh: float = 0.5,
        box_detections_per_img: int = 100,
        box_fg_iou_thresh: float = 0.5,
        box_bg_iou_thresh: float = 0.5,
        box_batch_size_per_image: int = 512,
        box_positive_fraction: float = 0.25,
    ):
        if not hasattr(backbone, "out_channels"):
            raise ValueError("backbone must have an 'out_channels' attribute")
        channels = backbone.out_channels
        anchors = AnchorGenerator((tuple(anchor_sizes),), (tuple(aspect_ratios),))
        rpn = RegionProposalNetwork(
            anchors,
            RPNHead(channels, anchors.num_anchors_per_location()[0]),
            rpn_fg_iou_thresh,
            rpn_bg_iou_thresh,
            rpn_batch_size_per_image,
            rpn_positive_fraction,
            {"training": rpn_pre_nms_top_n_train, "testing": rpn_pre_nms_top_n_test},
            {"training": rpn_post_nms_top_n_train, "testing": rpn_post_nms_top_n_test},
            rpn_nms_thresh,
        )
        pooler = RoISPPPooler("0", levels, 1.0 / feature_stride)
        roi_heads = RoIHeads(
            pooler,
            SPPBoxHead(pooler.output_features(channels), representation_size, dropout),
            FastRCNNPredictor(representation_size, num_classes),
            box_fg_iou_thresh,
            box_bg_iou_thresh,
            box_batch_size_per_image,
            box_positive_fraction,
            None,
            box_score_thresh,
            box_nms_thresh,
            box_detections_per_img,
        )
        transform = GeneralizedRCNNTransform(min_size, max_size, list(image_mean), list(image_std))
        super().__init__(backbone, rpn, roi_heads, transform)
        self.num_classes = num_classes

    def forward(
        self,
        images: list[Tensor],
        targets: list[dict[str, Tensor]] | None = None,
        proposals: list[Tensor] | None = None,
    ) -> tuple[dict[str, Tensor], list[dict[str, Tensor]]]:
        if self.training and targets is None:
            raise ValueError("targets (boxes and labels per image) are required in training mode")
        if proposals is not None and len(proposals) != len(images):
            raise ValueError(f"proposals must hold one (L, 4) tensor per image, got {len(proposals)} for {len(images)}")
        original_sizes: list[tuple[int, int]] = []
        for image in images:
            if image.dim() != 3 or image.shape[0] != 3:
                raise ValueError(f"each image must be a (3, H, W) tensor, got shape {list(image.shape)}")
            original_sizes.append((image.shape[-2], image.shape[-1]))

        batch, targets = self.transform(images, targets)
        features = self.backbone(batch.tensors)  # the conv trunk runs once per image
        if isinstance(features, Tensor):
            features = OrderedDict([("0", features)])

        if proposals is None:
            boxes, proposal_losses = self.rpn(batch, features, targets)
        else:
            boxes = []
            for i, given in enumerate(proposals):
                if given.dim() != 2 or given.shape[-1] != 4:
                    raise ValueError(f"proposals[{i}] must have shape (L, 4), got {list(given.shape)}")
                given = given.to(features["0"].dtype)
                boxes.append(resize_boxes(given, list(original_sizes[i]), list(batch.image_sizes[i])))
            proposal_losses: dict[str, Tensor] = {}
        detections, detector_losses = self.roi_heads(features, boxes, batch.image_sizes, targets)
        detections = self.transform.postprocess(detections, batch.image_sizes, original_sizes)

        losses: dict[str, Tensor] = {}
        losses.update(detector_losses)
        losses.update(proposal_losses)
        if torch.jit.is_scripting():
            return losses, detections
        return self.eager_outputs(losses, detections)


class SPPDetector_ZF5_Weights(WeightsEnum):
    """Weights of :func:`spp_detector_zf5`. No entries yet. Meta schema: :mod:`zoo._api`."""


class SPPDetector_ResNet50_Weights(WeightsEnum):
    """Weights of :func:`spp_detector_resnet50`. No entries yet. Meta schema: :mod:`zoo._api`."""


@register_model()
def spp_detector_zf5(
    *,
    weights: SPPDetector_ZF5_Weights | None = None,
    progress: bool = True,
    num_classes: int | None = None,
    weights_backbone=None,
    trunk_width: float = 1.0,
    **kwargs,
) -> SPPNetDetector:
    """SPP-net detector on ZF-5 (stride 16): conv5 256 ch -> RoI-SPP {6,3,2,1} (12,800-d) -> fc6/fc7 4096.

    Args:
        weights: a :class:`SPPDetector_ZF5_Weights` entry (none published yet) or None.
        progress: show a download progress bar.
        num_classes: classes including background (default 21: PASCAL VOC's 20 + background).
        weights_backbone: must be None (no ImageNet ZF-5 weights exist in torchvision).
        trunk_width: ZF-5 channel multiplier (1.0 = the paper; smaller only for quick tests).
        **kwargs: :class:`SPPNetDetector` options (``min_size``, ``representation_size``, ``rpn_*``...).
    """
    weights = verify_weights(weights, SPPDetector_ZF5_Weights, "spp_detector_zf5")
    if weights_backbone is not None:
        raise ValueError(f"spp_detector_zf5 has no pretrained backbone weights, got {weights_backbone!r}")
    num_classes = override_num_classes(num_classes, weights, default=21)
    model = SPPNetDetector(ZF5(trunk_width), num_classes, feature_stride=ZF5.STRIDE, **kwargs)
    return load_weights(model, weights, progress)


@register_model()
def spp_detector_resnet50(
    *,
    weights: SPPDetector_ResNet50_Weights | None = None,
    progress: bool = True,
    num_classes: int | None = None,
    weights_backbone=None,
    **kwargs,
) -> SPPNetDetector:
    """SPP-net detector on ResNet-50: layer4 dilated (stride 16), a 1x1 conv 2048 -> 256 + ReLU, then
    RoI-SPP {6,3,2,1} (12,800-d, as on ZF-5's conv5) -> fc6/fc7 4096.

    Args:
        weights: a :class:`SPPDetector_ResNet50_Weights` entry (none published yet) or None.
        progress: show a download progress bar.
        num_classes: classes including background (default 21).
        weights_backbone: torchvision ``ResNet50_Weights``; with them BN is frozen
            (``FrozenBatchNorm2d``), as in torchvision's detectors.
        **kwargs: :class:`SPPNetDetector` options.
    """
    weights = verify_weights(weights, SPPDetector_ResNet50_Weights, "spp_detector_resnet50")
    arch = "spp_detector_resnet50"
    weights_backbone = verify_weights(weights_backbone, RESNET_WEIGHTS[50], arch, "weights_backbone")
    if weights is not None:
        weights_backbone = None
    num_classes = override_num_classes(num_classes, weights, default=21)
    norm_layer = FrozenBatchNorm2d if weights_backbone is not None else nn.BatchNorm2d
    trunk = resnet_trunk(50, weights_backbone, progress, dilate_layer4=True, norm_layer=norm_layer)
    backbone = nn.Sequential(
        OrderedDict([("body", trunk), ("reduce", nn.Conv2d(2048, 256, 1)), ("relu", nn.ReLU(inplace=True))])
    )
    backbone.out_channels = 256
    model = SPPNetDetector(backbone, num_classes, feature_stride=16, **kwargs)
    return load_weights(model, weights, progress)
