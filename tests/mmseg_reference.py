"""mmsegmentation's PSPNet (EncoderDecoder: ResNetV1c-D8 + PSPHead + FCNHead), re-implemented independently with
mmsegmentation's key names, for the converter and official-weights tests (no mmsegmentation install needed).

Written from mmsegmentation's published architecture: ResNetV1c deep stem 3->32->32->64 (``backbone.stem``),
``contract_dilation`` (first block of layer3/layer4 dilated by 1/2), strides (1, 2, 1, 1), dilations
(1, 1, 2, 4); mmsegmentation's BasicBlock dilates its first 3x3 conv only (the second keeps padding 1,
dilation 1); Bottleneck (pytorch style) dilates its 3x3 conv; PSPHead (pool scales 1, 2, 3, 6, ``channels``),
FCNHead with one conv on layer3; ``align_corners`` for every resize (False, or True for the 769x769
Cityscapes configs). :func:`mmseg_checkpoint` writes the published layout ``{"meta": ..., "state_dict": ...}``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

LAYERS = {18: (2, 2, 2, 2), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}


class Bottleneck(nn.Module):
    """ResNet v1.5 bottleneck (stride on the 3x3 conv)."""

    expansion = 4

    def __init__(self, inplanes, planes, stride=1, dilation=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.downsample = downsample

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return F.relu(y + (x if self.downsample is None else self.downsample(x)))


class BasicBlock(nn.Module):
    """mmsegmentation's BasicBlock: conv1 3x3 (stride, dilation), conv2 3x3 (padding 1, no dilation)."""

    expansion = 1

    def __init__(self, inplanes, planes, stride=1, dilation=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=dilation, dilation=dilation, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (x if self.downsample is None else self.downsample(x)))


def res_layer(block, inplanes, planes, blocks, stride, dilation, first_dilation):
    downsample = None
    if stride != 1 or inplanes != planes * block.expansion:
        conv = nn.Conv2d(inplanes, planes * block.expansion, 1, stride=stride, bias=False)
        downsample = nn.Sequential(conv, nn.BatchNorm2d(planes * block.expansion))
    layers = [block(inplanes, planes, stride, first_dilation, downsample)]
    layers += [block(planes * block.expansion, planes, 1, dilation) for _ in range(1, blocks)]
    return nn.Sequential(*layers)


def deep_stem(widths):
    layers, c = [], 3
    for i, w in enumerate(widths):
        layers += [nn.Conv2d(c, w, 3, stride=2 if i == 0 else 1, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU()]
        c = w
    return layers


class ConvModule(nn.Module):
    def __init__(self, cin, cout, k):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, padding=k // 2, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.activate = nn.ReLU()

    def forward(self, x):
        return self.activate(self.bn(self.conv(x)))


class MMSegPSPNet(nn.Module):
    """``pspnet_r{depth}-d8``: channels 512 / aux 256 for R-50/101, 128 / 64 for R-18 (mmsegmentation's configs)."""

    def __init__(self, depth=50, num_classes=5, pool_scales=(1, 2, 3, 6), align_corners=False):
        super().__init__()
        block = BasicBlock if depth < 50 else Bottleneck
        channels, aux_channels = (128, 64) if depth < 50 else (512, 256)
        b = LAYERS[depth]
        e = block.expansion
        self.align_corners = align_corners
        self.backbone = nn.Module()
        self.backbone.stem = nn.Sequential(*deep_stem((32, 32, 64)))
        self.backbone.maxpool = nn.MaxPool2d(3, 2, 1)
        self.backbone.layer1 = res_layer(block, 64, 64, b[0], 1, 1, 1)
        self.backbone.layer2 = res_layer(block, 64 * e, 128, b[1], 2, 1, 1)
        self.backbone.layer3 = res_layer(block, 128 * e, 256, b[2], 1, 2, 1)  # contract_dilation: 2 // 2
        self.backbone.layer4 = res_layer(block, 256 * e, 512, b[3], 1, 4, 2)
        self.decode_head = nn.Module()
        self.decode_head.psp_modules = nn.ModuleList(
            nn.Sequential(nn.AdaptiveAvgPool2d(s), ConvModule(512 * e, channels, 1)) for s in pool_scales
        )
        self.decode_head.bottleneck = ConvModule(512 * e + len(pool_scales) * channels, channels, 3)
        self.decode_head.dropout = nn.Dropout2d(0.1)
        self.decode_head.conv_seg = nn.Conv2d(channels, num_classes, 1)
        self.auxiliary_head = nn.Module()
        self.auxiliary_head.convs = nn.Sequential(ConvModule(256 * e, aux_channels, 3))
        self.auxiliary_head.dropout = nn.Dropout2d(0.1)
        self.auxiliary_head.conv_seg = nn.Conv2d(aux_channels, num_classes, 1)

    def _resize(self, x, size):
        return F.interpolate(x, size=size, mode="bilinear", align_corners=self.align_corners)

    def forward(self, img):
        bb = self.backbone
        x = bb.maxpool(bb.stem(img))
        c3 = bb.layer3(bb.layer2(bb.layer1(x)))
        c4 = bb.layer4(c3)
        head = self.decode_head
        outs = [c4] + [self._resize(m(c4), c4.shape[2:]) for m in head.psp_modules]
        seg = head.conv_seg(head.dropout(head.bottleneck(torch.cat(outs, 1))))
        out = self._resize(seg, img.shape[2:])
        if self.training:
            a = self.auxiliary_head
            return out, self._resize(a.conv_seg(a.dropout(a.convs(c3))), img.shape[2:])
        return out


def randomize(module, seed=0):
    """Random weights and non-trivial BN statistics, scaled so a deep ResNet stays numerically tame."""
    torch.manual_seed(seed)
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            if m.bias is not None:
                nn.init.uniform_(m.bias, -0.1, 0.1)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.uniform_(m.weight, 0.2, 0.6)
            nn.init.uniform_(m.bias, -0.2, 0.2)
            m.running_mean.uniform_(-0.3, 0.3)
            m.running_var.uniform_(0.5, 2.0)
            m.num_batches_tracked.fill_(1000)
    return module


def mmseg_checkpoint(model: nn.Module, path, classes=None, palette=None) -> None:
    """Save ``model`` as mmsegmentation's published files are: ``{"meta": {...}, "state_dict": OrderedDict}``
    (optimizer removed, no ``module.`` prefix; ``meta`` with versions, config text, CLASSES and PALETTE)."""
    meta = {"mmseg_version": "0.5.0+unknown", "mmcv_version": "1.0.5", "time": "Mon Jun 15 18:43:58 2020",
            "config": "model = dict(type='EncoderDecoder', ...)", "epoch": 1, "iter": 80000}  # fmt: skip
    if classes is not None:
        meta["CLASSES"] = tuple(classes)
        meta["PALETTE"] = [list(c) for c in palette]
    torch.save({"meta": meta, "state_dict": model.state_dict()}, path)
