"""Triton kernels for ``upsample_concat``: bilinear upsampling of pyramid levels fused with the concat.

Forward: one launch writes every channel of the output, the copy of ``x`` and each level's
bilinear interpolation. The (small) pooled maps are packed into one buffer so a single kernel can
address them all. Source indices and weights per output row/column are tabulated on the host with
PyTorch's own rule (``area_pixel_compute_source_index``, same-size copy, edge clamping), so the
kernel only gathers and blends.

Backward: for each level, a gather over the output rows/columns that read each source pixel.
"""

import torch
import triton
import triton.language as tl

from . import _runtime
from ._launch import Launch, run_all
from ._runtime import next_pow2, tables
from ._triton_utils import acc_dtype, round_to, tl_dtype


def _tile(gpu: bool) -> int:
    """Elements per program tile: the GPU's, or the interpreter's (larger: it pays per program)."""
    return 2048 if gpu else 8192


@triton.jit(do_not_specialize=["NUM_P", "NUM_BLK"])  # counts: no recompile per shape
def _forward_kernel(x_ptr, flat_ptr, out_ptr, blk_ptr, meta_ptr, base_ptr, yi_ptr, yw_ptr, xi_ptr, xw_ptr,
                    Cx, H, W, NUM_P, NUM_BLK, sxn, sxc, sxh, sxw, son, soc, soh, sow,
                    ACC: tl.constexpr, OUT: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_P: tl.constexpr):
    pid = tl.program_id(0)
    pp = pid % NUM_P
    b = (pid // NUM_P) % NUM_BLK
    n = (pid // NUM_P // NUM_BLK).to(tl.int64)
    seg = tl.load(blk_ptr + 2 * b)
    c0 = tl.load(blk_ptr + 2 * b + 1)
    offs_p = pp * BLOCK_P + tl.arange(0, BLOCK_P)
    mask_p = offs_p < H * W
    h = offs_p // W
    w = offs_p % W
    cc = c0 + tl.arange(0, BLOCK_C)
    # `seg` is a runtime value: the compiler needs one type per name across both branches, hence
    # `copied` (x's dtype) and `blend` (the accumulator dtype) rather than one name for both.
    if seg == 0:
        m = (cc < Cx)[:, None] & mask_p[None, :]
        src = x_ptr + n * sxn + cc.to(tl.int64)[:, None] * sxc + (h.to(tl.int64) * sxh + w.to(tl.int64) * sxw)[None, :]
        copied = tl.load(src, mask=m)
        dst = out_ptr + n * son + cc.to(tl.int64)[:, None] * soc \
            + (h.to(tl.int64) * soh + w.to(tl.int64) * sow)[None, :]
        tl.store(dst, copied, mask=m)
    else:
        k = seg - 1
        ck = tl.load(meta_ptr + 4 * k)
        hk = tl.load(meta_ptr + 4 * k + 1)
        wk = tl.load(meta_ptr + 4 * k + 2)
        out_c = tl.load(meta_ptr + 4 * k + 3)
        base = tl.load(base_ptr + k)
        m = (cc < ck)[:, None] & mask_p[None, :]
        ty = (k * H + h) * 2
        tx = (k * W + w) * 2
        y0 = tl.load(yi_ptr + ty, mask=mask_p, other=0)
        y1 = tl.load(yi_ptr + ty + 1, mask=mask_p, other=0)
        wy0 = tl.load(yw_ptr + ty, mask=mask_p, other=0.0)[None, :]
        wy1 = tl.load(yw_ptr + ty + 1, mask=mask_p, other=0.0)[None, :]
        x0 = tl.load(xi_ptr + tx, mask=mask_p, other=0)
        x1 = tl.load(xi_ptr + tx + 1, mask=mask_p, other=0)
        wx0 = tl.load(xw_ptr + tx, mask=mask_p, other=0.0)[None, :]
        wx1 = tl.load(xw_ptr + tx + 1, mask=mask_p, other=0.0)[None, :]
        plane = flat_ptr + base + ((n * ck + cc) * (hk * wk))[:, None]
        v00 = tl.load(plane + (y0 * wk + x0)[None, :], mask=m, other=0.0).to(ACC)
        v01 = tl.load(plane + (y0 * wk + x1)[None, :], mask=m, other=0.0).to(ACC)
        v10 = tl.load(plane + (y1 * wk + x0)[None, :], mask=m, other=0.0).to(ACC)
        v11 = tl.load(plane + (y1 * wk + x1)[None, :], mask=m, other=0.0).to(ACC)
        blend = wy0 * (wx0 * v00 + wx1 * v01) + wy1 * (wx0 * v10 + wx1 * v11)
        dst = out_ptr + n * son + (out_c + cc).to(tl.int64)[:, None] * soc \
            + (h.to(tl.int64) * soh + w.to(tl.int64) * sow)[None, :]
        tl.store(dst, round_to(blend, OUT).to(OUT), mask=m)


@triton.jit(do_not_specialize=["NUM_S", "NUM_CB"])  # counts: no recompile per shape
def _backward_kernel(grad_ptr, gp_ptr, yi_ptr, yw_ptr, xi_ptr, xw_ptr, rows_ptr, cols_ptr,
                     C, HK, WK, NUM_S, NUM_CB, out_c, sgn, sgc, sgh, sgw,
                     ACC: tl.constexpr, OUT: tl.constexpr,
                     BLOCK_C: tl.constexpr, BLOCK_W: tl.constexpr, BLOCK_S: tl.constexpr):
    pid = tl.program_id(0)
    st = pid % NUM_S
    sy = (pid // NUM_S) % HK
    nc = pid // NUM_S // HK
    n = (nc // NUM_CB).to(tl.int64)
    cc = (nc % NUM_CB) * BLOCK_C + tl.arange(0, BLOCK_C)
    mask_c = cc < C
    sx = st * BLOCK_S + tl.arange(0, BLOCK_S)
    mask_s = sx < WK
    r_lo = tl.load(rows_ptr + 2 * sy)
    r_hi = tl.load(rows_ptr + 2 * sy + 1)
    w_lo = tl.load(cols_ptr + 2 * (st * BLOCK_S))
    w_hi = tl.load(cols_ptr + 2 * tl.minimum(st * BLOCK_S + BLOCK_S, WK) - 1)
    gbase = grad_ptr + n * sgn + (out_c + cc).to(tl.int64)[:, None, None] * sgc
    acc = tl.zeros([BLOCK_C, BLOCK_S], ACC)
    grow = gbase + r_lo.to(tl.int64) * sgh
    for h in range(r_lo, r_hi):
        wy = tl.where(tl.load(yi_ptr + 2 * h) == sy, tl.load(yw_ptr + 2 * h), 0.0) \
            + tl.where(tl.load(yi_ptr + 2 * h + 1) == sy, tl.load(yw_ptr + 2 * h + 1), 0.0)
        for w0 in range(w_lo, w_hi, BLOCK_W):
            w = w0 + tl.arange(0, BLOCK_W)
            mask_w = w < w_hi
            x0 = tl.load(xi_ptr + 2 * w, mask=mask_w, other=-1)
            x1 = tl.load(xi_ptr + 2 * w + 1, mask=mask_w, other=-1)
            wx0 = tl.load(xw_ptr + 2 * w, mask=mask_w, other=0.0)
            wx1 = tl.load(xw_ptr + 2 * w + 1, mask=mask_w, other=0.0)
            wx = tl.where(x0[:, None] == sx[None, :], wx0[:, None], 0.0) \
                + tl.where(x1[:, None] == sx[None, :], wx1[:, None], 0.0)  # [BLOCK_W, BLOCK_S]
            m = mask_c[:, None, None] & mask_w[None, :, None]
            g = tl.load(grow + w.to(tl.int64)[None, :, None] * sgw, mask=m, other=0.0)
            acc += tl.sum(g.to(ACC) * wx[None, :, :], axis=1) * wy
        grow += sgh
    dst = gp_ptr + ((n * C + cc) * HK + sy).to(tl.int64)[:, None] * WK + sx[None, :]
    tl.store(dst, round_to(acc, OUT).to(OUT), mask=mask_c[:, None] & mask_s[None, :])


def _linear_table(in_size: int, out_size: int, align_corners: bool, dtype: torch.dtype):
    """PyTorch's bilinear source indices (i0, i1) and weights (w0, w1) for every output index."""
    o = torch.arange(out_size, dtype=dtype)
    if in_size == out_size:
        i0 = torch.arange(out_size)
        return torch.stack([i0, i0], 1), torch.stack([torch.ones_like(o), torch.zeros_like(o)], 1)
    if align_corners:
        scale = torch.tensor((in_size - 1) / (out_size - 1) if out_size > 1 else 0.0, dtype=dtype)
        src = o * scale
    else:
        scale = torch.tensor(in_size, dtype=dtype) / out_size
        src = ((o + 0.5) * scale - 0.5).clamp_min(0)
    i0 = src.to(torch.int64).clamp_max(in_size - 1)
    i1 = i0 + (i0 < in_size - 1).to(torch.int64)
    lam1 = (src - i0.to(dtype)).clamp(0, 1)
    return torch.stack([i0, i1], 1), torch.stack([1 - lam1, lam1], 1)


def _touch_ranges(idx: torch.Tensor, in_size: int) -> torch.Tensor:
    """For each source index, output indices [lo, hi) covering all that read it.

    Made monotone (suffix-min of lo, prefix-max of hi) so that the range of a run of source
    indices is [lo[first], hi[last]), also where downsampling leaves a source index unread.
    """
    out_size = idx.shape[0]
    lo, hi = [out_size] * in_size, [0] * in_size
    for o, (a, b) in enumerate(idx.tolist()):
        for s in (a, b):
            lo[s], hi[s] = min(lo[s], o), max(hi[s], o + 1)
    for s in range(in_size - 2, -1, -1):
        lo[s] = min(lo[s], lo[s + 1])
    for s in range(1, in_size):
        hi[s] = max(hi[s], hi[s - 1])
    return torch.tensor([[a, max(a, b)] for a, b in zip(lo, hi, strict=True)], dtype=torch.int32)


def _tables(H: int, W: int, sizes: tuple[tuple[int, int], ...], align_corners: bool, dtype: torch.dtype):
    ys = [_linear_table(hk, H, align_corners, dtype) for hk, _ in sizes]
    xs = [_linear_table(wk, W, align_corners, dtype) for _, wk in sizes]
    yi = torch.cat([i for i, _ in ys]).to(torch.int32)
    xi = torch.cat([i for i, _ in xs]).to(torch.int32)
    yw = torch.cat([w for _, w in ys])
    xw = torch.cat([w for _, w in xs])
    rows = [_touch_ranges(i, hk) for (i, _), (hk, _) in zip(ys, sizes, strict=True)]
    cols = [_touch_ranges(i, wk) for (i, _), (_, wk) in zip(xs, sizes, strict=True)]
    return (yi, yw, xi, xw, *rows, *cols)


def _get_tables(x_shape, pooled, align_corners, device):
    H, W = x_shape[-2:]
    sizes = tuple((p.shape[2], p.shape[3]) for p in pooled)
    dtype = torch.float64 if pooled[0].dtype == torch.float64 else torch.float32
    return tables.get(("upsample", H, W, sizes, align_corners, dtype), device,
                      lambda: _tables(H, W, sizes, align_corners, dtype))


def _segment_tables(N: int, Cx: int, level_shapes: tuple[tuple[int, int, int], ...], block_c: int):
    """Channel blocks of the output as (segment, first channel); per level (C, h, w, output channel);
    per level its element offset in the packed buffer of pooled maps."""
    blocks, meta, bases, out_c, base = [[0, c0] for c0 in range(0, Cx, block_c)], [], [], Cx, 0
    for k, (c, h, w) in enumerate(level_shapes):
        blocks += [[k + 1, c0] for c0 in range(0, c, block_c)]
        meta.append([c, h, w, out_c])
        bases.append(base)
        out_c += c
        base += N * c * h * w
    return (torch.tensor(blocks, dtype=torch.int32), torch.tensor(meta or [[0, 0, 0, 0]], dtype=torch.int32),
            torch.tensor(bases or [0], dtype=torch.int64))


def _forward_block_c(channels: list[int], H: int, W: int, gpu: bool) -> int:
    return max(1, min(next_pow2(max(channels)), _tile(gpu) // (4 * _forward_block_p(H, W))))


def _forward_block_p(H: int, W: int) -> int:
    return min(next_pow2(H * W), 128)


def forward_launch(x, flat, out, blk, meta_t, base_t, yi, yw, xi, xw, block_c: int) -> Launch:
    """Launch of ``_forward_kernel``: ``x`` and the packed pooled maps ``flat`` into ``out``; ``blk`` holds
    the channel blocks of ``block_c`` channels (see :func:`_segment_tables`)."""
    N, Cx, H, W = x.shape
    block_p = _forward_block_p(H, W)
    num_p = triton.cdiv(H * W, block_p)
    return Launch(_forward_kernel, (N * blk.shape[0] * num_p,),
                  (x, flat, out, blk, meta_t, base_t, yi, yw, xi, xw, Cx, H, W, num_p, blk.shape[0],
                   *x.stride(), *out.stride()),
                  dict(ACC=acc_dtype(x.dtype), OUT=tl_dtype(x.dtype), BLOCK_C=block_c, BLOCK_P=block_p))


def backward_launch(grad, gp, yi, yw, xi, xw, rows, cols, out_c: int, gpu: bool) -> Launch:
    """Launch of ``_backward_kernel``: channels ``out_c:out_c + C`` of ``grad`` into one level's ``gp``."""
    N, C, hk, wk = gp.shape
    block_s = min(next_pow2(wk), 16)
    block_w = min(next_pow2(grad.shape[3]), 64)
    block_c = max(1, min(next_pow2(C), _tile(gpu) // (block_w * block_s)))
    num_cb, num_s = triton.cdiv(C, block_c), triton.cdiv(wk, block_s)
    return Launch(_backward_kernel, (N * num_cb * hk * num_s,),
                  (grad, gp, yi, yw, xi, xw, rows, cols, C, hk, wk, num_s, num_cb, out_c, *grad.stride()),
                  dict(ACC=acc_dtype(grad.dtype), OUT=tl_dtype(grad.dtype), BLOCK_C=block_c, BLOCK_W=block_w,
                       BLOCK_S=block_s),
                  num_warps=8)  # with 4, Triton 3.6 spills the bfloat16 variant on sm_90 (PSPNet's 3x3 level)


def plan_forward(x: torch.Tensor, pooled: list[torch.Tensor], align_corners: bool, gpu: bool):
    """The output (allocated, not yet written) and the launches that write it."""
    N, Cx, H, W = x.shape
    channels = [Cx] + [p.shape[1] for p in pooled]
    fmt = torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) and Cx > 1 \
        else torch.contiguous_format
    out = torch.empty((N, sum(channels), H, W), dtype=x.dtype, device=x.device, memory_format=fmt)
    if out.numel() == 0:
        return out, []
    if pooled:
        yi, yw, xi, xw = _get_tables(x.shape, pooled, align_corners, x.device)[:4]
        flat = torch.cat([p.reshape(-1) for p in pooled])
    else:  # no level to read: small stand-ins of the tables' dtypes (the level branch must still compile)
        table_dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
        yi = xi = torch.zeros((2,), dtype=torch.int32, device=x.device)
        yw = xw = torch.zeros((2,), dtype=table_dtype, device=x.device)
        flat = x.new_empty((1,))
    block_c = _forward_block_c(channels, H, W, gpu)
    level_shapes = tuple(tuple(p.shape[1:]) for p in pooled)
    blk, meta_t, base_t = tables.get(("upsample_segments", N, Cx, level_shapes, block_c), x.device,
                                     lambda: _segment_tables(N, Cx, level_shapes, block_c))
    return out, [forward_launch(x, flat, out, blk, meta_t, base_t, yi, yw, xi, xw, block_c)]


def forward(x: torch.Tensor, pooled: list[torch.Tensor], align_corners: bool) -> torch.Tensor:
    out, launches = plan_forward(x, pooled, align_corners, _runtime.gpu_tiles())
    run_all(launches)
    return out


def plan_backward(grad: torch.Tensor, pooled: list[torch.Tensor], x_channels: int, align_corners: bool, gpu: bool):
    """The gradients of the pooled maps (allocated, not yet written) and the launches that write them."""
    N, _, H, W = grad.shape
    yi, yw, xi, xw, *ranges = _get_tables(grad.shape, pooled, align_corners, grad.device)
    L = len(pooled)
    grads, launches, out_c = [], [], x_channels
    for k, p in enumerate(pooled):
        gp = torch.empty(p.shape, dtype=grad.dtype, device=grad.device)
        grads.append(gp)
        if gp.numel() > 0:
            launches.append(backward_launch(grad, gp, yi[k * H:], yw[k * H:], xi[k * W:], xw[k * W:], ranges[k],
                                            ranges[L + k], out_c, gpu))
        out_c += p.shape[1]
    return grads, launches


def backward(grad: torch.Tensor, pooled: list[torch.Tensor], x_channels: int, align_corners: bool):
    grads, launches = plan_backward(grad, pooled, x_channels, align_corners, _runtime.gpu_tiles())
    run_all(launches)
    return grads
