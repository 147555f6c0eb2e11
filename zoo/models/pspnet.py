"""PSPNet (Zhao et al., CVPR 2017) on the fused pyramid-pooling kernels.

Architecture as in the official code (hszhao/semseg): dilated ResNet of output stride 8 with the deep
stem, pyramid pooling module (adaptive average pooling at bins 1, 2, 3, 6; per bin a 1x1 conv
2048 -> 512 without bias, BN, ReLU; bilinear upsampling; concatenation with the input: 4096
channels), then 3x3 conv 512 + BN + ReLU, Dropout2d(0.1), 1x1 classifier and bilinear upsampling to
the input size. An auxiliary FCN head on layer3 (1024 -> 256 3x3 conv, BN, ReLU, Dropout2d(0.1),
1x1) adds deep supervision during training, weighted 0.4 in the loss (:func:`pspnet_loss`).

The pooling runs every bin in ONE :class:`kernels.SpatialPyramidPool` call (``mode="avg"``); its
flattened output is sliced back into per-bin (N, C, n, n) maps, each goes through its 1x1 conv, and
:class:`kernels.UpsampleConcat` upsamples and concatenates them after the input in one pass.
Any input size works (no crop, no warp).
"""

from collections import OrderedDict
from collections.abc import Sequence
from functools import partial

import torch.fx
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models import ResNet18_Weights
from torchvision.ops import Conv2dNormActivation

import kernels
from kernels import reference

from ._common import check_image_batch, init_conv_bn
from .backbones import (
    BASIC_RESNET_WEIGHTS,
    MMSEG_STEM,
    RESNET_WEIGHTS,
    SEMSEG_STEM,
    DilatedBasicResNet,
    DilatedResNet,
    _scaled,
)
from .classifiers import ResNet18_Classifier_Weights, backbone_kwargs, load_backbone, resolve, split_backbone
from .mmseg_weights import mmseg_pspnet
from .presets import ImagePreprocess, scene_weights_meta
from .registry import Weights, WeightsEnum, load_weights, override_num_classes, register_model, verify_weights

__all__ = [
    "PSPNet",
    "PyramidPoolingModule",
    "PSPNet_ResNet50_Weights",
    "PSPNet_ResNet101_Weights",
    "PSPNet_ResNet18_Weights",
    "pspnet_resnet18",
    "pspnet_resnet50",
    "pspnet_resnet101",
    "pspnet_loss",
    "AUX_LOSS_WEIGHT",
]

# FX: a symbolic trace records the input check as one call, which still raises in the traced module
torch.fx.wrap("check_image_batch")

#: Weight of the auxiliary (layer3) loss in PSPNet's deep supervision, from the paper.
AUX_LOSS_WEIGHT = 0.4


class PyramidPoolingModule(nn.Module):
    """PSPNet's pyramid pooling module: (N, C, H, W) -> (N, C + len(bins) * channels, H, W).

    Equal to the per-bin composite ``cat([x] + [interpolate(relu(bn(conv1x1(adaptive_avg_pool2d(x, n)))),
    (H, W), bilinear)])``, computed with one fused pooling call and one fused upsample+concat call.
    ``stages[i]`` is the 1x1 conv + BN + ReLU of ``bins[i]``.
    """

    bins: list[int]
    align_corners: bool
    use_kernels: bool

    def __init__(
        self,
        in_channels: int = 2048,
        bins: Sequence[int] = (1, 2, 3, 6),
        channels: int = 512,
        align_corners: bool = True,
    ):
        super().__init__()
        self.pool = kernels.SpatialPyramidPool(bins, mode="avg")
        self.bins = list(self.pool.levels)
        self.stages = nn.ModuleList([Conv2dNormActivation(in_channels, channels, kernel_size=1) for _ in self.bins])
        self.concat = kernels.UpsampleConcat(align_corners)
        self.align_corners = bool(align_corners)
        self.use_kernels = True
        self.out_channels = in_channels + len(self.bins) * channels

    def forward(self, x: Tensor) -> Tensor:
        c = x.shape[1]
        flat = self.pool(x) if self.use_kernels else reference.spatial_pyramid_pool(x, self.bins, "avg")
        maps: list[Tensor] = []
        start = 0
        for i, stage in enumerate(self.stages):
            size = self.bins[i]
            stop = start + c * size * size
            maps.append(stage(flat[:, start:stop].unflatten(1, (c, size, size))))
            start = stop
        if self.use_kernels:
            return self.concat(x, maps)
        return reference.upsample_concat(x, maps, self.align_corners)


