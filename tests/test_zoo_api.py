"""Registry, weights enums, builders' weights handling and the offline wiring of ImageNet backbones."""

import pytest
import torch
import torchvision
from torchvision.models import ResNet50_Weights, VGG16_BN_Weights

import zoo
from zoo import WeightsEnum
from zoo.models.pspnet import PSPNet_ResNet50_Weights

MODELS = [
    "deconvnet_vgg16", "pspnet_resnet101", "pspnet_resnet50", "spp_detector_resnet50", "spp_detector_zf5",
    "sppnet_resnet50", "sppnet_zf5",
]  # fmt: skip
ENUMS = {
    "deconvnet_vgg16": zoo.DeconvNet_VGG16_Weights,
    "pspnet_resnet101": zoo.PSPNet_ResNet101_Weights,
    "pspnet_resnet50": zoo.PSPNet_ResNet50_Weights,
    "spp_detector_resnet50": zoo.SPPDetector_ResNet50_Weights,
    "spp_detector_zf5": zoo.SPPDetector_ZF5_Weights,
    "sppnet_resnet50": zoo.SPPNet_ResNet50_Weights,
    "sppnet_zf5": zoo.SPPNet_ZF5_Weights,
}


def test_list_models_and_filters():
    assert set(MODELS) <= set(zoo.list_models())
    assert zoo.list_models(include="pspnet_*") == ["pspnet_resnet101", "pspnet_resnet18", "pspnet_resnet50"]
    assert "sppnet_zf5" not in zoo.list_models(exclude=["sppnet*"])


@pytest.mark.parametrize("name", MODELS)
def test_get_model_weights_reads_the_builders_annotation(name):
    enum = zoo.get_model_weights(name)
    assert enum is ENUMS[name]
    assert issubclass(enum, WeightsEnum) and issubclass(enum, torchvision.models.WeightsEnum)
    assert zoo.get_model_weights(zoo.get_model_builder(name)) is enum


def test_get_model_builds_and_rejects_unknown_names():
    model = zoo.get_model("sppnet_zf5", num_classes=3, width=0.125, representation_size=8)
    assert isinstance(model, zoo.SPPNet) and model.classifier.out_features == 3
    with pytest.raises(ValueError, match="unknown model 'resnet50'"):
        zoo.get_model("resnet50")


def test_get_weight_errors_are_clear():
    with pytest.raises(ValueError, match="is not an entry of PSPNet_ResNet50_Weights"):
        zoo.get_weight("PSPNet_ResNet50_Weights.VOC2012")
    with pytest.raises(ValueError, match="unknown weights enum 'ResNet50_Weights'"):
        zoo.get_weight("ResNet50_Weights.IMAGENET1K_V1")
    with pytest.raises(ValueError, match="EnumName.ENTRY"):
        zoo.get_weight("PSPNet_ResNet50_Weights")


@pytest.mark.parametrize("name", MODELS)
def test_builders_reject_weights_of_another_architecture(name):
    with pytest.raises(TypeError, match=f"wrong weights for the architecture {name}"):
        zoo.get_model(name, weights=ResNet50_Weights.IMAGENET1K_V1)
    with pytest.raises(ValueError, match="is not an entry of"):
        zoo.get_model(name, weights="NO_SUCH_ENTRY")


def test_builders_reject_wrong_backbone_weights():
    with pytest.raises(TypeError, match="wrong weights_backbone"):
        zoo.pspnet_resnet50(weights_backbone=VGG16_BN_Weights.IMAGENET1K_V1)
    with pytest.raises(TypeError, match="wrong weights_backbone"):
        zoo.deconvnet_vgg16(weights_backbone=ResNet50_Weights.IMAGENET1K_V1)
    with pytest.raises(ValueError, match="stem_widths=None"):
        zoo.pspnet_resnet50(weights_backbone=ResNet50_Weights.IMAGENET1K_V1)  # deep stem by default


