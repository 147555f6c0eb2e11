"""DeconvNet (Noh, Hong and Han, "Learning Deconvolution Network for Semantic Segmentation", ICCV 2015).

Encoder: VGG-16 with batch normalization (13 3x3 convs, 5 max poolings that keep their switch
indices), fc6 as a 7x7 conv to 4096 (no padding) and fc7 as a 1x1 conv to 4096. Decoder, the mirror
image: deconv-fc6 (7x7 transposed conv back to 512 channels), then per stage a max unpooling with the
stored indices (to the exact pre-pooling size) and 3x3 deconvolutions (512-512-512, 512-512-256,
256-256-128, 128-64, 64-64), and a 1x1 per-pixel classifier (21 classes by default). Every conv
and deconv is followed by BN and ReLU, as in the paper.

Minimum input: fc6's 7x7 window needs the pool5 map to be at least 7x7, i.e. ``floor(H / 32) >= 7``:
:attr:`DeconvNet.MIN_INPUT_SIZE` = 224 pixels per side. Larger inputs of any size give an output of
the input's size.
"""

from functools import partial

import torch
import torch.fx
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models import VGG16_BN_Weights, vgg16_bn
from torchvision.ops import Conv2dNormActivation

from ._common import check_image_batch, init_conv_bn
from .backbones import VGG16BNEncoder
from .classifiers import VGG16BN_Classifier_Weights, backbone_kwargs, load_backbone, resolve, split_backbone
from .presets import ImagePreprocess, scene_weights_meta
from .registry import Weights, WeightsEnum, load_weights, override_num_classes, register_model, verify_weights

__all__ = ["DeconvNet", "DeconvNet_VGG16_Weights", "deconvnet_vgg16"]

# FX: a symbolic trace records the input check as one call, which still raises in the traced module
torch.fx.wrap("check_image_batch")


def _max_unpool(x: Tensor, switches: Tensor, size: list[int]) -> Tensor:
    """``F.max_unpool2d(x, switches, 2, 2, output_size=size)`` as a scatter into zeros.

    The switches of a non-overlapping 2x2 max pooling are distinct within each plane, so this is
    deterministic (PyTorch's ``max_unpool2d`` cannot know that and raises under
    ``torch.use_deterministic_algorithms(True)``); its gradient is the same gather at the switches.
    """
    n, c = x.shape[0], x.shape[1]
    planes = x.new_zeros((n, c, size[0] * size[1]))
    return planes.scatter_(2, switches.flatten(2), x.flatten(2)).view(n, c, size[0], size[1])


# (input, output) channels of the 3x3 deconvs per decoder stage, paper widths.
_DECODER = (((512, 512), (512, 512), (512, 512)), ((512, 512), (512, 512), (512, 256)),
            ((256, 256), (256, 256), (256, 128)), ((128, 128), (128, 64)), ((64, 64), (64, 64)))  # fmt: skip


def _scaled(channels: int, width: float) -> int:
    return channels if channels == 3 else max(1, int(round(channels * width)))


