"""roi_spp: the Triton kernel against torchvision's roi_pool (computed on the CPU)."""

import pytest
import torch
from _helpers import DTYPES, LAYOUTS, assert_near, assert_same, cpu_copy, levels_strategy, make_input
from hypothesis import given
from hypothesis import strategies as st

import kernels


def torchvision_reference(features, rois, levels, scale):
    """The literal contract: torchvision.ops.roi_pool per level, on the CPU (bfloat16 via float32)."""
    from torchvision.ops import roi_pool

    f, r = cpu_copy(features), cpu_copy(rois)
    if f.dtype == torch.bfloat16:
        f, r = f.float(), r.float()
    f = f.detach().requires_grad_(True)
    out = torch.cat([roi_pool(f, r, n, scale).flatten(1) for n in levels], 1)
    return f, out


def random_rois(k, n, h, w, scale, dtype, device, generator=None):
    """Boxes in image coordinates: inside, partly and wholly outside the map, zero-area and inverted."""
    size = torch.tensor([w, h, w, h], dtype=torch.float64) / scale
    xy = (torch.rand(k, 4, dtype=torch.float64, generator=generator) * 1.6 - 0.3) * size
    kind = torch.randint(0, 4, (k,), generator=generator)
    xy[kind == 1, 2:] = xy[kind == 1, :2]  # zero area
    xy[kind == 2] = xy[kind == 2][:, [2, 3, 0, 1]]  # possibly inverted
    xy[kind == 3] = torch.sort(xy[kind == 3].view(-1, 2, 2), dim=1).values.view(-1, 4)  # well formed
    batch = torch.randint(0, n, (k, 1), generator=generator).double()
    return torch.cat([batch, xy], 1).to(dtype).to(device)


def _check(features, rois, levels, scale, dtype):
    out = kernels.roi_spp(features, rois, levels, scale)
    leaf, ref = torchvision_reference(features, rois, levels, scale)
    assert_same(out, ref.to(dtype))
    _, argmax = torch.ops.spp_zoo.roi_spp(features, rois, list(levels), scale)
    g = torch.randn(ref.shape, dtype=torch.float64).to(dtype)
    ref.backward(g.to(ref.dtype))
    f = features.detach().clone().requires_grad_(True)
    kernels.roi_spp(f, rois, levels, scale).backward(g.to(features.device))
    # overlapping RoIs are summed in another order (atomics): equal up to rounding
    assert_near(f.grad, leaf.grad.to(dtype), dtype, scale=4.0)
    return argmax


