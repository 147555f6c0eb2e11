"""Small helpers shared by the models: input checks and the kernel/reference switch."""

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn


def check_image_batch(x: Tensor, channels: int, min_height: int, min_width: int, model: str) -> None:
    """Raise a clear error unless ``x`` is a floating (N, channels, H >= min_height, W >= min_width) batch.

    TorchScript-compatible; under ``torch.export`` the size checks become range constraints.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{model}: input must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 4:
        raise ValueError(f"{model}: input must be a 4-D (N, C, H, W) image batch, got shape {list(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{model}: input must be a floating-point tensor, got dtype {x.dtype}")
    if x.shape[1] != channels:
        raise ValueError(f"{model}: input must have {channels} channels, got {x.shape[1]} (shape {list(x.shape)})")
    if x.shape[2] < min_height or x.shape[3] < min_width:
        raise ValueError(
            f"{model}: input must be at least {min_height}x{min_width} (H x W), got {x.shape[2]}x{x.shape[3]}"
        )


def set_kernel_path(model: nn.Module, enabled: bool) -> nn.Module:
    """Switch every zoo layer of ``model`` between the ``kernels`` operators (``enabled=True``, the
    default) and the plain PyTorch reference composites of :mod:`kernels.reference`.

    The two paths compute the same function; the reference one is for exporters that do not know
    the ``torch.ops.spp_zoo`` operators (e.g. ONNX). TorchScript always uses the reference path.
    """
    if not isinstance(enabled, bool):
        raise TypeError(f"enabled must be a bool, got {type(enabled).__name__}")
    for module in model.modules():
        if hasattr(module, "use_kernels"):
            module.use_kernels = enabled
    return model


@contextmanager
def kernel_path(model: nn.Module, enabled: bool) -> Iterator[nn.Module]:
    """Context manager form of :func:`set_kernel_path`; restores each layer's setting on exit."""
    saved = [(m, m.use_kernels) for m in model.modules() if hasattr(m, "use_kernels")]
    try:
        yield set_kernel_path(model, enabled)
    finally:
        for module, value in saved:
            module.use_kernels = value


def init_conv_bn(module: nn.Module) -> None:
    """torchvision's ResNet initialization: Kaiming-normal (fan_out) convs, BN weight 1 and bias 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
