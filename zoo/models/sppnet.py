"""SPP-net classifiers (He et al., ECCV 2014 / TPAMI 2015) on the fused spatial-pyramid-pooling kernel.

A conv trunk, then a spatial pyramid pooling layer (max pooling at levels {6, 3, 2, 1}: 50 bins)
replacing the last pooling layer, so the fc layers see a fixed-length vector whatever the input size:
fc6 and fc7 (4096, ReLU, dropout 0.5) and the classifier. Inputs of any size at or above the
trunk's minimum run without crop or warp, and training may change the input size from batch to
batch (the paper's multi-size training).
"""

from collections.abc import Sequence
from functools import partial

import torch.fx
from torch import Tensor, nn

import kernels
from kernels import reference

from ._common import check_image_batch
from .backbones import RESNET_WEIGHTS, ZF5, resnet_trunk
from .classifiers import ZF5_Classifier_Weights, backbone_kwargs, load_backbone, resolve
from .presets import IMAGENET_MEAN, IMAGENET_STD, ImagePreprocess, WarpCropPreprocess, scene_weights_meta
from .registry import Weights, WeightsEnum, load_weights, override_num_classes, register_model, verify_weights

__all__ = ["SPPNet", "SPPNet_ZF5_Weights", "SPPNet_ResNet50_Weights", "sppnet_zf5", "sppnet_resnet50"]

# FX: a symbolic trace records the input check as one call, which still raises in the traced module
torch.fx.wrap("check_image_batch")

#: The SPP-net pyramid: 6x6 + 3x3 + 2x2 + 1x1 = 50 bins (12,800-d on a 256-channel conv5).
SPP_LEVELS = (6, 3, 2, 1)


class SPPNet(nn.Module):
    """Conv trunk + spatial pyramid pooling + fc6/fc7 + classifier.

    Args:
        features: the conv trunk; must expose ``out_channels``.
        num_classes: classifier outputs.
        levels: pyramid levels (n x n bins each).
        representation_size: width of fc6 and fc7 (4096 in the paper).
        dropout: dropout after fc6 and fc7.
        min_input_size: inputs smaller than this (per side) are rejected with a ValueError.
    """

    #: What the model does (the engine reads it: training, evaluation, prediction).
    task = "classification"

    levels: list[int]
    use_kernels: bool
    min_input_size: int

    def __init__(
        self,
        features: nn.Module,
        num_classes: int = 1000,
        levels: Sequence[int] = SPP_LEVELS,
        representation_size: int = 4096,
        dropout: float = 0.5,
        min_input_size: int = 1,
    ):
        super().__init__()
        self.features = features
        self.spp = kernels.SpatialPyramidPool(levels, mode="max")
        self.levels = list(self.spp.levels)
        self.use_kernels = True
        self.min_input_size = int(min_input_size)
        in_features = self.spp.output_features(features.out_channels)
        self.fc6 = nn.Sequential(
            nn.Linear(in_features, representation_size), nn.ReLU(inplace=True), nn.Dropout(dropout)
        )
        self.fc7 = nn.Sequential(
            nn.Linear(representation_size, representation_size), nn.ReLU(inplace=True), nn.Dropout(dropout)
        )
        self.classifier = nn.Linear(representation_size, num_classes)

    def pooled_features(self, x: Tensor) -> Tensor:
        """The fixed-length SPP vector (N, C * sum(n*n)) of a batch of any size."""
        check_image_batch(x, 3, self.min_input_size, self.min_input_size, "SPPNet")
        fmap = self.features(x)
        if self.use_kernels:
            return self.spp(fmap)
        return reference.spatial_pyramid_pool(fmap, self.levels, "max")

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.fc7(self.fc6(self.pooled_features(x))))


#: Where MindSpore's SPP-net (``SppNet``, trained as ``sppnet_mult``) is defined and trained.
MINDSPORE_SOURCE = "https://github.com/mindspore-ai/models/tree/master/research/cv/SPPNet"
#: The MindSpore hub card's note on its weights, which the converted weights keep.
MINDSPORE_DISCLAIMER = (
    "License: Apache-2.0, with MindSpore's note that these weights are provided for research and education "
    "purposes only."
)
#: MindSpore's published ``sppnet_mult`` checkpoint and sha256 (mindspore-ai/hub ``mshub_res/assets/mindspore/1.8``).
MINDSPORE_SPPNET_URL = (
    "https://download.mindspore.cn/models/r1.8/"
    "sppnet_mult_ascend_v180_imagenet2012_research_cv_top1acc64.82_top5acc85.66.ckpt"
)
MINDSPORE_SPPNET_SHA256 = "e1909f126c78468ddc99f56020fca5bc8a49b1102f1e6f86115353ef3365b784"


