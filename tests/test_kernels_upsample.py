"""upsample_concat: the Triton kernel against its PyTorch reference (computed on the CPU)."""

import pytest
import torch
from _helpers import DTYPES, LAYOUTS, assert_near, assert_same, cpu_copy, make_input
from hypothesis import given
from hypothesis import strategies as st

import kernels
from kernels import reference


def _check(x, pooled, align_corners, dtype):
    out = kernels.upsample_concat(x, pooled, align_corners)
    ref = reference.upsample_concat(cpu_copy(x), [cpu_copy(p) for p in pooled], align_corners)
    C = x.shape[1]
    assert_same(out[:, :C], ref[:, :C])  # the copy of x is exact
    assert_near(out, ref, dtype)
    # gradients
    g = torch.randn(ref.shape, dtype=torch.float64).to(dtype)
    leaves = [t.detach().clone().requires_grad_(True) for t in [x, *pooled]]
    kernels.upsample_concat(leaves[0], leaves[1:], align_corners).backward(g.to(x.device))
    ref_leaves = [cpu_copy(t).requires_grad_(True) for t in [x, *pooled]]
    reference.upsample_concat(ref_leaves[0], ref_leaves[1:], align_corners).backward(g)
    assert_same(leaves[0].grad, ref_leaves[0].grad)
    for got, want in zip(leaves[1:], ref_leaves[1:], strict=True):
        assert_near(got.grad, want.grad, dtype, scale=4.0)  # sums of up to H*W/h*w products


@given(
    n=st.integers(1, 2),
    c=st.integers(1, 4),
    h=st.integers(1, 15),
    w=st.integers(1, 15),
    sizes=st.lists(st.tuples(st.integers(1, 4), st.integers(1, 8), st.integers(1, 8)), max_size=4),
    align_corners=st.booleans(),
    dtype=st.sampled_from(DTYPES),
    layout=st.sampled_from(LAYOUTS),
)
def test_matches_reference(device, n, c, h, w, sizes, align_corners, dtype, layout):
    x = make_input((n, c, h, w), dtype, device, ties=False, layout=layout)
    pooled = [make_input((n, ci, hi, wi), dtype, device, ties=False, layout=layout) for ci, hi, wi in sizes]
    _check(x, pooled, align_corners, dtype)


@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("size", [(13, 13), (61, 37), (1, 1)])
def test_pspnet_pyramid(device, align_corners, size):
    """PSPNet's bins (1, 2, 3, 6) upsampled to sizes they do not divide, tiny and large maps."""
    x = make_input((1, 3, *size), torch.float32, device, ties=False)
    pooled = [make_input((1, 2, n, n), torch.float32, device, ties=False) for n in (1, 2, 3, 6)]
    _check(x, pooled, align_corners, torch.float32)


def test_same_size_and_downsampling(device):
    x = make_input((1, 2, 9, 7), torch.float32, device, ties=False)
    pooled = [
        make_input((1, 2, 9, 7), torch.float32, device, ties=False),  # same size: a copy
        make_input((1, 1, 20, 15), torch.float32, device, ties=False),
    ]  # larger than x
    for align_corners in (False, True):
        _check(x, pooled, align_corners, torch.float32)


def test_nan_and_inf_propagate_as_reference(device):
    x = make_input((1, 1, 7, 6), torch.float32, device, ties=False)
    p = make_input((1, 2, 3, 3), torch.float32, device, ties=False)
    p[0, 0, 1, 1] = float("nan")
    p[0, 1, 0, 2] = float("inf")
    out = kernels.upsample_concat(x, [p])
    ref = reference.upsample_concat(cpu_copy(x), [cpu_copy(p)])
    assert torch.equal(out.isnan().cpu(), ref.isnan()) and torch.equal(out.isinf().cpu(), ref.isinf())


def test_output_follows_x_memory_format(device):
    x = make_input((2, 3, 5, 6), torch.float32, device, ties=False, layout="channels_last")
    out = kernels.upsample_concat(x, [make_input((2, 4, 2, 2), torch.float32, device, ties=False)])
    assert out.is_contiguous(memory_format=torch.channels_last)


def test_no_levels_is_a_copy(device):
    x = make_input((2, 3, 5, 6), torch.float32, device, ties=False, layout="strided")
    out = kernels.upsample_concat(x, [])
    assert_same(out, cpu_copy(x).contiguous())


def test_gradcheck_float64(device):
    x = torch.randn(1, 1, 5, 4, dtype=torch.float64, device=device, requires_grad=True)
    pooled = [torch.randn(1, 2, n, n, dtype=torch.float64, device=device, requires_grad=True) for n in (1, 3)]
    for align_corners in (False, True):
        assert torch.autograd.gradcheck(
            lambda a, b, c, ac=align_corners: kernels.upsample_concat(a, [b, c], ac), (x, *pooled), fast_mode=True
        )


def test_many_channels_and_wide_levels(device):
    """Several channel blocks per segment and source rows wider than one backward tile."""
    x = make_input((1, 40, 5, 30), torch.float32, device, ties=False)
    pooled = [
        make_input((1, 20, 2, 2), torch.float32, device, ties=False),
        make_input((1, 3, 3, 40), torch.float32, device, ties=False),
    ]
    _check(x, pooled, False, torch.float32)
