"""sppf: the Triton kernel against YOLOv5's three chained max pools (computed on the CPU)."""

import pytest
import torch
from _helpers import DTYPES, LAYOUTS, assert_same, cpu_copy, grad_of, make_input
from hypothesis import given
from hypothesis import strategies as st

import kernels
from kernels import reference


def _check(x, k):
    g = torch.randn((x.shape[0], 4 * x.shape[1], *x.shape[2:]), dtype=torch.float64).to(x.dtype)
    out, gx = grad_of(kernels.sppf, x, g.to(x.device), k)
    ref, ref_gx = grad_of(reference.sppf, cpu_copy(x), g, k)
    assert_same(out, ref)
    # the backward recomputes each chained pool's argmax as PyTorch picks it: bitwise equal, ties too
    assert_same(gx, ref_gx)


@given(
    n=st.integers(1, 2),
    c=st.integers(1, 3),
    h=st.integers(1, 15),
    w=st.integers(1, 15),
    k=st.sampled_from([1, 3, 5, 7]),
    dtype=st.sampled_from(DTYPES),
    layout=st.sampled_from(LAYOUTS),
    ties=st.booleans(),
)
def test_matches_reference(device, n, c, h, w, k, dtype, layout, ties):
    _check(make_input((n, c, h, w), dtype, device, ties, layout), k)


@pytest.mark.parametrize("size", [(20, 20), (13, 7), (1, 1), (2, 40), (37, 5)])
def test_yolo_sizes(device, size):
    _check(make_input((1, 2, *size), torch.float32, device, ties=True), 5)


@pytest.mark.parametrize("dtype", DTYPES)
def test_nan_and_inf_behave_as_reference(device, dtype):
    x = make_input((1, 2, 11, 9), dtype, device, ties=True)
    x[0, 0, 3, 3] = float("nan")
    x[0, 0, 5, 6] = float("nan")
    x[0, 1] = float("-inf")
    x[0, 1, 8, 2] = float("inf")
    _check(x, 5)


def test_output_follows_x_memory_format(device):
    x = make_input((2, 3, 6, 5), torch.float32, device, ties=False, layout="channels_last")
    assert kernels.sppf(x).is_contiguous(memory_format=torch.channels_last)


def test_gradcheck_float64(device):
    x = (torch.randperm(40, dtype=torch.float64) / 3).reshape(1, 2, 4, 5).to(device).requires_grad_()
    assert torch.autograd.gradcheck(lambda t: kernels.sppf(t, 3), (x,), fast_mode=True)


def test_many_channels(device):
    _check(make_input((1, 20, 20, 20), torch.float32, device, ties=True), 5)
