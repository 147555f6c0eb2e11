"""SPP-net object detection (He et al., 2014, Sec. 4) on the fused RoI spatial-pyramid-pooling kernel.

The conv trunk runs ONCE on the whole (resized) image; every region is pooled from that shared
feature map by :class:`kernels.RoISPP` at levels {6, 3, 2, 1} (50 bins, torchvision's ``roi_pool``
conventions, ``spatial_scale`` = 1 / feature stride), then fc6/fc7 (4096, ReLU, dropout), class
scores over ``num_classes`` (background included, torchvision's convention) and per-class box
regression, then per-class NMS (torchvision's ``batched_nms`` in eager mode; when scripted, the
pure-PyTorch, result-identical one of :mod:`zoo.models.nms`).

Region proposals come from a built-in region proposal network (so the model runs end to end from an
image, is trainable and scriptable), or from boxes the caller passes in (e.g. selective search, as in
the paper): ``model(images, proposals=[boxes_of_image_0, ...])`` with boxes in original image pixels.
Everything else is torchvision's detection machinery (``GeneralizedRCNN``, ``RegionProposalNetwork``,
``RoIHeads``, ``GeneralizedRCNNTransform``), so inputs, targets, losses and outputs follow
torchvision's detection API.

A TorchScript file of a detector loads and runs with ``torch`` alone (not ``torchvision``, ``zoo`` nor
``kernels``): scripted, RoI-SPP runs ``kernels.reference.roi_spp_torch`` and the RPN / box-head
post-processing and training-time matching use :mod:`zoo.models.nms`, so the file holds no
``torch.ops.torchvision`` operator (torchvision's pure-Python detection code is compiled into it).
Note that torchvision's ``GeneralizedRCNNTransform`` rounds the resized image size differently when
scripted (a 100-pixel side scaled by 1.28 gives 128 eager, 127 scripted), so eager and scripted
detections agree exactly only where the resize factor is exact.
"""

from collections import OrderedDict
from collections.abc import Sequence

import torch
import torch.nn.functional as F
import torchvision
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

from . import nms as _nms
from .backbones import RESNET_WEIGHTS, ZF5, resnet_trunk
from .classifiers import ZF5_Classifier_Weights, backbone_kwargs, load_backbone, resolve, split_backbone
from .presets import DetectionPreprocess, scene_weights_meta
from .registry import Weights, WeightsEnum, load_weights, override_num_classes, register_model, verify_weights
from .sppnet import SPPNet_ZF5_Weights

__all__ = [
    "RoISPPPooler",
    "SPPRegionProposalNetwork",
    "SPPRoIHeads",
    "SPPBoxHead",
    "SPPNetDetector",
    "SPPDetector_ZF5_Weights",
    "SPPDetector_ResNet50_Weights",
    "spp_detector_zf5",
    "spp_detector_resnet50",
]

SPP_LEVELS = (6, 3, 2, 1)


def _batched_nms(boxes: Tensor, scores: Tensor, idxs: Tensor, iou_threshold: float) -> Tensor:
    """torchvision's C++/CUDA NMS in eager mode (fast, no host sync); its pure-PyTorch equal
    (:func:`zoo.models.nms.batched_nms`, same kept indices) when scripted, so the file needs only torch."""
    if torch.jit.is_scripting():
        return _nms.batched_nms(boxes, scores, idxs, iou_threshold)
    return torchvision.ops.batched_nms(boxes, scores, idxs, iou_threshold)


class RoISPPPooler(nn.Module):
    """RoI spatial pyramid pooling with ``MultiScaleRoIAlign``'s interface, for ``RoIHeads.box_roi_pool``.

    ``forward(features, proposals, image_shapes)`` pools every box of ``proposals`` (one (L_i, 4)
    tensor per image, in resized-image pixels) from ``features[featmap_name]`` and returns
    (sum L_i, C * sum(n*n)). Scripted, it runs ``kernels.reference.roi_spp_torch`` (pure PyTorch, same
    values), so the TorchScript file needs no ``torchvision::roi_pool``.
    """

    levels: list[int]
    spatial_scale: float
    use_kernels: bool

    # the kernel module (whose scripted forward calls torchvision::roi_pool) stays out of TorchScript
    __jit_ignored_attributes__ = ["roi_spp"]

    def __init__(self, featmap_name: str = "0", levels: Sequence[int] = SPP_LEVELS, spatial_scale: float = 1 / 16):
        super().__init__()
        self.featmap_name = featmap_name
        self.roi_spp = kernels.RoISPP(levels, spatial_scale)
        self.levels = list(self.roi_spp.levels)
        self.spatial_scale = float(self.roi_spp.spatial_scale)
        self.use_kernels = True

    def output_features(self, channels: int) -> int:
        return self.roi_spp.output_features(channels)

    def forward(
        self, features: dict[str, Tensor], proposals: list[Tensor], image_shapes: list[tuple[int, int]]
    ) -> Tensor:
        fmap = features[self.featmap_name]
        if torch.jit.is_scripting():
            rois = convert_boxes_to_roi_format(proposals)
            return reference.roi_spp_torch(fmap, rois, self.levels, self.spatial_scale)
        if self.use_kernels:  # RoISPP takes the list form itself: one FX node when traced
            return self.roi_spp(fmap, proposals)
        return reference.roi_spp(fmap, convert_boxes_to_roi_format(proposals), self.levels, self.spatial_scale)


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