@given(
    n=st.integers(1, 2),
    c=st.integers(1, 4),
    h=st.integers(1, 17),
    w=st.integers(1, 17),
    k=st.integers(0, 9),
    levels=levels_strategy,
    scale=st.sampled_from([1.0, 0.5, 0.25, 1 / 16, 0.3, 2.0]),
    dtype=st.sampled_from(DTYPES),
    layout=st.sampled_from(LAYOUTS),
    ties=st.booleans(),
    seed=st.integers(0, 99),
)
def test_matches_torchvision(device, n, c, h, w, k, levels, scale, dtype, layout, ties, seed):
    gen = torch.Generator().manual_seed(seed)
    features = make_input((n, c, h, w), dtype, device, ties, layout)
    rois = random_rois(k, n, h, w, scale, dtype, device, gen)
    _check(features, rois, levels, scale, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sppnet_detection_shape(device, dtype):
    """SPP-net's detection pyramid {6,3,2,1} on a conv5-like map (stride 16), fractional boxes."""
    features = make_input((2, 3, 23, 31), dtype, device, ties=False)
    rois = random_rois(12, 2, 23, 31, 1 / 16, dtype, device)
    _check(features, rois, (6, 3, 2, 1), 1 / 16, dtype)


def test_argmax_matches_torchvision(device):
    from torchvision.ops import roi_pool  # noqa: F401  (registers the op)

    features = make_input((2, 2, 9, 8), torch.float32, device, ties=True)
    rois = random_rois(10, 2, 9, 8, 0.5, torch.float32, device)
    _, argmax = torch.ops.spp_zoo.roi_spp(features, rois, [3, 2, 1], 0.5)
    expected = torch.cat(
        [
            torch.ops.torchvision.roi_pool(cpu_copy(features), cpu_copy(rois), 0.5, n, n)[1].flatten(1)
            for n in (3, 2, 1)
        ],
        1,
    )
    assert_same(argmax, expected)


def test_list_of_boxes_and_empty(device):
    features = make_input((3, 2, 8, 8), torch.float32, device, ties=False)
    boxes = [
        torch.tensor([[0.0, 0.0, 5.0, 5.0], [2.0, 1.0, 7.0, 3.0]], device=device),
        torch.zeros((0, 4), device=device),
        torch.tensor([[1.0, 1.0, 1.0, 1.0]], device=device),
    ]
    out = kernels.roi_spp(features, boxes, (2, 1))
    from torchvision.ops import roi_pool

    ref = torch.cat([roi_pool(cpu_copy(features), [cpu_copy(b) for b in boxes], n).flatten(1) for n in (2, 1)], 1)
    assert_same(out, ref)
    empty = kernels.roi_spp(features, torch.zeros((0, 5), device=device), (6, 3, 2, 1))
    assert empty.shape == (0, 2 * 50)
    f = features.clone().requires_grad_(True)
    kernels.roi_spp(f, torch.zeros((0, 5), device=device)).sum().backward()
    assert torch.equal(f.grad, torch.zeros_like(f))


@pytest.mark.parametrize("dtype", DTYPES)
def test_nan_inf_and_extremes(device, dtype):
    """NaN is never selected; a bin of only -inf (or <= -FLT_MAX) gives -FLT_MAX in the dtype, argmax -1."""
    features = make_input((1, 3, 6, 6), dtype, device, ties=False)
    features[0, 0, 1:3, 1:3] = float("nan")
    features[0, 1] = float("-inf")
    features[0, 2, 0, 0] = float("inf")
    rois = torch.tensor([[0, 0, 0, 5, 5], [0, 1, 1, 2, 2], [0, 0, 0, 0, 0]], dtype=dtype, device=device)
    levels, C = (3, 2, 1), 3
    argmax = _check(features, rois, levels, 1.0, dtype)
    start = 0
    for n in levels:  # output layout: per level, (C, n, n) flattened
        assert (argmax[:, start + n * n : start + 2 * n * n] == -1).all()  # channel 1 is all -inf
        start += C * n * n


def test_fp16_uses_half_arithmetic_like_torchvision(device):
    """Boxes whose bins differ between float16 and float32 arithmetic: float16 must give torchvision's."""
    from torchvision.ops import roi_pool

    boxes = [
        [16.515625, 13.5625, 22.515625, 9.9609375],
        [22.09375, 27.84375, 16.03125, 12.0],
        [22.921875, 7.85546875, 20.765625, 9.3046875],
        [10.9296875, 13.3203125, 20.703125, 25.140625],
        [27.84375, 3.294921875, 12.1796875, 7.2734375],
        [10.1484375, 24.375, 16.421875, 10.6796875],
    ]
    rois = torch.tensor([[0.0, *b] for b in boxes]).half()
    features = torch.randn(1, 1, 24, 24, generator=torch.Generator().manual_seed(0)).half()
    levels, scale = (6, 5, 3), 0.7
    in_float32 = torch.cat([roi_pool(features.float(), rois.float(), n, scale).flatten(1) for n in levels], 1)
    in_float16 = torch.cat([roi_pool(features, rois, n, scale).flatten(1) for n in levels], 1)
    assert not torch.equal(in_float32.half(), in_float16)  # the case discriminates the two arithmetics
    _check(features.to(device), rois.to(device), levels, scale, torch.float16)


def test_gradcheck_float64(device):
    features = (torch.randperm(48, dtype=torch.float64) / 5).reshape(1, 3, 4, 4).to(device).requires_grad_()
    rois = torch.tensor([[0, 0, 0, 3, 3], [0, 1, 0.5, 2.7, 3.2]], dtype=torch.float64, device=device)
    assert torch.autograd.gradcheck(lambda f: kernels.roi_spp(f, rois, (2, 1)), (features,), fast_mode=True)


def test_many_channels_and_bin_groups(device):
    """Several channel blocks and more bins than one program holds (levels (8, 2): 68 bins)."""
    features = make_input((2, 40, 12, 20), torch.float32, device, ties=True)
    rois = random_rois(6, 2, 12, 20, 0.5, torch.float32, device)
    _check(features, rois, (8, 2), 0.5, torch.float32)


@given(
    n=st.integers(1, 2),
    c=st.integers(1, 3),
    h=st.integers(1, 15),
    w=st.integers(1, 15),
    k=st.integers(0, 8),
    levels=levels_strategy,
    scale=st.sampled_from([1.0, 0.5, 1 / 16, 0.3, 0.7]),
    dtype=st.sampled_from(DTYPES),
    ties=st.booleans(),
    seed=st.integers(0, 99),
)
def test_pure_torch_reference_equals_torchvision(n, c, h, w, k, levels, scale, dtype, ties, seed):
    """roi_spp_torch (no torchvision operator, for torch-only TorchScript files) is the same function."""
    gen = torch.Generator().manual_seed(seed)
    features = make_input((n, c, h, w), dtype, "cpu", ties)
    features[0, 0, 0, 0] = float("nan")
    rois = random_rois(k, n, h, w, scale, dtype, "cpu", gen)
    _, expected = torchvision_reference(features, rois, levels, scale)
    assert_same(kernels.reference.roi_spp_torch(features, rois, list(levels), scale), expected.detach().to(dtype))


HALF_COORDINATE_ROIS = [
    [0, 2.5, 0.5, 4.5, 6.5],
    [0, -0.5, -1.5, 1.5, 2.5],
    [0, 3.5, 1.5, 3.5, 1.5],
    [0, 5.5, 4.5, 0.5, 7.5],
    [0, 1.25, 2.75, 6.25, 3.75],
]


@pytest.mark.parametrize("scale", [1.0, 0.5])
def test_box_coordinates_round_half_away_from_zero(device, scale):
    """std::round, as torchvision: x.5 goes away from zero (half-to-even would give other windows)."""
    features = make_input((1, 2, 9, 9), torch.float32, "cpu", ties=False)
    rois = torch.tensor(HALF_COORDINATE_ROIS) * (1 / scale)
    _, expected = torchvision_reference(features, rois, (3, 2, 1), scale)
    assert_same(kernels.roi_spp(features.to(device), rois.to(device), (3, 2, 1), scale), expected.detach())
    assert_same(kernels.reference.roi_spp_torch(features, rois, [3, 2, 1], scale), expected.detach())
