"""The ``torch.ops.spp_zoo`` custom operators: dispatch, fake (meta) implementations and autograd.

Each forward op and its backward op are registered with ``torch.library.custom_op`` so that
autograd, ``torch.compile(fullgraph=True)`` and ``torch.export`` see one opaque node. The real
implementation runs the Triton kernel on CUDA (and on CPU under ``TRITON_INTERPRET=1``), and the
PyTorch reference path otherwise. Both paths return the same auxiliary tensors (argmax as an
int32 index into the H*W plane, -1 where nothing was selected), so they can be cross-checked.

Determinism: every forward is deterministic (each output element is written once); the backward
ops of ``spatial_pyramid_pool``, ``upsample_concat`` and ``sppf`` are gathers (deterministic), the
Triton backward of ``roi_spp`` adds with atomics and calls PyTorch's non-determinism alert (an error
under ``torch.use_deterministic_algorithms(True)``, a warning with ``warn_only=True``), as
torchvision's CUDA ``roi_pool`` backward does; its CPU reference backward is deterministic.

Autocast (CPU and CUDA): every op runs with autocast disabled inside (so its reference path is not
re-cast) after one rule, :data:`AUTOCAST_RULES`: ``spatial_pyramid_pool``, ``sppf`` and ``roi_spp``
keep the dtype of their input (as PyTorch's pooling ops do under autocast; ``roi_spp``'s boxes are
converted to :func:`kernels.reference.coordinate_dtype` of the features), ``upsample_concat`` casts
``x`` and ``pooled`` to the widest of their dtypes (``torch.cat``'s rule); backward ops keep their dtypes.
"""

import warnings

import torch
import torch.nn.functional as F
from torch import Tensor

from . import reference
from ._runtime import use_triton


def alert_not_deterministic(caller: str) -> None:
    """PyTorch's non-determinism alert (the wording of its own): a RuntimeError under
    ``torch.use_deterministic_algorithms(True)``, a UserWarning with ``warn_only=True``, else nothing."""
    if not torch.are_deterministic_algorithms_enabled():
        return
    if torch.is_deterministic_algorithms_warn_only_enabled():
        warnings.warn(
            f"{caller} does not have a deterministic implementation, but you set "
            "'torch.use_deterministic_algorithms(True, warn_only=True)'.",
            UserWarning,
            stacklevel=2,
        )
        return
    raise RuntimeError(
        f"{caller} does not have a deterministic implementation, but you set "
        "'torch.use_deterministic_algorithms(True)'. You can turn off determinism just for this operation, "
        "or use the 'warn_only=True' option if that is acceptable for your application."
    )


def _triton_module(name: str):
    from importlib import import_module

    return import_module(f"{__package__}._{name}_triton")


def _num_bins(levels: list[int]) -> int:
    return sum(n * n for n in levels)


# --------------------------------------------------------------------------- spatial_pyramid_pool
@torch.library.custom_op("spp_zoo::spatial_pyramid_pool", mutates_args=())
def spatial_pyramid_pool(x: Tensor, levels: list[int], mode: str) -> tuple[Tensor, Tensor]:
    if use_triton(x):
        return _triton_module("spp").forward(x, levels, mode)
    if mode == "avg":
        return reference.spatial_pyramid_pool(x, levels, "avg"), x.new_empty((0,), dtype=torch.int32)
    outs, idxs = [], []
    for n in levels:
        out, idx = F.adaptive_max_pool2d(x, n, return_indices=True)
        outs.append(out.flatten(1))
        idxs.append(idx.flatten(1).to(torch.int32))
    return torch.cat(outs, 1), torch.cat(idxs, 1)


@spatial_pyramid_pool.register_fake
def _(x, levels, mode):
    rows, cols = x.shape[0], x.shape[1] * _num_bins(levels)
    argmax = x.new_empty((rows, cols) if mode == "max" else (0,), dtype=torch.int32)
    return x.new_empty((rows, cols)), argmax