def _classifier(in_channels: int, channels: int, num_classes: int, dropout: float) -> nn.Sequential:
    """3x3 conv + BN + ReLU, Dropout2d, 1x1 conv: keys ``0.{0 conv,1 bn}``, ``2`` (classifier)."""
    return nn.Sequential(
        Conv2dNormActivation(in_channels, channels, kernel_size=3),
        nn.Dropout2d(dropout),
        nn.Conv2d(channels, num_classes, kernel_size=1),
    )


class PSPNet(nn.Module):
    """PSPNet: ``backbone`` (returning layer3 and layer4 features) + pyramid pooling + classifier.

    ``forward(x)`` returns an ``OrderedDict`` (torchvision segmentation convention) with ``"out"``:
    (N, num_classes, H, W) logits at the input size, and, in training mode when the model was built
    with ``aux_loss=True``, ``"aux"``: the auxiliary head's logits at the input size.

    Args:
        align_corners: bilinear convention of the pyramid upsampling and of the final upsampling
            (True in hszhao/semseg, False in mmsegmentation).
    """

    #: What the model does (the engine reads it: training, evaluation, prediction).
    task = "segmentation"

    def __init__(
        self,
        backbone: DilatedResNet,
        num_classes: int = 21,
        aux_loss: bool = False,
        bins: Sequence[int] = (1, 2, 3, 6),
        ppm_channels: int = 512,
        head_channels: int = 512,
        aux_channels: int = 256,
        dropout: float = 0.1,
        align_corners: bool = True,
    ):
        super().__init__()
        if not isinstance(align_corners, bool):
            raise TypeError(f"align_corners must be a bool, got {type(align_corners).__name__}")
        self.backbone = backbone
        self.ppm = PyramidPoolingModule(backbone.out_channels, bins, ppm_channels, align_corners)
        self.classifier = _classifier(self.ppm.out_channels, head_channels, num_classes, dropout)
        self.aux_classifier = (
            _classifier(backbone.aux_channels, aux_channels, num_classes, dropout) if aux_loss else None
        )
        self.align_corners = align_corners
        self.num_classes = num_classes
        init_conv_bn(self.ppm)
        init_conv_bn(self.classifier)
        if self.aux_classifier is not None:
            init_conv_bn(self.aux_classifier)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        check_image_batch(x, 3, 1, 1, "PSPNet")
        size = [x.shape[-2], x.shape[-1]]
        c3, c4 = self.backbone(x)
        out = self.classifier(self.ppm(c4))
        result: dict[str, Tensor] = OrderedDict()
        result["out"] = F.interpolate(out, size=size, mode="bilinear", align_corners=self.align_corners)
        aux_classifier = self.aux_classifier
        if self.training and aux_classifier is not None:
            aux = aux_classifier(c3)
            result["aux"] = F.interpolate(aux, size=size, mode="bilinear", align_corners=self.align_corners)
        return result


def pspnet_loss(
    outputs: dict[str, Tensor], target: Tensor, aux_weight: float = AUX_LOSS_WEIGHT, ignore_index: int = 255
) -> Tensor:
    """PSPNet's deep-supervision loss: ``CE(out) + aux_weight * CE(aux)`` (aux term only when present).

    ``target`` is (N, H, W) int64 class indices, ``ignore_index`` marks unlabeled pixels.
    """
    if "out" not in outputs:
        raise ValueError("outputs must contain 'out' (the dict a PSPNet returns)")
    if target.dim() != 3:
        raise ValueError(f"target must be (N, H, W) class indices, got shape {tuple(target.shape)}")
    loss = F.cross_entropy(outputs["out"], target, ignore_index=ignore_index)
    if "aux" in outputs:
        loss = loss + aux_weight * F.cross_entropy(outputs["aux"], target, ignore_index=ignore_index)
    return loss


