"""Fused kernels against the composites they replace, at the shapes of REFERENCE.md section 2.

Each case times forward and forward+backward, float32 and bfloat16, for: ``fused`` (the Triton
kernel), ``eager`` (the PyTorch composite, i.e. :mod:`kernels.reference`; for ``roi_spp`` that is
4x ``torchvision.ops.roi_pool`` + cat, float32 only on CUDA), ``compiled``
(``torch.compile`` of the composite) and, with ``--bench-max-autotune``, ``compiled-max-autotune``.
On a machine without CUDA the fused kernels are not timed (the GPU cases skip, saying so) and only the
CPU reference composite is timed, as ``eager (CPU reference)``. The bytes are
each op's minimal traffic (inputs read once, outputs written once), so GB/s can be set against the
device copy bandwidth measured in the same run.
"""

import itertools
import os
from dataclasses import dataclass

import pytest
import torch
from conftest import bench_device, synchronize

import kernels
from kernels import reference


@dataclass
class Case:
    name: str
    shape: str
    make: object  # (device, dtype, generator) -> dict of tensors and arguments
    fused: object  # inputs -> tensor
    eager: object  # inputs -> tensor
    grad_inputs: tuple  # names of the differentiable inputs


def _spp_inputs(device, dtype, gen):
    return {"x": torch.randn(64, 256, 13, 13, device=device, dtype=dtype, generator=gen)}


def _psp_pool_inputs(device, dtype, gen):
    return {"x": torch.randn(8, 2048, 64, 64, device=device, dtype=dtype, generator=gen)}


def _psp_upsample_inputs(device, dtype, gen):
    return {
        "x": torch.randn(8, 2048, 64, 64, device=device, dtype=dtype, generator=gen),
        "pooled": [torch.randn(8, 512, n, n, device=device, dtype=dtype, generator=gen) for n in (1, 2, 3, 6)],
    }


def _roi_inputs(device, dtype, gen):
    features = torch.randn(1, 256, 38, 50, device=device, dtype=dtype, generator=gen)  # conv5 of 600x800 / 16
    xy = torch.rand(2000, 4, device=device, generator=gen) * torch.tensor([800, 600, 800, 600], device=device)
    boxes = torch.cat([xy[:, :2].minimum(xy[:, 2:]), xy[:, :2].maximum(xy[:, 2:])], 1)
    rois = torch.cat([torch.zeros(2000, 1, device=device), boxes], 1).to(dtype)
    return {"x": features, "rois": rois}


def _sppf_inputs(device, dtype, gen):
    return {"x": torch.randn(32, 512, 20, 20, device=device, dtype=dtype, generator=gen)}


CASES = [
    Case(
        "spp_max",
        "64x256x13x13, levels (6,3,2,1)",
        _spp_inputs,
        lambda i: kernels.spatial_pyramid_pool(i["x"], (6, 3, 2, 1)),
        lambda i: reference.spatial_pyramid_pool(i["x"], [6, 3, 2, 1]),
        ("x",),
    ),
    Case(
        "psp_pool_avg",
        "8x2048x64x64, bins (1,2,3,6)",
        _psp_pool_inputs,
        lambda i: kernels.spatial_pyramid_pool(i["x"], (1, 2, 3, 6), "avg"),
        lambda i: reference.spatial_pyramid_pool(i["x"], [1, 2, 3, 6], "avg"),
        ("x",),
    ),
    Case(
        "psp_upsample_concat",
        "8x2048x64x64 + 4x 8x512xnxn",
        _psp_upsample_inputs,
        lambda i: kernels.upsample_concat(i["x"], i["pooled"], True),
        lambda i: reference.upsample_concat(i["x"], i["pooled"], True),
        ("x", "pooled"),
    ),
    Case(
        "roi_spp",
        "2000 RoIs, 1x256x38x50, levels (6,3,2,1)",
        _roi_inputs,
        lambda i: kernels.roi_spp(i["x"], i["rois"], (6, 3, 2, 1), 1 / 16),
        lambda i: reference.roi_spp(i["x"], i["rois"], [6, 3, 2, 1], 1 / 16),
        ("x",),
    ),
    Case(
        "sppf",
        "32x512x20x20, k=5",
        _sppf_inputs,
        lambda i: kernels.sppf(i["x"], 5),
        lambda i: reference.sppf(i["x"], 5),
        ("x",),
    ),
]


