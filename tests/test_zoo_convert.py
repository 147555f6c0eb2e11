"""Converted official PSPNet checkpoints compute the same function as the source networks.

The source networks are re-implemented here from their published architectures, with the source
key names: hszhao/semseg's PSPNet (deep-base ResNet, every layer3/4 block dilated, PPM pooling each
bin with nn.AdaptiveAvgPool2d then F.interpolate, align_corners=True) and mmsegmentation's
EncoderDecoder (ResNetV1c with contract_dilation, PSPHead, FCNHead, align_corners=False). They are
randomly initialized (BN statistics included), saved in the source layout, converted, and compared.
"""

import copy
import json
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import zoo.hub
from zoo import convert


# --------------------------------------------------------------------------- shared ResNet pieces
class Bottleneck(nn.Module):
    """ResNet v1.5 bottleneck (stride on the 3x3 conv), both sources' key names."""

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


def res_layer(inplanes, planes, blocks, stride, dilation, first_dilation):
    downsample = None
    if stride != 1 or inplanes != planes * 4:
        conv = nn.Conv2d(inplanes, planes * 4, 1, stride=stride, bias=False)
        downsample = nn.Sequential(conv, nn.BatchNorm2d(planes * 4))
    layers = [Bottleneck(inplanes, planes, stride, first_dilation, downsample)]
    layers += [Bottleneck(planes * 4, planes, 1, dilation) for _ in range(1, blocks)]
    return nn.Sequential(*layers)


def deep_stem(widths):
    layers, c = [], 3
    for i, w in enumerate(widths):
        layers += [nn.Conv2d(c, w, 3, stride=2 if i == 0 else 1, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU()]
        c = w
    return layers


BLOCKS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}


def randomize(module):
    """Random weights and BN statistics, scaled so a deep ResNet stays numerically tame."""
    torch.manual_seed(0)
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


# --------------------------------------------------------------------------- hszhao/semseg PSPNet
class SemsegPSPNet(nn.Module):
    def __init__(self, layers=50, classes=5, bins=(1, 2, 3, 6)):
        super().__init__()
        b = BLOCKS[layers]
        self.layer0 = nn.Sequential(*deep_stem((64, 64, 128)), nn.MaxPool2d(3, 2, 1))
        self.layer1 = res_layer(128, 64, b[0], 1, 1, 1)
        self.layer2 = res_layer(256, 128, b[1], 2, 1, 1)
        self.layer3 = res_layer(512, 256, b[2], 1, 2, 2)  # semseg: every block dilated, no contraction
        self.layer4 = res_layer(1024, 512, b[3], 1, 4, 4)
        self.ppm = nn.Module()
        self.ppm.features = nn.ModuleList(
            nn.Sequential(nn.AdaptiveAvgPool2d(n), nn.Conv2d(2048, 512, 1, bias=False), nn.BatchNorm2d(512), nn.ReLU())
            for n in bins
        )
        self.cls = nn.Sequential(nn.Conv2d(4096, 512, 3, padding=1, bias=False), nn.BatchNorm2d(512), nn.ReLU(),
                                 nn.Dropout2d(0.1), nn.Conv2d(512, classes, 1))  # fmt: skip
        self.aux = nn.Sequential(nn.Conv2d(1024, 256, 3, padding=1, bias=False), nn.BatchNorm2d(256), nn.ReLU(),
                                 nn.Dropout2d(0.1), nn.Conv2d(256, classes, 1))  # fmt: skip

    def forward(self, x):
        h, w = x.shape[-2:]
        assert (h - 1) % 8 == 0 and (w - 1) % 8 == 0
        x = self.layer2(self.layer1(self.layer0(x)))
        x_tmp = self.layer3(x)
        x = self.layer4(x_tmp)
        x = torch.cat([x] + [F.interpolate(f(x), x.shape[-2:], mode="bilinear", align_corners=True)
                             for f in self.ppm.features], 1)  # fmt: skip
        out = F.interpolate(self.cls(x), size=(h, w), mode="bilinear", align_corners=True)
        if self.training:
            aux = F.interpolate(self.aux(x_tmp), size=(h, w), mode="bilinear", align_corners=True)
            return out, aux
        return out


