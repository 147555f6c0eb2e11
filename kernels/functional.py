"""Public functional API of the fused pyramid-pooling kernels.

Every function validates its arguments (clear ``TypeError``/``ValueError`` naming the argument),
then calls its ``torch.ops.spp_zoo`` operator: Triton on CUDA (and on CPU under
``TRITON_INTERPRET=1``), the PyTorch reference of :mod:`kernels.reference` elsewhere.

Tooling, as torchvision's ops:

- ``torch.jit.script`` compiles every function; scripted, it runs its :mod:`kernels.reference`
  composite (so a saved TorchScript file needs only torch and torchvision).
- ``torch.fx``: each function is ``torch.fx.wrap``-ped, so a symbolic trace records it as ONE
  ``call_function`` node (it is also wrapped under its ``kernels.`` name).
- ``torch.autocast``: see :mod:`kernels.ops` for the dtype each operator computes in and returns.
"""

import torch
import torch.fx
from torch import Tensor

from . import _validate, reference
from . import ops as _ops  # noqa: F401  (registers torch.ops.spp_zoo)


@torch.fx.wrap
def spatial_pyramid_pool(x: Tensor, levels: list[int] = (4, 2, 1), mode: str = "max") -> Tensor:
    """Fused multi-level spatial pyramid pooling (SPP-net), all levels in one pass over ``x``.

    Contract: for ``x`` of shape (N, C, H, W), returns the (N, C * sum(n*n)) tensor
    ``torch.cat([F.adaptive_{mode}_pool2d(x, n).flatten(1) for n in levels], 1)``: per level the
    (C, n, n) block flattened, levels concatenated in the given order. Bins follow PyTorch's
    adaptive rule ``[floor(i*H/n), ceil((i+1)*H/n))`` (they overlap when n does not divide H,
    and n may exceed H). ``mode="max"``: bitwise equal to the reference, max ties go to the first
    index in row-major order, NaN propagates (gradient to the last NaN, as PyTorch's scan does);
    gradients equal the reference's (bitwise in float32/float64). ``mode="avg"``: equal within
    float32 rounding (float64 accumulation for float64 input).

    dtype: returns ``x``'s dtype, also under ``torch.autocast`` (which leaves ``x`` as it is, as it
    does for PyTorch's pooling). Deterministic forward and backward.
    """
    if torch.jit.is_scripting():
        return reference.spatial_pyramid_pool(x, levels, mode)
    x = _validate.feature_map(x, "x")
    levels = _validate.levels_arg(levels)
    mode = _validate.pool_mode(mode)
    return torch.ops.spp_zoo.spatial_pyramid_pool(x, levels, mode)[0]


@torch.fx.wrap
def upsample_concat(x: Tensor, pooled: list[Tensor], align_corners: bool = False) -> Tensor:
    """Bilinear upsampling of every ``pooled`` map to ``x``'s size, concatenated after ``x``.

    Contract: returns ``torch.cat([x] + [F.interpolate(p, size=x.shape[-2:], mode="bilinear",
    align_corners=align_corners) for p in pooled], 1)``, written by one kernel pass into the output
    (same memory format as ``x``). ``pooled`` tensors are (N, Ci, hi, wi) of ``x``'s dtype and
    device, any sizes. Interpolation weights are computed in float32 (float64 for float64).
    Together with :func:`spatial_pyramid_pool` in avg mode this is PSPNet's pyramid pooling
    module minus its 1x1 convolutions.

    dtype: returns ``x``'s dtype. Under ``torch.autocast`` ``x`` and ``pooled`` may differ in dtype:
    all are cast to the widest of their dtypes first (``torch.cat``'s autocast rule), which is the
    dtype computed in and returned. Deterministic forward and backward.
    """
    if torch.jit.is_scripting():
        return reference.upsample_concat(x, pooled, align_corners)
    x = _validate.feature_map(x, "x")
    pooled = _validate.pooled_list(pooled, x)
    if not isinstance(align_corners, bool):
        raise TypeError(f"align_corners must be a bool, got {type(align_corners).__name__}")
    return torch.ops.spp_zoo.upsample_concat(x, pooled, align_corners)


