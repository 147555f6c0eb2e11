"""Triton kernels for fused multi-level spatial pyramid pooling (max and avg).

Forward, in one read of the input: the union of every level's adaptive bin edges cuts each axis
into disjoint *cells*, and every bin of every level is a contiguous block of cells (also where
bins overlap). ``_cells_kernel`` reduces the input into cells (max + first argmax, or sum), then
``_bins_kernel`` builds all levels' bins from the (small) cell buffer.

Backward is a gather (no atomics, deterministic): each input element visits the bins that contain
it, level by level in the order autograd would sum the reference's per-level gradients, bins in
row-major order, rounding to the input dtype after each addition exactly as PyTorch's CPU kernels
do; float32/float64 gradients are therefore bitwise equal to the reference's.
"""

import torch
import triton
import triton.language as tl

from . import _runtime
from ._launch import Launch, run_all
from ._runtime import adaptive_end, adaptive_start, next_pow2, tables
from ._triton_utils import acc_dtype, div, round_to, tl_dtype


def _tile(gpu: bool) -> int:
    """Elements per program tile: the GPU's, or the interpreter's (larger: it pays per program)."""
    return 2048 if gpu else 8192


@triton.jit(do_not_specialize=["NUM_CB", "RC", "QC"])  # counts: no recompile per shape
def _cells_kernel(x_ptr, val_ptr, idx_ptr, row_edges_ptr, col_edges_ptr,
                  C, W, NUM_CB, RC, QC, sxn, sxc, sxh, sxw,
                  IS_MAX: tl.constexpr, ACC: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_H: tl.constexpr,
                  BLOCK_W: tl.constexpr, BLOCK_Q: tl.constexpr):
    """One program per (image, channel block, row stripe r): reduce the stripe into its QC cells.

    Per column chunk, the stripe's rows are reduced first (max, first row of the max, last NaN row;
    or sum), then every column is assigned to its cell by a membership mask, all cells at once.
    """
    pid = tl.program_id(0)
    r = tl.program_id(1)
    n = pid // NUM_CB
    offs_c = (pid % NUM_CB) * BLOCK_C + tl.arange(0, BLOCK_C)
    mask_c = offs_c < C
    h0 = tl.load(row_edges_ptr + r)
    h1 = tl.load(row_edges_ptr + r + 1)
    offs_q = tl.arange(0, BLOCK_Q)
    q_lo = tl.load(col_edges_ptr + offs_q, mask=offs_q < QC, other=0)
    q_hi = tl.load(col_edges_ptr + offs_q + 1, mask=offs_q < QC, other=0)
    base = x_ptr + n.to(tl.int64) * sxn + offs_c.to(tl.int64)[:, None, None] * sxc
    dh = tl.arange(0, BLOCK_H)
    best = tl.full([BLOCK_C, BLOCK_Q], float("-inf"), ACC)
    best_i = tl.full([BLOCK_C, BLOCK_Q], 2147483647, tl.int32)
    nan_i = tl.full([BLOCK_C, BLOCK_Q], -1, tl.int32)
    acc = tl.zeros([BLOCK_C, BLOCK_Q], ACC)
    for ws in range(0, W, BLOCK_W):
        ww = ws + tl.arange(0, BLOCK_W)
        mask_w = ww < W
        member = ((ww[None, :] >= q_lo[:, None]) & (ww[None, :] < q_hi[:, None]))[None, :, :]
        col_best = tl.full([BLOCK_C, BLOCK_W], float("-inf"), ACC)
        col_row = tl.full([BLOCK_C, BLOCK_W], 2147483647, tl.int32)
        col_nan = tl.full([BLOCK_C, BLOCK_W], -1, tl.int32)
        col_sum = tl.zeros([BLOCK_C, BLOCK_W], ACC)
        for hs in range(h0, h1, BLOCK_H):
            hh = hs + dh
            m = mask_c[:, None, None] & (hh < h1)[None, :, None] & mask_w[None, None, :]
            ptrs = base + hh.to(tl.int64)[None, :, None] * sxh + ww.to(tl.int64)[None, None, :] * sxw
            v = tl.load(ptrs, mask=m, other=0.0).to(ACC)
            if IS_MAX:
                ok = m & (v == v)
                t_max = tl.max(tl.where(ok, v, float("-inf")), axis=1)
                t_row = tl.min(tl.where(ok & (v == t_max[:, None, :]), hh[None, :, None], 2147483647), axis=1)
                t_nan = tl.max(tl.where(m & (v != v), hh[None, :, None], -1), axis=1)
                better = (t_max > col_best) | ((t_max == col_best) & (t_row < col_row))
                col_best = tl.where(better, t_max, col_best)
                col_row = tl.where(better, t_row, col_row)
                col_nan = tl.maximum(col_nan, t_nan)
            else:
                col_sum += tl.sum(v, axis=1)
        if IS_MAX:
            # flat plane index of each column's candidates; min over a cell = first in row-major order
            p_first = tl.where(col_row < 2147483647, col_row * W + ww[None, :], 2147483647)[:, None, :]
            p_nan = tl.where(col_nan >= 0, col_nan * W + ww[None, :], -1)[:, None, :]
            cand = col_best[:, None, :]
            c_max = tl.max(tl.where(member, cand, float("-inf")), axis=2)
            c_first = tl.min(tl.where(member & (cand == c_max[:, :, None]), p_first, 2147483647), axis=2)
            c_nan = tl.max(tl.where(member, p_nan, -1), axis=2)
            better = (c_max > best) | ((c_max == best) & (c_first < best_i))
            best = tl.where(better, c_max, best)
            best_i = tl.where(better, c_first, best_i)
            nan_i = tl.maximum(nan_i, c_nan)
        else:
            acc += tl.sum(tl.where(member, col_sum[:, None, :], 0.0), axis=2)
    cell = (((n.to(tl.int64) * C + offs_c) * RC + r) * QC)[:, None] + offs_q[None, :]
    m_out = mask_c[:, None] & (offs_q < QC)[None, :]
    if IS_MAX:
        # PyTorch's scan takes ``val > max or isnan(val)``: NaN wins, and the last NaN.
        tl.store(val_ptr + cell, tl.where(nan_i >= 0, float("nan"), best), mask=m_out)
        tl.store(idx_ptr + cell, tl.where(nan_i >= 0, nan_i, best_i), mask=m_out)
    else:
        tl.store(val_ptr + cell, acc, mask=m_out)