# --------------------------------------------------------------------------- mmsegmentation PSPNet
class ConvModule(nn.Module):
    def __init__(self, cin, cout, k):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, padding=k // 2, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.activate = nn.ReLU()

    def forward(self, x):
        return self.activate(self.bn(self.conv(x)))


class MMSegPSPNet(nn.Module):
    def __init__(self, depth=50, num_classes=5, pool_scales=(1, 2, 3, 6)):
        super().__init__()
        b = BLOCKS[depth]
        self.backbone = nn.Module()
        self.backbone.stem = nn.Sequential(*deep_stem((32, 32, 64)))
        self.backbone.maxpool = nn.MaxPool2d(3, 2, 1)
        self.backbone.layer1 = res_layer(64, 64, b[0], 1, 1, 1)
        self.backbone.layer2 = res_layer(256, 128, b[1], 2, 1, 1)
        self.backbone.layer3 = res_layer(512, 256, b[2], 1, 2, 1)  # contract_dilation: first block 2 // 2
        self.backbone.layer4 = res_layer(1024, 512, b[3], 1, 4, 2)
        self.decode_head = nn.Module()
        self.decode_head.psp_modules = nn.ModuleList(
            nn.Sequential(nn.AdaptiveAvgPool2d(s), ConvModule(2048, 512, 1)) for s in pool_scales
        )
        self.decode_head.bottleneck = ConvModule(4096, 512, 3)
        self.decode_head.dropout = nn.Dropout2d(0.1)
        self.decode_head.conv_seg = nn.Conv2d(512, num_classes, 1)
        self.auxiliary_head = nn.Module()
        self.auxiliary_head.convs = nn.Sequential(ConvModule(1024, 256, 3))
        self.auxiliary_head.dropout = nn.Dropout2d(0.1)
        self.auxiliary_head.conv_seg = nn.Conv2d(256, num_classes, 1)

    def forward(self, img):
        bb = self.backbone
        x = bb.maxpool(bb.stem(img))
        c3 = bb.layer3(bb.layer2(bb.layer1(x)))
        c4 = bb.layer4(c3)
        head = self.decode_head
        outs = [c4] + [F.interpolate(m(c4), size=c4.shape[2:], mode="bilinear", align_corners=False)
                       for m in head.psp_modules]  # fmt: skip
        seg = head.conv_seg(head.dropout(head.bottleneck(torch.cat(outs, 1))))
        out = F.interpolate(seg, size=img.shape[2:], mode="bilinear", align_corners=False)
        if self.training:
            a = self.auxiliary_head
            aux = a.conv_seg(a.dropout(a.convs(c3)))
            return out, F.interpolate(aux, size=img.shape[2:], mode="bilinear", align_corners=False)
        return out


def assert_same(actual, expected, rel=2e-5):
    scale = expected.abs().max().item()
    assert actual.shape == expected.shape
    err = (actual - expected).abs().max().item()
    assert err <= rel * scale + 1e-6, f"max abs diff {err} vs output scale {scale}"


# --------------------------------------------------------------------------- tests
@pytest.fixture(scope="module")
def semseg50(tmp_path_factory):
    source = randomize(SemsegPSPNet(50, classes=5)).eval()
    path = tmp_path_factory.mktemp("semseg") / "train_epoch_100.pth"
    torch.save({"epoch": 100, "state_dict": {"module." + k: v for k, v in source.state_dict().items()}}, path)
    return source, path


@pytest.fixture(scope="module")
def mmseg50(tmp_path_factory):
    source = randomize(MMSegPSPNet(50, num_classes=4)).eval()
    path = tmp_path_factory.mktemp("mmseg") / "pspnet_r50-d8.pth"
    torch.save({"meta": {"mmseg_version": "1.2.2"}, "state_dict": source.state_dict()}, path)
    return source, path


