"""torch.hub entry points of spp-zoo: ``torch.hub.load("<owner>/spp-zoo:<tag>", "pspnet_resnet18", weights="DEFAULT")``.

Each entry point is the zoo's builder (keyword-only arguments, torchvision style: ``weights``,
``progress``, ``num_classes``...); see ``torch.hub.help(<repo>, <name>)`` for its docstring. Weights
are verified against their pins wherever they come from: the copies shipped in the repository first,
else the Hugging Face Hub (pinned revision, cached), or an upstream file (mmsegmentation's, MindSpore's)
downloaded, converted and cached on first use. Importing this file only imports the ``zoo`` package (no download,
no model built).
"""

# Every package the entry points import (triton is optional: without it the CPU reference path runs).
dependencies = ["torch", "torchvision", "safetensors", "huggingface_hub"]

from zoo import (  # noqa: E402  (torch.hub reads `dependencies` first, by convention)
    deconvnet_vgg16,
    pspnet_resnet18,
    pspnet_resnet50,
    pspnet_resnet101,
    resnet18_classifier,
    spp_detector_resnet50,
    spp_detector_zf5,
    sppnet_resnet50,
    sppnet_zf5,
    vgg16_bn_classifier,
    zf5_classifier,
)

__all__ = [
    "deconvnet_vgg16",
    "pspnet_resnet18",
    "pspnet_resnet50",
    "pspnet_resnet101",
    "spp_detector_resnet50",
    "spp_detector_zf5",
    "sppnet_resnet50",
    "sppnet_zf5",
    "resnet18_classifier",
    "vgg16_bn_classifier",
    "zf5_classifier",
]