def _mindspore_imagenet_meta() -> dict:
    from torchvision.models._meta import _IMAGENET_CATEGORIES  # torchvision's order: sorted synsets, as ImageFolder

    return {
        "categories": list(_IMAGENET_CATEGORIES),
        "num_params": 77037672,
        "min_size": (ZF5.MIN_INPUT_SIZES["mindspore"], ZF5.MIN_INPUT_SIZES["mindspore"]),
        "input_size": (224, 224),
        "resize_size": (256, 256),
        "mean": IMAGENET_MEAN,
        "std": IMAGENET_STD,
        "trunk_layout": "mindspore",
        "dataset": "imagenet-1k",
        "_metrics": {},
        "published_metrics": {"ImageNet-1k-val (MindSpore)": {"acc@1": 64.82, "acc@5": 85.66}},
        "_file_size": 308.15,
        "license": "Apache-2.0",
        "license_note": MINDSPORE_DISCLAIMER,
        "source": f"MindSpore's SppNet (train_model='sppnet_mult': multi-size training at 224 and 180), ImageNet-1k: "
        f"{MINDSPORE_SPPNET_URL}, converted exactly by zoo.convert.mindspore",
        "recipe": MINDSPORE_SOURCE,
        "_docs": "MindSpore's checkpoint, downloaded (about 600 MB: weights and optimizer moments), verified "
        "(full sha256) and converted on first use; 308 MB are kept. Top-1 64.82 / top-5 85.66 on ImageNet-1k "
        "val at 224 (warp to 256 x 256, center crop 224; their script drops the last partial batch: 49,920 "
        "images) as published by MindSpore, not re-measured here. Conversion tested on synthetic checkpoints "
        f"in MindSpore's exact format, not yet on the real file. {MINDSPORE_DISCLAIMER}",
    }


class SPPNet_ZF5_Weights(WeightsEnum):
    """Weights of :func:`sppnet_zf5`. Meta schema: :mod:`zoo.models.registry`.

    ``IMAGENET1K_MINDSPORE``: MindSpore's published ImageNet-1k SPP-net (``sppnet_mult``: ZF-5, SPP {6,3,2,1},
    multi-size training; 77 M parameters), converted exactly (``layout="mindspore"``, see
    :class:`~zoo.models.backbones.ZF5`). Downloaded, verified against its full sha256 and converted on first use
    (:mod:`zoo.convert.mindspore`); the 600 MB upstream file is not kept unless asked
    (``zoo.hub.download(entry, keep_upstream=True)``). Top-1 64.82 / top-5 85.66 as published by MindSpore
    (``meta["published_metrics"]``), not re-measured here. Apache-2.0, for research and education purposes
    (MindSpore's note). Preprocessing: :class:`~zoo.models.presets.WarpCropPreprocess` (warp 256 x 256, crop 224).

    ``SCENES_V2``: a compact SPP-net (``width=0.25``: ZF-5 at a quarter of its channels, fc6/fc7 of 256; 1.1 M
    parameters), the 10 Fashion-MNIST classes of :class:`zoo.data.SceneClassification`, fine-tuned on the CPU from the
    pretrained ZF-5 (:class:`~zoo.models.classifiers.ZF5_Classifier_Weights` ``SCENES_V1``) with multi-size training
    (80, 96, 112 in turn), as the paper trains on ImageNet; metrics at 128 x 128, its best test size (any size >= 23
    works: see the README's single- vs multi-size table); stored in fp16. Its trunk starts the detectors
    (``spp_detector_zf5``). It replaces ``SCENES_V1`` (trained from scratch: acc@1 32.2), whose file no longer
    ships.
    """

    SCENES_V2 = Weights(
        repo="sppnet_zf5.scenes",
        revision="v2",
        sha256="ba89fef6a79392eab0ea23eb5960bbdd333f5952ee7fd31582a902c2d5f3ca86",
        transforms=partial(ImagePreprocess, 128),
        meta=scene_weights_meta(
            task="classification",
            num_params=1123626,
            file_size=2.249,
            metrics={"acc@1": 67.6, "acc@5": 98.2},
            min_size=(ZF5.MIN_INPUT_SIZE, ZF5.MIN_INPUT_SIZE),
            input_size=(128, 128),
            command="python -m zoo train sppnet_zf5 --weights-backbone ZF5_Classifier_Weights.SCENES_V1 "
            "-k representation_size=256 --epochs 3 --limit 20000 --batch-size 64 --image-size 96 --lr 1e-3 "
            "--log-every 50 --val-size 500 --multi-size 80,96,112 --seed 0",
            time_s=215.5,
            source="fine-tuned by spp-zoo (python -m zoo train) from ZF5_Classifier_Weights.SCENES_V1 on zoo.data' "
            "classification view",
            storage_dtype="float16",
        ),
    )
    IMAGENET1K_MINDSPORE = Weights(
        url=MINDSPORE_SPPNET_URL,
        sha256_prefix=MINDSPORE_SPPNET_SHA256,
        converter="mindspore",
        repo="sppnet_zf5.imagenet1k_mindspore",
        transforms=partial(WarpCropPreprocess, crop_size=224, resize_size=(256, 256)),
        meta=_mindspore_imagenet_meta(),
    )
    DEFAULT = SCENES_V2  # the offline main job: shipped with the package


