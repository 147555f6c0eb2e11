"""``nn.Module`` wrappers of the kernels, as torchvision pairs ``roi_pool`` with ``RoIPool``.

Each module is TorchScript-scriptable: when scripted, ``forward`` runs the pure-PyTorch reference
path (so a saved TorchScript file needs nothing but torch and torchvision); in eager mode and under
``torch.compile`` it runs the ``torch.ops.spp_zoo`` operator. Under ``torch.fx`` symbolic tracing the
functional op each ``forward`` calls is one ``call_function`` node (it is ``torch.fx.wrap``-ped).
"""

from collections.abc import Sequence

from torch import Tensor, nn

from . import _validate, functional


class SpatialPyramidPool(nn.Module):
    """Fused spatial pyramid pooling: (N, C, H, W) -> (N, C * sum(n*n)). See :func:`kernels.spatial_pyramid_pool`."""

    levels: list[int]
    mode: str

    def __init__(self, levels: Sequence[int] = (4, 2, 1), mode: str = "max"):
        super().__init__()
        self.levels = _validate.levels_arg(levels)
        self.mode = _validate.pool_mode(mode)

    def output_features(self, channels: int) -> int:
        """Width of the flattened output for ``channels`` input channels."""
        return channels * sum(n * n for n in self.levels)

    def forward(self, x: Tensor) -> Tensor:
        return functional.spatial_pyramid_pool(x, self.levels, self.mode)

    def extra_repr(self) -> str:
        return f"levels={tuple(self.levels)}, mode={self.mode!r}"


class UpsampleConcat(nn.Module):
    """``cat([x] + [bilinear(p, size=x) for p in pooled], 1)`` in one pass. See :func:`kernels.upsample_concat`."""

    align_corners: bool

    def __init__(self, align_corners: bool = False):
        super().__init__()
        self.align_corners = bool(align_corners)

    def forward(self, x: Tensor, pooled: list[Tensor]) -> Tensor:
        return functional.upsample_concat(x, pooled, self.align_corners)

    def extra_repr(self) -> str:
        return f"align_corners={self.align_corners}"


class RoISPP(nn.Module):
    """RoI spatial pyramid pooling: (features, boxes) -> (K, C * sum(n*n)). See :func:`kernels.roi_spp`."""

    levels: list[int]
    spatial_scale: float

    def __init__(self, levels: Sequence[int] = (6, 3, 2, 1), spatial_scale: float = 1.0):
        super().__init__()
        self.levels = _validate.levels_arg(levels)
        self.spatial_scale = _validate.spatial_scale_arg(spatial_scale)

    def output_features(self, channels: int) -> int:
        return channels * sum(n * n for n in self.levels)

    def forward(self, features: Tensor, rois: Tensor | list[Tensor]) -> Tensor:
        """``rois``: a (K, 5) tensor or a list of (L, 4) tensors (one per image), in eager and scripted code."""
        return functional.roi_spp(features, rois, self.levels, self.spatial_scale)

    def extra_repr(self) -> str:
        return f"levels={tuple(self.levels)}, spatial_scale={self.spatial_scale}"


class SPPF(nn.Module):
    """YOLOv5 SPPF pooling (no convs): (N, C, H, W) -> (N, 4C, H, W). See :func:`kernels.sppf`."""

    kernel_size: int

    def __init__(self, kernel_size: int = 5):
        super().__init__()
        self.kernel_size = _validate.kernel_size_arg(kernel_size)

    def forward(self, x: Tensor) -> Tensor:
        return functional.sppf(x, self.kernel_size)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}"
