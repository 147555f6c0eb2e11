"""Pure-PyTorch reference implementations: the documented oracle of every kernel.

Each function here *is* the contract its Triton kernel is tested against, written as the
composite of stock PyTorch / torchvision operators that a user would otherwise call. They are
TorchScript-scriptable and serve as the CPU path when Triton is not used.
"""


import torch
import torch.nn.functional as F
import torchvision  # noqa: F401  (registers torch.ops.torchvision.roi_pool)


def spatial_pyramid_pool(x: torch.Tensor, levels: list[int], mode: str = "max") -> torch.Tensor:
    """``cat([adaptive_{mode}_pool2d(x, n).flatten(1) for n in levels], 1)``: shape (N, C * sum(n*n))."""
    outs: list[torch.Tensor] = []
    for n in levels:
        if mode == "max":
            outs.append(F.adaptive_max_pool2d(x, n).flatten(1))
        else:
            outs.append(F.adaptive_avg_pool2d(x, n).flatten(1))
    return torch.cat(outs, 1)


def upsample_concat(x: torch.Tensor, pooled: list[torch.Tensor], align_corners: bool = False) -> torch.Tensor:
    """``cat([x] + [interpolate(p, size=x.shape[-2:], mode="bilinear") for p in pooled], 1)``."""
    size = [x.shape[-2], x.shape[-1]]
    outs: list[torch.Tensor] = [x]
    for p in pooled:
        outs.append(F.interpolate(p, size=size, mode="bilinear", align_corners=align_corners))
    return torch.cat(outs, 1)


def roi_spp(features: torch.Tensor, rois: torch.Tensor, levels: list[int], spatial_scale: float = 1.0) -> torch.Tensor:
    """``cat([torchvision.ops.roi_pool(features, rois, n, spatial_scale).flatten(1) for n in levels], 1)``.

    ``rois`` is the (K, 5) form ``(batch_index, x1, y1, x2, y2)``. torchvision has no bfloat16
    roi_pool, so bfloat16 is defined as the float32 computation cast back (exact: max selects).
    """
    compute = features
    boxes = rois
    if features.dtype == torch.bfloat16:
        compute = features.float()
        boxes = rois.float()
    outs: list[torch.Tensor] = []
    for n in levels:
        out, _ = torch.ops.torchvision.roi_pool(compute, boxes, spatial_scale, n, n)
        outs.append(out.flatten(1))
    return torch.cat(outs, 1).to(features.dtype)


def sppf(x: torch.Tensor, kernel_size: int = 5) -> torch.Tensor:
    """YOLOv5 SPPF pooling: ``cat([x, y1, y2, y3], 1)``, ``y_{i+1} = max_pool2d(y_i, k, 1, k // 2)``."""
    pad = kernel_size // 2
    y1 = F.max_pool2d(x, kernel_size, 1, pad)
    y2 = F.max_pool2d(y1, kernel_size, 1, pad)
    y3 = F.max_pool2d(y2, kernel_size, 1, pad)
    return torch.cat([x, y1, y2, y3], 1)
