"""Convolutional trunks: ZF-5 (SPP-net), torchvision ResNets, and the dilated deep-stem ResNet of PSPNet.

ImageNet weights come from torchvision's own enums (``ResNet50_Weights``...); they are loaded by
torchvision's builders, so its download cache and hash checks apply.
"""

from collections import OrderedDict
from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models import (
    ResNet,
    ResNet18_Weights,
    ResNet34_Weights,
    ResNet50_Weights,
    ResNet101_Weights,
    ResNet152_Weights,
    resnet,
)
from torchvision.models.resnet import BasicBlock
from torchvision.ops import Conv2dNormActivation

from ._common import init_conv_bn
from .registry import verify_weights
from .same_padding import SameConv2d

__all__ = [
    "ZF5",
    "DilatedResNet",
    "DilatedBasicResNet",
    "VGG16BNEncoder",
    "resnet_trunk",
    "RESNET_WEIGHTS",
    "BASIC_RESNET_WEIGHTS",
    "SEMSEG_STEM",
    "MMSEG_STEM",
]

RESNET_WEIGHTS = {50: ResNet50_Weights, 101: ResNet101_Weights, 152: ResNet152_Weights}
_RESNET_BUILDERS = {50: resnet.resnet50, 101: resnet.resnet101, 152: resnet.resnet152}
#: torchvision ImageNet weights of the BasicBlock ResNets (fit ``width=1.0`` with the 7x7 stem only).
BASIC_RESNET_WEIGHTS = {18: ResNet18_Weights, 34: ResNet34_Weights}
_BASIC_LAYERS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}
_BASIC_BUILDERS = {18: resnet.resnet18, 34: resnet.resnet34}

#: Deep stem widths of hszhao/semseg's ResNet ("deep_base"): 3 -> 64 -> 64 -> 128.
SEMSEG_STEM = (64, 64, 128)
#: Deep stem widths of mmsegmentation's ResNetV1c: 3 -> 32 -> 32 -> 64.
MMSEG_STEM = (32, 32, 64)


def _scaled(channels: int, width: float) -> int:
    return max(1, int(round(channels * width)))


