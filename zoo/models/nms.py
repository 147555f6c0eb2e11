"""Pure-PyTorch, TorchScript-scriptable box utilities with torchvision's exact results.

A scripted module that calls ``torchvision.ops.nms`` / ``batched_nms`` (or ``box_iou``, whose
rotated-box branch calls ``torchvision::box_iou_rotated``) stores ``torch.ops.torchvision.*`` calls
and then needs ``import torchvision`` before ``torch.jit.load``. The functions here use stock
``torch`` operators only, so the TorchScript file they compile into loads with ``torch`` alone.

Contract (tested against torchvision): :func:`nms` and :func:`batched_nms` return the same int64
indices in the same order as ``torchvision.ops.nms`` / ``batched_nms``; :func:`box_iou`,
:func:`clip_boxes_to_image` and :func:`remove_small_boxes` the same values as torchvision's.

How the match is made exact (torchvision's ``nms`` kernels, ``csrc/ops/{cpu,cuda}/nms_kernel``):

* candidates are ordered by ``scores.sort(stable=True, dim=0, descending=True)``, the call torchvision's
  current kernels make (tested with 0.29; older releases sorted unstably, so may order equal scores
  differently), so equal scores keep the input order;
* IoU is computed with the kernels' arithmetic and rounding order: ``inter = max(0, min(x2) -
  max(x1)) * max(0, min(y2) - max(y1))``, ``area = (x2 - x1) * (y2 - y1)``, ``iou = inter /
  (area_i + area_j - inter)`` with ``i`` the higher-scored box; a box is suppressed if ``iou >
  iou_threshold`` (strict). The CPU kernel compares the float IoU with the *double* threshold, the
  CUDA kernel with the threshold rounded to float32; both comparisons are reproduced;
* greedy suppression: a candidate is kept unless a kept, higher-ranked box suppressed it;
* :func:`batched_nms` picks torchvision's variant by the same rule (per-class loop when
  ``boxes.numel()`` exceeds 4,000 on CPU / 100,000 on other devices, else the coordinate-offset
  trick) and builds the offset boxes with the same operations, so their float rounding matches.

On CUDA the IoU arithmetic is that of torchvision's kernel source, but nvcc may contract its
``area_i + area_j - inter`` into a fused multiply-add; an IoU within one float32 ulp of the threshold
could then be decided differently from this (unfused) computation.
"""

import torch
from torch import Tensor

__all__ = ["nms", "batched_nms", "box_iou", "box_area", "clip_boxes_to_image", "remove_small_boxes"]


def _float32_round(value: float) -> float:
    return float(torch.tensor(value, dtype=torch.float32).item())


def _suppression_mask(
    x1: Tensor,
    y1: Tensor,
    x2: Tensor,
    y2: Tensor,
    areas: Tensor,
    start: int,
    stop: int,
    threshold: float,
    threshold_is_float32: bool,
) -> Tensor:
    """(stop - start, n - start) bool: sorted box ``start + r`` suppresses sorted box ``start + c``.

    Coordinates (n,) sorted by decreasing score, in the kernel's coordinate dtype; ``areas`` (n,) in
    its accumulation dtype. Elementwise, in the kernel's order of operations (in place: no rounding change).
    """
    width = torch.minimum(x2[start:stop, None], x2[None, start:])
    width.sub_(torch.maximum(x1[start:stop, None], x1[None, start:])).clamp_(min=0)
    height = torch.minimum(y2[start:stop, None], y2[None, start:])
    height.sub_(torch.maximum(y1[start:stop, None], y1[None, start:])).clamp_(min=0)
    inter = width.to(areas.dtype).mul_(height.to(areas.dtype))
    union = areas[start:stop, None] + areas[None, start:]
    iou = inter.div_(union.sub_(inter))
    if threshold_is_float32:
        # float32 IoU > double threshold  <=>  IoU > t32 (t32 <= threshold) or IoU >= t32 (t32 > threshold)
        t32 = _float32_round(threshold)
        if t32 > threshold:
            return iou >= t32
        return iou > t32
    return iou > threshold


