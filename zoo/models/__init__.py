"""The zoo's architectures, their weights enums and the registry, in the manner of ``torchvision.models``.

Knows :mod:`kernels`, torchvision and the Hub's file layer (:mod:`zoo.hub.files`), nothing of data,
training or the command line. The preprocessing a weights entry carries lives here too
(:mod:`zoo.models.presets`).
"""

from ._common import kernel_path, set_kernel_path
from .classifiers import (
    ResNet18_Classifier_Weights,
    TrunkClassifier,
    VGG16BN_Classifier_Weights,
    ZF5_Classifier_Weights,
    resnet18_classifier,
    vgg16_bn_classifier,
    zf5_classifier,
)
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
from .registry import (
    Weights,
    WeightsEnum,
    get_model,
    get_model_builder,
    get_model_task,
    get_model_weights,
    get_weight,
    list_models,
    register_model,
)
from .sppnet import SPPNet, SPPNet_ResNet50_Weights, SPPNet_ZF5_Weights, sppnet_resnet50, sppnet_zf5

__all__ = [
    "zf5_classifier",
    "vgg16_bn_classifier",
    "resnet18_classifier",
    "ZF5_Classifier_Weights",
    "VGG16BN_Classifier_Weights",
    "TrunkClassifier",
    "ResNet18_Classifier_Weights",
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
    "get_model_task",
    "get_model_weights",
    "get_weight",
    "kernel_path",
    "list_models",
    "pspnet_loss",
    "pspnet_resnet101",
    "pspnet_resnet18",
    "pspnet_resnet50",
    "register_model",
    "set_kernel_path",
    "spp_detector_resnet50",
    "spp_detector_zf5",
    "sppnet_resnet50",
    "sppnet_zf5",
]