def _nbytes(t) -> int:
    if isinstance(t, (list, tuple)):
        return sum(_nbytes(u) for u in t)
    return t.numel() * t.element_size() if isinstance(t, torch.Tensor) else 0


def _leaves(inputs, names):
    out = []
    for name in names:
        value = inputs[name]
        out += value if isinstance(value, list) else [value]
    return out


def _input_sets(case, device, dtype, differentiable):
    """Enough copies of the inputs to rotate through more than twice the L2 cache."""
    gen = torch.Generator(device=device).manual_seed(0)
    first = case.make(device, dtype, gen)
    l2 = torch.cuda.get_device_properties(0).L2_cache_size if device.type == "cuda" else 0
    copies = 1 + (2 * l2) // max(1, _nbytes(list(first.values())))
    sets = [first] + [case.make(device, dtype, gen) for _ in range(min(copies, 16) - 1)]
    if differentiable:
        for s in sets:
            for t in _leaves(s, case.grad_inputs):
                t.requires_grad_(True)
    return sets


def _impl(case, impl):
    if impl == "fused":
        return case.fused
    if impl == "eager":
        return case.eager
    return torch.compile(case.eager, mode="max-autotune" if impl == "compiled-max-autotune" else None)


IMPLS = ["fused", "eager", "compiled", "compiled-max-autotune"]
#: Why a CPU run has no ``fused`` timings (the skip reason and the summary's note).
NOT_TIMED_ON_CPU = "fused kernels not timed: no CUDA device (the Triton kernels run on CUDA only)"


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("mode", ["forward", "forward+backward"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_kernel_speed(benchmark, request, record, case, dtype, mode, impl):
    device = bench_device()
    if os.environ.get("TRITON_INTERPRET") == "1":
        pytest.skip("timings under TRITON_INTERPRET=1 are meaningless")
    # No GPU: the fused kernels are Triton (CUDA) kernels and are not timed; on the CPU an op runs its PyTorch
    # reference, which is the eager composite: time that once per case, labelled as what it is.
    if device.type != "cuda" and impl == "fused":
        pytest.skip(f"{NOT_TIMED_ON_CPU}: fused needs CUDA")
    if device.type != "cuda" and (impl != "eager" or dtype != torch.float32):
        pytest.skip("GPU case: needs CUDA (on CPU only the eager reference is timed, in float32)")
    if impl == "compiled-max-autotune" and not request.config.getoption("--bench-max-autotune"):
        pytest.skip("enable with --bench-max-autotune")
    if case.name == "roi_spp" and impl != "fused" and dtype != torch.float32:
        pytest.skip("torchvision's CUDA roi_pool has no bfloat16")
    backward = mode == "forward+backward"
    fn = _impl(case, impl)
    sets = _input_sets(case, device, dtype, backward)
    cycle = itertools.cycle(sets)
    grad_out = torch.randn_like(case.eager(sets[0])).detach()

    def run():
        inputs = next(cycle)
        out = fn(inputs)
        if backward:
            torch.autograd.grad(out, _leaves(inputs, case.grad_inputs), grad_out)
        synchronize()

    for _ in range(3):  # compile, autotune and warm caches outside the timing
        run()
    rounds = 50 if device.type == "cuda" else 3
    benchmark.pedantic(run, rounds=rounds, iterations=1, warmup_rounds=2)
    # minimal traffic: read inputs and write outputs once; backward reads grad_out and writes grad_in
    inputs = sets[0]
    out_bytes = grad_out.numel() * grad_out.element_size()
    moved = _nbytes(_leaves(inputs, case.grad_inputs)) + out_bytes
    if backward:
        moved += out_bytes + _nbytes(_leaves(inputs, case.grad_inputs))
    record(
        case=case.name,
        shape=case.shape,
        dtype=str(dtype).replace("torch.", ""),
        mode=mode,
        impl=impl if device.type == "cuda" else "eager (CPU reference)",
        seconds=benchmark.stats.stats.median,
        bytes=moved,
    )