@triton.jit(do_not_specialize=["NUM_CB", "RC", "QC", "MAX_R", "MAX_Q"])  # counts: no recompile per shape
def _bins_kernel(val_ptr, idx_ptr, out_ptr, argmax_ptr, tab_ptr,
                 C, S, NUM_CB, RC, QC, MAX_R, MAX_Q,
                 IS_MAX: tl.constexpr, ACC: tl.constexpr, OUT: tl.constexpr,
                 BLOCK_C: tl.constexpr, BLOCK_B: tl.constexpr):
    pid = tl.program_id(0)
    n = pid // NUM_CB
    offs_c = (pid % NUM_CB) * BLOCK_C + tl.arange(0, BLOCK_C)
    mask_c = offs_c < C
    offs_b = tl.program_id(1) * BLOCK_B + tl.arange(0, BLOCK_B)
    mask_b = offs_b < S
    t = tab_ptr + offs_b * 9
    r_lo = tl.load(t + 0, mask=mask_b, other=0)
    r_hi = tl.load(t + 1, mask=mask_b, other=0)
    q_lo = tl.load(t + 2, mask=mask_b, other=0)
    q_hi = tl.load(t + 3, mask=mask_b, other=0)
    prefix = tl.load(t + 4, mask=mask_b, other=0)
    nsq = tl.load(t + 5, mask=mask_b, other=0)
    local = tl.load(t + 6, mask=mask_b, other=0)
    kh = tl.load(t + 7, mask=mask_b, other=1)
    kw = tl.load(t + 8, mask=mask_b, other=1)
    cbase = ((n.to(tl.int64) * C + offs_c) * RC)[:, None]
    best = tl.full([BLOCK_C, BLOCK_B], float("-inf"), ACC)
    best_i = tl.full([BLOCK_C, BLOCK_B], 2147483647, tl.int32)
    nan_i = tl.full([BLOCK_C, BLOCK_B], -1, tl.int32)
    acc = tl.zeros([BLOCK_C, BLOCK_B], ACC)
    for dr in range(MAX_R):
        r = r_lo + dr
        for dq in range(MAX_Q):
            q = q_lo + dq
            m = mask_c[:, None] & (mask_b & (r < r_hi) & (q < q_hi))[None, :]
            cidx = (cbase + r[None, :]) * QC + q[None, :]
            v = tl.load(val_ptr + cidx, mask=m, other=0.0)
            if IS_MAX:
                i = tl.load(idx_ptr + cidx, mask=m, other=0)
                is_nan = m & (v != v)
                nan_i = tl.where(is_nan, tl.maximum(nan_i, i), nan_i)
                better = m & (v == v) & ((v > best) | ((v == best) & (i < best_i)))
                best = tl.where(better, v, best)
                best_i = tl.where(better, i, best_i)
            else:
                acc += v
    o = n.to(tl.int64) * C * S + (C * prefix.to(tl.int64))[None, :] \
        + offs_c.to(tl.int64)[:, None] * nsq[None, :] + local[None, :]
    om = mask_c[:, None] & mask_b[None, :]
    if IS_MAX:
        val = tl.where(nan_i >= 0, float("nan"), best)
        tl.store(argmax_ptr + o, tl.where(nan_i >= 0, nan_i, best_i), mask=om)
    else:
        # PyTorch: sum / kh / kw
        val = div(div(acc, kh.to(ACC)[None, :], ACC), kw.to(ACC)[None, :], ACC)
    tl.store(out_ptr + o, round_to(val, OUT).to(OUT), mask=om)