class ZF5(nn.Sequential):
    """The ZF-5 conv trunk of SPP-net (He et al., 2014, Table 1), up to conv5 (+ReLU), pool5 removed.

    conv1 96 7x7/2, ReLU, LRN, max pool 3x3/2; conv2 256 5x5/2, ReLU, LRN, max pool 3x3/2; conv3 384,
    conv4 384, conv5 256, all 3x3/1 (pad 1) + ReLU. Total stride 16. Two layouts compute this network:

    - ``"caffe"`` (default; the paper's, as Caffe runs it): conv1/conv2 padding 1, pooling with ceil
      rounding, so a 224 input gives the paper's map sizes 55 (pool1), 27 (conv2) and 13 (conv5); LRN
      is AlexNet's across-channel form (size 5, alpha 1e-4, beta 0.75, k 1). The smallest input that
      leaves every layer non-empty is 23 pixels per side (23 -> conv1 10 -> pool1 5 -> conv2 2 -> pool2 1
      -> conv5 1x1; a 22 input leaves conv2 1 wide and pool2 empty).
    - ``"mindspore"``: MindSpore's ``SppNet`` (mindspore-ai/models ``research/cv/SPPNet``), whose ImageNet
      weights ``sppnet_mult`` the zoo converts: conv1/conv2 with "same" padding computed from the input
      size (:class:`~zoo.models.same_padding.SameConv2d`: out = ceil(in / 2); (2, 3) at 224 for conv1,
      (2, 2) for conv2), pooling with floor rounding, TensorFlow's LRN (depth radius 5, bias 1, alpha 1,
      beta 0.5: ``LocalResponseNorm(11, alpha=11, beta=0.5, k=1)``, whose alpha is divided by the size).
      224 gives 112 (conv1), 55 (pool1), 28 (conv2) and 13 (conv5); the smallest input is 21 (21 -> 11
      -> 5 -> 3 -> 1).

    Both layouts have the same modules and parameter names and shapes (``conv1``... ``relu5``).

    Args:
        width: channel multiplier (1.0 = the paper's network; smaller values only for quick tests).
        layout: ``"caffe"`` or ``"mindspore"``, see above.
    """

    #: The smallest input side of the default ("caffe") layout; :attr:`min_input_size` is the instance's.
    MIN_INPUT_SIZE = 23
    MIN_INPUT_SIZES = {"caffe": 23, "mindspore": 21}
    LAYOUTS = tuple(MIN_INPUT_SIZES)
    STRIDE = 16

    def __init__(self, width: float = 1.0, layout: str = "caffe"):
        if layout not in self.LAYOUTS:
            raise ValueError(f"layout must be one of {self.LAYOUTS}, got {layout!r}")
        c1, c2, c3, c4, c5 = (_scaled(c, width) for c in (96, 256, 384, 384, 256))
        if layout == "caffe":
            conv1, conv2 = nn.Conv2d(3, c1, 7, stride=2, padding=1), nn.Conv2d(c1, c2, 5, stride=2, padding=1)
            norm = lambda: nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0)
        else:
            conv1, conv2 = SameConv2d(3, c1, 7, stride=2), SameConv2d(c1, c2, 5, stride=2)
            norm = lambda: nn.LocalResponseNorm(11, alpha=11.0, beta=0.5, k=1.0)
        ceil_mode = layout == "caffe"
        layers = OrderedDict(
            [
                ("conv1", conv1),
                ("relu1", nn.ReLU(inplace=True)),
                ("norm1", norm()),
                ("pool1", nn.MaxPool2d(3, stride=2, ceil_mode=ceil_mode)),
                ("conv2", conv2),
                ("relu2", nn.ReLU(inplace=True)),
                ("norm2", norm()),
                ("pool2", nn.MaxPool2d(3, stride=2, ceil_mode=ceil_mode)),
                ("conv3", nn.Conv2d(c2, c3, 3, padding=1)),
                ("relu3", nn.ReLU(inplace=True)),
                ("conv4", nn.Conv2d(c3, c4, 3, padding=1)),
                ("relu4", nn.ReLU(inplace=True)),
                ("conv5", nn.Conv2d(c4, c5, 3, padding=1)),
                ("relu5", nn.ReLU(inplace=True)),
            ]
        )
        super().__init__(layers)
        self.layout = layout
        self.min_input_size = self.MIN_INPUT_SIZES[layout]
        self.out_channels = c5
        init_conv_bn(self)  # Kaiming: the paper's Gaussian(0.01) init stalls a network this deep without BN

    @staticmethod
    def layout_of(weights) -> str:
        """The layout a weights entry's ZF-5 was trained with: its meta ``trunk_layout``, else ``"caffe"``."""
        return weights.meta.get("trunk_layout", "caffe")


def resnet_trunk(
    depth: int, weights_backbone=None, progress: bool = True, dilate_layer4: bool = False, norm_layer=None
) -> nn.Sequential:
    """torchvision ResNet-``depth`` up to layer4 (avgpool and fc removed), keys ``conv1``... ``layer4``.

    ``dilate_layer4`` replaces layer4's stride by dilation 2 (output stride 16 instead of 32);
    ``norm_layer`` (default BatchNorm2d) e.g. ``FrozenBatchNorm2d`` for detection.
    """
    if depth not in _RESNET_BUILDERS:
        raise ValueError(f"depth must be one of {sorted(_RESNET_BUILDERS)}, got {depth!r}")
    weights_backbone = verify_weights(weights_backbone, RESNET_WEIGHTS[depth], f"resnet{depth}", "weights_backbone")
    net = _RESNET_BUILDERS[depth](
        weights=weights_backbone,
        progress=progress,
        replace_stride_with_dilation=[False, False, dilate_layer4],
        norm_layer=norm_layer,
    )
    names = ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"]
    trunk = nn.Sequential(OrderedDict((name, getattr(net, name)) for name in names))
    trunk.out_channels = 2048
    return trunk