class PSPNet_ResNet18_Weights(WeightsEnum):
    """Weights of :func:`pspnet_resnet18`. Meta schema: :mod:`zoo.models.registry`.

    ``SCENES_V3``: width 0.375 (1.8 M parameters), 11 classes (background + Fashion-MNIST's 10) of
    :class:`zoo.data.SceneSegmentation`, fine-tuned on the CPU for 12 epochs from the pretrained ResNet-18
    (:class:`~zoo.models.classifiers.ResNet18_Classifier_Weights` ``SCENES_V1``), as PSPNet starts from an ImageNet
    ResNet; inputs resized to 128 x 128; stored in fp16 (fp32: the same metrics). It replaces ``SCENES_V2`` (the same
    recipe for 8 epochs: mIoU 49.85) and ``SCENES_V1`` (trained from scratch: 15.34), whose files no longer ship.
    """

    SCENES_V3 = Weights(
        repo="pspnet_resnet18.scenes",
        revision="v3",
        sha256="8fa065a3881d52d62b7b9cb5cdf82964cb98a5e6fab171f1ca4129d96ba82925",
        transforms=partial(ImagePreprocess, 128),
        meta=scene_weights_meta(
            task="segmentation",
            num_params=1801714,
            file_size=3.628,
            metrics={"mIoU": 51.4, "mAcc": 64.38, "aAcc": 94.89},
            min_size=(1, 1),
            input_size=(128, 128),
            align_corners=False,
            command="python -m zoo train pspnet_resnet18 --weights-backbone ResNet18_Classifier_Weights.SCENES_V1 "
            "--epochs 12 --limit 8000 --batch-size 8 --image-size 128 --lr 1e-3 --val-size 50 --log-every 100 "
            "--channels-last --cpu-amp",
            time_s=2419.5,
            source="fine-tuned by spp-zoo (python -m zoo train) from ResNet18_Classifier_Weights.SCENES_V1 on "
            "zoo.data' scenes",
            storage_dtype="float16",
        ),
    )
    CITYSCAPES_MMSEG_80K = mmseg_pspnet(
        "pspnet_r18-d8_512x1024_80k_cityscapes",
        "20201225_021458-09ffa746",
        miou=74.87,
        miou_ms=76.04,
        num_params=12790086,
    )
    CITYSCAPES_769_MMSEG_80K = mmseg_pspnet(
        "pspnet_r18-d8_769x769_80k_cityscapes",
        "20201225_021458-3deefc62",
        miou=75.90,
        miou_ms=77.86,
        num_params=12790086,
    )
    DEFAULT = SCENES_V3  # the offline main job: shipped with the package


