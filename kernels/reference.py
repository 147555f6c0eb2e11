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


def coordinate_dtype(features_dtype: torch.dtype) -> torch.dtype:
    """The dtype RoI box coordinates are computed in for features of ``features_dtype``: the features'
    own dtype (half arithmetic for float16, as torchvision's CPU kernel), float32 for bfloat16."""
    if features_dtype == torch.bfloat16:
        return torch.float32
    return features_dtype


def boxes_to_rois(boxes: torch.Tensor | list[torch.Tensor], features: torch.Tensor) -> torch.Tensor:
    """Either box form (a (K, 5) tensor or a list of (L, 4) tensors, one per image) as the (K, 5)
    ``(batch_index, x1, y1, x2, y2)`` tensor in :func:`coordinate_dtype` of ``features``. Scriptable."""
    dtype = coordinate_dtype(features.dtype)
    if isinstance(boxes, torch.Tensor):
        if boxes.dim() != 2 or boxes.shape[1] != 5:
            raise ValueError(f"boxes must be a (K, 5) tensor or a list of (L, 4) tensors, got shape {boxes.shape}")
        return boxes.to(dtype)
    parts: list[torch.Tensor] = []
    for i, b in enumerate(boxes):
        if b.dim() != 2 or b.shape[1] != 4:
            raise ValueError(f"boxes[{i}] must have shape (L, 4), got {b.shape}")
        b = b.to(dtype)
        parts.append(torch.cat([torch.full_like(b[:, :1], i), b], 1))
    if len(parts) == 0:
        return torch.zeros((0, 5), dtype=dtype, device=features.device)
    return torch.cat(parts, 0)


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


def _round_half_away(p: torch.Tensor) -> torch.Tensor:
    """std::round: halves away from zero (exact: |p| - floor(|p|) has no rounding error)."""
    a = p.abs()
    f = a.floor()
    r = f + (a - f >= 0.5).to(a.dtype)
    return torch.where(p < 0, -r, r)


def _to_index(v: torch.Tensor) -> torch.Tensor:
    return v.to(torch.float64).clamp(-(2.0**29), 2.0**29).to(torch.int64)


def roi_spp_torch(features: torch.Tensor, rois: torch.Tensor, levels: list[int], spatial_scale: float = 1.0
                  ) -> torch.Tensor:
    """Pure-PyTorch :func:`roi_spp`: the same values as torchvision's ``roi_pool`` composite, with no
    torchvision operator, so a scripted model using it loads where only torch is installed.

    Box arithmetic runs in the boxes' dtype as torchvision's kernel does (PyTorch's float16 ops
    round like ``c10::Half``); max is a strict ``>`` from -FLT_MAX (in that dtype), NaN never
    selected, empty bins 0. Forward-exact; its gradient (through ``amax``) splits ties evenly,
    where the kernels and torchvision send it to the first maximum. One loop step per RoI: meant
    for deployment, not speed.
    """
    compute, boxes = features, rois
    if features.dtype == torch.bfloat16:
        compute, boxes = features.float(), rois.float()
    dtype = compute.dtype
    K, C, H, W = rois.shape[0], compute.shape[1], compute.shape[2], compute.shape[3]
    scale = torch.tensor(spatial_scale, dtype=dtype, device=boxes.device)
    batch = boxes[:, 0].to(torch.int64)
    start_w = _to_index(_round_half_away((boxes[:, 1] * scale).double()))
    start_h = _to_index(_round_half_away((boxes[:, 2] * scale).double()))
    end_w = _to_index(_round_half_away((boxes[:, 3] * scale).double()))
    end_h = _to_index(_round_half_away((boxes[:, 4] * scale).double()))
    roi_w = (end_w - start_w + 1).clamp_min(1).to(dtype)
    roi_h = (end_h - start_h + 1).clamp_min(1).to(dtype)
    lowest = torch.tensor(-3.4028234663852886e38, dtype=dtype, device=boxes.device)  # -FLT_MAX as T
    spans: list[list[torch.Tensor]] = []  # per level: hs, he, ws, we of shape (K, n)
    for n in levels:
        steps = torch.arange(n + 1, device=boxes.device).to(dtype)
        bin_h = roi_h / n
        bin_w = roi_w / n
        hs = (steps[None, :n] * bin_h[:, None]).floor().to(torch.int64) + start_h[:, None]
        he = (steps[None, 1:] * bin_h[:, None]).ceil().to(torch.int64) + start_h[:, None]
        ws = (steps[None, :n] * bin_w[:, None]).floor().to(torch.int64) + start_w[:, None]
        we = (steps[None, 1:] * bin_w[:, None]).ceil().to(torch.int64) + start_w[:, None]
        spans.append([hs.clamp(0, H), he.clamp(0, H), ws.clamp(0, W), we.clamp(0, W)])
    outs: list[torch.Tensor] = []
    for k in range(K):
        r0 = min([int(sp[0][k].min()) for sp in spans])
        r1 = max([int(sp[1][k].max()) for sp in spans])
        c0 = min([int(sp[2][k].min()) for sp in spans])
        c1 = max([int(sp[3][k].max()) for sp in spans])
        window = compute[int(batch[k]), :, r0:max(r0, r1), c0:max(c0, c1)]
        window = torch.where(window > lowest, window, torch.full_like(window, float("-inf")))  # drops NaN too
        rows = torch.arange(r0, max(r0, r1), device=boxes.device)
        cols = torch.arange(c0, max(c0, c1), device=boxes.device)
        per_level: list[torch.Tensor] = []
        for i, n in enumerate(levels):
            hs, he, ws, we = spans[i][0][k], spans[i][1][k], spans[i][2][k], spans[i][3][k]
            col_in = (ws[:, None] <= cols[None, :]) & (cols[None, :] < we[:, None])  # (n, w)
            row_in = (hs[:, None] <= rows[None, :]) & (rows[None, :] < he[:, None])  # (n, h)
            inf = torch.full((1,), float("-inf"), dtype=dtype, device=boxes.device)
            by_col = torch.where(col_in[None, None], window[:, :, None, :], inf).amax(-1, keepdim=False) \
                if cols.numel() > 0 else torch.full((C, rows.numel(), n), float("-inf"), dtype=dtype)
            best = torch.where(row_in[None, :, :, None], by_col[:, None, :, :], inf).amax(2) \
                if rows.numel() > 0 else torch.full((C, n, n), float("-inf"), dtype=dtype)
            empty = (he <= hs)[:, None] | (we <= ws)[None, :]
            best = torch.where(best == float("-inf"), lowest, best)
            per_level.append(torch.where(empty[None], torch.zeros_like(best), best).flatten())
        outs.append(torch.cat(per_level))
    if K == 0:
        return compute.new_zeros((0, C * sum([n * n for n in levels]))).to(features.dtype)
    out = torch.stack(outs)
    # per RoI the levels were concatenated as (C, n, n) blocks: same layout as the roi_pool composite
    return out.to(features.dtype)


def sppf(x: torch.Tensor, kernel_size: int = 5) -> torch.Tensor:
    """YOLOv5 SPPF pooling: ``cat([x, y1, y2, y3], 1)``, ``y_{i+1} = max_pool2d(y_i, k, 1, k // 2)``."""
    pad = kernel_size // 2
    y1 = F.max_pool2d(x, kernel_size, 1, pad)
    y2 = F.max_pool2d(y1, kernel_size, 1, pad)
    y3 = F.max_pool2d(y2, kernel_size, 1, pad)
    return torch.cat([x, y1, y2, y3], 1)
