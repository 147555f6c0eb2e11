"""Triton kernels for YOLOv5-style SPPF pooling: ``cat([x, y1, y2, y3], 1)``, y_{m+1} = max_pool(y_m, k, 1, k//2).

Forward, from one read of the input: y_m is the max of x over the (2*m*r + 1)^2 window (r = k//2)
clipped to the map, so each program streams the input rows its output tile needs once; per row it
takes the max over horizontal shifts (L1-resident reloads), then folds the row into the output
rows within radius m*r, for m = 0 (the copy of x), 1, 2 and 3.

Backward reproduces the chained reference exactly, ties included: one kernel finds, for each of
the three pools, the window argmax PyTorch's scan would pick (``val > max or isnan(val)`` in
row-major order) on that pool's actual input (x, y1, y2); then three gathers carry the gradient
back through y3 -> y2 -> y1 -> x, each input summing its window's matching outputs in row-major
order with PyTorch's per-addition rounding.
"""

import torch
import triton
import triton.language as tl

from . import _runtime
from ._launch import Launch, run_all
from ._runtime import next_pow2
from ._triton_utils import acc_dtype, round_to, tl_dtype


def _tile(gpu: bool) -> int:
    """Elements per program tile: the GPU's, or the interpreter's (larger: it pays per program)."""
    return 2048 if gpu else 8192