class PSPNet_ResNet50_Weights(WeightsEnum):
    """Weights of :func:`pspnet_resnet50`: mmsegmentation's published PSPNet R-50-D8 checkpoints (Apache-2.0),
    downloaded, verified and converted exactly on first use (:mod:`zoo.models.mmseg_weights`). Their metrics are
    mmsegmentation's (``meta["published_metrics"]``), not re-measured here. ``DEFAULT``: ADE20K, 160k iterations.
    Meta schema: :mod:`zoo.models.registry`."""

    ADE20K_MMSEG_80K = mmseg_pspnet(
        "pspnet_r50-d8_512x512_80k_ade20k", "20200615_014128-15a8b914", miou=41.13, miou_ms=41.94, num_params=49076364
    )
    ADE20K_MMSEG_160K = mmseg_pspnet(
        "pspnet_r50-d8_512x512_160k_ade20k", "20200615_184358-1890b0bd", miou=42.48, miou_ms=43.44, num_params=49076364
    )
    VOC12AUG_MMSEG_20K = mmseg_pspnet(
        "pspnet_r50-d8_512x512_20k_voc12aug", "20200617_101958-ed5dfbd9", miou=76.78, miou_ms=77.61, num_params=48977034
    )
    VOC12AUG_MMSEG_40K = mmseg_pspnet(
        "pspnet_r50-d8_512x512_40k_voc12aug", "20200613_161222-ae9c1b8c", miou=77.29, miou_ms=78.48, num_params=48977034
    )
    CITYSCAPES_MMSEG_40K = mmseg_pspnet(
        "pspnet_r50-d8_512x1024_40k_cityscapes",
        "20200605_003338-2966598c",
        miou=77.85,
        miou_ms=79.18,
        num_params=48975494,
    )
    CITYSCAPES_769_MMSEG_40K = mmseg_pspnet(
        "pspnet_r50-d8_769x769_40k_cityscapes",
        "20200606_112725-86638686",
        miou=78.26,
        miou_ms=79.88,
        num_params=48975494,
    )
    CITYSCAPES_MMSEG_80K = mmseg_pspnet(
        "pspnet_r50-d8_512x1024_80k_cityscapes",
        "20200606_112131-2376f12b",
        miou=78.55,
        miou_ms=79.79,
        num_params=48975494,
    )
    CITYSCAPES_769_MMSEG_80K = mmseg_pspnet(
        "pspnet_r50-d8_769x769_80k_cityscapes",
        "20200606_210121-5ccf03dd",
        miou=79.59,
        miou_ms=80.69,
        num_params=48975494,
    )
    DEFAULT = ADE20K_MMSEG_160K


class PSPNet_ResNet101_Weights(WeightsEnum):
    """Weights of :func:`pspnet_resnet101`: mmsegmentation's published PSPNet R-101-D8 checkpoints, as
    :class:`PSPNet_ResNet50_Weights`. ``DEFAULT``: ADE20K, 160k iterations. Meta schema: :mod:`zoo.models.registry`."""

    ADE20K_MMSEG_80K = mmseg_pspnet(
        "pspnet_r101-d8_512x512_80k_ade20k", "20200614_031423-b6e782f0", miou=43.57, miou_ms=44.35, num_params=68068492
    )
    ADE20K_MMSEG_160K = mmseg_pspnet(
        "pspnet_r101-d8_512x512_160k_ade20k", "20200615_100650-967c316f", miou=44.39, miou_ms=45.35, num_params=68068492
    )
    VOC12AUG_MMSEG_20K = mmseg_pspnet(
        "pspnet_r101-d8_512x512_20k_voc12aug",
        "20200617_102003-4aef3c9a",
        miou=78.47,
        miou_ms=79.25,
        num_params=67969162,
    )
    VOC12AUG_MMSEG_40K = mmseg_pspnet(
        "pspnet_r101-d8_512x512_40k_voc12aug",
        "20200613_161222-bc933b18",
        miou=78.52,
        miou_ms=79.57,
        num_params=67969162,
    )
    CITYSCAPES_MMSEG_40K = mmseg_pspnet(
        "pspnet_r101-d8_512x1024_40k_cityscapes",
        "20200604_232751-467e7cf4",
        miou=78.34,
        miou_ms=79.74,
        num_params=67967622,
    )
    CITYSCAPES_769_MMSEG_40K = mmseg_pspnet(
        "pspnet_r101-d8_769x769_40k_cityscapes",
        "20200606_112753-61c6f5be",
        miou=79.08,
        miou_ms=80.28,
        num_params=67967622,
    )
    CITYSCAPES_MMSEG_80K = mmseg_pspnet(
        "pspnet_r101-d8_512x1024_80k_cityscapes",
        "20200606_112211-e1e1100f",
        miou=79.76,
        miou_ms=81.01,
        num_params=67967622,
    )
    CITYSCAPES_769_MMSEG_80K = mmseg_pspnet(
        "pspnet_r101-d8_769x769_80k_cityscapes",
        "20200606_225055-dba412fa",
        miou=79.77,
        miou_ms=81.06,
        num_params=67967622,
    )
    DEFAULT = ADE20K_MMSEG_160K