@torch.fx.wrap
def roi_spp(
    features: Tensor, boxes: Tensor | list[Tensor], levels: list[int] = (6, 3, 2, 1), spatial_scale: float = 1.0
) -> Tensor:
    """RoI spatial pyramid pooling (SPP-net detection): every level of a RoI from one read of its window.

    ``boxes`` is a (K, 5) tensor ``(batch_index, x1, y1, x2, y2)`` or a list of (Li, 4) tensors
    (one per image), as in torchvision, on ``features``' device, of any floating dtype: boxes are
    first converted to the features' coordinate dtype (float16 for float16 features, float32 for
    bfloat16 and float32 features, float64 for float64 features), so mixed dtypes (as autocast
    produces) compute exactly what boxes already of that dtype compute.

    Contract: returns the (K, C * sum(n*n)) tensor
    ``torch.cat([torchvision.ops.roi_pool(features, boxes, n, spatial_scale).flatten(1) for n in levels], 1)``,
    bitwise, including torchvision's conventions: ``start = round(x1 * scale)``, ``end = round(x2 * scale)``
    (half away from zero), size ``max(end - start + 1, 1)``, float bin size ``size / n``, bins
    ``[floor(i*bin), ceil((i+1)*bin))`` offset by start and clipped to the map, an empty bin gives 0,
    strict ``>`` from -FLT_MAX (first element wins, NaN never selected). Coordinates are computed in
    the coordinate dtype as torchvision's CPU kernel does (half arithmetic for float16); bfloat16, which
    torchvision lacks, is defined as the float32 computation. Gradients w.r.t. ``features`` equal
    the reference's (summation order of overlapping RoIs aside); ``boxes`` get no gradient. K = 0
    returns an empty (0, C * sum(n*n)) tensor.

    dtype: returns ``features``' dtype, also under ``torch.autocast`` (features are not cast). The
    backward of the Triton path adds with atomics: under ``torch.use_deterministic_algorithms(True)``
    it raises PyTorch's non-determinism error (as torchvision's CUDA ``roi_pool`` backward does).
    """
    if torch.jit.is_scripting():
        return reference.roi_spp(features, reference.boxes_to_rois(boxes, features), levels, spatial_scale)
    features = _validate.feature_map(features, "features")
    levels = _validate.levels_arg(levels)
    spatial_scale = _validate.spatial_scale_arg(spatial_scale)
    rois = _validate.rois_arg(boxes, features)
    return torch.ops.spp_zoo.roi_spp(features, rois, levels, spatial_scale)[0]


@torch.fx.wrap
def sppf(x: Tensor, kernel_size: int = 5) -> Tensor:
    """YOLOv5-style SPPF pooling (without its 1x1 convs), from one read of the input.

    Contract: returns the (N, 4C, H, W) tensor ``torch.cat([x, y1, y2, y3], 1)`` with
    ``y1 = F.max_pool2d(x, k, 1, k // 2)``, ``y2`` the same pool of ``y1`` and ``y3`` of ``y2``,
    bitwise (y_m is the max over the (2m*(k//2)+1)^2 window, clipped to the map, NaN propagating).
    Gradients equal the reference's chained max-pool gradients, including where ties send them.

    dtype: returns ``x``'s dtype, also under ``torch.autocast`` (as ``max_pool2d``). Deterministic
    forward and backward.
    """
    if torch.jit.is_scripting():
        return reference.sppf(x, kernel_size)
    x = _validate.feature_map(x, "x")
    kernel_size = _validate.kernel_size_arg(kernel_size)
    return torch.ops.spp_zoo.sppf(x, kernel_size)
