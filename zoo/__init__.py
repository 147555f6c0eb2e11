"""spp-zoo models: SPP-net, the SPP-net detector, PSPNet and DeconvNet, built on :mod:`kernels`.

Registry in the manner of ``torchvision.models``::

    import zoo
    zoo.list_models()                      # names of every builder
    model = zoo.get_model("pspnet_resnet50", num_classes=21)
    zoo.get_model_weights("pspnet_resnet50")  # its weights enum

Submodules :mod:`zoo.hub` (pretrained weights on the Hugging Face Hub), :mod:`zoo.convert` (official
PSPNet checkpoints) and :mod:`zoo.export` (TorchScript,
``torch.export``, ONNX) are imported on first attribute access.
"""

import importlib

from ._api import Weights, WeightsEnum, get_model, get_model_builder, get_model_weights, get_weight, list_models
from ._common import kernel_path, set_kernel_path
from .deconvnet import DeconvNet, DeconvNet_VGG16_Weights, deconvnet_vgg16
from .detection import (
    SPPDetector_ResNet50_Weights,
    SPPDetector_ZF5_Weights,
    SPPNetDetector,
    spp_detector_resnet50,
    spp_detector_zf5,
)
from .pspnet import (
    PSPNet,
    PSPNet_ResNet18_Weights,
    PSPNet_ResNet50_Weights,
    PSPNet_ResNet101_Weights,
    pspnet_loss,
    pspnet_resnet18,
    pspnet_resnet50,
    pspnet_resnet101,
)
from .sppnet import SPPNet, SPPNet_ResNet50_Weights, SPPNet_ZF5_Weights, sppnet_resnet50, sppnet_zf5

__all__ = [
    "DeconvNet",
    "DeconvNet_VGG16_Weights",
    "PSPNet",
    "PSPNet_ResNet101_Weights",
    "PSPNet_ResNet18_Weights",
    "PSPNet_ResNet50_Weights",
    "SPPDetector_ResNet50_Weights",
    "SPPDetector_ZF5_Weights",
    "SPPNet",
    "SPPNetDetector",
    "SPPNet_ResNet50_Weights",
    "SPPNet_ZF5_Weights",
    "Weights",
    "WeightsEnum",
    "deconvnet_vgg16",
    "get_model",
    "get_model_builder",
    "get_model_weights",
    "get_weight",
    "kernel_path",
    "list_models",
    "pspnet_loss",
    "pspnet_resnet101",
    "pspnet_resnet18",
    "pspnet_resnet50",
    "set_kernel_path",
    "spp_detector_resnet50",
    "spp_detector_zf5",
    "sppnet_resnet50",
    "sppnet_zf5",
]

_LAZY_SUBMODULES = ("convert", "export", "hub", "datasets", "transforms")


def __getattr__(name: str):
    if name in _LAZY_SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