class SPPNet_ResNet50_Weights(WeightsEnum):
    """Weights of :func:`sppnet_resnet50`. No entries yet. Meta schema: :mod:`zoo.models.registry`."""


@register_model()
def sppnet_zf5(
    *,
    weights: SPPNet_ZF5_Weights | None = None,
    progress: bool = True,
    num_classes: int | None = None,
    weights_backbone: ZF5_Classifier_Weights | None = None,
    width: float | None = None,
    layout: str | None = None,
    **kwargs,
) -> SPPNet:
    """SPP-net classifier on the ZF-5 trunk: conv5 (256 ch) -> SPP {6,3,2,1} (12,800-d) -> fc6/fc7 4096 -> classes.

    Accepts inputs of at least 23x23 (21x21 with ``layout="mindspore"``: :attr:`ZF5.MIN_INPUT_SIZES`, the
    smallest leaving conv5 non-empty) and batches of any size; smaller inputs raise a ValueError.

    Args:
        weights: a :class:`SPPNet_ZF5_Weights` entry or None.
        progress: show a download progress bar.
        num_classes: classifier outputs (default 1000, ImageNet).
        weights_backbone: a :class:`~zoo.models.classifiers.ZF5_Classifier_Weights` entry (the zoo's pretrained
            ZF-5): the trunk is built at its width and layout and loads every ``features.*`` tensor of it
            strictly; the SPP head starts fresh. Ignored when ``weights`` is given.
        width: trunk channel multiplier (default: that of ``weights_backbone``, else 1.0 = the paper).
        layout: the trunk's layout (:class:`~zoo.models.backbones.ZF5`): ``"caffe"`` (the paper's ZF-5; the
            default unless ``weights_backbone`` says otherwise) or ``"mindspore"`` (MindSpore's SppNet, that of
            ``IMAGENET1K_MINDSPORE``).
        **kwargs: :class:`SPPNet` options (``levels``, ``representation_size``, ``dropout``).
    """
    weights = verify_weights(weights, SPPNet_ZF5_Weights, "sppnet_zf5")
    weights_backbone = verify_weights(weights_backbone, ZF5_Classifier_Weights, "sppnet_zf5", "weights_backbone")
    if weights is not None:
        weights_backbone = None
    if weights_backbone is not None:
        layout = resolve(layout, ZF5.layout_of(weights_backbone), None, "layout", weights_backbone)
        width = resolve(width, backbone_kwargs(weights_backbone, progress).get("width"), 1.0, "width", weights_backbone)
    width = 1.0 if width is None else width
    layout = "caffe" if layout is None else layout
    if weights is not None and ZF5.layout_of(weights) != layout:
        raise ValueError(f"{weights!r} needs layout={ZF5.layout_of(weights)!r}, got layout={layout!r}")
    num_classes = override_num_classes(num_classes, weights, default=1000)
    trunk = ZF5(width, layout=layout)
    if weights_backbone is not None:
        load_backbone(trunk, weights_backbone, progress)
    model = SPPNet(trunk, num_classes, min_input_size=trunk.min_input_size, **kwargs)
    model._zoo_resolved_kwargs = {"width": width, "layout": layout}  # config.json rebuilds this trunk
    return load_weights(model, weights, progress)


@register_model()
def sppnet_resnet50(
    *,
    weights: SPPNet_ResNet50_Weights | None = None,
    progress: bool = True,
    num_classes: int | None = None,
    weights_backbone=None,
    **kwargs,
) -> SPPNet:
    """SPP-net head on torchvision's ResNet-50 trunk (up to layer4, 2048 ch, stride 32):
    SPP {6,3,2,1} (102,400-d) -> fc6/fc7 4096 -> classes. Any input size, any batch size.

    Args:
        weights: a :class:`SPPNet_ResNet50_Weights` entry (none published yet) or None.
        progress: show a download progress bar.
        num_classes: classifier outputs (default 1000, ImageNet).
        weights_backbone: torchvision ``ResNet50_Weights`` for the trunk.
        **kwargs: :class:`SPPNet` options (``levels``, ``representation_size``, ``dropout``).
    """
    weights = verify_weights(weights, SPPNet_ResNet50_Weights, "sppnet_resnet50")
    weights_backbone = verify_weights(weights_backbone, RESNET_WEIGHTS[50], "sppnet_resnet50", "weights_backbone")
    if weights is not None:
        weights_backbone = None
    num_classes = override_num_classes(num_classes, weights, default=1000)
    model = SPPNet(resnet_trunk(50, weights_backbone, progress), num_classes, **kwargs)
    return load_weights(model, weights, progress)
