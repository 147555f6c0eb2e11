"""torchvision's own ``RoIPool`` test cases (pytorch/vision ``test/test_ops.py``: ``RoIOpTester`` and
``TestRoiPool``), rewritten for ``kernels.roi_spp`` with ONE level (``levels=(n,)``: an n x n RoI pool),
on the reference path and on the Triton path (interpreted on CPU under ``TRITON_INTERPRET=1``).

Deliberate differences, each stated where it applies:
- square bins only (a level is n x n; torchvision also pools h x w);
- the output is flattened, (K, C * n * n), reshaped here to torchvision's (K, C, n, n);
- bad box shapes raise ``ValueError`` naming the argument where torchvision's ``torch._assert`` raises
  ``AssertionError``;
- the forward is compared bitwise (a max selects an input value) where torchvision allows 1e-5 / 4e-3;
- gradcheck runs in fast mode (the interpreter evaluates every perturbation) with 3 seeds (torchvision 10);
- torchvision's autocast case is CUDA-only; ours runs CPU bfloat16 autocast (CUDA cannot run here);
- MPS cases have no counterpart.
"""

import math

import pytest
import torch
from conftest import kernel_device
from torch import Tensor, nn
from torch.autograd import gradcheck
from torchvision.models.feature_extraction import get_graph_node_names

import kernels
import kernels._runtime as runtime


@pytest.fixture(params=["reference", "triton"])
def device(request, monkeypatch) -> torch.device:
    """The device of the path under test: the CPU reference, or wherever the Triton kernels run."""
    if request.param == "reference":
        monkeypatch.setattr(runtime, "INTERPRET", False)
        return torch.device("cpu")
    dev = kernel_device()
    if dev is None:
        pytest.skip("Triton kernels need a CUDA GPU or TRITON_INTERPRET=1")
    return dev


def roi_pool(x: Tensor, rois, n: int, spatial_scale: float = 1.0) -> Tensor:
    """One level of roi_spp in torchvision's (K, C, n, n) layout."""
    out = kernels.roi_spp(x, rois, (n,), spatial_scale)
    return out.reshape(out.shape[0], x.shape[1], n, n)


def expected_roi_pool(x: Tensor, rois: Tensor, n: int, spatial_scale: float = 1.0) -> Tensor:
    """Plain-Python RoI max pooling in float64 with torchvision's rules (rounded corners, inclusive end,
    bins of size / n from the unclipped RoI, clipped to the map, empty bins 0)."""
    data = x.detach().double().cpu()
    height, width = data.shape[-2:]
    out = torch.zeros(rois.shape[0], data.shape[1], n, n, dtype=torch.float64)
    for k, (batch, *corners) in enumerate(rois.double().cpu().tolist()):
        left, top, right, bottom = (math.floor(c * spatial_scale + 0.5) for c in corners)  # corners >= 0 here
        roi_h, roi_w = max(bottom - top + 1, 1), max(right - left + 1, 1)
        for i in range(n):
            r0 = min(max(top + math.floor(i * roi_h / n), 0), height)
            r1 = min(max(top + math.ceil((i + 1) * roi_h / n), 0), height)
            for j in range(n):
                c0 = min(max(left + math.floor(j * roi_w / n), 0), width)
                c1 = min(max(left + math.ceil((j + 1) * roi_w / n), 0), width)
                if r1 > r0 and c1 > c0:
                    out[k, :, i, j] = data[int(batch), :, r0:r1, c0:c1].amax(dim=(-2, -1))
    return out


FORWARD_ROIS = [[0, 0, 0, 9, 9], [0, 0, 5, 4, 9], [0, 5, 5, 9, 9], [1, 0, 0, 9, 9]]  # (batch, x1, y1, x2, y2)


def _check_forward(device, contiguous: bool, x_dtype, rois_dtype=None):
    rois_dtype = x_dtype if rois_dtype is None else rois_dtype
    pool = 5
    x = torch.rand(2, 2 * pool**2, 10, 10, dtype=x_dtype, device=device)
    if not contiguous:
        x = x.permute(0, 1, 3, 2)
    rois = torch.tensor(FORWARD_ROIS, dtype=rois_dtype, device=device)
    y = roi_pool(x, rois, pool)
    assert y.dtype == x.dtype
    torch.testing.assert_close(y.cpu(), expected_roi_pool(x, rois, pool).to(x_dtype), rtol=0, atol=0)


