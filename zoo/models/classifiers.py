"""Trunk classifiers: the pretraining networks whose weights the families start from (``weights_backbone=``).

The papers start every model from a network pretrained for classification: SPP-net fine-tunes its detector
from its ImageNet ZF-5, PSPNet starts from an ImageNet ResNet, DeconvNet from an ImageNet VGG-16. The zoo's
own "ImageNet" is the classification view of its data (:class:`zoo.data.SceneClassification`: one Fashion-MNIST
object per image at many sizes, all 60000 train glyphs when installed), and these builders are the networks
trained on it: a trunk, a global average pooling, dropout and a linear classifier (torchvision's ResNet head).

============================  ===================================================  ==============================
builder                       trunk (``features``)                                 its weights start
============================  ===================================================  ==============================
:func:`zf5_classifier`        :class:`~zoo.models.backbones.ZF5` (conv1..conv5)    ``sppnet_zf5``,
                                                                                   ``spp_detector_zf5``
:func:`resnet18_classifier`   :class:`~zoo.models.backbones.DilatedBasicResNet`    ``pspnet_resnet18``
                              at output stride 32 (undilated; deep stem)
:func:`vgg16_bn_classifier`   :class:`~zoo.models.backbones.VGG16BNEncoder`        ``deconvnet_vgg16``
                              (13 conv+BN, 5 max poolings)
============================  ===================================================  ==============================

A family given one of these entries as ``weights_backbone`` builds its trunk at the entry's widths (read from
the entry's ``config.json``) and loads every ``features.*`` tensor of it strictly (:func:`load_backbone`); the
heads start fresh. As with ImageNet ResNets, the dilation PSPNet adds to layer3/layer4 changes no parameter.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

import torch.fx
from torch import Tensor, nn

from ._common import check_image_batch
from .backbones import MMSEG_STEM, ZF5, DilatedBasicResNet, VGG16BNEncoder, _scaled
from .presets import ImagePreprocess, scene_weights_meta
from .registry import (
    Weights,
    WeightsEnum,
    load_state_dict,
    load_weights,
    override_num_classes,
    register_model,
    verify_weights,
)

__all__ = [
    "TrunkClassifier",
    "ZF5_Classifier_Weights",
    "ResNet18_Classifier_Weights",
    "VGG16BN_Classifier_Weights",
    "zf5_classifier",
    "resnet18_classifier",
    "vgg16_bn_classifier",
    "load_backbone",
    "backbone_kwargs",
]

# FX: a symbolic trace records the input check as one call, which still raises in the traced module
torch.fx.wrap("check_image_batch")

#: The prefix of the trunk's tensors in a trunk classifier's state dict.
TRUNK_PREFIX = "features."


class TrunkClassifier(nn.Module):
    """``features`` (a trunk exposing ``out_channels``; a trunk returning a tuple gives its last map), global
    average pooling, dropout, ``fc``. Any input of at least ``min_input_size`` per side.

    Args:
        features: the conv trunk.
        num_classes: classifier outputs.
        dropout: dropout before ``fc``.
        min_input_size: smaller inputs (per side) raise a ValueError.
    """

    #: What the model does (the engine reads it: training, evaluation, prediction).
    task = "classification"

    min_input_size: int

    def __init__(self, features: nn.Module, num_classes: int = 10, dropout: float = 0.2, min_input_size: int = 1):
        super().__init__()
        self.features = features
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(features.out_channels, num_classes)
        self.min_input_size = int(min_input_size)
        self.num_classes = num_classes

    def forward(self, x: Tensor) -> Tensor:
        check_image_batch(x, 3, self.min_input_size, self.min_input_size, "TrunkClassifier")
        fmap = self.features(x)
        if isinstance(fmap, tuple):
            fmap = fmap[-1]
        return self.fc(self.dropout(self.pool(fmap).flatten(1)))


#: Where the commands that pretrained the trunk classifiers are.
PRETRAIN_RECIPE = "recipes/pretrain_backbones.sh"


def _meta(arch: str, trunk: str, *, metrics: dict[str, float], num_params: int, file_size: float, command: str,
          time_s: float, min_size: int, starts: str, input_size: int = 64) -> dict[str, Any]:  # fmt: skip
    return scene_weights_meta(
        task="classification",
        num_params=num_params,
        file_size=file_size,
        metrics=metrics,
        min_size=(min_size, min_size),
        input_size=(input_size, input_size),
        command=command,
        time_s=time_s,
        source=f"pretrained by spp-zoo (python -m zoo train {arch}) on the classification view of zoo.data' "
        "scenes: the zoo's own ImageNet",
        recipe=PRETRAIN_RECIPE,
        storage_dtype="float16",
        _backbone=f"{trunk}: starts {starts} (weights_backbone=)",
    )


class ZF5_Classifier_Weights(WeightsEnum):
    """Weights of :func:`zf5_classifier`. Meta schema: :mod:`zoo.models.registry`.

    ``SCENES_V1``: the ZF-5 trunk of the shipped SPP-net and detectors (``width=0.25``, Caffe layout; 0.24 M
    parameters), pretrained on the classification view (60,000 images from all 60,000 Fashion-MNIST train glyphs,
    multi-size 80/96/112: at 48..80 px ZF-5's conv5 map is too coarse) on the CPU; evaluated at 96 x 96; stored in
    fp16 (fp32: the same acc@1 65.6). Starts ``sppnet_zf5`` and ``spp_detector_zf5`` (``weights_backbone=``).
    """

    SCENES_V1 = Weights(
        repo="zf5_classifier.scenes",
        revision="v1",
        sha256="35e5e0ad1390ff3c19ac0f3c698eac9681fae55dc8b19f5cd57e255579a0a741",
        transforms=partial(ImagePreprocess, 96),
        meta=_meta(
            "zf5_classifier",
            "ZF-5 (width 0.25, Caffe layout)",
            metrics={"acc@1": 65.6, "acc@5": 97.0},
            num_params=236458,
            file_size=0.474,
            command="python -m zoo train zf5_classifier -k width=0.25 --epochs 8 --limit 60000 --batch-size 64 "
            "--multi-size 80,96,112 --image-size 96 --lr 2e-3 --val-size 500 --log-every 100",
            time_s=1990.8,
            min_size=ZF5.MIN_INPUT_SIZE,
            starts="sppnet_zf5, spp_detector_zf5",
            input_size=96,
        ),
    )
    DEFAULT = SCENES_V1


class ResNet18_Classifier_Weights(WeightsEnum):
    """Weights of :func:`resnet18_classifier`. Meta schema: :mod:`zoo.models.registry`.

    ``SCENES_V1``: the ResNet-18 trunk of the shipped PSPNet (``width=0.375``, deep stem 12-12-24; 1.6 M parameters),
    pretrained on the classification view (60,000 images from all 60,000 Fashion-MNIST train glyphs, multi-size
    48/64/80) on the CPU; stored in fp16 (fp32: acc@1 78.8). Starts ``pspnet_resnet18(weights_backbone=...)``.
    """

    SCENES_V1 = Weights(
        repo="resnet18_classifier.scenes",
        revision="v1",
        sha256="016e5f0fe57f87a89e0fc861e749a9c6f6e836afc86923ae7faf3639ebc4bf01",
        transforms=partial(ImagePreprocess, 64),
        meta=_meta(
            "resnet18_classifier",
            "ResNet-18 (deep stem, width 0.375)",
            metrics={"acc@1": 79.0, "acc@5": 99.4},
            num_params=1578814,
            file_size=3.178,
            command="python -m zoo train resnet18_classifier -k width=0.375 --epochs 6 --limit 60000 --batch-size 64 "
            "--multi-size 48,64,80 --image-size 64 --lr 2e-3 --val-size 500",
            time_s=932.0,
            min_size=1,
            starts="pspnet_resnet18",
        ),
    )
    DEFAULT = SCENES_V1


class VGG16BN_Classifier_Weights(WeightsEnum):
    """Weights of :func:`vgg16_bn_classifier`. Meta schema: :mod:`zoo.models.registry`.

    ``SCENES_V1``: the VGG-16-BN encoder at ``width=0.125`` (0.23 M parameters), pretrained on the classification
    view (60,000 images from all 60,000 Fashion-MNIST train glyphs, multi-size 48/64/80) on the CPU; stored in fp16
    (fp32: the same acc@1 80.2). Starts a 1/8-width ``deconvnet_vgg16(weights_backbone=...)``, which cannot fit its
    training scenes (its last decoder stage has 8 channels for 11 classes).

    ``SCENES_W25_V1``: the same encoder at ``width=0.25`` (0.92 M parameters), pretrained the same way for 4 epochs;
    stored in fp16 (fp32: the same acc@1 83.0). Starts the shipped DeconvNet
    (:class:`~zoo.models.deconvnet.DeconvNet_VGG16_Weights` ``SCENES_V2``).
    """

    SCENES_V1 = Weights(
        repo="vgg16_bn_classifier.scenes",
        revision="v1",
        sha256="574b069a3b2f152b09afcf1d36878c7dd65122661ce3790187b2bdf7464a4b5f",
        transforms=partial(ImagePreprocess, 64),
        meta=_meta(
            "vgg16_bn_classifier",
            "VGG-16-BN encoder (width 0.125)",
            metrics={"acc@1": 80.2, "acc@5": 99.4},
            num_params=231746,
            file_size=0.473,
            command="python -m zoo train vgg16_bn_classifier -k width=0.125 --epochs 6 --limit 60000 --batch-size 64 "
            "--multi-size 48,64,80 --image-size 64 --lr 2e-3 --val-size 500 --log-every 100 --channels-last --cpu-amp",
            time_s=881.6,
            min_size=32,
            starts="deconvnet_vgg16 at width 0.125",
        ),
    )
    SCENES_W25_V1 = Weights(
        repo="vgg16_bn_classifier.scenes-w25",
        revision="v1",
        sha256="453bd9583df6b31e98267388f424dc3360057c1b58a81dfa082e951331889f82",
        transforms=partial(ImagePreprocess, 64),
        meta=_meta(
            "vgg16_bn_classifier",
            "VGG-16-BN encoder (width 0.25)",
            metrics={"acc@1": 83.0, "acc@5": 99.8},
            num_params=923130,
            file_size=1.858,
            command="python -m zoo train vgg16_bn_classifier -k width=0.25 --epochs 4 --limit 60000 --batch-size 64 "
            "--multi-size 48,64,80 --image-size 64 --lr 2e-3 --val-size 500 --log-every 100 --channels-last --cpu-amp",
            time_s=703.8,
            min_size=32,
            starts="deconvnet_vgg16 at width 0.25",
        ),
    )
    DEFAULT = SCENES_V1


@register_model()
def zf5_classifier(
    *,
    weights: ZF5_Classifier_Weights | None = None,
    progress: bool = True,
    num_classes: int | None = None,
    width: float = 1.0,
    layout: str = "caffe",
    dropout: float = 0.2,
) -> TrunkClassifier:
    """ZF-5 trunk (SPP-net's, :class:`~zoo.models.backbones.ZF5`) + global average pooling + linear classifier:
    the network whose trunk starts ``sppnet_zf5`` and ``spp_detector_zf5`` (``weights_backbone=``).

    Args:
        weights: a :class:`ZF5_Classifier_Weights` entry or None.
        progress: show a download progress bar.
        num_classes: classifier outputs (default 10: the classification view's classes).
        width: trunk channel multiplier (1.0 = the paper's ZF-5).
        layout: ``"caffe"`` or ``"mindspore"`` (:class:`~zoo.models.backbones.ZF5`).
        dropout: dropout before the classifier.
    """
    weights = verify_weights(weights, ZF5_Classifier_Weights, "zf5_classifier")
    num_classes = override_num_classes(num_classes, weights, default=10)
    trunk = ZF5(width, layout=layout)
    model = TrunkClassifier(trunk, num_classes, dropout, min_input_size=trunk.min_input_size)
    return load_weights(model, weights, progress)


@register_model()
def resnet18_classifier(
    *,
    weights: ResNet18_Classifier_Weights | None = None,
    progress: bool = True,
    num_classes: int | None = None,
    width: float = 1.0,
    stem_widths: Sequence[int] | None = None,
    dropout: float = 0.2,
) -> TrunkClassifier:
    """ResNet-18 (BasicBlock) with PSPNet-R18's deep stem, undilated (output stride 32), + global average pooling
    + linear classifier: the network whose trunk starts ``pspnet_resnet18`` (``weights_backbone=``), which dilates
    layer3/layer4 (no parameter changes).

    Args:
        weights: a :class:`ResNet18_Classifier_Weights` entry or None.
        progress: show a download progress bar.
        num_classes: classifier outputs (default 10).
        width: channel multiplier of the whole trunk (1.0 = mmsegmentation's R-18 widths).
        stem_widths: deep-stem widths; default :data:`~zoo.models.backbones.MMSEG_STEM` scaled by ``width``
            (as ``pspnet_resnet18``).
        dropout: dropout before the classifier.
    """
    weights = verify_weights(weights, ResNet18_Classifier_Weights, "resnet18_classifier")
    num_classes = override_num_classes(num_classes, weights, default=10)
    stem = tuple(stem_widths) if stem_widths is not None else tuple(_scaled(c, width) for c in MMSEG_STEM)
    trunk = DilatedBasicResNet(18, width, stem, output_stride=32)
    model = TrunkClassifier(trunk, num_classes, dropout)
    return load_weights(model, weights, progress)


@register_model()
def vgg16_bn_classifier(
    *,
    weights: VGG16BN_Classifier_Weights | None = None,
    progress: bool = True,
    num_classes: int | None = None,
    width: float = 1.0,
    dropout: float = 0.2,
) -> TrunkClassifier:
    """VGG-16-BN's 13 conv layers (:class:`~zoo.models.backbones.VGG16BNEncoder`, 5 max poolings) + global average
    pooling + linear classifier: the network whose encoder starts ``deconvnet_vgg16`` (``weights_backbone=``).
    Inputs of at least 32x32.

    Args:
        weights: a :class:`VGG16BN_Classifier_Weights` entry or None.
        progress: show a download progress bar.
        num_classes: classifier outputs (default 10).
        width: channel multiplier (1.0 = VGG-16).
        dropout: dropout before the classifier.
    """
    weights = verify_weights(weights, VGG16BN_Classifier_Weights, "vgg16_bn_classifier")
    num_classes = override_num_classes(num_classes, weights, default=10)
    model = TrunkClassifier(VGG16BNEncoder(width), num_classes, dropout, min_input_size=32)
    return load_weights(model, weights, progress)


# ------------------------------------------------------------------------------------------ loading
#: The trunk classifier enum each trunk kind takes (``weights_backbone`` of the families).
BACKBONE_ENUMS = {"zf5": ZF5_Classifier_Weights, "resnet18": ResNet18_Classifier_Weights,
                  "vgg16_bn": VGG16BN_Classifier_Weights}  # fmt: skip


def split_backbone(weights_backbone: Any, kind: str, other_enum: type, arch: str) -> tuple[Any, Any]:
    """``weights_backbone`` of a family builder as (entry of the trunk classifier enum of ``kind``, entry of
    ``other_enum``): the first when it is one (a member, or a string ``"EnumName.ENTRY"`` with that enum's name),
    else the second (torchvision's enum, or ``SPPNet_ZF5_Weights`` for the detector); None gives (None, None). A
    member of any other enum is a TypeError naming the argument."""
    enum_cls = BACKBONE_ENUMS[kind]
    if isinstance(weights_backbone, enum_cls) or (
        isinstance(weights_backbone, str) and weights_backbone.startswith(enum_cls.__name__ + ".")
    ):
        return verify_weights(weights_backbone, enum_cls, arch, "weights_backbone"), None
    return None, verify_weights(weights_backbone, other_enum, arch, "weights_backbone")


def backbone_kwargs(entry: WeightsEnum, progress: bool = True) -> dict[str, Any]:
    """The builder kwargs the trunk classifier ``entry`` was trained with (its ``config.json``)."""
    return dict(entry.get_config(progress=progress).get("kwargs", {}))


def load_backbone(trunk: nn.Module, entry: WeightsEnum, progress: bool = True, prefix: str = TRUNK_PREFIX) -> None:
    """Load every ``prefix`` tensor of ``entry`` (a trunk classifier, or an ``SPPNet`` entry: both keep their trunk
    under ``features.``) into ``trunk``, strictly: a missing, extra or misshapen tensor is a ValueError naming
    it."""
    state = {k[len(prefix) :]: v for k, v in entry.get_state_dict(progress=progress).items() if k.startswith(prefix)}
    load_state_dict(trunk, state, f"the trunk ({prefix}*) of weights_backbone={type(entry).__name__}.{entry.name}")


def resolve(value: Any, recorded: Any, default: Any, name: str, entry: WeightsEnum) -> Any:
    """A trunk argument: ``value`` when given (it must agree with what ``entry`` recorded), else the entry's, else
    ``default``."""
    if value is None:
        return default if recorded is None else recorded
    if recorded is not None and _normalized(value) != _normalized(recorded):
        raise ValueError(
            f"{name}={value!r} conflicts with weights_backbone={type(entry).__name__}.{entry.name}, trained with "
            f"{name}={recorded!r}; leave {name} out to take the entry's"
        )
    return value


def _normalized(value: Any) -> Any:
    return tuple(value) if isinstance(value, (list, tuple)) else float(value) if isinstance(value, int) else value
