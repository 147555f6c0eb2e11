"""Converted official PSPNet checkpoints compute the same function as the source networks.

The source networks are re-implemented independently from their published architectures, with the source
key names: hszhao/semseg's PSPNet here (deep-base ResNet, every layer3/4 block dilated, PPM pooling each
bin with nn.AdaptiveAvgPool2d then F.interpolate, align_corners=True) and mmsegmentation's EncoderDecoder
in ``mmseg_reference.py`` (ResNetV1c with contract_dilation, Bottleneck or mmsegmentation's BasicBlock,
PSPHead, FCNHead; checked bitwise against mmsegmentation 1.2.2's model code, as is the converter itself by
``recipes/check_mmseg_conversion.py``). They are randomly initialized (BN statistics included), saved in the
source layout, converted, and compared.
"""

import copy
import json
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from mmseg_reference import LAYERS, Bottleneck, MMSegPSPNet, deep_stem, mmseg_checkpoint, randomize, res_layer
from torch import nn

import zoo
import zoo.hub
from zoo import convert


# --------------------------------------------------------------------------- hszhao/semseg PSPNet
class SemsegPSPNet(nn.Module):
    def __init__(self, layers=50, classes=5, bins=(1, 2, 3, 6)):
        super().__init__()
        b = LAYERS[layers]
        self.layer0 = nn.Sequential(*deep_stem((64, 64, 128)), nn.MaxPool2d(3, 2, 1))
        self.layer1 = res_layer(Bottleneck, 128, 64, b[0], 1, 1, 1)
        self.layer2 = res_layer(Bottleneck, 256, 128, b[1], 2, 1, 1)
        self.layer3 = res_layer(Bottleneck, 512, 256, b[2], 1, 2, 2)  # semseg: every block dilated, no contraction
        self.layer4 = res_layer(Bottleneck, 1024, 512, b[3], 1, 4, 4)
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
    mmseg_checkpoint(source, path)
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


# --------------------------------------------------------------------------- mmsegmentation R-18-D8
@pytest.fixture(scope="module")
def mmseg18(tmp_path_factory):
    source = randomize(MMSegPSPNet(18, num_classes=6)).eval()
    path = tmp_path_factory.mktemp("mmseg18") / "pspnet_r18-d8.pth"
    mmseg_checkpoint(source, path, [f"c{i}" for i in range(6)], [(i, i, i) for i in range(6)])
    return source, path


def test_from_mmseg_resnet18_matches_the_source_network(mmseg18):
    source, path = mmseg18
    model = convert.from_mmseg(path)
    assert model.zoo_config["architecture"] == "pspnet_resnet18" and model.num_classes == 6
    assert model.backbone.depth == 18 and model.backbone.stem_widths == (32, 32, 64)
    assert model.backbone.contract_dilation and not model.backbone.dilate_conv2 and model.align_corners is False
    assert model.classifier[0][0].out_channels == 128 and model.aux_classifier[0][0].out_channels == 64
    for size in [(33, 33), (30, 45), (64, 96)]:
        x = torch.randn(1, 3, *size)
        with torch.no_grad():
            assert_same(model(x)["out"], source(x))


def test_from_mmseg_resnet18_aux_head_matches_in_training_mode(mmseg18):
    source, path = mmseg18
    model = convert.from_mmseg(path).train()
    source = copy.deepcopy(source).train()
    x = torch.randn(2, 3, 33, 41)
    with torch.no_grad():
        torch.manual_seed(3)
        out, aux = source(x)
        torch.manual_seed(3)
        ours = model(x)
    assert_same(ours["out"], out)
    assert_same(ours["aux"], aux)


def test_the_default_resnet18_dilates_both_convs_unlike_mmseg(mmseg18):
    """pspnet_resnet18's default (the shipped weights' network) differs from R-18-D8: the flag matters."""
    source, path = mmseg18
    converted = convert.from_mmseg(path)
    kwargs = {k: v for k, v in converted.zoo_config["kwargs"].items() if k != "dilate_conv2"}
    other = zoo.get_model("pspnet_resnet18", **kwargs).eval()
    other.load_state_dict(converted.state_dict())
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert (other(x)["out"] - source(x)).abs().max() > 1e-3


def test_from_mmseg_reads_align_corners_from_the_checkpoint_config(tmp_path):
    """mmsegmentation's 769x769 Cityscapes models use align_corners=True; their checkpoints keep the config text."""
    source = randomize(MMSegPSPNet(18, num_classes=3, align_corners=True)).eval()
    path = tmp_path / "pspnet_r18-d8_769x769.pth"
    config = "model = dict(decode_head=dict(align_corners=True), auxiliary_head=dict(align_corners=True))"
    torch.save({"meta": {"config": config}, "state_dict": source.state_dict()}, path)
    model = convert.from_mmseg(path)
    assert model.align_corners is True
    x = torch.randn(1, 3, 41, 57)
    with torch.no_grad():
        assert_same(model(x)["out"], source(x))
    assert convert.from_mmseg(path, align_corners=False).align_corners is False  # an explicit value wins


def test_cli_converts_resnet18_with_align_corners_flag(mmseg18, tmp_path):
    source, path = mmseg18
    out = tmp_path / "r18"
    result = subprocess.run([sys.executable, "-m", "zoo", "convert", "mmseg", str(path), str(out), "--align-corners",
                             "true"], capture_output=True, text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr
    model = zoo.hub.from_pretrained(out)
    assert model.align_corners is True and not model.backbone.dilate_conv2
    bad = subprocess.run([sys.executable, "-m", "zoo", "convert", "semseg", str(path), str(out), "--align-corners",
                          "true"], capture_output=True, text=True, timeout=300)  # fmt: skip
    assert bad.returncode == 2 and bad.stderr.startswith("zoo convert: error: --align-corners")