@pytest.mark.parametrize("x_dtype", [torch.float16, torch.float32, torch.float64, torch.bfloat16], ids=str)
@pytest.mark.parametrize("contiguous", [True, False])
def test_forward(device, contiguous, x_dtype):
    """torchvision: float16/32/64; bfloat16 is ours (torchvision's roi_pool has none)."""
    _check_forward(device, contiguous, x_dtype)


class _LayerWrapper(nn.Module):
    def __init__(self, layer: nn.Module):
        super().__init__()
        self.layer = layer
        self.n_inputs = 2

    def forward(self, a, b):
        return self.layer(a, b)


def test_is_leaf_node():
    module = _LayerWrapper(kernels.RoISPP((5,)))
    train_names, eval_names = get_graph_node_names(module)
    assert len(train_names) == len(eval_names) == 1 + module.n_inputs


def test_torch_fx_trace(device):
    module = kernels.RoISPP((5,), 1.0).to(device)
    traced = torch.fx.symbolic_trace(module)
    x = torch.rand(2, 2 * 5**2, 5, 5, device=device)
    rois = torch.tensor(FORWARD_ROIS, dtype=torch.float32, device=device)  # partly outside the 5 x 5 map
    expected = module(x, rois)
    out = traced(x, rois)
    assert expected.dtype == out.dtype == x.dtype
    torch.testing.assert_close(out, expected, rtol=0, atol=0)


@pytest.mark.parametrize("contiguous", [True, False])
@pytest.mark.parametrize("seed", range(3))
def test_backward(device, seed, contiguous):
    torch.manual_seed(seed)
    pool = 2
    x = torch.rand(1, 2 * pool**2, 5, 5, dtype=torch.float64, device=device, requires_grad=True)
    if not contiguous:
        x = x.permute(0, 1, 3, 2)
    rois = torch.tensor([[0, 0, 0, 4, 4], [0, 0, 2, 3, 4], [0, 2, 2, 4, 4]], dtype=torch.float64, device=device)
    gradcheck(lambda z: kernels.roi_spp(z, rois, (pool,)), (x,), fast_mode=True)
    scripted = torch.jit.script(kernels.roi_spp)  # scripted: the reference composite
    gradcheck(lambda z: scripted(z, rois, [pool], 1.0), (x,), fast_mode=True)


@pytest.mark.parametrize("rois_dtype", [torch.float32, torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("x_dtype", [torch.float32, torch.float16], ids=str)
def test_autocast(device, x_dtype, rois_dtype):
    """torchvision: CUDA autocast (float16), float/half features x float/half boxes. Ours: CPU bfloat16
    autocast; the features keep their dtype, boxes of another dtype are converted to the features' one."""
    if device.type != "cpu":
        pytest.skip("CPU autocast case")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        _check_forward(device, contiguous=False, x_dtype=x_dtype, rois_dtype=rois_dtype)


def test_boxes_shape():
    """torchvision raises AssertionError; we raise ValueError naming the argument (deliberate)."""
    a = torch.linspace(1, 8 * 8, 8 * 8).reshape(1, 1, 8, 8)
    with pytest.raises(ValueError, match=r"boxes must be a \(K, 5\) tensor"):
        roi_pool(a, torch.tensor([[0, 0, 3, 3]], dtype=a.dtype), 2)
    with pytest.raises(ValueError, match=r"boxes\[0\] must have shape \(L, 4\)"):
        roi_pool(a, [torch.tensor([[0, 0, 3]], dtype=a.dtype)], 2)


class _PoolWrapper(nn.Module):
    def __init__(self, pool: nn.Module):
        super().__init__()
        self.pool = pool

    def forward(self, imgs: Tensor, boxes: list[Tensor]) -> Tensor:
        return self.pool(imgs, boxes)


def test_jit_boxes_list():
    model = _PoolWrapper(kernels.RoISPP((3,), spatial_scale=1.0))
    x = torch.rand(2, 1, 10, 10)
    roi = torch.tensor(FORWARD_ROIS, dtype=torch.float).t()  # (5, 4): five boxes per image
    rois = [roi, roi]
    y = torch.jit.script(model)(x, rois)
    assert y.reshape(-1, 1, 3, 3).shape == (10, 1, 3, 3)
    torch.testing.assert_close(y, model(x, rois), rtol=0, atol=0)
