"""Public functional API of the fused pyramid-pooling kernels.

Every function validates its arguments (clear ``TypeError``/``ValueError`` naming the argument),
then calls its ``torch.ops.spp_zoo`` operator: Triton on CUDA (and on CPU under
``TRITON_INTERPRET=1``), the PyTorch reference of :mod:`kernels.reference` elsewhere.
"""

from collections.abc import Sequence

import torch
from torch import Tensor

from . import _validate
from . import ops as _ops  # noqa: F401  (registers torch.ops.spp_zoo)


def spatial_pyramid_pool(x: Tensor, levels: Sequence[int] = (4, 2, 1), mode: str = "max") -> Tensor:
    """Fused multi-level spatial pyramid pooling (SPP-net), all levels in one pass over ``x``.

    Contract: for ``x`` of shape (N, C, H, W), returns the (N, C * sum(n*n)) tensor
    ``torch.cat([F.adaptive_{mode}_pool2d(x, n).flatten(1) for n in levels], 1)``: per level the
    (C, n, n) block flattened, levels concatenated in the given order. Bins follow PyTorch's
    adaptive rule ``[floor(i*H/n), ceil((i+1)*H/n))`` (they overlap when n does not divide H,
    and n may exceed H). ``mode="max"``: bitwise equal to the reference, max ties go to the first
    index in row-major order, NaN propagates (gradient to the last NaN, as PyTorch's scan does);
    gradients equal the reference's (bitwise in float32/float64). ``mode="avg"``: equal within
    float32 rounding (float64 accumulation for float64 input).
    """
    x = _validate.feature_map(x, "x")
    levels = _validate.levels_arg(levels)
    mode = _validate.pool_mode(mode)
    return torch.ops.spp_zoo.spatial_pyramid_pool(x, levels, mode)[0]


def upsample_concat(x: Tensor, pooled: Sequence[Tensor], align_corners: bool = False) -> Tensor:
    """Bilinear upsampling of every ``pooled`` map to ``x``'s size, concatenated after ``x``.

    Contract: returns ``torch.cat([x] + [F.interpolate(p, size=x.shape[-2:], mode="bilinear",
    align_corners=align_corners) for p in pooled], 1)``, written by one kernel pass into the output
    (same memory format as ``x``). ``pooled`` tensors are (N, Ci, hi, wi) of ``x``'s dtype and
    device, any sizes. Interpolation weights are computed in float32 (float64 for float64).
    Together with :func:`spatial_pyramid_pool` in avg mode this is PSPNet's pyramid pooling
    module minus its 1x1 convolutions.
    """
    x = _validate.feature_map(x, "x")
    pooled = _validate.pooled_list(pooled, x)
    if not isinstance(align_corners, bool):
        raise TypeError(f"align_corners must be a bool, got {type(align_corners).__name__}")
    return torch.ops.spp_zoo.upsample_concat(x, pooled, align_corners)


def roi_spp(features: Tensor, boxes, levels: Sequence[int] = (6, 3, 2, 1), spatial_scale: float = 1.0) -> Tensor:
    """RoI spatial pyramid pooling (SPP-net detection): every level of a RoI from one read of its window.

    ``boxes`` is a (K, 5) tensor ``(batch_index, x1, y1, x2, y2)`` or a list of (Li, 4) tensors
    (one per image), as in torchvision, with ``features``' dtype and device.

    Contract: returns the (K, C * sum(n*n)) tensor
    ``torch.cat([torchvision.ops.roi_pool(features, boxes, n, spatial_scale).flatten(1) for n in levels], 1)``,
    bitwise, including torchvision's conventions: ``start = round(x1 * scale)``, ``end = round(x2 * scale)``
    (half away from zero), size ``max(end - start + 1, 1)``, float bin size ``size / n``, bins
    ``[floor(i*bin), ceil((i+1)*bin))`` offset by start and clipped to the map, an empty bin gives 0,
    strict ``>`` from -FLT_MAX (first element wins, NaN never selected). Coordinates are computed in
    the boxes' dtype as torchvision's CPU kernel does (half arithmetic for float16); bfloat16, which
    torchvision lacks, is defined as the float32 computation. Gradients w.r.t. ``features`` equal
    the reference's (summation order of overlapping RoIs aside); ``boxes`` get no gradient. K = 0
    returns an empty (0, C * sum(n*n)) tensor.
    """
    features = _validate.feature_map(features, "features")
    levels = _validate.levels_arg(levels)
    spatial_scale = _validate.spatial_scale_arg(spatial_scale)
    rois = _validate.rois_arg(boxes, features)
    return torch.ops.spp_zoo.roi_spp(features, rois, levels, spatial_scale)[0]


def sppf(x: Tensor, kernel_size: int = 5) -> Tensor:
    """YOLOv5-style SPPF pooling (without its 1x1 convs), from one read of the input.

    Contract: returns the (N, 4C, H, W) tensor ``torch.cat([x, y1, y2, y3], 1)`` with
    ``y1 = F.max_pool2d(x, k, 1, k // 2)``, ``y2`` the same pool of ``y1`` and ``y3`` of ``y2``,
    bitwise (y_m is the max over the (2m*(k//2)+1)^2 window, clipped to the map, NaN propagating).
    Gradients equal the reference's chained max-pool gradients, including where ties send them.
    """
    x = _validate.feature_map(x, "x")
    kernel_size = _validate.kernel_size_arg(kernel_size)
    return torch.ops.spp_zoo.sppf(x, kernel_size)