@torch.library.custom_op("spp_zoo::spatial_pyramid_pool_backward", mutates_args=())
def spatial_pyramid_pool_backward(grad: Tensor, x: Tensor, argmax: Tensor, levels: list[int], mode: str) -> Tensor:
    if use_triton(x):
        return _triton_module("spp").backward(grad, x, argmax, levels, mode)
    N, C, H, W = x.shape
    per_level, start = [], 0
    for n in levels:
        stop = start + C * n * n
        g = grad[:, start:stop].reshape(N, C, n, n)
        if mode == "max":
            idx = argmax[:, start:stop].reshape(N, C, n, n).to(torch.int64)
            per_level.append(torch.ops.aten.adaptive_max_pool2d_backward(g, x, idx))
        elif n == 1:  # adaptive_avg_pool2d(x, 1) is x.mean((-2, -1)): its backward divides once
            per_level.append(g.expand_as(x) / (H * W))
        else:
            per_level.append(torch.ops.aten._adaptive_avg_pool2d_backward(g, x))
        start = stop
    total = per_level[-1]
    for g in reversed(per_level[:-1]):  # the order autograd sums the reference's gradients in
        total = total + g
    return total


@spatial_pyramid_pool_backward.register_fake
def _(grad, x, argmax, levels, mode):
    return torch.empty_like(x)


def _spp_setup(ctx, inputs, output):
    x, levels, mode = inputs
    ctx.levels, ctx.mode = levels, mode
    ctx.save_for_backward(x, output[1])


def _spp_grad(ctx, grad_out, _grad_argmax):
    x, argmax = ctx.saved_tensors
    return spatial_pyramid_pool_backward(grad_out, x, argmax, ctx.levels, ctx.mode), None, None


spatial_pyramid_pool.register_autograd(_spp_grad, setup_context=_spp_setup)


# --------------------------------------------------------------------------- upsample_concat
@torch.library.custom_op("spp_zoo::upsample_concat", mutates_args=())
def upsample_concat(x: Tensor, pooled: list[Tensor], align_corners: bool) -> Tensor:
    if use_triton(x):
        return _triton_module("upsample").forward(x, pooled, align_corners)
    return reference.upsample_concat(x, pooled, align_corners)


@upsample_concat.register_fake
def _(x, pooled, align_corners):
    channels = x.shape[1] + sum(p.shape[1] for p in pooled)
    return x.new_empty((x.shape[0], channels, x.shape[2], x.shape[3]))


@torch.library.custom_op("spp_zoo::upsample_concat_backward", mutates_args=())
def upsample_concat_backward(grad: Tensor, pooled: list[Tensor], x_channels: int, align_corners: bool) -> list[Tensor]:
    if use_triton(grad):
        return _triton_module("upsample").backward(grad, pooled, x_channels, align_corners)
    out, start = [], x_channels
    size = [grad.shape[2], grad.shape[3]]
    for p in pooled:
        stop = start + p.shape[1]
        out.append(torch.ops.aten.upsample_bilinear2d_backward(
            grad[:, start:stop], size, list(p.shape), align_corners, None, None))
        start = stop
    return out


@upsample_concat_backward.register_fake
def _(grad, pooled, x_channels, align_corners):
    return [torch.empty_like(p) for p in pooled]


def _upsample_setup(ctx, inputs, output):
    x, pooled, align_corners = inputs
    ctx.x_channels, ctx.align_corners = x.shape[1], align_corners
    ctx.save_for_backward(*pooled)


def _upsample_grad(ctx, grad_out):
    pooled = list(ctx.saved_tensors)
    grads = upsample_concat_backward(grad_out, pooled, ctx.x_channels, ctx.align_corners) if pooled else []
    return grad_out[:, : ctx.x_channels], grads, None


upsample_concat.register_autograd(_upsample_grad, setup_context=_upsample_setup)


# --------------------------------------------------------------------------- roi_spp
def _check_batch_index(features: Tensor, rois: Tensor) -> None:
    """Data-dependent checks, here so that they also run under torch.compile (real tensors only)."""
    if rois.shape[0] == 0:
        return
    batch = rois[:, 0].float().trunc()
    finite, lo, hi = torch.stack([torch.isfinite(rois).all().float(), batch.min(), batch.max()]).tolist()
    if finite != 1.0:
        raise ValueError("boxes must be finite (found NaN or inf)")
    if lo < 0 or hi >= features.shape[0]:
        raise ValueError(
            f"boxes batch index out of range: got [{lo:g}, {hi:g}] for features with batch size {features.shape[0]}")


