"""Triton kernels for RoI spatial pyramid pooling (SPP-net detection), torchvision ``roi_pool`` semantics.

Forward: one program per (RoI, channel block, group of bins). It computes every bin of every level
of its RoI with torchvision's arithmetic (in the boxes' dtype: half arithmetic for float16, float32
for float32 and bfloat16, double for float64), then streams the RoI's window once, row by row,
folding each row segment into all bins that contain it. Max is a strict ``>`` from -FLT_MAX in
row-major order (first element wins, NaN and values <= -FLT_MAX never selected); an empty bin is
0 with argmax -1.

Backward: atomic adds of each output gradient at its argmax, in float32 (float64 for float64),
then one cast to the features' dtype.
"""

import torch
import triton
import triton.language as tl

from . import _runtime
from ._launch import Launch, run_all
from ._runtime import next_pow2, tables
from ._triton_utils import acc_dtype, div, round_to, tl_dtype

_FLT_MAX = 3.4028234663852886e38
_COORD_LIMIT = 2.0**29  # clamp before int conversion (torchvision's int cast is undefined beyond int range)



@triton.jit
def _in_box_dtype(v, HALF: tl.constexpr):
    """Round an intermediate to the boxes' dtype where torchvision computes in half precision."""
    if HALF:
        return v.to(tl.float16).to(tl.float32)
    else:
        return v


@triton.jit
def _round_half_away(p):
    a = tl.abs(p)
    f = tl.floor(a)
    r = f + tl.where(a - f >= 0.5, 1.0, 0.0)
    return tl.where(p < 0, -r, r)


@triton.jit
def _to_int(v):
    return tl.minimum(tl.maximum(v, -536870912.0), 536870912.0).to(tl.int32)