@triton.jit(do_not_specialize=["NUM_CB", "NUM_P", "L"])  # counts: no recompile per shape
def _backward_kernel(grad_ptr, argmax_ptr, gx_ptr, lv_ptr,
                     C, H, W, S, L, NUM_CB, NUM_P, sgn, sgc, sgh, sgw,
                     IS_MAX: tl.constexpr, ACC: tl.constexpr, OUT: tl.constexpr,
                     BLOCK_C: tl.constexpr, BLOCK_P: tl.constexpr):
    pid = tl.program_id(0)  # one flat axis: pixel tiles fastest (grid axes 1 and 2 stop at 65535)
    nc = pid // NUM_P
    n = nc // NUM_CB
    offs_c = (nc % NUM_CB) * BLOCK_C + tl.arange(0, BLOCK_C)
    mask_c = offs_c < C
    offs_p = (pid % NUM_P) * BLOCK_P + tl.arange(0, BLOCK_P)
    mask_p = offs_p < H * W
    h = offs_p // W
    w = offs_p % W
    m2 = mask_c[:, None] & mask_p[None, :]
    total = tl.zeros([BLOCK_C, BLOCK_P], ACC)
    for t in range(L):
        lv = lv_ptr + 4 * (L - 1 - t)  # reverse level order, as autograd sums the reference's grads
        nl = tl.load(lv)
        prefix = tl.load(lv + 1)
        max_i = tl.load(lv + 2)
        max_j = tl.load(lv + 3)
        i_lo = (h * nl) // H
        i_hi = ((h + 1) * nl - 1) // H
        j_lo = (w * nl) // W
        j_hi = ((w + 1) * nl - 1) // W
        cbase = n.to(tl.int64) * C * S + C * prefix.to(tl.int64) + offs_c.to(tl.int64) * (nl * nl)
        s = tl.zeros([BLOCK_C, BLOCK_P], ACC)
        for di in range(max_i):
            i = i_lo + di
            for dj in range(max_j):
                j = j_lo + dj
                ok = m2 & ((i <= i_hi) & (j <= j_hi))[None, :]
                o = cbase[:, None] + (i * nl + j)[None, :]
                g = tl.load(grad_ptr + o, mask=ok, other=0.0).to(ACC)
                if IS_MAX:
                    a = tl.load(argmax_ptr + o, mask=ok, other=-1)
                    contrib = tl.where(a == offs_p[None, :], g, 0.0)
                else:
                    # PyTorch scatters grad / kh / kw, except a 1x1 output, which it computes as
                    # mean() and whose backward is grad / (H * W).
                    kh = ((((i + 1) * H + nl - 1) // nl) - (i * H) // nl).to(ACC)
                    kw = ((((j + 1) * W + nl - 1) // nl) - (j * W) // nl).to(ACC)
                    g_bin = round_to(div(round_to(div(g, kh[None, :], ACC), OUT), kw[None, :], ACC), OUT)
                    g_mean = round_to(div(g, (H * W).to(ACC), ACC), OUT)
                    contrib = tl.where(ok, tl.where(nl == 1, g_mean, g_bin), 0.0)
                if OUT == tl.bfloat16:
                    s = round_to(s + contrib, OUT)
                else:  # inline: nested jit calls are slow in the interpreter
                    s = (s + contrib).to(OUT).to(ACC)
        total = round_to(total + s, OUT)
    ptrs = gx_ptr + n.to(tl.int64) * sgn + offs_c.to(tl.int64)[:, None] * sgc \
        + h.to(tl.int64)[None, :] * sgh + w.to(tl.int64)[None, :] * sgw
    tl.store(ptrs, total.to(OUT), mask=m2)  # exact: already rounded


def _axis_cells(size: int, levels: tuple[int, ...]):
    """Cell edges along one axis and, for each (level, bin), its [first, last) cell."""
    edges = sorted({e for n in levels for i in range(n)
                    for e in (adaptive_start(i, size, n), adaptive_end(i, size, n))})
    pos = {e: k for k, e in enumerate(edges)}
    spans = [[(pos[adaptive_start(i, size, n)], pos[adaptive_end(i, size, n)]) for i in range(n)] for n in levels]
    return edges, spans


def _forward_tables(H: int, W: int, levels: tuple[int, ...]):
    row_edges, row_spans = _axis_cells(H, levels)
    col_edges, col_spans = _axis_cells(W, levels)
    rows = []
    prefix = 0
    for li, n in enumerate(levels):
        for i in range(n):
            r_lo, r_hi = row_spans[li][i]
            kh = adaptive_end(i, H, n) - adaptive_start(i, H, n)
            for j in range(n):
                q_lo, q_hi = col_spans[li][j]
                kw = adaptive_end(j, W, n) - adaptive_start(j, W, n)
                rows.append([r_lo, r_hi, q_lo, q_hi, prefix, n * n, i * n + j, kh, kw])
        prefix += n * n
    max_r = max(r[1] - r[0] for r in rows)
    max_q = max(r[3] - r[2] for r in rows)
    max_cell_h = max(b - a for a, b in zip(row_edges, row_edges[1:], strict=False))
    return (torch.tensor(row_edges, dtype=torch.int32), torch.tensor(col_edges, dtype=torch.int32),
            torch.tensor(rows, dtype=torch.int32), max_r, max_q, max_cell_h)


def _max_bins_per_element(size: int, n: int) -> int:
    return max((((e + 1) * n - 1) // size) - (e * n) // size + 1 for e in range(size))


def _backward_table(H: int, W: int, levels: tuple[int, ...]):
    rows, prefix = [], 0
    for n in levels:
        rows.append([n, prefix, _max_bins_per_element(H, n), _max_bins_per_element(W, n)])
        prefix += n * n
    return (torch.tensor(rows, dtype=torch.int32),)


def cells_launch(x, cell_val, cell_idx, row_edges, col_edges, max_cell_h: int, is_max: bool, gpu: bool) -> Launch:
    """Launch of ``_cells_kernel``: input ``x`` (N, C, H, W) into ``cell_val``/``cell_idx`` (N, C, RC, QC)."""
    N, C, H, W = x.shape
    RC, QC = row_edges.numel() - 1, col_edges.numel() - 1
    block_h = min(next_pow2(max_cell_h), 16)
    block_w = min(next_pow2(W), 128)
    block_q = next_pow2(QC)
    block_c = max(1, min(next_pow2(C), _tile(gpu) // (max(block_h, block_q) * block_w)))
    num_cb = triton.cdiv(C, block_c)
    return Launch(_cells_kernel, (N * num_cb, RC),
                  (x, cell_val, cell_idx, row_edges, col_edges, C, W, num_cb, RC, QC, *x.stride()),
                  dict(IS_MAX=is_max, ACC=acc_dtype(x.dtype), BLOCK_C=block_c, BLOCK_H=block_h, BLOCK_W=block_w,
                       BLOCK_Q=block_q))


def bins_launch(cell_val, cell_idx, out, argmax, tab, max_r: int, max_q: int, is_max: bool, gpu: bool) -> Launch:
    """Launch of ``_bins_kernel``: cells into ``out`` (N, C * S) and, for max, ``argmax``."""
    N, C, RC, QC = cell_val.shape
    S = tab.shape[0]
    block_b = min(next_pow2(S), 64)
    block_c = max(1, min(next_pow2(C), _tile(gpu) // (4 * block_b)))
    num_cb = triton.cdiv(C, block_c)
    return Launch(_bins_kernel, (N * num_cb, triton.cdiv(S, block_b)),
                  (cell_val, cell_idx, out, argmax, tab, C, S, num_cb, RC, QC, max_r, max_q),
                  dict(IS_MAX=is_max, ACC=acc_dtype(out.dtype), OUT=tl_dtype(out.dtype), BLOCK_C=block_c,
                       BLOCK_B=block_b))


def backward_launch(grad, argmax, grad_x, lv, is_max: bool, gpu: bool) -> Launch:
    """Launch of ``_backward_kernel``: ``grad`` (N, C * S, contiguous) into ``grad_x`` (N, C, H, W)."""
    N, C, H, W = grad_x.shape
    S = grad.shape[1] // C
    block_p = min(next_pow2(H * W), 128 if gpu else 256)
    block_c = max(1, min(next_pow2(C), _tile(gpu) // (4 * block_p)))
    # Chosen so that no variant spills on sm_90 with Triton 3.6 or 3.9 (benchmarks/COMPILE_REPORT.md):
    # with 4 warps the bfloat16 avg variant spills; float64 avg spills with 4 channels at 4 or 8 warps.
    num_warps = 8
    if grad_x.dtype == torch.float64 and gpu:
        block_c, num_warps = 1, 4
    num_cb = triton.cdiv(C, block_c)
    num_p = triton.cdiv(H * W, block_p)
    return Launch(_backward_kernel, (N * num_cb * num_p,),
                  (grad, argmax, grad_x, lv, C, H, W, S, lv.shape[0], num_cb, num_p, *grad_x.stride()),
                  dict(IS_MAX=is_max, ACC=acc_dtype(grad_x.dtype), OUT=tl_dtype(grad_x.dtype), BLOCK_C=block_c,
                       BLOCK_P=block_p), num_warps=num_warps)


def plan_forward(x: torch.Tensor, levels: list[int], mode: str, gpu: bool):
    """Outputs ``(out, argmax)`` (allocated, not yet written) and the launches that write them."""
    N, C, H, W = x.shape
    levels_t = tuple(levels)
    S = sum(n * n for n in levels_t)
    is_max = mode == "max"
    out = x.new_empty((N, C * S))
    argmax = torch.empty((N, C * S) if is_max else (0,), dtype=torch.int32, device=x.device)
    if out.numel() == 0:
        return (out, argmax), []
    row_edges, col_edges, tab, max_r, max_q, max_cell_h = tables.get(
        ("spp_fwd", H, W, levels_t), x.device, lambda: _forward_tables(H, W, levels_t))
    RC, QC = row_edges.numel() - 1, col_edges.numel() - 1
    cell_dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    cell_val = torch.empty((N, C, RC, QC), dtype=cell_dtype, device=x.device)
    # avg mode never touches the index buffers: a one-element stand-in, never a null pointer
    cell_idx = torch.empty((N, C, RC, QC) if is_max else (1,), dtype=torch.int32, device=x.device)
    return (out, argmax), [
        cells_launch(x, cell_val, cell_idx, row_edges, col_edges, max_cell_h, is_max, gpu),
        bins_launch(cell_val, cell_idx, out, argmax if is_max else cell_idx, tab, max_r, max_q, is_max, gpu)]


def forward(x: torch.Tensor, levels: list[int], mode: str):
    outputs, launches = plan_forward(x, levels, mode, _runtime.gpu_tiles())
    run_all(launches)
    return outputs


def plan_backward(grad: torch.Tensor, x: torch.Tensor, argmax: torch.Tensor, levels: list[int], mode: str, gpu: bool):
    """``grad_x`` (allocated, not yet written) and the launches that write it."""
    N, C, H, W = x.shape
    levels_t = tuple(levels)
    grad_x = torch.empty_like(x)
    if grad_x.numel() == 0:
        return grad_x, []
    (lv,) = tables.get(("spp_bwd", H, W, levels_t), x.device, lambda: _backward_table(H, W, levels_t))
    return grad_x, [backward_launch(grad.contiguous(), argmax, grad_x, lv, mode == "max", gpu)]


def backward(grad: torch.Tensor, x: torch.Tensor, argmax: torch.Tensor, levels: list[int], mode: str) -> torch.Tensor:
    grad_x, launches = plan_backward(grad, x, argmax, levels, mode, _runtime.gpu_tiles())
    run_all(launches)
    return grad_x