def nms(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """Greedy non-maximum suppression, identical to ``torchvision.ops.nms``.

    Args:
        boxes: (N, 4) boxes ``(x1, y1, x2, y2)``.
        scores: (N,) scores.
        iou_threshold: boxes whose IoU with a kept, higher-scored box is ``> iou_threshold`` are dropped.

    Returns:
        int64 indices of the kept boxes, by decreasing score.
    """
    if boxes.dim() != 2 or boxes.shape[-1] != 4:
        raise ValueError(f"boxes must have shape (N, 4), got {list(boxes.shape)}")
    if scores.dim() != 1 or scores.shape[0] != boxes.shape[0]:
        raise ValueError(f"scores must have shape ({boxes.shape[0]},), got {list(scores.shape)}")
    device = boxes.device
    n = boxes.shape[0]
    if n == 0:
        return torch.empty((0,), dtype=torch.int64, device=device)
    order = scores.sort(stable=True, dim=0, descending=True)[1]
    ordered = boxes.index_select(0, order)
    on_cuda = device.type == "cuda"
    is_float = ordered.dtype == torch.float32 or ordered.dtype == torch.float64
    if not is_float and not (on_cuda and ordered.dtype == torch.float16):
        ordered = ordered.float()  # torchvision's CPU kernel has no half, neither kernel bfloat16
    x1, y1, x2, y2 = ordered.t().contiguous().unbind(0)
    if ordered.dtype == torch.float16:
        # torchvision's CUDA kernel: coordinate differences in half, except x2 - x1 of the areas; products in float
        areas = (x2.float() - x1.float()) * (y2 - y1).float()
    else:
        areas = (x2 - x1) * (y2 - y1)
    # CPU: float IoU vs double threshold; CUDA: IoU vs float32 threshold (a float kernel argument)
    threshold = _float32_round(iou_threshold) if on_cuda else iou_threshold
    threshold_is_float32 = (not on_cuda) and areas.dtype == torch.float32

    removed = torch.zeros(n, dtype=torch.bool)  # host-side bookkeeping, like the CUDA kernel's
    kept: list[int] = []
    block = max(1, min(n, (1 << 22) // n))  # at most 4M (candidate, later box) pairs per IoU block
    for start in range(0, n, block):
        stop = min(n, start + block)
        mask = _suppression_mask(x1, y1, x2, y2, areas, start, stop, threshold, threshold_is_float32).cpu()
        later = removed[start:]
        for r in range(stop - start):
            if not bool(later[r]):
                kept.append(start + r)
                later.logical_or_(mask[r])  # also marks r itself and earlier rows: already decided
    return order[torch.tensor(kept, dtype=torch.int64, device=device)]


def _batched_nms_offsets(boxes: Tensor, scores: Tensor, idxs: Tensor, iou_threshold: float) -> Tensor:
    """One NMS over boxes shifted per category by ``idx * (max coordinate + 1)``, so categories never overlap."""
    if boxes.numel() == 0:
        return torch.empty((0,), dtype=torch.int64, device=boxes.device)
    shift = idxs.to(boxes) * (boxes.max() + torch.ones((), dtype=boxes.dtype, device=boxes.device))
    return nms(boxes + shift[:, None], scores, iou_threshold)


def _batched_nms_per_category(boxes: Tensor, scores: Tensor, idxs: Tensor, iou_threshold: float) -> Tensor:
    """One NMS per category, then all kept indices by decreasing score."""
    keep = torch.zeros_like(scores, dtype=torch.bool)
    for category in torch.unique(idxs):
        members = torch.where(idxs == category)[0]
        keep[members[nms(boxes[members], scores[members], iou_threshold)]] = True
    kept = torch.where(keep)[0]
    return kept[scores[kept].sort(descending=True)[1]]


def batched_nms(boxes: Tensor, scores: Tensor, idxs: Tensor, iou_threshold: float) -> Tensor:
    """NMS within each category of ``idxs`` (no suppression across categories), identical to
    ``torchvision.ops.batched_nms``: int64 indices of the kept boxes by decreasing score."""
    limit = 4000 if boxes.device.type == "cpu" else 100_000
    if boxes.numel() > limit and not torch.jit.is_tracing():
        return _batched_nms_per_category(boxes, scores, idxs, iou_threshold)
    return _batched_nms_offsets(boxes, scores, idxs, iou_threshold)


def _upcast(t: Tensor) -> Tensor:
    """float16/bfloat16 -> float32 and small integer types -> int32 before products (no overflow)."""
    if t.is_floating_point():
        if t.dtype == torch.float32 or t.dtype == torch.float64:
            return t
        return t.float()
    if t.dtype == torch.int32 or t.dtype == torch.int64:
        return t
    return t.int()


def box_area(boxes: Tensor) -> Tensor:
    """Areas of (..., 4) ``(x1, y1, x2, y2)`` boxes, as ``torchvision.ops.box_area``."""
    boxes = _upcast(boxes)
    return (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])


def box_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """(N, M) IoU of (N, 4) and (M, 4) ``(x1, y1, x2, y2)`` boxes, as ``torchvision.ops.box_iou``."""
    corner_min = torch.max(boxes1[:, None, :2], boxes2[None, :, :2])
    corner_max = torch.min(boxes1[:, None, 2:], boxes2[None, :, 2:])
    sides = _upcast(corner_max - corner_min).clamp(min=0)
    inter = sides[..., 0] * sides[..., 1]
    union = box_area(boxes1)[:, None] + box_area(boxes2)[None, :] - inter
    return inter / union


def clip_boxes_to_image(boxes: Tensor, size: tuple[int, int]) -> Tensor:
    """Clamp x to [0, width] and y to [0, height] (``size`` = (height, width)), as torchvision's."""
    height, width = size
    xs = boxes[..., 0::2].clamp(min=0, max=width)
    ys = boxes[..., 1::2].clamp(min=0, max=height)
    return torch.stack((xs, ys), dim=boxes.dim()).reshape(boxes.shape)


def remove_small_boxes(boxes: Tensor, min_size: float) -> Tensor:
    """Indices of the boxes whose width and height are both ``>= min_size``, as torchvision's."""
    widths = boxes[..., 2] - boxes[..., 0]
    heights = boxes[..., 3] - boxes[..., 1]
    return torch.where((widths >= min_size) & (heights >= min_size))[0]