@triton.jit(do_not_specialize=["N", "NUM_CB", "NUM_BG"])  # counts: no recompile per shape
def _forward_kernel(f_ptr, rois_ptr, scale_ptr, bins_ptr, out_ptr, argmax_ptr,
                    N, C, H, W, S, NUM_CB, NUM_BG, sfn, sfc, sfh, sfw, srk, srj,
                    CT: tl.constexpr, HALF: tl.constexpr, OUT: tl.constexpr,
                    BLOCK_C: tl.constexpr, BLOCK_B: tl.constexpr, BLOCK_W: tl.constexpr):
    pid = tl.program_id(0)
    bg = pid % NUM_BG
    cb = (pid // NUM_BG) % NUM_CB
    k = pid // NUM_BG // NUM_CB
    r = rois_ptr + k.to(tl.int64) * srk
    batch = tl.load(r).to(CT).to(tl.int32)  # truncation, as torchvision's int cast
    scale = tl.load(scale_ptr).to(CT)
    start_w = _to_int(_round_half_away(_in_box_dtype(tl.load(r + srj).to(CT) * scale, HALF)))
    start_h = _to_int(_round_half_away(_in_box_dtype(tl.load(r + 2 * srj).to(CT) * scale, HALF)))
    end_w = _to_int(_round_half_away(_in_box_dtype(tl.load(r + 3 * srj).to(CT) * scale, HALF)))
    end_h = _to_int(_round_half_away(_in_box_dtype(tl.load(r + 4 * srj).to(CT) * scale, HALF)))
    roi_w = _in_box_dtype(tl.maximum(end_w - start_w + 1, 1).to(CT), HALF)
    roi_h = _in_box_dtype(tl.maximum(end_h - start_h + 1, 1).to(CT), HALF)

    offs_b = bg * BLOCK_B + tl.arange(0, BLOCK_B)
    mask_b = offs_b < S
    nb = tl.load(bins_ptr + 5 * offs_b, mask=mask_b, other=1)
    ib = tl.load(bins_ptr + 5 * offs_b + 1, mask=mask_b, other=0)
    jb = tl.load(bins_ptr + 5 * offs_b + 2, mask=mask_b, other=0)
    prefix = tl.load(bins_ptr + 5 * offs_b + 3, mask=mask_b, other=0)
    local = tl.load(bins_ptr + 5 * offs_b + 4, mask=mask_b, other=0)
    n_ct = _in_box_dtype(nb.to(CT), HALF)
    bin_h = _in_box_dtype(div(roi_h, n_ct, CT), HALF)
    bin_w = _in_box_dtype(div(roi_w, n_ct, CT), HALF)
    hs = tl.floor(_in_box_dtype(_in_box_dtype(ib.to(CT), HALF) * bin_h, HALF)).to(tl.int32)
    he = tl.ceil(_in_box_dtype(_in_box_dtype((ib + 1).to(CT), HALF) * bin_h, HALF)).to(tl.int32)
    ws = tl.floor(_in_box_dtype(_in_box_dtype(jb.to(CT), HALF) * bin_w, HALF)).to(tl.int32)
    we = tl.ceil(_in_box_dtype(_in_box_dtype((jb + 1).to(CT), HALF) * bin_w, HALF)).to(tl.int32)
    hs = tl.minimum(tl.maximum(hs + start_h, 0), H)
    he = tl.minimum(tl.maximum(he + start_h, 0), H)
    ws = tl.minimum(tl.maximum(ws + start_w, 0), W)
    we = tl.minimum(tl.maximum(we + start_w, 0), W)
    batch_b = tl.zeros_like(offs_b) + batch  # vector: the interpreter mis-types bool_vector & bool_scalar
    live = mask_b & (he > hs) & (we > ws) & (batch_b >= 0) & (batch_b < N)

    offs_c = cb * BLOCK_C + tl.arange(0, BLOCK_C)
    mask_c = offs_c < C
    best = tl.full([BLOCK_C, BLOCK_B], -3.4028234663852886e38, CT)
    best = tl.where(live[None, :], best, 0.0)
    best_i = tl.full([BLOCK_C, BLOCK_B], -1, tl.int32)
    h_lo = tl.min(tl.where(live, hs, H), axis=0)
    h_hi = tl.max(tl.where(live, he, 0), axis=0)
    w_lo = tl.min(tl.where(live, ws, W), axis=0)
    w_hi = tl.max(tl.where(live, we, 0), axis=0)
    plane = f_ptr + batch.to(tl.int64) * sfn + offs_c.to(tl.int64)[:, None] * sfc
    row = plane + h_lo.to(tl.int64) * sfh
    for h in range(h_lo, h_hi):
        in_row = live & (hs <= h) & (h < he)
        for w0 in range(w_lo, w_hi, BLOCK_W):
            ww = w0 + tl.arange(0, BLOCK_W)
            mask_w = ww < w_hi
            v = tl.load(row + ww.to(tl.int64)[None, :] * sfw, mask=mask_c[:, None] & mask_w[None, :],
                        other=0.0).to(CT)
            in_bin = in_row[:, None] & (ws[:, None] <= ww[None, :]) & (ww[None, :] < we[:, None])
            v3 = v[:, None, :]
            cand = in_bin[None, :, :] & (v3 > -3.4028234663852886e38)
            c_max = tl.max(tl.where(cand, v3, float("-inf")), axis=2)
            p = (h * W + ww)[None, None, :]
            c_idx = tl.min(tl.where(cand & (v3 == c_max[:, :, None]), p, 2147483647), axis=2)
            better = c_max > best  # strict: an earlier (row-major) element keeps a tie
            best = tl.where(better, c_max, best)
            best_i = tl.where(better, c_idx, best_i)
        row += sfh
    o = k.to(tl.int64) * C * S + (C * prefix.to(tl.int64))[None, :] \
        + offs_c.to(tl.int64)[:, None] * (nb * nb)[None, :] + local[None, :]
    m = mask_c[:, None] & mask_b[None, :]
    tl.store(out_ptr + o, round_to(best, OUT).to(OUT), mask=m)
    tl.store(argmax_ptr + o, best_i, mask=m)


@triton.jit(do_not_specialize=["N", "NUM_CB", "NUM_BG"])  # counts: no recompile per shape
def _backward_kernel(grad_ptr, argmax_ptr, rois_ptr, bins_ptr, gx_ptr, N, C, HW, S, NUM_CB, NUM_BG, srk,
                     CT: tl.constexpr, ACC: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_B: tl.constexpr):
    pid = tl.program_id(0)
    bg = pid % NUM_BG
    cb = (pid // NUM_BG) % NUM_CB
    k = pid // NUM_BG // NUM_CB
    batch = tl.load(rois_ptr + k.to(tl.int64) * srk).to(CT).to(tl.int32)
    offs_b = bg * BLOCK_B + tl.arange(0, BLOCK_B)
    mask_b = offs_b < S
    nb = tl.load(bins_ptr + 5 * offs_b, mask=mask_b, other=1)
    prefix = tl.load(bins_ptr + 5 * offs_b + 3, mask=mask_b, other=0)
    local = tl.load(bins_ptr + 5 * offs_b + 4, mask=mask_b, other=0)
    offs_c = cb * BLOCK_C + tl.arange(0, BLOCK_C)
    o = k.to(tl.int64) * C * S + (C * prefix.to(tl.int64))[None, :] \
        + offs_c.to(tl.int64)[:, None] * (nb * nb)[None, :] + local[None, :]
    batch_b = tl.zeros_like(offs_b) + batch  # vector: the interpreter mis-types bool_vector & bool_scalar
    bins_ok = mask_b & (batch_b >= 0) & (batch_b < N)
    m = (offs_c < C)[:, None] & bins_ok[None, :]
    a = tl.load(argmax_ptr + o, mask=m, other=-1)
    g = tl.load(grad_ptr + o, mask=m, other=0.0).to(ACC)
    dst = gx_ptr + (batch.to(tl.int64) * C + offs_c.to(tl.int64))[:, None] * HW + a
    tl.atomic_add(dst, g, mask=m & (a >= 0))


def _bins_table(levels: tuple[int, ...]):
    rows, prefix = [], 0
    for n in levels:
        rows += [[n, i, j, prefix, i * n + j] for i in range(n) for j in range(n)]
        prefix += n * n
    return (torch.tensor(rows, dtype=torch.int32),)



def _effective_scale(spatial_scale: float, dtype: torch.dtype) -> float:
    """spatial_scale as torchvision's kernel sees it: converted to the boxes' dtype (via float)."""
    if dtype == torch.float64:
        return spatial_scale
    s = torch.tensor(spatial_scale, dtype=torch.float32)
    return float(s.half() if dtype == torch.float16 else s)


def _tile(gpu: bool) -> int:
    """Elements per program tile: the GPU's, or the interpreter's (larger: it pays per program)."""
    return 4096 if gpu else 16384


def _launch_shape(C: int, S: int, gpu: bool):
    block_b = min(next_pow2(S), 64)
    block_w = 16
    block_c = max(1, min(next_pow2(C), _tile(gpu) // (block_b * block_w)))
    return block_b, block_w, block_c, triton.cdiv(C, block_c), triton.cdiv(S, block_b)


def forward_launch(features, rois, scale_t, bins, out, argmax, gpu: bool) -> Launch:
    """Launch of ``_forward_kernel``: every level's bins of each RoI into ``out``/``argmax`` (K, C * S)."""
    N, C, H, W = features.shape
    K, S = rois.shape[0], bins.shape[0]
    block_b, block_w, block_c, num_cb, num_bg = _launch_shape(C, S, gpu)
    return Launch(_forward_kernel, (K * num_cb * num_bg,),
                  (features, rois, scale_t, bins, out, argmax, N, C, H, W, S, num_cb, num_bg,
                   *features.stride(), *rois.stride()),
                  dict(CT=acc_dtype(features.dtype), HALF=features.dtype == torch.float16,
                       OUT=tl_dtype(features.dtype), BLOCK_C=block_c, BLOCK_B=block_b, BLOCK_W=block_w),
                  # the (C, bins, W) candidate tile: with 4 warps the 32-bit variants spill on sm_90 at
                  # 128 registers; with 8 the float64 one does
                  num_warps=4 if features.dtype == torch.float64 else 8)


def backward_launch(grad, argmax, rois, bins, grad_x, features_dtype: torch.dtype, gpu: bool) -> Launch:
    """Launch of ``_backward_kernel``: atomic adds of ``grad`` (K, C * S) into ``grad_x`` (N, C, H, W)."""
    N, C, H, W = grad_x.shape
    K, S = rois.shape[0], bins.shape[0]
    block_b, _, block_c, num_cb, num_bg = _launch_shape(C, S, gpu)
    return Launch(_backward_kernel, (K * num_cb * num_bg,),
                  (grad, argmax, rois, bins, grad_x, N, C, H * W, S, num_cb, num_bg, rois.stride(0)),
                  dict(CT=acc_dtype(features_dtype), ACC=acc_dtype(features_dtype), BLOCK_C=block_c,
                       BLOCK_B=block_b))


def plan_forward(features: torch.Tensor, rois: torch.Tensor, levels: list[int], spatial_scale: float, gpu: bool):
    """Outputs ``(out, argmax)`` (allocated, not yet written) and the launches that write them."""
    N, C, H, W = features.shape
    K = rois.shape[0]
    levels_t = tuple(levels)
    S = sum(n * n for n in levels_t)
    out = features.new_empty((K, C * S))
    argmax = torch.empty((K, C * S), dtype=torch.int32, device=features.device)
    if out.numel() == 0:
        return (out, argmax), []
    (bins,) = tables.get(("roi_bins", levels_t), features.device, lambda: _bins_table(levels_t))
    scale = _effective_scale(spatial_scale, features.dtype)
    (scale_t,) = tables.get(("roi_scale", scale), features.device,
                            lambda: (torch.tensor([scale], dtype=torch.float64),))
    return (out, argmax), [forward_launch(features, rois, scale_t, bins, out, argmax, gpu)]


def forward(features: torch.Tensor, rois: torch.Tensor, levels: list[int], spatial_scale: float):
    outputs, launches = plan_forward(features, rois, levels, spatial_scale, _runtime.gpu_tiles())
    run_all(launches)
    return outputs


def plan_backward(grad, features, rois, argmax, levels: list[int], gpu: bool):
    """The float32 (float64 for float64) gradient sum, zeroed, and the launches that add into it."""
    N, C, H, W = features.shape
    K = rois.shape[0]
    levels_t = tuple(levels)
    sum_dtype = torch.float64 if features.dtype == torch.float64 else torch.float32
    grad_x = torch.zeros((N, C, H, W), dtype=sum_dtype, device=features.device)
    if K == 0 or C == 0 or N == 0:
        return grad_x, []
    (bins,) = tables.get(("roi_bins", levels_t), features.device, lambda: _bins_table(levels_t))
    return grad_x, [backward_launch(grad.contiguous(), argmax, rois, bins, grad_x, features.dtype, gpu)]


def backward(grad, features, rois, argmax, levels: list[int], spatial_scale: float) -> torch.Tensor:
    grad_x, launches = plan_backward(grad, features, rois, argmax, levels, _runtime.gpu_tiles())
    run_all(launches)
    return grad_x.to(features.dtype)