def _pspnet(
    arch: str,
    depth: int,
    weights_enum: type[WeightsEnum],
    weights,
    progress: bool,
    num_classes: int | None,
    aux_loss: bool | None,
    weights_backbone,
    stem_widths: Sequence[int] | None,
    contract_dilation: bool,
    **kwargs,
) -> PSPNet:
    weights = verify_weights(weights, weights_enum, arch)
    weights_backbone = verify_weights(weights_backbone, RESNET_WEIGHTS[depth], arch, "weights_backbone")
    if weights is not None:
        weights_backbone = None
        aux_loss = True if aux_loss is None else aux_loss
        kwargs.setdefault("align_corners", weights.meta.get("align_corners", True))
    num_classes = override_num_classes(num_classes, weights, default=21)
    backbone = DilatedResNet(depth, stem_widths, contract_dilation, weights_backbone, progress)
    model = PSPNet(backbone, num_classes, aux_loss=bool(aux_loss), **kwargs)
    return load_weights(model, weights, progress)


@register_model()
def pspnet_resnet50(
    *,
    weights: PSPNet_ResNet50_Weights | None = None,
    progress: bool = True,
    num_classes: int | None = None,
    aux_loss: bool | None = None,
    weights_backbone=None,
    stem_widths: Sequence[int] | None = SEMSEG_STEM,
    contract_dilation: bool = False,
    **kwargs,
) -> PSPNet:
    """PSPNet with a dilated ResNet-50 (output stride 8), as hszhao/semseg's PSPNet50.

    Args:
        weights: a :class:`PSPNet_ResNet50_Weights` entry (mmsegmentation's, converted on first use) or None.
        progress: show a download progress bar.
        num_classes: output classes (default 21, PASCAL VOC).
        aux_loss: add the auxiliary layer3 head (its logits are returned in training as ``"aux"``;
            weight 0.4 in :func:`pspnet_loss`).
        weights_backbone: torchvision ``ResNet50_Weights`` for the backbone (needs ``stem_widths=None``).
        stem_widths: deep-stem widths, default (64, 64, 128) as semseg; (32, 32, 64) as mmsegmentation's
            ResNetV1c; None for torchvision's 7x7 stem.
        contract_dilation: first block of layer3/layer4 with half dilation (mmsegmentation, torchvision).
        **kwargs: :class:`PSPNet` options: ``align_corners`` (default True), ``bins``, ``dropout``...
    """
    return _pspnet(
        "pspnet_resnet50", 50, PSPNet_ResNet50_Weights, weights, progress, num_classes, aux_loss,
        weights_backbone, stem_widths, contract_dilation, **kwargs,
    )  # fmt: skip


@register_model()
def pspnet_resnet101(
    *,
    weights: PSPNet_ResNet101_Weights | None = None,
    progress: bool = True,
    num_classes: int | None = None,
    aux_loss: bool | None = None,
    weights_backbone=None,
    stem_widths: Sequence[int] | None = SEMSEG_STEM,
    contract_dilation: bool = False,
    **kwargs,
) -> PSPNet:
    """PSPNet with a dilated ResNet-101 (output stride 8), as hszhao/semseg's PSPNet101.

    Same arguments as :func:`pspnet_resnet50` (``weights``: :class:`PSPNet_ResNet101_Weights`,
    ``weights_backbone``: torchvision ``ResNet101_Weights``).
    """
    return _pspnet(
        "pspnet_resnet101", 101, PSPNet_ResNet101_Weights, weights, progress, num_classes, aux_loss,
        weights_backbone, stem_widths, contract_dilation, **kwargs,
    )  # fmt: skip


