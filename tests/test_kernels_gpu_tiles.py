"""Every kernel with the tile configuration of a CUDA launch, run for results under the interpreter.

The interpreter tests use larger tiles than a GPU launch (the interpreter pays per program); here
``force_gpu_tiles`` makes the launchers pick the GPU's block sizes, at small shapes chosen so that
the GPU tiling really differs (several channel blocks, pixel tiles, bin groups), and each op is
checked against its reference, forward and backward, with the same contracts as the op's own tests.
"""

import pytest
import test_kernels_roi
import test_kernels_spp
import test_kernels_sppf
import test_kernels_upsample
import torch
from _helpers import make_input

from kernels import _roi_triton, _runtime, _spp_triton, _sppf_triton, _upsample_triton

# the tiling does not depend on the dtype; bfloat16 has its own rounding paths in the kernels
DTYPES = [torch.float32, torch.bfloat16]


@pytest.fixture
def gpu_tiles(device):
    with _runtime.force_gpu_tiles():
        assert _runtime.gpu_tiles()
        yield device


def _tiles(launches):
    return [(launch.name, launch.grid, launch.constexprs) for launch in launches]


def _differ(plan, *args):
    """The GPU plan and the interpreter's plan of the same call launch different tilings."""
    gpu, interp = plan(*args, True)[1], plan(*args, False)[1]
    return _tiles(gpu) != _tiles(interp) and [t[:1] for t in _tiles(gpu)] == [t[:1] for t in _tiles(interp)]


def test_switch_is_scoped_and_off_by_default_under_the_interpreter(device):
    if not _runtime.INTERPRET:
        pytest.skip("on a GPU the GPU tiles are always used")
    assert not _runtime.gpu_tiles()
    with _runtime.force_gpu_tiles(), _runtime.force_gpu_tiles():
        assert _runtime.gpu_tiles()
    assert not _runtime.gpu_tiles()


@pytest.mark.parametrize("dtype", [*DTYPES, torch.float64])  # float64's backward has its own tiling
@pytest.mark.parametrize("mode", ["max", "avg"])
def test_spatial_pyramid_pool(gpu_tiles, mode, dtype):
    x = make_input((1, 20, 13, 11), dtype, gpu_tiles, ties=mode == "max")
    argmax = torch.empty((1, 20 * 50), dtype=torch.int32)
    assert _differ(_spp_triton.plan_forward, x, [6, 3, 2, 1], mode)
    assert _differ(
        lambda *a: _spp_triton.plan_backward(torch.empty(1, 20 * 50, dtype=dtype), *a), x, argmax, [6, 3, 2, 1], mode
    )
    test_kernels_spp._check(x, (6, 3, 2, 1), mode, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("align_corners", [False, True])
def test_upsample_concat(gpu_tiles, align_corners, dtype):
    x = make_input((1, 6, 13, 11), dtype, gpu_tiles, ties=False)
    pooled = [make_input((1, c, n, n + 1), dtype, gpu_tiles, ties=False) for c, n in ((20, 1), (6, 3), (20, 6))]
    assert _differ(_upsample_triton.plan_forward, x, pooled, align_corners)
    grad = torch.empty((1, 52, 13, 11), dtype=dtype)
    assert _differ(lambda *a: _upsample_triton.plan_backward(grad, *a), pooled, 6, align_corners)
    test_kernels_upsample._check(x, pooled, align_corners, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_roi_spp(gpu_tiles, dtype):
    features = make_input((2, 6, 9, 11), dtype, gpu_tiles, ties=True)
    rois = test_kernels_roi.random_rois(6, 2, 9, 11, 0.5, dtype, gpu_tiles)
    assert _differ(_roi_triton.plan_forward, features, rois, [6, 3, 2, 1], 0.5)
    test_kernels_roi._check(features, rois, (6, 3, 2, 1), 0.5, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sppf(gpu_tiles, dtype):
    x = make_input((1, 17, 9, 7), dtype, gpu_tiles, ties=True)
    out = torch.empty((1, 68, 9, 7), dtype=dtype)
    assert _differ(_sppf_triton.plan_forward, x, 5)
    assert _differ(lambda *a: _sppf_triton.plan_backward(torch.empty_like(out), *a), x, out, 5)
    test_kernels_sppf._check(x, 5)