def test_semseg_checkpoint_layout_is_the_published_one(semseg50):
    keys = torch.load(semseg50[1], weights_only=True)["state_dict"].keys()
    expected = ["layer0.0.weight", "layer0.7.running_var", "ppm.features.3.1.weight", "ppm.features.0.2.bias",
                "cls.4.bias", "aux.0.weight", "layer4.2.conv3.weight"]  # fmt: skip
    for key in ("module." + k for k in expected):
        assert key in keys, key


def test_from_semseg_matches_the_source_network(semseg50):
    source, path = semseg50
    model = convert.from_semseg(path)
    assert model.num_classes == 5 and model.align_corners is True and model.backbone.depth == 50
    assert model.backbone.stem_widths == (64, 64, 128) and not model.backbone.contract_dilation
    for size in [(33, 33), (41, 57)]:  # semseg's sizes: (H - 1) % 8 == 0
        x = torch.randn(1, 3, *size)
        with torch.no_grad():
            assert_same(model(x)["out"], source(x))


def test_from_semseg_matches_in_training_mode_with_aux(semseg50):
    source, path = semseg50
    model = convert.from_semseg(path).train()
    source = copy.deepcopy(source).train()  # training-mode BN updates its running statistics
    x = torch.randn(2, 3, 33, 41)
    with torch.no_grad():
        torch.manual_seed(1)
        out, aux = source(x)
        torch.manual_seed(1)  # same Dropout2d masks: both draw them in the same order
        ours = model(x)
    assert_same(ours["out"], out)
    assert_same(ours["aux"], aux)


def test_from_mmseg_matches_the_source_network(mmseg50):
    source, path = mmseg50
    model = convert.from_mmseg(path)
    assert model.num_classes == 4 and model.align_corners is False and model.backbone.depth == 50
    assert model.backbone.stem_widths == (32, 32, 64) and model.backbone.contract_dilation
    for size in [(33, 33), (30, 45)]:
        x = torch.randn(1, 3, *size)
        with torch.no_grad():
            assert_same(model(x)["out"], source(x))


def test_from_mmseg_aux_head_matches(mmseg50):
    source, path = mmseg50
    model = convert.from_mmseg(dict(torch.load(path, weights_only=True))).train()
    source = copy.deepcopy(source).train()
    x = torch.randn(2, 3, 33, 41)
    with torch.no_grad():
        torch.manual_seed(2)
        out, aux = source(x)
        torch.manual_seed(2)
        ours = model(x)
    assert_same(ours["out"], out)
    assert_same(ours["aux"], aux)


def test_from_semseg_resnet101_depth_is_inferred_and_matches():
    source = randomize(SemsegPSPNet(101, classes=3)).eval()
    model = convert.from_semseg({"module." + k: v for k, v in source.state_dict().items()})
    assert model.backbone.depth == 101 and model.num_classes == 3
    x = torch.randn(1, 3, 33, 33)
    with torch.no_grad():
        assert_same(model(x)["out"], source(x))


def test_from_mmseg_resnet101_depth_is_inferred():
    state = randomize(MMSegPSPNet(101, num_classes=2)).state_dict()
    model = convert.from_mmseg({"state_dict": state})
    assert model.backbone.depth == 101 and sum(1 for _ in model.backbone.layer3) == 23


def test_converters_reject_foreign_checkpoints(semseg50, mmseg50):
    with pytest.raises(ValueError, match="backbone.layer3"):
        convert.from_mmseg(semseg50[1])
    with pytest.raises(ValueError, match="layer3"):
        convert.from_semseg(mmseg50[1])
    with pytest.raises(TypeError, match="path_or_state_dict"):
        convert.from_semseg(42)


def test_cli_writes_a_hub_folder_that_rebuilds_the_model(semseg50, tmp_path):
    source, path = semseg50
    out = tmp_path / "pspnet50_semseg"
    subprocess.run([sys.executable, "-m", "zoo", "convert", "semseg", str(path), str(out)], check=True, timeout=300)
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    assert "hszhao/semseg" in json.loads((out / "config.json").read_text())["source"]
    model = zoo.hub.from_pretrained(out)
    assert model.align_corners is True and model.aux_classifier is not None
    x = torch.randn(1, 3, 41, 41)
    with torch.no_grad():
        assert_same(model(x)["out"], source(x))