@triton.jit(do_not_specialize=["NUM_CB", "NUM_TH", "NUM_TW"])  # counts: no recompile per shape
def _forward_kernel(x_ptr, out_ptr, C, H, W, NUM_CB, NUM_TH, NUM_TW,
                    sxn, sxc, sxh, sxw, son, soc, soh, sow,
                    R: tl.constexpr, ACC: tl.constexpr, BLOCK_C: tl.constexpr, TH: tl.constexpr,
                    BW: tl.constexpr):
    pid = tl.program_id(0)
    tw = pid % NUM_TW
    th = (pid // NUM_TW) % NUM_TH
    cb = (pid // NUM_TW // NUM_TH) % NUM_CB
    n = (pid // NUM_TW // NUM_TH // NUM_CB).to(tl.int64)
    h0 = th * TH
    offs_c = cb * BLOCK_C + tl.arange(0, BLOCK_C)
    mask_c = offs_c < C
    oh = h0 + tl.arange(0, TH)
    ow = tw * BW + tl.arange(0, BW)
    acc0 = tl.zeros([BLOCK_C, TH, BW], ACC)
    acc1 = tl.full([BLOCK_C, TH, BW], float("-inf"), ACC)
    acc2 = tl.full([BLOCK_C, TH, BW], float("-inf"), ACC)
    acc3 = tl.full([BLOCK_C, TH, BW], float("-inf"), ACC)
    nan1 = tl.zeros([BLOCK_C, TH, BW], tl.int1)
    nan2 = tl.zeros([BLOCK_C, TH, BW], tl.int1)
    nan3 = tl.zeros([BLOCK_C, TH, BW], tl.int1)
    h_lo = tl.maximum(h0 - 3 * R, 0)
    h_hi = tl.minimum(h0 + TH + 3 * R, H)
    row = x_ptr + n * sxn + offs_c.to(tl.int64)[:, None] * sxc + h_lo.to(tl.int64) * sxh
    for hi in range(h_lo, h_hi):
        copy = tl.zeros([BLOCK_C, BW], ACC)
        r1 = tl.full([BLOCK_C, BW], float("-inf"), ACC)
        r2 = tl.full([BLOCK_C, BW], float("-inf"), ACC)
        r3 = tl.full([BLOCK_C, BW], float("-inf"), ACC)
        n1 = tl.zeros([BLOCK_C, BW], tl.int1)
        n2 = tl.zeros([BLOCK_C, BW], tl.int1)
        n3 = tl.zeros([BLOCK_C, BW], tl.int1)
        for d in tl.static_range(6 * R + 1):  # horizontal shift dw = d - 3R
            cols = ow + (d - 3 * R)
            m = mask_c[:, None] & ((cols >= 0) & (cols < W))[None, :]
            v = tl.load(row + cols.to(tl.int64)[None, :] * sxw, mask=m, other=0.0).to(ACC)
            is_nan = m & (v != v)
            vv = tl.where(m & (v == v), v, float("-inf"))
            r3 = tl.maximum(r3, vv)
            n3 = n3 | is_nan
            if d >= R and d <= 5 * R:
                r2 = tl.maximum(r2, vv)
                n2 = n2 | is_nan
            if d >= 2 * R and d <= 4 * R:
                r1 = tl.maximum(r1, vv)
                n1 = n1 | is_nan
            if d == 3 * R:
                copy = v
        dist = tl.abs(hi - oh)
        acc0 = tl.where((dist == 0)[None, :, None], copy[:, None, :], acc0)
        # fold the row into the output rows within each radius (inline: cheap in the interpreter)
        near1 = (dist <= R)[None, :, None]
        near2 = (dist <= 2 * R)[None, :, None]
        near3 = (dist <= 3 * R)[None, :, None]
        acc1 = tl.where(near1, tl.maximum(acc1, r1[:, None, :]), acc1)
        acc2 = tl.where(near2, tl.maximum(acc2, r2[:, None, :]), acc2)
        acc3 = tl.where(near3, tl.maximum(acc3, r3[:, None, :]), acc3)
        nan1 = nan1 | (near1 & n1[:, None, :])
        nan2 = nan2 | (near2 & n2[:, None, :])
        nan3 = nan3 | (near3 & n3[:, None, :])
        row += sxh
    m = mask_c[:, None, None] & (oh < H)[None, :, None] & (ow < W)[None, None, :]
    dst = out_ptr + n * son + offs_c.to(tl.int64)[:, None, None] * soc \
        + oh.to(tl.int64)[None, :, None] * soh + ow.to(tl.int64)[None, None, :] * sow
    OUT = out_ptr.dtype.element_ty
    tl.store(dst, acc0.to(OUT), mask=m)
    tl.store(dst + C * soc, tl.where(nan1, float("nan"), acc1).to(OUT), mask=m)
    tl.store(dst + 2 * C * soc, tl.where(nan2, float("nan"), acc2).to(OUT), mask=m)
    tl.store(dst + 3 * C * soc, tl.where(nan3, float("nan"), acc3).to(OUT), mask=m)


@triton.jit(do_not_specialize=["N", "NUM_CB", "NUM_P"])  # counts: no recompile per shape
def _argmax_kernel(x_ptr, out_ptr, idx_ptr, N, C, H, W, NUM_CB, NUM_P, sxn, sxc, sxh, sxw, son, soc, soh, sow,
                   K: tl.constexpr, ACC: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_P: tl.constexpr):
    """Window offset ``(dh + r) * K + (dw + r)`` that PyTorch's max_pool2d picks, for the three chained pools.

    Stage 0 pools x, stage 1 pools y1 = out[:, C:2C], stage 2 pools y2 = out[:, 2C:3C]; the scan is
    PyTorch's: row-major, take ``val > max or isnan(val)``, starting from the first in-map element.
    """
    pid = tl.program_id(0)
    pp = pid % NUM_P
    cb = (pid // NUM_P) % NUM_CB
    n = (pid // NUM_P // NUM_CB).to(tl.int64)
    R = K // 2
    offs_c = cb * BLOCK_C + tl.arange(0, BLOCK_C)
    mask_c = offs_c < C
    offs_p = pp * BLOCK_P + tl.arange(0, BLOCK_P)
    mask_p = offs_p < H * W
    h = offs_p // W
    w = offs_p % W
    first = (tl.maximum(h - R, 0) - (h - R)) * K + (tl.maximum(w - R, 0) - (w - R))
    m_out = mask_c[:, None] & mask_p[None, :]
    for stage in tl.static_range(3):
        if stage == 0:
            base = x_ptr + n * sxn + offs_c.to(tl.int64)[:, None] * sxc
            s_h = sxh
            s_w = sxw
        else:
            base = out_ptr + n * son + (stage * C + offs_c).to(tl.int64)[:, None] * soc
            s_h = soh
            s_w = sow
        cur = tl.full([BLOCK_C, BLOCK_P], float("-inf"), ACC)
        idx = tl.zeros([BLOCK_C, BLOCK_P], tl.int32) + first[None, :]
        for d in range(K * K):  # a loop, not unrolled: K*K unrolled tile loads spill registers
            hh = h + (d // K - R)
            ww = w + (d % K - R)
            ok = mask_p & (hh >= 0) & (hh < H) & (ww >= 0) & (ww < W)
            m = mask_c[:, None] & ok[None, :]
            v = tl.load(base + (hh.to(tl.int64) * s_h + ww.to(tl.int64) * s_w)[None, :], mask=m,
                        other=float("-inf")).to(ACC)
            take = m & ((v > cur) | (v != v))
            cur = tl.where(take, v, cur)
            idx = tl.where(take, d, idx)
        dst = idx_ptr + ((stage * N + n) * C + offs_c.to(tl.int64))[:, None] * (H * W) + offs_p[None, :]
        tl.store(dst, idx.to(idx_ptr.dtype.element_ty), mask=m_out)


@triton.jit(do_not_specialize=["NUM_CB", "NUM_P"])  # counts: no recompile per shape
def _gather_kernel(gout_ptr, idx_ptr, gskip_ptr, gin_ptr, C, H, W, NUM_CB, NUM_P,
                   s_on, s_oc, s_oh, s_ow, s_sn, s_sc, s_sh, s_sw, s_in, s_ic, s_ih, s_iw,
                   K: tl.constexpr, ACC: tl.constexpr, OUT: tl.constexpr,
                   BLOCK_C: tl.constexpr, BLOCK_P: tl.constexpr):
    """grad_in[q] = grad_skip[q] + sum of grad_out[p] over window positions p whose argmax is q.

    Positions p are visited in row-major order with rounding to the dtype after each addition, as
    PyTorch's max_pool2d backward accumulates; grad_skip is the gradient reaching the pool's input
    directly from the concat.
    """
    pid = tl.program_id(0)
    pp = pid % NUM_P
    cb = (pid // NUM_P) % NUM_CB
    n = (pid // NUM_P // NUM_CB).to(tl.int64)
    R = K // 2
    offs_c = (cb * BLOCK_C + tl.arange(0, BLOCK_C)).to(tl.int64)
    mask_c = offs_c < C
    offs_p = pp * BLOCK_P + tl.arange(0, BLOCK_P)
    mask_p = offs_p < H * W
    h = offs_p // W
    w = offs_p % W
    acc = tl.zeros([BLOCK_C, BLOCK_P], ACC)
    for d in range(K * K):  # a loop, not unrolled: K*K unrolled tile loads spill registers
        ph = h + (d // K - R)
        pw = w + (d % K - R)
        ok = mask_p & (ph >= 0) & (ph < H) & (pw >= 0) & (pw < W)
        m = mask_c[:, None] & ok[None, :]
        a = tl.load(idx_ptr + ((n * C + offs_c) * (H * W))[:, None] + (ph * W + pw)[None, :], mask=m, other=-1)
        hit = m & (a.to(tl.int32) == K * K - 1 - d)  # p's window offset pointing back at q
        g = tl.load(gout_ptr + n * s_on + offs_c[:, None] * s_oc + (ph.to(tl.int64) * s_oh + pw * s_ow)[None, :],
                    mask=hit, other=0.0).to(ACC)
        if OUT == tl.bfloat16:
            acc = round_to(acc + g, OUT)
        else:  # inline: nested jit calls are slow in the interpreter
            acc = (acc + g).to(OUT).to(ACC)
    m = mask_c[:, None] & mask_p[None, :]
    skip = tl.load(gskip_ptr + n * s_sn + offs_c[:, None] * s_sc + (h.to(tl.int64) * s_sh + w * s_sw)[None, :],
                   mask=m, other=0.0).to(ACC)
    dst = gin_ptr + n * s_in + offs_c[:, None] * s_ic + (h.to(tl.int64) * s_ih + w * s_iw)[None, :]
    tl.store(dst, round_to(skip + acc, OUT).to(OUT), mask=m)


def forward_launch(x, out, kernel_size: int, gpu: bool) -> Launch:
    """Launch of ``_forward_kernel``: ``x`` (N, C, H, W) into ``out`` (N, 4C, H, W)."""
    N, C, H, W = x.shape
    bw = min(next_pow2(W), 32)
    th = min(next_pow2(H), 8)
    block_c = max(1, min(next_pow2(C), _tile(gpu) // (4 * th * bw)))
    num_cb, num_th, num_tw = triton.cdiv(C, block_c), triton.cdiv(H, th), triton.cdiv(W, bw)
    return Launch(_forward_kernel, (N * num_cb * num_th * num_tw,),
                  (x, out, C, H, W, num_cb, num_th, num_tw, *x.stride(), *out.stride()),
                  dict(R=kernel_size // 2, ACC=acc_dtype(x.dtype), BLOCK_C=block_c, TH=th, BW=bw))


def _backward_tiles(C: int, H: int, W: int, gpu: bool):
    block_p = min(next_pow2(H * W), 128)
    block_c = max(1, min(next_pow2(C), _tile(gpu) // (2 * block_p)))
    return block_c, block_p, triton.cdiv(C, block_c), triton.cdiv(H * W, block_p)


def argmax_launch(x, out, idx, kernel_size: int, gpu: bool) -> Launch:
    """Launch of ``_argmax_kernel``: the window argmax of the three chained pools into ``idx`` (3, N, C, H, W)."""
    N, C, H, W = x.shape
    block_c, block_p, num_cb, num_p = _backward_tiles(C, H, W, gpu)
    return Launch(_argmax_kernel, (N * num_cb * num_p,),
                  (x, out, idx, N, C, H, W, num_cb, num_p, *x.stride(), *out.stride()),
                  dict(K=kernel_size, ACC=acc_dtype(x.dtype), BLOCK_C=block_c, BLOCK_P=block_p))


def gather_launch(g_out, idx, g_skip, g_in, kernel_size: int, gpu: bool) -> Launch:
    """Launch of ``_gather_kernel``: one pool's input gradient ``g_in`` from its output gradient ``g_out``."""
    N, C, H, W = g_in.shape
    block_c, block_p, num_cb, num_p = _backward_tiles(C, H, W, gpu)
    return Launch(_gather_kernel, (N * num_cb * num_p,),
                  (g_out, idx, g_skip, g_in, C, H, W, num_cb, num_p, *g_out.stride(), *g_skip.stride(),
                   *g_in.stride()),
                  dict(K=kernel_size, ACC=acc_dtype(g_in.dtype), OUT=tl_dtype(g_in.dtype), BLOCK_C=block_c,
                       BLOCK_P=block_p))


def plan_forward(x: torch.Tensor, kernel_size: int, gpu: bool):
    """The output (allocated, not yet written) and the launches that write it."""
    N, C, H, W = x.shape
    fmt = torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) and C > 1 \
        else torch.contiguous_format
    out = torch.empty((N, 4 * C, H, W), dtype=x.dtype, device=x.device, memory_format=fmt)
    if out.numel() == 0:
        return out, []
    return out, [forward_launch(x, out, kernel_size, gpu)]


def forward(x: torch.Tensor, kernel_size: int) -> torch.Tensor:
    out, launches = plan_forward(x, kernel_size, _runtime.gpu_tiles())
    run_all(launches)
    return out


def plan_backward(grad: torch.Tensor, x: torch.Tensor, out: torch.Tensor, kernel_size: int, gpu: bool):
    """``grad_x`` (allocated, not yet written) and the launches, in order, that write it."""
    N, C, H, W = x.shape
    grad_x = torch.empty_like(x)
    if grad_x.numel() == 0:
        return grad_x, []
    idx_dtype = torch.int16 if kernel_size * kernel_size < 2**15 else torch.int32
    idx = torch.empty((3, N, C, H, W), dtype=idx_dtype, device=x.device)
    launches = [argmax_launch(x, out, idx, kernel_size, gpu)]
    g_out = grad[:, 3 * C:]
    for stage in (2, 1, 0):  # y3 -> y2, y2 -> y1, y1 -> x
        g_in = grad_x if stage == 0 else torch.empty((N, C, H, W), dtype=x.dtype, device=x.device)
        g_skip = grad[:, stage * C:(stage + 1) * C]
        launches.append(gather_launch(g_out, idx[stage], g_skip, g_in, kernel_size, gpu))
        g_out = g_in
    return grad_x, launches


def backward(grad: torch.Tensor, x: torch.Tensor, out: torch.Tensor, kernel_size: int) -> torch.Tensor:
    grad_x, launches = plan_backward(grad, x, out, kernel_size, _runtime.gpu_tiles())
    run_all(launches)
    return grad_x
