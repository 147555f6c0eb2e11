"""torch.hub entry points of spp-zoo: ``torch.hub.load("<owner>/<repo>", "pspnet_resnet50", weights=None)``.

Each entry point is the zoo's builder (keyword-only arguments, torchvision style); see
``torch.hub.help(<repo>, <name>)`` for its docstring. Importing this file only imports the
``zoo`` package (no download, no model built).
"""

dependencies = ["torch", "torchvision"]

from zoo import (  # noqa: E402  (torch.hub reads `dependencies` first, by convention)
    deconvnet_vgg16,
    pspnet_resnet18,
    pspnet_resnet50,
    pspnet_resnet101,
    spp_detector_resnet50,
    spp_detector_zf5,
    sppnet_resnet50,
    sppnet_zf5,
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
]