def _deconv_bn_relu(in_channels: int, out_channels: int, kernel_size: int, padding: int) -> nn.Sequential:
    return nn.Sequential(
        nn.ConvTranspose2d(in_channels, out_channels, kernel_size, padding=padding, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class DeconvNet(nn.Module):
    """The DeconvNet: VGG-16-BN encoder with pooling switches, fc6/fc7 convs, mirrored deconv decoder.

    ``encoder[s]`` / ``decoder[s]`` hold the conv / deconv blocks of stage ``s`` (decoder stage 0 is
    the deepest). ``forward`` returns (N, num_classes, H, W) logits.

    Args:
        num_classes: output classes (21: PASCAL VOC).
        width: channel multiplier of every layer (1.0 = the paper; smaller only for quick tests).
        fc_channels: width of fc6/fc7 before scaling (4096).
    """

    #: What the model does (the engine reads it: training, evaluation, prediction).
    task = "segmentation"

    min_input_size: int

    MIN_INPUT_SIZE = 224

    def __init__(self, num_classes: int = 21, width: float = 1.0, fc_channels: int = 4096):
        super().__init__()
        if not (isinstance(width, (int, float)) and 0 < width <= 1):
            raise ValueError(f"width must be in (0, 1], got {width!r}")
        s = lambda c: _scaled(c, width)
        self.encoder = VGG16BNEncoder(width)
        fc = s(fc_channels)
        self.fc6 = Conv2dNormActivation(s(512), fc, 7, padding=0)
        self.fc7 = Conv2dNormActivation(fc, fc, 1)
        self.deconv_fc6 = _deconv_bn_relu(fc, s(512), 7, padding=0)
        self.decoder = nn.ModuleList(
            [nn.Sequential(*[_deconv_bn_relu(s(i), s(o), 3, padding=1) for i, o in stage]) for stage in _DECODER]
        )
        self.classifier = nn.Conv2d(s(64), num_classes, 1)
        self.num_classes = num_classes
        self.width = float(width)
        self.min_input_size = self.MIN_INPUT_SIZE
        init_conv_bn(self)

    def forward(self, x: Tensor) -> Tensor:
        check_image_batch(x, 3, self.min_input_size, self.min_input_size, "DeconvNet")
        sizes: list[list[int]] = []
        switches: list[Tensor] = []
        for stage in self.encoder:
            x = stage(x)
            sizes.append([x.shape[-2], x.shape[-1]])
            x, indices = F.max_pool2d_with_indices(x, 2, 2)
            switches.append(indices)
        x = self.deconv_fc6(self.fc7(self.fc6(x)))
        depth = len(switches)
        for i, stage in enumerate(self.decoder):
            j = depth - 1 - i
            x = _max_unpool(x, switches[j], sizes[j])
            x = stage(x)
        return self.classifier(x)

    @torch.no_grad()
    def load_vgg16_bn(self, vgg: nn.Module) -> None:
        """Copy a torchvision ``vgg16_bn``'s 13 conv+BN layers into the encoder and its fc6/fc7
        (reshaped to 7x7 / 1x1 convs).

        The encoder convs have no bias (BN follows): each VGG conv bias is folded into its BN's
        running mean (``BN(conv(x) + b)`` with mean m equals ``BN(conv(x))`` with mean ``m - b``), so
        the encoder computes exactly VGG's features in eval mode. fc6/fc7 get fresh BNs here, which
        absorb their biases in training."""
        if self.width != 1.0:
            raise ValueError(f"VGG-16 weights fit width=1.0 only, this DeconvNet has width={self.width}")
        convs = [m for m in vgg.features if isinstance(m, nn.Conv2d)]
        norms = [m for m in vgg.features if isinstance(m, nn.BatchNorm2d)]
        blocks = [block for stage in self.encoder for block in stage]
        if len(convs) != len(blocks) or len(norms) != len(blocks):
            raise ValueError(f"expected a VGG-16-BN with {len(blocks)} conv+BN layers, got {len(convs)}/{len(norms)}")
        for block, conv, norm in zip(blocks, convs, norms, strict=True):
            block[0].weight.copy_(conv.weight)
            block[1].load_state_dict(norm.state_dict())
            if conv.bias is not None:
                block[1].running_mean.sub_(conv.bias)
        fc6, fc7 = vgg.classifier[0], vgg.classifier[3]
        self.fc6[0].weight.copy_(fc6.weight.reshape(self.fc6[0].weight.shape))
        self.fc7[0].weight.copy_(fc7.weight.reshape(self.fc7[0].weight.shape))


class DeconvNet_VGG16_Weights(WeightsEnum):
    """Weights of :func:`deconvnet_vgg16`. Meta schema: :mod:`zoo.models.registry`.

    ``SCENES_V2``: a compact DeconvNet (``width=0.25``, ``fc_channels=1024``: every layer at 1/4 of the paper's width,
    5.1 M parameters), 11 classes (background + Fashion-MNIST's 10) of :class:`zoo.data.SceneSegmentation`, trained
    on the CPU in the paper's two stages from the pretrained encoder
    (:class:`~zoo.models.classifiers.VGG16BN_Classifier_Weights` ``SCENES_W25_V1``): 800 steps on object-centred crops
    (``--data scene-objects``), then 800 on the full scenes; inputs resized to 224 x 224; stored in fp16 (fp32: the
    same metrics). It replaces ``SCENES_V1`` (1/8 width from scratch, mIoU 8.17: background everywhere), whose file
    no longer ships. It marks about as many pixels as objects as there are, but mostly with the wrong class.
    """

    SCENES_V2 = Weights(
        repo="deconvnet_vgg16.scenes",
        revision="v2",
        sha256="4cc90a27cb46ac4cdd7fff966415ab27ad8a0ea2a025cce21c73f431a29c6604",
        transforms=partial(ImagePreprocess, 224),
        meta=scene_weights_meta(
            task="segmentation",
            num_params=5123595,
            file_size=10.273,
            metrics={"mIoU": 9.91, "mAcc": 15.59, "aAcc": 89.66},
            min_size=(224, 224),
            input_size=(224, 224),
            command="python -m zoo train deconvnet_vgg16 --data scene-objects --weights-backbone "
            "VGG16BN_Classifier_Weights.SCENES_W25_V1 -k fc_channels=1024 --epochs 1 --limit 6400 --batch-size 8 "
            "--image-size 224 --lr 1e-3 --channels-last --cpu-amp --output runs/ft/deconvnet_vgg16_w25_objects; "
            "python -m zoo train deconvnet_vgg16 --weights runs/ft/deconvnet_vgg16_w25_objects --epochs 1 "
            "--limit 6400 --batch-size 8 --image-size 224 --lr 1e-3 --channels-last --cpu-amp",
            time_s=1070.8 + 746.1,
            source="fine-tuned by spp-zoo (python -m zoo train) in two stages (object-centred crops, then full "
            "scenes) from the encoder of VGG16BN_Classifier_Weights.SCENES_W25_V1 on zoo.data' scenes",
            storage_dtype="float16",
        ),
    )
    DEFAULT = SCENES_V2


@register_model()
def deconvnet_vgg16(
    *,
    weights: DeconvNet_VGG16_Weights | None = None,
    progress: bool = True,
    num_classes: int | None = None,
    weights_backbone: VGG16_BN_Weights | VGG16BN_Classifier_Weights | None = None,
    width: float | None = None,
    **kwargs,
) -> DeconvNet:
    """DeconvNet on VGG-16-BN (Noh et al., 2015). Inputs of at least 224x224 (smaller raise a ValueError).

    Args:
        weights: a :class:`DeconvNet_VGG16_Weights` entry or None.
        progress: show a download progress bar.
        num_classes: output classes (default 21, PASCAL VOC).
        weights_backbone: the zoo's pretrained encoder, a
            :class:`~zoo.models.classifiers.VGG16BN_Classifier_Weights` entry (the encoder is built at its width and
            loads every ``features.*`` tensor strictly; fc6/fc7 and the decoder start fresh), or torchvision's
            ``VGG16_BN_Weights`` (ImageNet) for the 13 encoder convs and fc6/fc7 (``width=1.0``). Ignored when
            ``weights`` is given.
        width: channel multiplier (default: that of a zoo ``weights_backbone``, else 1.0 = the paper).
        **kwargs: :class:`DeconvNet` options (``fc_channels``).
    """
    weights = verify_weights(weights, DeconvNet_VGG16_Weights, "deconvnet_vgg16")
    own_backbone, weights_backbone = split_backbone(weights_backbone, "vgg16_bn", VGG16_BN_Weights, "deconvnet_vgg16")
    if weights is not None:
        weights_backbone = own_backbone = None
    if own_backbone is not None:
        width = resolve(width, backbone_kwargs(own_backbone, progress).get("width"), 1.0, "width", own_backbone)
    width = 1.0 if width is None else width
    if weights_backbone is not None and width != 1.0:
        raise ValueError(f"VGG-16 weights fit width=1.0 only, got width={width!r} with weights_backbone")
    num_classes = override_num_classes(num_classes, weights, default=21)
    model = DeconvNet(num_classes, width, **kwargs)
    if weights_backbone is not None:
        model.load_vgg16_bn(vgg16_bn(weights=weights_backbone, progress=progress))
    if own_backbone is not None:
        load_backbone(model.encoder, own_backbone, progress)
    model._zoo_resolved_kwargs = {"width": width}  # config.json rebuilds this network
    return load_weights(model, weights, progress)