@torch.library.custom_op("spp_zoo::roi_spp", mutates_args=())
def roi_spp(features: Tensor, rois: Tensor, levels: list[int], spatial_scale: float) -> tuple[Tensor, Tensor]:
    _check_batch_index(features, rois)
    if use_triton(features):
        return _triton_module("roi").forward(features, rois, levels, spatial_scale)
    compute, boxes = features, rois
    if features.dtype == torch.bfloat16:  # torchvision has no bfloat16 roi_pool: float32, exact for max
        compute, boxes = features.float(), rois.float()
    outs, idxs = [], []
    for n in levels:
        out, idx = torch.ops.torchvision.roi_pool(compute, boxes, spatial_scale, n, n)
        outs.append(out.flatten(1))
        idxs.append(idx.flatten(1))
    return torch.cat(outs, 1).to(features.dtype), torch.cat(idxs, 1).to(torch.int32)


@roi_spp.register_fake
def _(features, rois, levels, spatial_scale):
    shape = (rois.shape[0], features.shape[1] * _num_bins(levels))
    return features.new_empty(shape), features.new_empty(shape, dtype=torch.int32)


@torch.library.custom_op("spp_zoo::roi_spp_backward", mutates_args=())
def roi_spp_backward(grad: Tensor, features: Tensor, rois: Tensor, argmax: Tensor, levels: list[int],
                     spatial_scale: float) -> Tensor:
    if use_triton(features):
        # atomic adds at the argmax: the summation order of overlapping RoIs varies from run to run on a GPU
        alert_not_deterministic("spp_zoo::roi_spp_backward (Triton kernel, atomic adds)")
        return _triton_module("roi").backward(grad, features, rois, argmax, levels, spatial_scale)
    N, C, H, W = features.shape
    K = rois.shape[0]
    compute_dtype = torch.float32 if features.dtype == torch.bfloat16 else features.dtype
    grad, rois = grad.to(compute_dtype), rois.to(compute_dtype)
    per_level, start = [], 0
    for n in levels:
        stop = start + C * n * n
        g = grad[:, start:stop].reshape(K, C, n, n)
        idx = argmax[:, start:stop].reshape(K, C, n, n)
        per_level.append(torch.ops.torchvision._roi_pool_backward(g, rois, idx, spatial_scale, n, n, N, C, H, W))
        start = stop
    total = per_level[-1]
    for g in reversed(per_level[:-1]):
        total = total + g
    return total.to(features.dtype)


@roi_spp_backward.register_fake
def _(grad, features, rois, argmax, levels, spatial_scale):
    return torch.empty_like(features, memory_format=torch.contiguous_format)


def _roi_setup(ctx, inputs, output):
    features, rois, levels, spatial_scale = inputs
    ctx.levels, ctx.spatial_scale = levels, spatial_scale
    ctx.save_for_backward(features, rois, output[1])


def _roi_grad(ctx, grad_out, _grad_argmax):
    features, rois, argmax = ctx.saved_tensors
    grad = roi_spp_backward(grad_out, features, rois, argmax, ctx.levels, ctx.spatial_scale)
    return grad, None, None, None


roi_spp.register_autograd(_roi_grad, setup_context=_roi_setup)


# --------------------------------------------------------------------------- sppf
@torch.library.custom_op("spp_zoo::sppf", mutates_args=())
def sppf(x: Tensor, kernel_size: int) -> Tensor:
    if use_triton(x):
        return _triton_module("sppf").forward(x, kernel_size)
    return reference.sppf(x, kernel_size)


@sppf.register_fake
def _(x, kernel_size):
    return x.new_empty((x.shape[0], 4 * x.shape[1], x.shape[2], x.shape[3]))