def _deep_stem(widths: Sequence[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    in_channels = 3
    for i, out_channels in enumerate(widths):
        block = Conv2dNormActivation(in_channels, out_channels, 3, stride=2 if i == 0 else 1)
        layers.extend(block)  # flat conv, bn, relu triplets: keys stem.{0,1,3,4,6,7}
        in_channels = out_channels
    return nn.Sequential(*layers)


def _stem_widths_arg(stem_widths) -> tuple[int, ...] | None:
    if stem_widths is None:
        return None
    if isinstance(stem_widths, (str, bytes)) or not isinstance(stem_widths, Sequence) or len(stem_widths) != 3:
        raise TypeError(f"stem_widths must be None or a sequence of 3 ints, got {stem_widths!r}")
    if any(isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in stem_widths):
        raise ValueError(f"stem_widths must be positive ints, got {stem_widths!r}")
    return tuple(stem_widths)


class DilatedResNet(nn.Module):
    """Dilated ResNet of output stride 8 (layer3 dilation 2, layer4 dilation 4), as in PSPNet.

    Built from torchvision's ResNet (``replace_stride_with_dilation=[False, True, True]``, torchvision
    ``Bottleneck`` blocks with the stride on the 3x3 conv) with two options:

    Args:
        depth: 50, 101 or 152.
        stem_widths: ``None`` for torchvision's 7x7 stem (64 channels), or the widths of a deep stem of
            three 3x3 conv+BN+ReLU (the first of stride 2): :data:`SEMSEG_STEM` (64, 64, 128) as in
            hszhao/semseg's PSPNet, :data:`MMSEG_STEM` (32, 32, 64) as mmsegmentation's ResNetV1c.
            layer1 takes the stem's last width as input.
        contract_dilation: ``True`` gives the first block of layer3/layer4 half the dilation (1 and 2),
            as torchvision and mmsegmentation (``contract_dilation=True``) do; ``False`` dilates every
            block of the layer by 2 / 4, as hszhao/semseg does.
        weights_backbone: torchvision ImageNet weights (``ResNet50_Weights``...), which exist for the
            7x7 stem only, so they require ``stem_widths=None``.

    ``forward`` returns ``(layer3, layer4)`` features: (N, 1024, H/8, W/8) and (N, 2048, H/8, W/8).
    """

    def __init__(
        self,
        depth: int = 50,
        stem_widths: Sequence[int] | None = SEMSEG_STEM,
        contract_dilation: bool = False,
        weights_backbone=None,
        progress: bool = True,
    ):
        super().__init__()
        if depth not in _RESNET_BUILDERS:
            raise ValueError(f"depth must be one of {sorted(_RESNET_BUILDERS)}, got {depth!r}")
        stem_widths = _stem_widths_arg(stem_widths)
        weights_backbone = verify_weights(weights_backbone, RESNET_WEIGHTS[depth], f"resnet{depth}", "weights_backbone")
        if weights_backbone is not None and stem_widths is not None:
            raise ValueError(
                f"weights_backbone={weights_backbone!r} was trained with torchvision's 7x7 stem; "
                f"pass stem_widths=None to use it (got stem_widths={stem_widths})"
            )
        net: ResNet = _RESNET_BUILDERS[depth](
            weights=weights_backbone, progress=progress, replace_stride_with_dilation=[False, True, True]
        )
        if stem_widths is None:
            self.stem = nn.Sequential(net.conv1, net.bn1, net.relu)
        else:
            self.stem = _deep_stem(stem_widths)
            init_conv_bn(self.stem)
            if stem_widths[-1] != 64:  # layer1's first block reads the stem's output
                first = net.layer1[0]
                first.conv1 = nn.Conv2d(stem_widths[-1], first.conv1.out_channels, 1, bias=False)
                first.downsample[0] = nn.Conv2d(stem_widths[-1], first.downsample[0].out_channels, 1, bias=False)
                init_conv_bn(first.conv1)
                init_conv_bn(first.downsample[0])
        if not contract_dilation:
            for layer, dilation in ((net.layer3, 2), (net.layer4, 4)):
                layer[0].conv2.dilation = (dilation, dilation)
                layer[0].conv2.padding = (dilation, dilation)
        self.maxpool = net.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4
        self.depth = depth
        self.stem_widths = stem_widths
        self.contract_dilation = contract_dilation
        self.out_channels = 2048
        self.aux_channels = 1024

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = self.maxpool(self.stem(x))
        x = self.layer2(self.layer1(x))
        c3 = self.layer3(x)
        c4 = self.layer4(c3)
        return c3, c4


class DilatedBasicResNet(nn.Module):
    """Dilated ResNet-18/34 (BasicBlock) of output stride 8, as mmsegmentation's ``ResNetV1c`` depth 18/34 "D8".

    layer3 and layer4 keep stride 1 and dilate the 3x3 convs of each block by 2 and 4 (with
    ``contract_dilation`` the first block of each by 1 and 2, as mmsegmentation): both convs of a block by
    default, only the first with ``dilate_conv2=False``, as mmsegmentation's BasicBlock does. Blocks are
    torchvision's ``BasicBlock`` (same parameter names), so torchvision's ImageNet weights load when
    ``width=1.0`` and ``stem_widths=None``.

    Args:
        depth: 18 or 34.
        width: channel multiplier of layer1..layer4 (64, 128, 256, 512 at 1.0).
        stem_widths: ``None`` for torchvision's 7x7 stem (``64 * width`` channels), or the widths of a
            deep stem of three 3x3 conv+BN+ReLU (e.g. :data:`MMSEG_STEM`).
        contract_dilation: first block of layer3/layer4 with half the dilation.
        dilate_conv2: dilate the second 3x3 conv of each block too (True); mmsegmentation's BasicBlock
            dilates the first only (its second keeps padding 1, dilation 1): False reproduces its R-18/34-D8.
        weights_backbone: torchvision ``ResNet18_Weights`` / ``ResNet34_Weights`` (need width 1.0 and the 7x7 stem).
        output_stride: 8 (default: layer3/layer4 dilated, as above) or 32 (layer3/layer4 stride 2, no dilation: the
            classification network whose weights the dilated one takes, as ImageNet ResNets become PSPNet's trunk;
            same parameter names and shapes).

    ``forward`` returns ``(layer3, layer4)``: (N, 256 * width, H/8, W/8) and (N, 512 * width, H/8, W/8) at output
    stride 8 (H/16 and H/32 at 32).
    """

    def __init__(
        self,
        depth: int = 18,
        width: float = 1.0,
        stem_widths: Sequence[int] | None = MMSEG_STEM,
        contract_dilation: bool = True,
        weights_backbone=None,
        progress: bool = True,
        dilate_conv2: bool = True,
        output_stride: int = 8,
    ):
        super().__init__()
        if output_stride not in (8, 32) or isinstance(output_stride, bool):
            raise ValueError(f"output_stride must be 8 or 32, got {output_stride!r}")
        if not isinstance(dilate_conv2, bool):
            raise TypeError(f"dilate_conv2 must be a bool, got {type(dilate_conv2).__name__}")
        if depth not in _BASIC_LAYERS:
            raise ValueError(f"depth must be one of {sorted(_BASIC_LAYERS)}, got {depth!r}")
        if isinstance(width, bool) or not isinstance(width, (int, float)) or not 0 < width <= 1:
            raise ValueError(f"width must be a number in (0, 1], got {width!r}")
        stem_widths = _stem_widths_arg(stem_widths)
        weights_backbone = verify_weights(
            weights_backbone, BASIC_RESNET_WEIGHTS[depth], f"resnet{depth}", "weights_backbone"
        )
        if weights_backbone is not None and (stem_widths is not None or width != 1.0):
            raise ValueError(
                f"weights_backbone={weights_backbone!r} fits width=1.0 with torchvision's 7x7 stem "
                f"(stem_widths=None); got width={width}, stem_widths={stem_widths}"
            )
        planes = [_scaled(c, width) for c in (64, 128, 256, 512)]
        if stem_widths is None:
            self.stem = nn.Sequential(
                nn.Conv2d(3, planes[0], 7, stride=2, padding=3, bias=False), nn.BatchNorm2d(planes[0]), nn.ReLU(True)
            )
            in_channels = planes[0]
        else:
            self.stem = _deep_stem(stem_widths)
            in_channels = stem_widths[-1]
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        layers = []
        for index, (count, channels) in enumerate(zip(_BASIC_LAYERS[depth], planes, strict=True)):
            if output_stride == 8:
                stride = 2 if index == 1 else 1  # layer2 halves; layer3/layer4 dilate instead
                dilation = {2: 2, 3: 4}.get(index, 1)
            else:
                stride, dilation = (1 if index == 0 else 2), 1
            blocks = []
            for b in range(count):
                downsample = None
                block_stride = stride if b == 0 else 1
                if b == 0 and (block_stride != 1 or in_channels != channels):
                    downsample = nn.Sequential(
                        nn.Conv2d(in_channels, channels, 1, stride=block_stride, bias=False), nn.BatchNorm2d(channels)
                    )
                block = BasicBlock(in_channels, channels, block_stride, downsample)
                d = dilation // 2 if (b == 0 and contract_dilation and dilation > 1) else dilation
                for conv in (block.conv1, block.conv2) if dilate_conv2 else (block.conv1,):
                    conv.dilation, conv.padding = (d, d), (d, d)
                blocks.append(block)
                in_channels = channels
            layers.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        init_conv_bn(self)
        if weights_backbone is not None:
            source = _BASIC_BUILDERS[depth](weights=weights_backbone, progress=progress)
            state = {k: v for k, v in source.state_dict().items() if not k.startswith("fc.")}
            state = {("stem.0" + k[5:] if k.startswith("conv1") else "stem.1" + k[3:] if k.startswith("bn1") else k): v
                     for k, v in state.items()}  # fmt: skip
            self.load_state_dict(state)
        self.depth = depth
        self.width = float(width)
        self.stem_widths = stem_widths
        self.contract_dilation = contract_dilation
        self.dilate_conv2 = dilate_conv2
        self.output_stride = output_stride
        self.out_channels = planes[3]
        self.aux_channels = planes[2]

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = self.maxpool(self.stem(x))
        x = self.layer2(self.layer1(x))
        c3 = self.layer3(x)
        c4 = self.layer4(c3)
        return c3, c4


# (input, output) channels of VGG-16's 3x3 convs per stage, paper widths.
_VGG16_STAGES = (((3, 64), (64, 64)), ((64, 128), (128, 128)), ((128, 256), (256, 256), (256, 256)),
                 ((256, 512), (512, 512), (512, 512)), ((512, 512), (512, 512), (512, 512)))  # fmt: skip


def _vgg_scaled(channels: int, width: float) -> int:
    return channels if channels == 3 else _scaled(channels, width)


class VGG16BNEncoder(nn.ModuleList):
    """VGG-16-BN's 13 conv+BN+ReLU layers in 5 stages (``[s][b]`` = block ``b`` of stage ``s``, each a torchvision
    ``Conv2dNormActivation``: keys ``{s}.{b}.0.weight`` (conv, no bias), ``{s}.{b}.1.*`` (BN)), every width scaled by
    ``width``. ``forward`` runs the stages with a 2x2 max pooling after each (N, 512 * width, H/32, W/32); the
    DeconvNet runs them itself to keep the pooling switches."""

    def __init__(self, width: float = 1.0):
        super().__init__(
            [nn.Sequential(*[Conv2dNormActivation(_vgg_scaled(i, width), _vgg_scaled(o, width), 3) for i, o in stage])
             for stage in _VGG16_STAGES]
        )  # fmt: skip
        self.out_channels = _vgg_scaled(512, width)

    def forward(self, x: Tensor) -> Tensor:
        for stage in self:
            x = F.max_pool2d(stage(x), 2, 2)
        return x