# ------------------------------------------------------------------------ a builder loading its own enum
def test_builder_loads_an_entry_of_its_enum(monkeypatch):
    """The builders' loading path with a registered entry whose files are stood in (no download)."""
    entry = PSPNet_ResNet50_Weights.VOC12AUG_MMSEG_40K
    torch.manual_seed(0)
    kwargs = {"num_classes": 21, "align_corners": False, "stem_widths": [32, 32, 64], "contract_dilation": True}
    source = zoo.pspnet_resnet50(aux_loss=True, **kwargs)
    state = {k: v.clone() for k, v in source.state_dict().items()}
    published = {"architecture": "pspnet_resnet50", "kwargs": kwargs}
    monkeypatch.setattr(PSPNet_ResNet50_Weights, "get_state_dict", lambda self, **kw: state)
    monkeypatch.setattr(PSPNet_ResNet50_Weights, "get_config", lambda self, **kw: published)
    model = zoo.pspnet_resnet50(weights=entry)
    assert model.zoo_config["weights"] == "PSPNet_ResNet50_Weights.VOC12AUG_MMSEG_40K"
    assert model.zoo_config["kwargs"]["num_classes"] == 21
    assert model.num_classes == 21 and model.aux_classifier is not None and model.align_corners is False
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, state[key], rtol=0, atol=0)
    with pytest.raises(ValueError, match="conflicts"):
        zoo.pspnet_resnet50(weights=entry, num_classes=5)
    with pytest.raises(TypeError, match="wrong weights for the architecture pspnet_resnet101"):
        zoo.pspnet_resnet101(weights=entry)


# ------------------------------------------------------------------------ ImageNet backbones, offline
@pytest.fixture
def offline_torchvision_weights(monkeypatch):
    """``WeightsEnum.get_state_dict`` returns the state dict of a freshly built torchvision model."""
    made = {}

    def fake_get_state_dict(self, *args, **kwargs):
        torch.manual_seed(123)
        if isinstance(self, ResNet50_Weights):
            net = torchvision.models.resnet50()
        elif isinstance(self, VGG16_BN_Weights):
            net = torchvision.models.vgg16_bn()
        else:
            raise AssertionError(f"unexpected weights {self!r}")
        for m in net.modules():  # make BN statistics and conv biases distinguishable from a fresh init
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-1, 1)
            elif isinstance(m, torch.nn.Conv2d) and m.bias is not None:
                m.bias.data.uniform_(-1, 1)
        made[type(self).__name__] = net.state_dict()
        return net.state_dict()

    monkeypatch.setattr(torchvision.models.WeightsEnum, "get_state_dict", fake_get_state_dict)
    return made


def test_pspnet_backbone_weights_land_in_the_backbone(offline_torchvision_weights):
    model = zoo.pspnet_resnet50(weights_backbone=ResNet50_Weights.IMAGENET1K_V1, stem_widths=None, num_classes=2)
    source = offline_torchvision_weights["ResNet50_Weights"]
    backbone = model.backbone.state_dict()
    torch.testing.assert_close(backbone["stem.0.weight"], source["conv1.weight"], rtol=0, atol=0)
    torch.testing.assert_close(backbone["stem.1.running_mean"], source["bn1.running_mean"], rtol=0, atol=0)
    for key in ("layer1.0.conv1.weight", "layer3.5.conv2.weight", "layer4.2.bn3.running_mean"):
        torch.testing.assert_close(backbone[key], source[key], rtol=0, atol=0)


def test_sppnet_resnet50_backbone_weights(offline_torchvision_weights):
    model = zoo.sppnet_resnet50(weights_backbone="IMAGENET1K_V2", num_classes=2, representation_size=8)
    source = offline_torchvision_weights["ResNet50_Weights"]
    for key, value in model.features.state_dict().items():
        torch.testing.assert_close(value, source[key], rtol=0, atol=0)


def test_deconvnet_backbone_weights(offline_torchvision_weights):
    model = zoo.deconvnet_vgg16(weights_backbone=VGG16_BN_Weights.IMAGENET1K_V1)
    source = offline_torchvision_weights["VGG16_BN_Weights"]
    blocks = [block for stage in model.encoder for block in stage]
    conv_ids = [0, 3, 7, 10, 14, 17, 20, 24, 27, 30, 34, 37, 40]  # torchvision vgg16_bn.features
    for block, i in zip(blocks, conv_ids, strict=True):
        torch.testing.assert_close(block[0].weight, source[f"features.{i}.weight"], rtol=0, atol=0)
        torch.testing.assert_close(  # the VGG conv bias is folded into the BN mean
            block[1].running_mean, source[f"features.{i + 1}.running_mean"] - source[f"features.{i}.bias"]
        )
    # the encoder computes VGG's features (eval mode): first stage, conv-bn-relu x2 + pool
    vgg = torchvision.models.vgg16_bn()
    vgg.load_state_dict(source)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model.eval().encoder[0](x), vgg.eval().features[:6](x), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(model.fc6[0].weight.flatten(1), source["classifier.0.weight"], rtol=0, atol=0)
    torch.testing.assert_close(model.fc7[0].weight.flatten(1), source["classifier.3.weight"], rtol=0, atol=0)
    with pytest.raises(ValueError, match="width=1.0 only"):
        zoo.deconvnet_vgg16(weights_backbone=VGG16_BN_Weights.IMAGENET1K_V1, width=0.5)