@torch.library.custom_op("spp_zoo::sppf_backward", mutates_args=())
def sppf_backward(grad: Tensor, x: Tensor, out: Tensor, kernel_size: int) -> Tensor:
    if use_triton(x):
        return _triton_module("sppf").backward(grad, x, out, kernel_size)
    C, pad = x.shape[1], kernel_size // 2
    stage_inputs = [x, out[:, C:2 * C], out[:, 2 * C:3 * C]]
    g = grad[:, 3 * C:]
    for stage in (2, 1, 0):  # chain rule through y3 = pool(y2), y2 = pool(y1), y1 = pool(x)
        inp = stage_inputs[stage]
        _, idx = F.max_pool2d(inp, kernel_size, 1, pad, return_indices=True)
        g = grad[:, stage * C:(stage + 1) * C] + torch.ops.aten.max_pool2d_with_indices_backward(
            g, inp, [kernel_size, kernel_size], [1, 1], [pad, pad], [1, 1], False, idx)
    return g


@sppf_backward.register_fake
def _(grad, x, out, kernel_size):
    return torch.empty_like(x)


def _sppf_setup(ctx, inputs, output):
    x, kernel_size = inputs
    ctx.kernel_size = kernel_size
    ctx.save_for_backward(x, output)


def _sppf_grad(ctx, grad_out):
    x, out = ctx.saved_tensors
    return sppf_backward(grad_out, x, out, ctx.kernel_size), None


sppf.register_autograd(_sppf_grad, setup_context=_sppf_setup)


# --------------------------------------------------------------------------- autocast
def _keep_dtypes(args: tuple, device_type: str) -> tuple:
    return args


def _promote_to_widest(args: tuple, device_type: str) -> tuple:
    x, pooled, align_corners = args
    widest = x.dtype
    for p in pooled:
        widest = torch.promote_types(widest, p.dtype)

    def cast(t: Tensor) -> Tensor:
        return t.to(widest) if t.device.type == device_type and t.is_floating_point() else t

    return cast(x), [cast(p) for p in pooled], align_corners


def _boxes_to_coordinate_dtype(args: tuple, device_type: str) -> tuple:
    features, rois, levels, spatial_scale = args
    if rois.device.type == device_type and rois.is_floating_point():
        rois = rois.to(reference.coordinate_dtype(features.dtype))
    return features, rois, levels, spatial_scale


#: The autocast rule of every ``torch.ops.spp_zoo`` operator: how its inputs are cast before it runs
#: (with autocast disabled inside). Same rule on CPU and CUDA.
AUTOCAST_RULES = {
    "spatial_pyramid_pool": _keep_dtypes,
    "spatial_pyramid_pool_backward": _keep_dtypes,
    "upsample_concat": _promote_to_widest,
    "upsample_concat_backward": _keep_dtypes,
    "roi_spp": _boxes_to_coordinate_dtype,
    "roi_spp_backward": _keep_dtypes,
    "sppf": _keep_dtypes,
    "sppf_backward": _keep_dtypes,
}

AUTOCAST_DEVICE_TYPES = ("cpu", "cuda")


def autocast_kernel(name: str, device_type: str):
    """The kernel registered for ``spp_zoo::name`` under ``Autocast{CPU,CUDA}``: apply the op's rule to
    the inputs on ``device_type``, then run the op with that autocast key excluded."""
    op = getattr(torch.ops.spp_zoo, name).default
    rule = AUTOCAST_RULES[name]
    key = getattr(torch._C.DispatchKey, "Autocast" + torch._C._dispatch_key_for_device(device_type))

    def kernel(*args):
        with torch._C._ExcludeDispatchKeyGuard(torch._C.DispatchKeySet(key)):
            return op(*rule(args, device_type))

    return kernel


_autocast_lib = torch.library.Library("spp_zoo", "IMPL")
for _name in AUTOCAST_RULES:
    for _device_type in AUTOCAST_DEVICE_TYPES:
        _key = "Autocast" + torch._C._dispatch_key_for_device(_device_type)
        _autocast_lib.impl(_name, autocast_kernel(_name, _device_type), _key)