class SPPRegionProposalNetwork(RegionProposalNetwork):
    """torchvision's ``RegionProposalNetwork`` with :mod:`zoo.models.nms` box operations (same results).

    ``filter_proposals`` is re-implemented (torchvision's calls ``torchvision::nms``) and the training
    matcher's IoU is :func:`zoo.models.nms.box_iou` (torchvision's ``box_iou`` also compiles a
    ``torchvision::box_iou_rotated`` branch), so the scripted module holds no torchvision operator.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.box_similarity = _nms.box_iou

    def filter_proposals(
        self,
        proposals: Tensor,
        objectness: Tensor,
        image_shapes: list[tuple[int, int]],
        num_anchors_per_level: list[int],
    ) -> tuple[list[Tensor], list[Tensor]]:
        """Per image: the top ``pre_nms_top_n`` anchors of each level, clipped to the image, boxes with a
        side below ``min_size`` and scores below ``score_thresh`` dropped, NMS per level, then the
        best ``post_nms_top_n``. Returns boxes and objectness probabilities, by decreasing score."""
        num_images = proposals.shape[0]
        device = proposals.device
        objectness = objectness.detach().reshape(num_images, -1)  # no gradient through the ranking
        level_ids: list[Tensor] = []
        for level, count in enumerate(num_anchors_per_level):
            level_ids.append(torch.full((count,), level, dtype=torch.int64, device=device))
        levels = torch.cat(level_ids, 0).reshape(1, -1).expand_as(objectness)

        top = self._get_top_n_idx(objectness, num_anchors_per_level)
        rows = torch.arange(num_images, device=device)[:, None]
        probabilities = torch.sigmoid(objectness[rows, top])
        levels = levels[rows, top]
        proposals = proposals[rows, top]

        kept_boxes: list[Tensor] = []
        kept_scores: list[Tensor] = []
        for i, image_shape in enumerate(image_shapes):
            boxes = _nms.clip_boxes_to_image(proposals[i], image_shape)
            scores, level = probabilities[i], levels[i]
            keep = _nms.remove_small_boxes(boxes, self.min_size)
            boxes, scores, level = boxes[keep], scores[keep], level[keep]
            keep = torch.where(scores >= self.score_thresh)[0]
            boxes, scores, level = boxes[keep], scores[keep], level[keep]
            keep = _batched_nms(boxes, scores, level, self.nms_thresh)[: self.post_nms_top_n()]
            kept_boxes.append(boxes[keep])
            kept_scores.append(scores[keep])
        return kept_boxes, kept_scores


class SPPRoIHeads(RoIHeads):
    """torchvision's ``RoIHeads`` (box branch) with :mod:`zoo.models.nms` box operations (same results).

    ``postprocess_detections`` (torchvision's calls ``torchvision::nms``) and ``assign_targets_to_proposals``
    (torchvision's ``box_iou`` compiles a ``torchvision::box_iou_rotated`` branch) are re-implemented.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.box_similarity = _nms.box_iou

    def assign_targets_to_proposals(
        self, proposals: list[Tensor], gt_boxes: list[Tensor], gt_labels: list[Tensor]
    ) -> tuple[list[Tensor], list[Tensor]]:
        """Per image: the matched ground-truth index of every proposal (0 where unmatched) and its
        label (0 = background below the low IoU threshold, -1 = ignored between the thresholds)."""
        matched_idxs: list[Tensor] = []
        labels: list[Tensor] = []
        for i, proposals_i in enumerate(proposals):
            gt_boxes_i, gt_labels_i = gt_boxes[i], gt_labels[i]
            count = proposals_i.shape[0]
            if gt_boxes_i.numel() == 0:  # an image without objects: everything is background
                matched_i = torch.zeros((count,), dtype=torch.int64, device=proposals_i.device)
                labels_i = torch.zeros((count,), dtype=torch.int64, device=proposals_i.device)
            else:
                matches = self.proposal_matcher(_nms.box_iou(gt_boxes_i, proposals_i))
                matched_i = matches.clamp(min=0)
                labels_i = gt_labels_i[matched_i].to(dtype=torch.int64)
                labels_i[matches == self.proposal_matcher.BELOW_LOW_THRESHOLD] = 0
                labels_i[matches == self.proposal_matcher.BETWEEN_THRESHOLDS] = -1  # the sampler skips -1
            matched_idxs.append(matched_i)
            labels.append(labels_i)
        return matched_idxs, labels

    def postprocess_detections(
        self,
        class_logits: Tensor,
        box_regression: Tensor,
        proposals: list[Tensor],
        image_shapes: list[tuple[int, int]],
    ) -> tuple[list[Tensor], list[Tensor], list[Tensor]]:
        """Per image: class-specific boxes decoded and clipped, background dropped, one candidate per
        (proposal, class) with softmax score ``> score_thresh`` and both sides ``>= 0.01``, NMS per
        class, the best ``detections_per_img``. Returns boxes, scores and labels by decreasing score."""
        device = class_logits.device
        num_classes = class_logits.shape[-1]
        counts = [p.shape[0] for p in proposals]
        all_boxes = self.box_coder.decode(box_regression, proposals).split(counts, 0)
        all_scores = F.softmax(class_logits, -1).split(counts, 0)

        result_boxes: list[Tensor] = []
        result_scores: list[Tensor] = []
        result_labels: list[Tensor] = []
        for i, image_shape in enumerate(image_shapes):
            boxes = _nms.clip_boxes_to_image(all_boxes[i], image_shape)
            scores = all_scores[i]
            labels = torch.arange(num_classes, device=device).view(1, -1).expand_as(scores)
            boxes = boxes[:, 1:].reshape(-1, 4)  # class 0 (background) is no detection
            scores = scores[:, 1:].reshape(-1)
            labels = labels[:, 1:].reshape(-1)
            keep = torch.where(scores > self.score_thresh)[0]
            boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
            keep = _nms.remove_small_boxes(boxes, 1e-2)
            boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
            keep = _batched_nms(boxes, scores, labels, self.nms_thresh)[: self.detections_per_img]
            result_boxes.append(boxes[keep])
            result_scores.append(scores[keep])
            result_labels.append(labels[keep])
        return result_boxes, result_scores, result_labels


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

    #: What the model does (the engine reads it: training, evaluation, prediction).
    task = "detection"

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
        rpn = SPPRegionProposalNetwork(
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
        roi_heads = SPPRoIHeads(
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
    """Weights of :func:`spp_detector_zf5`. Meta schema: :mod:`zoo.models.registry`.

    ``SCENES_V3``: a compact detector (``trunk_width=0.25``, fc6/fc7 of 256 without dropout, images resized to a
    shorter side of 256 (longer at most 384), anchors 16..256; 1.2 M parameters), 10 classes + background of
    :class:`zoo.data.SceneDetection`, fine-tuned on the CPU from the trunk of the SPP-net classifier
    (:class:`~zoo.models.sppnet.SPPNet_ZF5_Weights` ``SCENES_V2``), as SPP-net's detector starts from its ImageNet
    SPP-net; stored in fp16 (fp32: mAP@0.5 22.53). It replaces ``SCENES_V2`` (the same recipe with the paper's
    dropout of 0.5 in the 256-wide fc6/fc7, which kept every score under about 0.5: mAP@0.5 7.95) and ``SCENES_V1``
    (from scratch: 1.05), whose files no longer ship.
    """

    SCENES_V3 = Weights(
        repo="spp_detector_zf5.scenes",
        revision="v3",
        sha256="0094a2f59700a6de03c7974d146eeb09b68c9a57a299ce4a2d098588c010e100",
        transforms=DetectionPreprocess,
        meta=scene_weights_meta(
            task="detection",
            num_params=1176994,
            file_size=2.356,
            metrics={"mAP": 8.85, "mAP@0.5": 22.5},
            min_size=(ZF5.MIN_INPUT_SIZE, ZF5.MIN_INPUT_SIZE),
            input_size=None,
            command="python -m zoo train spp_detector_zf5 --weights-backbone SPPNet_ZF5_Weights.SCENES_V2 "
            "-k representation_size=256 -k dropout=0.0 -k min_size=256 -k max_size=384 "
            "-k 'anchor_sizes=[16,32,64,128,256]' -k rpn_pre_nms_top_n_train=1000 -k rpn_post_nms_top_n_train=500 "
            "-k rpn_pre_nms_top_n_test=500 -k rpn_post_nms_top_n_test=300 -k box_batch_size_per_image=128 "
            "--epochs 2 --limit 8000 --batch-size 8 --lr 2e-4 --log-every 50 --val-size 50",
            time_s=2702.6,
            source="fine-tuned by spp-zoo (python -m zoo train) from the trunk of SPPNet_ZF5_Weights.SCENES_V2 on "
            "zoo.data' scenes",
            storage_dtype="float16",
        ),
    )
    DEFAULT = SCENES_V3


class SPPDetector_ResNet50_Weights(WeightsEnum):
    """Weights of :func:`spp_detector_resnet50`. No entries yet. Meta schema: :mod:`zoo.models.registry`."""


@register_model()
def spp_detector_zf5(
    *,
    weights: SPPDetector_ZF5_Weights | None = None,
    progress: bool = True,
    num_classes: int | None = None,
    weights_backbone: SPPNet_ZF5_Weights | ZF5_Classifier_Weights | None = None,
    trunk_width: float | None = None,
    trunk_layout: str | None = None,
    **kwargs,
) -> SPPNetDetector:
    """SPP-net detector on ZF-5 (stride 16): conv5 256 ch -> RoI-SPP {6,3,2,1} (12,800-d) -> fc6/fc7 4096.

    Args:
        weights: a :class:`SPPDetector_ZF5_Weights` entry or None.
        progress: show a download progress bar.
        num_classes: classes including background (default 21: PASCAL VOC's 20 + background).
        weights_backbone: a :class:`~zoo.models.sppnet.SPPNet_ZF5_Weights` entry (an SPP-net classifier, as the
            paper's detector started from its ImageNet SPP-net: e.g. ``SCENES_V2``, ``IMAGENET1K_MINDSPORE``) or a
            :class:`~zoo.models.classifiers.ZF5_Classifier_Weights` entry, whose trunk (``features.*``) starts the
            detector, loaded strictly; strings name an ``SPPNet_ZF5_Weights`` entry unless they start with
            ``"ZF5_Classifier_Weights."``. The RoI head starts fresh (starting its fc6/fc7 from the classifier's, as
            the paper does, measured worse here: README, "Weights trained here"). Ignored when ``weights`` is given.
        trunk_width: ZF-5 channel multiplier; default: the width ``weights_backbone`` was trained with, else 1.0
            (the paper).
        trunk_layout: the ZF-5 layout (:class:`~zoo.models.backbones.ZF5`); default: that of
            ``weights_backbone`` (``"mindspore"`` for ``IMAGENET1K_MINDSPORE``), else ``"caffe"``.
        **kwargs: :class:`SPPNetDetector` options (``min_size``, ``representation_size``, ``rpn_*``...).
    """
    arch = "spp_detector_zf5"
    weights = verify_weights(weights, SPPDetector_ZF5_Weights, arch)
    trunk_entry, classifier_entry = split_backbone(weights_backbone, "zf5", SPPNet_ZF5_Weights, arch)
    weights_backbone = trunk_entry if trunk_entry is not None else classifier_entry  # both keep the trunk as features.*
    if weights is not None:
        weights_backbone = None
    if weights_backbone is not None:
        # the layout an entry declares (meta) is checked before its files are fetched (an upstream one is 600 MB)
        trunk_layout = resolve(trunk_layout, ZF5.layout_of(weights_backbone), None, "trunk_layout", weights_backbone)
        recorded = backbone_kwargs(weights_backbone, progress)
        trunk_width = resolve(trunk_width, recorded.get("width"), 1.0, "trunk_width", weights_backbone)
    elif weights is not None:
        needed = ZF5.layout_of(weights)
        if trunk_layout not in (None, needed):
            raise ValueError(f"{weights!r} has a {needed!r} trunk; got trunk_layout={trunk_layout!r}")
        trunk_layout = needed
    trunk_width = 1.0 if trunk_width is None else trunk_width
    trunk_layout = trunk_layout or "caffe"
    num_classes = override_num_classes(num_classes, weights, default=21)
    trunk = ZF5(trunk_width, layout=trunk_layout)
    if weights_backbone is not None:
        load_backbone(trunk, weights_backbone, progress)
    model = SPPNetDetector(trunk, num_classes, feature_stride=ZF5.STRIDE, **kwargs)
    # config.json rebuilds this trunk
    model._zoo_resolved_kwargs = {"trunk_layout": trunk_layout, "trunk_width": trunk_width}
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
