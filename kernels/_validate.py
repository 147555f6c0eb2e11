"""Argument checking shared by the public kernel API. Every error names the offending argument."""

from collections.abc import Sequence

import torch

from .reference import coordinate_dtype

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
_INT32_MAX = 2**31 - 1


def feature_map(t, name: str) -> torch.Tensor:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.dim() != 4:
        raise ValueError(f"{name} must be 4-D (N, C, H, W), got shape {tuple(t.shape)}")
    if t.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be float16, bfloat16, float32 or float64, got {t.dtype}")
    if t.shape[-2] < 1 or t.shape[-1] < 1:
        raise ValueError(f"{name} must have non-empty spatial dims, got shape {tuple(t.shape)}")
    if t.shape[-2] * t.shape[-1] > _INT32_MAX:
        raise ValueError(f"{name}: H * W must fit in int32, got {t.shape[-2]} x {t.shape[-1]}")
    return t


def levels_arg(levels, name: str = "levels") -> list[int]:
    if isinstance(levels, (str, bytes)) or not isinstance(levels, Sequence):
        raise TypeError(f"{name} must be a sequence of ints, got {type(levels).__name__}")
    if len(levels) == 0:
        raise ValueError(f"{name} must not be empty")
    out = []
    for n in levels:
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError(f"{name} must contain ints, got {n!r}")
        if n < 1:
            raise ValueError(f"{name} must all be >= 1, got {list(levels)}")
        out.append(int(n))
    return out


def pool_mode(mode) -> str:
    if mode not in ("max", "avg"):
        raise ValueError(f"mode must be 'max' or 'avg', got {mode!r}")
    return mode


def same_device(t: torch.Tensor, ref: torch.Tensor, name: str, ref_name: str) -> None:
    if t.device != ref.device:
        raise ValueError(f"{name} is on {t.device} but {ref_name} is on {ref.device}")


def same_device_dtype(t: torch.Tensor, ref: torch.Tensor, name: str, ref_name: str) -> None:
    same_device(t, ref, name, ref_name)
    if t.dtype != ref.dtype:
        raise TypeError(f"{name} has dtype {t.dtype} but {ref_name} has dtype {ref.dtype}")


def pooled_list(pooled, x: torch.Tensor) -> list[torch.Tensor]:
    if isinstance(pooled, torch.Tensor) or not isinstance(pooled, Sequence):
        raise TypeError(f"pooled must be a list or tuple of tensors, got {type(pooled).__name__}")
    mixed_ok = torch.is_autocast_enabled(x.device.type)  # the op's autocast rule promotes to the widest
    out = []
    for i, p in enumerate(pooled):
        feature_map(p, f"pooled[{i}]")
        if mixed_ok:
            same_device(p, x, f"pooled[{i}]", "x")
        else:
            same_device_dtype(p, x, f"pooled[{i}]", "x")
        if p.shape[0] != x.shape[0]:
            raise ValueError(f"pooled[{i}] has batch size {p.shape[0]} but x has {x.shape[0]}")
        out.append(p)
    return out


def kernel_size_arg(kernel_size) -> int:
    if isinstance(kernel_size, bool) or not isinstance(kernel_size, int):
        raise TypeError(f"kernel_size must be an int, got {type(kernel_size).__name__}")
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be odd and >= 1, got {kernel_size}")
    return kernel_size


def spatial_scale_arg(spatial_scale) -> float:
    if isinstance(spatial_scale, bool) or not isinstance(spatial_scale, (int, float)):
        raise TypeError(f"spatial_scale must be a float, got {type(spatial_scale).__name__}")
    s = float(spatial_scale)
    if not (s > 0.0 and s < float("inf")):
        raise ValueError(f"spatial_scale must be a positive finite number, got {spatial_scale}")
    return s


def _box_tensor(b: torch.Tensor, features: torch.Tensor, name: str) -> torch.Tensor:
    same_device(b, features, name, "features")
    if not b.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {b.dtype}")
    return b.to(coordinate_dtype(features.dtype))


def rois_arg(boxes, features: torch.Tensor) -> torch.Tensor:
    """Return boxes in the (K, 5) ``(batch_index, x1, y1, x2, y2)`` form, checked against ``features``,
    in :func:`kernels.reference.coordinate_dtype` of the features (boxes may have any floating dtype).

    Data-dependent checks (finite values, batch index range) run inside the op, on real tensors.
    """
    if isinstance(boxes, torch.Tensor):
        if boxes.dim() != 2 or boxes.shape[1] != 5:
            raise ValueError(
                f"boxes must be a (K, 5) tensor or a list of (L, 4) tensors, got shape {tuple(boxes.shape)}")
        rois = _box_tensor(boxes, features, "boxes")
    elif isinstance(boxes, (list, tuple)):
        parts = []
        for i, b in enumerate(boxes):
            if not isinstance(b, torch.Tensor):
                raise TypeError(f"boxes[{i}] must be a torch.Tensor, got {type(b).__name__}")
            if b.dim() != 2 or b.shape[1] != 4:
                raise ValueError(f"boxes[{i}] must have shape (L, 4), got {tuple(b.shape)}")
            b = _box_tensor(b, features, f"boxes[{i}]")
            parts.append(torch.cat([torch.full_like(b[:, :1], i), b], 1))
        if len(boxes) > features.shape[0]:
            raise ValueError(f"boxes is a list of {len(boxes)} tensors but features has batch size {features.shape[0]}")
        rois = torch.cat(parts, 0) if parts else features.new_zeros((0, 5), dtype=coordinate_dtype(features.dtype))
    else:
        raise TypeError(f"boxes must be a (K, 5) tensor or a list of (L, 4) tensors, got {type(boxes).__name__}")
    return rois
