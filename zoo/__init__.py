"""spp-zoo models: SPP-net, the SPP-net detector, PSPNet and DeconvNet, built on :mod:`kernels`.

Registry in the manner of ``torchvision.models``::

    import zoo
    zoo.list_models()                      # names of every builder
    model = zoo.get_model("pspnet_resnet50", num_classes=21)
    zoo.get_model_weights("pspnet_resnet50")  # its weights enum

Layout (one-way dependencies, checked by ``lint-imports``): :mod:`zoo.models` (architectures, registry,
weights enums) on :mod:`kernels` and :mod:`zoo.hub.files`; :mod:`zoo.hub` (pretrained weights on the
Hugging Face Hub); :mod:`zoo.data` (datasets and transforms, independent of the models);
:mod:`zoo.engine` (training, evaluation, prediction); :mod:`zoo.convert` (official checkpoints);
:mod:`zoo.export` (TorchScript, ``torch.export``, ONNX); :mod:`zoo.cli` (``python -m zoo``).
:mod:`zoo.data`, :mod:`zoo.engine` and :mod:`zoo.export` are imported on first attribute access;
:mod:`zoo.convert` at import (its converters serve the weights entries sourced from upstream files).
"""

import importlib

import kernels as _kernels

if getattr(_kernels, "__distribution__", None) != "spp-zoo":
    raise ImportError(
        f"the module 'kernels' imported from {getattr(_kernels, '__file__', None) or _kernels.__path__} is not "
        "spp-zoo's kernels: another installed package uses the same top-level name 'kernels' (most likely Hugging "
        "Face's `kernels`, which transformers installs). spp-zoo cannot share an environment with it: install "
        "spp-zoo in its own virtual environment (python -m venv .venv && . .venv/bin/activate && pip install ...), "
        "or run `pip uninstall kernels` and then reinstall spp-zoo (pip install --force-reinstall --no-deps ...)"
    )

# zoo.hub: the Hub API (its pretrained layer uses the models' registry module, which loads files through
# zoo.hub.files; the registry is used at call time, so the import order does not matter). zoo.convert: the converters
# register themselves (zoo.models.conversion.register_converter) so that weights entries sourced from
# upstream files (mmsegmentation's PSPNets...) convert on first use, however they are loaded.
from . import (
    convert,  # noqa: F401
    hub,  # noqa: F401  (zoo.hub is public API)
)
from .models import (
    DeconvNet,
    DeconvNet_VGG16_Weights,
    PSPNet,
    PSPNet_ResNet18_Weights,
    PSPNet_ResNet50_Weights,
    PSPNet_ResNet101_Weights,
    ResNet18_Classifier_Weights,
    SPPDetector_ResNet50_Weights,
    SPPDetector_ZF5_Weights,
    SPPNet,
    SPPNet_ResNet50_Weights,
    SPPNet_ZF5_Weights,
    SPPNetDetector,
    TrunkClassifier,
    VGG16BN_Classifier_Weights,
    Weights,
    WeightsEnum,
    ZF5_Classifier_Weights,
    deconvnet_vgg16,
    get_model,
    get_model_builder,
    get_model_weights,
    get_weight,
    kernel_path,
    list_models,
    pspnet_loss,
    pspnet_resnet18,
    pspnet_resnet50,
    pspnet_resnet101,
    resnet18_classifier,
    set_kernel_path,
    spp_detector_resnet50,
    spp_detector_zf5,
    sppnet_resnet50,
    sppnet_zf5,
    vgg16_bn_classifier,
    zf5_classifier,
)

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
    "ResNet18_Classifier_Weights",
    "TrunkClassifier",
    "VGG16BN_Classifier_Weights",
    "ZF5_Classifier_Weights",
    "resnet18_classifier",
    "vgg16_bn_classifier",
    "zf5_classifier",
]

#: Submodules imported on first access (start-up time), and the former names of two of them.
_LAZY_SUBMODULES = {
    "data": "zoo.data",
    "engine": "zoo.engine",
    "export": "zoo.export",
    "datasets": "zoo.data",
    "transforms": "zoo.data.transforms",
}


def __getattr__(name: str):
    if name in _LAZY_SUBMODULES:
        return importlib.import_module(_LAZY_SUBMODULES[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