@register_model()
def pspnet_resnet18(
    *,
    weights: PSPNet_ResNet18_Weights | None = None,
    progress: bool = True,
    num_classes: int | None = None,
    aux_loss: bool | None = None,
    weights_backbone: ResNet18_Weights | ResNet18_Classifier_Weights | None = None,
    width: float | None = None,
    stem_widths: Sequence[int] | None = None,
    contract_dilation: bool = True,
    dilate_conv2: bool = True,
    **kwargs,
) -> PSPNet:
    """PSPNet on a dilated ResNet-18 (BasicBlock, output stride 8) after mmsegmentation's ``pspnet_r18-d8``:
    deep stem (32, 32, 64), layer4 512 channels, pyramid stages and bottleneck of 128 channels, auxiliary
    head of 64 channels on layer3, ``align_corners=False``. A compact PSPNet; every width scales by ``width``.
    With ``dilate_conv2=False`` it is mmsegmentation's R-18-D8 exactly (its checkpoints convert with
    :func:`zoo.convert.from_mmseg`); the default dilates both convs of each block (the shipped weights).

    Args:
        weights: a :class:`PSPNet_ResNet18_Weights` entry or None.
        progress: show a download progress bar.
        num_classes: output classes (default 21).
        aux_loss: add the auxiliary layer3 head (weight 0.4 in :func:`pspnet_loss`).
        weights_backbone: the zoo's pretrained trunk, a
            :class:`~zoo.models.classifiers.ResNet18_Classifier_Weights` entry (the trunk is built at its width
            and stem and loads every ``features.*`` tensor strictly; dilation adds no parameter), or torchvision's
            ``ResNet18_Weights`` (ImageNet; needs ``width=1.0`` and then uses torchvision's 7x7 stem: leave
            ``stem_widths`` None). Ignored when ``weights`` is given.
        width: channel multiplier of the whole network (default: that of a zoo ``weights_backbone``, else 1.0 =
            mmsegmentation's widths).
        stem_widths: deep-stem widths; default :data:`~zoo.models.backbones.MMSEG_STEM` scaled by ``width``.
        contract_dilation: first block of layer3/layer4 with half dilation (mmsegmentation's default).
        dilate_conv2: dilate both 3x3 convs of each dilated block (default); False dilates the first only,
            as mmsegmentation's BasicBlock.
        **kwargs: :class:`PSPNet` options: ``align_corners`` (default False), ``bins``, ``ppm_channels``,
            ``head_channels``, ``aux_channels``, ``dropout``.
    """
    weights = verify_weights(weights, PSPNet_ResNet18_Weights, "pspnet_resnet18")
    own_backbone, weights_backbone = split_backbone(weights_backbone, "resnet18", BASIC_RESNET_WEIGHTS[18],
                                                    "pspnet_resnet18")  # fmt: skip
    if weights is not None:
        weights_backbone = own_backbone = None
        aux_loss = True if aux_loss is None else aux_loss
    if own_backbone is not None:
        recorded = backbone_kwargs(own_backbone, progress)
        width = resolve(width, recorded.get("width"), 1.0, "width", own_backbone)
        stem_widths = resolve(stem_widths, recorded.get("stem_widths"), None, "stem_widths", own_backbone)
    width = 1.0 if width is None else width
    num_classes = override_num_classes(num_classes, weights, default=21)
    if stem_widths is None and weights_backbone is None:
        stem_widths = tuple(_scaled(c, width) for c in MMSEG_STEM)
    kwargs.setdefault("align_corners", False)
    kwargs.setdefault("ppm_channels", _scaled(128, width))
    kwargs.setdefault("head_channels", _scaled(128, width))
    kwargs.setdefault("aux_channels", _scaled(64, width))
    backbone = DilatedBasicResNet(18, width, stem_widths, contract_dilation, weights_backbone, progress, dilate_conv2)
    if own_backbone is not None:
        load_backbone(backbone, own_backbone, progress)
    model = PSPNet(backbone, num_classes, aux_loss=bool(aux_loss), **kwargs)
    model._zoo_resolved_kwargs = {"width": width}  # config.json rebuilds this network
    return load_weights(model, weights, progress)
