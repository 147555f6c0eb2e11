"""spatial_pyramid_pool: the Triton kernel against its PyTorch reference (computed on the CPU)."""

import pytest
import torch
import torch.nn.functional as F
from _helpers import DTYPES, LAYOUTS, assert_near, assert_same, cpu_copy, grad_of, levels_strategy, make_input
from hypothesis import given
from hypothesis import strategies as st

import kernels
from kernels import reference


def _ref(x, levels, mode):
    return reference.spatial_pyramid_pool(x, list(levels), mode)


def _check(x, levels, mode, dtype):
    g = torch.randn((x.shape[0], x.shape[1] * sum(n * n for n in levels)), dtype=torch.float64).to(dtype)
    out, gx = grad_of(kernels.spatial_pyramid_pool, x, g.to(x.device), tuple(levels), mode)
    ref, ref_gx = grad_of(_ref, cpu_copy(x), g, levels, mode)
    if mode == "max":
        assert_same(out, ref)
    else:
        assert_near(out, ref, dtype)
    # The backward follows the CPU reference's accumulation order: bitwise equal gradients.
    assert_same(gx, ref_gx)
    assert gx.shape == x.shape and gx.dtype == x.dtype


@given(
    n=st.integers(1, 3),
    c=st.integers(1, 5),
    h=st.integers(1, 23),
    w=st.integers(1, 23),
    levels=levels_strategy,
    mode=st.sampled_from(["max", "avg"]),
    dtype=st.sampled_from(DTYPES),
    layout=st.sampled_from(LAYOUTS),
    ties=st.booleans(),
)
def test_matches_reference(device, n, c, h, w, levels, mode, dtype, layout, ties):
    x = make_input((n, c, h, w), dtype, device, ties, layout)
    _check(x, levels, mode, dtype)


@pytest.mark.parametrize("mode", ["max", "avg"])
@pytest.mark.parametrize("size", [(13, 13), (37, 61), (1, 1), (1, 9), (3, 2), (64, 64)])
def test_paper_levels_odd_sizes(device, mode, size):
    """SPP-net's {6,3,2,1} and PSPNet's {1,2,3,6} on sizes that do not divide, tiny and large maps."""
    for levels in ((6, 3, 2, 1), (1, 2, 3, 6)):
        x = make_input((1, 2, *size), torch.float32, device, ties=mode == "max")
        _check(x, levels, mode, torch.float32)


@pytest.mark.parametrize("dtype", DTYPES)
def test_nan_and_inf_behave_as_reference(device, dtype):
    x = torch.randn(1, 3, 9, 7, dtype=torch.float64).to(dtype)
    x[0, 0, 2, 3] = float("nan")
    x[0, 0, 7, 1] = float("nan")  # two NaNs: the value is NaN, the gradient goes to the last one
    x[0, 1] = float("-inf")  # all -inf: the first index wins
    x[0, 2, 4, 4] = float("inf")
    for mode in ("max", "avg"):
        _check(x.to(device), (4, 3, 2, 1), mode, dtype)


def test_argmax_matches_pytorch_indices(device):
    """The saved argmax is PyTorch's index, so both paths are interchangeable."""
    x = make_input((2, 3, 11, 7), torch.float32, device, ties=True)
    _, argmax = torch.ops.spp_zoo.spatial_pyramid_pool(x, [4, 2, 1], "max")
    expected = torch.cat(
        [F.adaptive_max_pool2d(cpu_copy(x), n, return_indices=True)[1].flatten(1) for n in (4, 2, 1)], 1
    )
    assert_same(argmax.long(), expected)


def test_empty_batch_and_channels(device):
    for shape in ((0, 3, 5, 5), (2, 0, 5, 5)):
        x = torch.randn(shape, device=device, requires_grad=True)
        out = kernels.spatial_pyramid_pool(x, (2, 1))
        assert out.shape == (shape[0], shape[1] * 5)
        out.sum().backward()
        assert x.grad.shape == x.shape


def test_gradcheck_float64(device):
    for mode in ("max", "avg"):
        # distinct, well separated values: the max is stable under gradcheck's perturbation
        x = (torch.randperm(30, dtype=torch.float64) / 7).reshape(1, 2, 3, 5).to(device).requires_grad_()
        assert torch.autograd.gradcheck(
            lambda t, mode=mode: kernels.spatial_pyramid_pool(t, (3, 2, 1), mode), (x,), fast_mode=True
        )


@pytest.mark.parametrize("mode", ["max", "avg"])
def test_many_channels_tall_cells_wide_maps_many_bins(device, mode):
    """Several channel blocks, cells taller than a row tile, maps wider than a column tile, > 64 bins."""
    _check(make_input((1, 40, 9, 64), torch.float32, device, ties=mode == "max"), (4, 2, 1), mode, torch.float32)
    _check(make_input((1, 2, 40, 150), torch.float32, device, ties=mode == "max"), (2, 1), mode, torch.float32)
    _check(make_input((2, 3, 10, 11), torch.float32, device, ties=mode == "max"), (8, 2), mode, torch.float32)
