"""Ahead-of-time compile report: every kernel specialization the four ops launch, compiled for CUDA.

    python -m benchmarks.compile_report [--arch 90 80] [--jobs 2] [--markdown FILE] [--json FILE]

needs no GPU (and must run without ``TRITON_INTERPRET=1``). The cases are the benchmark shapes of
REFERENCE section 2 and small odd shapes, in float32, float16, bfloat16 and float64, forward and
backward, max and avg, both ``align_corners``; the benchmark cases are the benchmark shapes in the
dtypes the benchmarks time (float32, bfloat16). Each case's launches come from the launchers' own
``plan_*`` functions on ``meta`` tensors with the GPU tile configuration, so the signatures,
specializations, constexprs and launch options are the ones a CUDA launch uses. Identical
specializations are compiled once. Per specialization it prints registers per thread, spill
stores/loads (bytes), shared memory, num_warps and num_stages; it exits with status 1 if any
specialization fails to compile or one spills on sm_90 in a benchmark case.
"""

import argparse
import json
import multiprocessing
import os
import sys
import time
import traceback
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass

import torch

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16, "fp64": torch.float64}
#: The dtypes the benchmarks time (benchmarks/test_kernels_bench.py): a "benchmark case" is a benchmark
#: shape in one of these. Spills elsewhere (fp16, fp64, odd shapes) are reported, not failures: they
#: vary with the Triton release (e.g. Triton 3.8 spills 4 bytes in the float64 avg SPP cells kernel).
BENCHMARK_DTYPES = ("fp32", "bf16")
ARCHS = (90, 80)


@dataclass(frozen=True)
class Case:
    """One op call: ``op`` with its arguments, described by ``shape``; ``bench`` marks benchmark shapes."""

    op: str
    shape: str
    dtype: str
    variant: str  # mode / align_corners / kernel size
    direction: str  # forward or backward
    bench: bool
    args: tuple

    @property
    def name(self) -> str:
        return f"{self.op}[{self.shape},{self.variant},{self.dtype},{self.direction}]"


def _meta(shape, dtype, layout="contiguous"):
    t = torch.empty(shape, dtype=dtype, device="meta")
    return t.to(memory_format=torch.channels_last) if layout == "channels_last" else t


# (label, x shape, levels, benchmark?, layout)
SPP_SHAPES = [
    ("64x256x13x13 L6321", (64, 256, 13, 13), (6, 3, 2, 1), True, "contiguous"),
    ("8x2048x64x64 L1236", (8, 2048, 64, 64), (1, 2, 3, 6), True, "contiguous"),
    ("2x3x7x5 L6321", (2, 3, 7, 5), (6, 3, 2, 1), False, "contiguous"),  # map smaller than the largest level
    ("2x6x10x64 L6321", (2, 6, 10, 64), (6, 3, 2, 1), False, "contiguous"),  # bins that do not divide
    ("1x3x1x9 L421", (1, 3, 1, 9), (4, 2, 1), False, "contiguous"),  # H = 1
    ("3x5x9x1 L3", (3, 5, 9, 1), (3,), False, "contiguous"),  # W = 1
    ("2x24x13x11 L6321 cl", (2, 24, 13, 11), (6, 3, 2, 1), False, "channels_last"),
]
# (label, x shape, pooled shapes, benchmark?, layout)
UPSAMPLE_SHAPES = [
    ("8x2048x64x64+4x512", (8, 2048, 64, 64), [(8, 512, n, n) for n in (1, 2, 3, 6)], True, "contiguous"),
    ("2x3x7x5+3", (2, 3, 7, 5), [(2, 2, 1, 1), (2, 2, 2, 3), (2, 1, 6, 6)], False, "contiguous"),
    ("1x2x1x9+2", (1, 2, 1, 9), [(1, 3, 1, 1), (1, 3, 2, 2)], False, "contiguous"),  # H = 1, level taller
    ("2x3x5x5+8x8", (2, 3, 5, 5), [(2, 4, 8, 8)], False, "contiguous"),  # downsampling
    ("2x3x5x5+0", (2, 3, 5, 5), [], False, "contiguous"),  # nothing to upsample
    ("2x16x9x7+2 cl", (2, 16, 9, 7), [(2, 8, 2, 2), (2, 8, 3, 3)], False, "channels_last"),
]
# (label, features shape, K, levels, scale, benchmark?)
ROI_SHAPES = [
    ("1x256x38x50 K2000 L6321", (1, 256, 38, 50), 2000, (6, 3, 2, 1), 1 / 16, True),
    ("2x3x7x5 K0", (2, 3, 7, 5), 0, (6, 3, 2, 1), 1.0, False),
    ("2x3x7x5 K1", (2, 3, 7, 5), 1, (6, 3, 2, 1), 1.0, False),
    ("2x5x9x11 K300 L421", (2, 5, 9, 11), 300, (4, 2, 1), 0.5, False),
    ("1x4x1x9 K7 L21", (1, 4, 1, 9), 7, (2, 1), 1.0, False),  # H = 1
]
# (label, x shape, kernel size, benchmark?, layout)
SPPF_SHAPES = [
    ("32x512x20x20 k5", (32, 512, 20, 20), 5, True, "contiguous"),
    ("2x3x7x5 k5", (2, 3, 7, 5), 5, False, "contiguous"),
    ("1x3x1x9 k3", (1, 3, 1, 9), 3, False, "contiguous"),  # H = 1
    ("2x2x5x1 k9", (2, 2, 5, 1), 9, False, "contiguous"),  # W = 1, window larger than the map
    ("2x16x11x13 k5 cl", (2, 16, 11, 13), 5, False, "channels_last"),
]


def cases() -> list[Case]:
    out = []
    for dname in DTYPES:
        timed = dname in BENCHMARK_DTYPES
        for direction in ("forward", "backward"):
            for label, shape, levels, bench, layout in SPP_SHAPES:
                for mode in ("max", "avg"):
                    out.append(
                        Case(
                            "spatial_pyramid_pool",
                            label,
                            dname,
                            mode,
                            direction,
                            bench and timed,
                            (shape, levels, layout),
                        )
                    )
            for label, shape, pooled, bench, layout in UPSAMPLE_SHAPES:
                for align in (False, True):
                    out.append(
                        Case(
                            "upsample_concat",
                            label,
                            dname,
                            f"align_corners={align}",
                            direction,
                            bench and timed,
                            (shape, pooled, align, layout),
                        )
                    )
            for label, shape, k, levels, scale, bench in ROI_SHAPES:
                out.append(Case("roi_spp", label, dname, "max", direction, bench and timed, (shape, k, levels, scale)))
            for label, shape, k, bench, layout in SPPF_SHAPES:
                out.append(Case("sppf", label, dname, f"k={k}", direction, bench and timed, (shape, k, layout)))
    return out


def launches(case: Case):
    """The launches a CUDA call of ``case`` makes, from the launchers' own plans (GPU tiles)."""
    from kernels import _roi_triton, _spp_triton, _sppf_triton, _upsample_triton, reference

    dtype, backward = DTYPES[case.dtype], case.direction == "backward"
    if case.op == "spatial_pyramid_pool":
        shape, levels, layout = case.args
        x = _meta(shape, dtype, layout)
        (out, argmax), fwd = _spp_triton.plan_forward(x, list(levels), case.variant, True)
        if not backward:
            return fwd
        return _spp_triton.plan_backward(torch.empty_like(out), x, argmax, list(levels), case.variant, True)[1]
    if case.op == "upsample_concat":
        shape, pooled_shapes, align, layout = case.args
        x = _meta(shape, dtype, layout)
        pooled = [_meta(s, dtype) for s in pooled_shapes]
        out, fwd = _upsample_triton.plan_forward(x, pooled, align, True)
        if not backward:
            return fwd
        if not pooled:  # autograd calls no backward op without pooled maps
            return []
        return _upsample_triton.plan_backward(torch.empty_like(out), pooled, shape[1], align, True)[1]
    if case.op == "roi_spp":
        shape, k, levels, scale = case.args
        features = _meta(shape, dtype)
        rois = _meta((k, 5), reference.coordinate_dtype(dtype))  # the dtype roi_spp converts boxes to
        (out, argmax), fwd = _roi_triton.plan_forward(features, rois, list(levels), scale, True)
        if not backward:
            return fwd
        return _roi_triton.plan_backward(torch.empty_like(out), features, rois, argmax, list(levels), True)[1]
    if case.op == "sppf":
        shape, k, layout = case.args
        x = _meta(shape, dtype, layout)
        out, fwd = _sppf_triton.plan_forward(x, k, True)
        if not backward:
            return fwd
        return _sppf_triton.plan_backward(torch.empty_like(out), x, out, k, True)[1]
    raise ValueError(f"unknown op {case.op!r}")


_UNITS: list = []  # (launch, capability) per distinct specialization; read by forked workers


def _compile_unit(i: int) -> dict:
    from kernels import _aot

    launch, capability = _UNITS[i]
    start = time.perf_counter()
    try:
        _, resources = _aot.compile_launch(launch, capability)
        return {"ok": True, **asdict(resources), "seconds": time.perf_counter() - start}
    except Exception as e:  # noqa: BLE001  (a compile error is a result to report)
        return {
            "ok": False,
            "error": f"{type(e).__name__}: {e}"[-4000:],
            "trace": traceback.format_exc()[-4000:],
            "seconds": time.perf_counter() - start,
        }


def run(archs=ARCHS, jobs: int = 2, only: str | None = None) -> list[dict]:
    """Compile every distinct specialization; one row per specialization (with the cases using it)."""
    from kernels import _aot

    rows: dict[str, dict] = {}
    _UNITS.clear()
    for case in cases():
        if only and only not in case.name:
            continue
        for launch in launches(case):
            for cap in archs:
                spec, _, _ = _aot.specialize(launch, cap)
                row = rows.get(spec.key)
                if row is None:
                    row = rows[spec.key] = {
                        "unit": len(_UNITS),
                        "kernel": spec.kernel,
                        "arch": f"sm_{cap}",
                        "dtype": case.dtype,
                        "constexprs": _aot.describe(launch, spec),
                        "num_warps": spec.num_warps,
                        "num_stages": spec.num_stages,
                        "bench": False,
                        "cases": [],
                    }
                    _UNITS.append((launch, cap))
                row["bench"] = row["bench"] or case.bench
                row["cases"].append(case.name)
    ctx = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
        results = list(pool.map(_compile_unit, range(len(_UNITS))))
    table = []
    for row in rows.values():
        row.update(results[row.pop("unit")])
        table.append(row)
    return table


def problems(table: list[dict]) -> list[str]:
    """Compile failures, and spills on sm_90 in benchmark cases (benchmark shapes in :data:`BENCHMARK_DTYPES`)."""
    out = [
        f"{r['kernel']} {r['arch']} {r['constexprs']} failed to compile ({r['cases'][0]}): {r['error']}"
        for r in table
        if not r["ok"]
    ]
    out += [
        f"{r['kernel']} {r['arch']} {r['constexprs']} spills {r['spill_stores']}/{r['spill_loads']} bytes "
        f"({r['cases'][0]})"
        for r in table
        if r["ok"] and r["arch"] == "sm_90" and r["bench"] and (r["spill_stores"] or r["spill_loads"])
    ]
    return out


def markdown(table: list[dict]) -> str:
    lines = [
        "| arch | kernel | dtype | specialization | bench | warps | stages | status | regs | spill st/ld (B) "
        "| smem (B) | cases |",
        "|" + "---|" * 12,
    ]
    for r in sorted(table, key=lambda r: (r["arch"], r["kernel"], not r["bench"], r["dtype"], r["constexprs"])):
        status = "ok" if r["ok"] else "FAILED"
        res = f"{r['registers']} | {r['spill_stores']}/{r['spill_loads']} | {r['shared']}" if r["ok"] else "- | - | -"
        lines.append(
            f"| {r['arch']} | {r['kernel']} | {r['dtype']} | {r['constexprs']} | "
            f"{'yes' if r['bench'] else ''} | {r['num_warps']} | {r['num_stages']} | {status} | {res} | "
            f"{len(r['cases'])} |"
        )
    return "\n".join(lines)


def summary(table: list[dict]) -> str:
    lines = []
    for arch in sorted({r["arch"] for r in table}, reverse=True):
        rows = [r for r in table if r["arch"] == arch]
        ok = [r for r in rows if r["ok"]]
        spill = [r for r in ok if r["spill_stores"] or r["spill_loads"]]
        bench_spill = [r for r in spill if r["bench"]]
        lines.append(
            f"{arch}: {len(rows)} specializations, {len(ok)} compiled, {len(rows) - len(ok)} failed, "
            f"{len(spill)} spill ({len(bench_spill)} at benchmark shapes), "
            f"max registers {max((r['registers'] for r in ok), default=0)}"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", type=int, nargs="+", default=list(ARCHS), help="compute capabilities (90 80)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="parallel compiler processes")
    parser.add_argument("--only", default=None, help="only cases whose name contains this text")
    parser.add_argument("--markdown", default=None, help="also write the table to this Markdown file")
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file")
    args = parser.parse_args(argv)
    if os.environ.get("TRITON_INTERPRET", "0") == "1":
        parser.error("run without TRITON_INTERPRET=1: the kernels must be compiled, not interpreted")
    start = time.perf_counter()
    table = run(tuple(args.arch), args.jobs, args.only)
    import triton

    head = (
        f"Triton {triton.__version__}, torch {torch.__version__}; {len(table)} specializations "
        f"compiled in {time.perf_counter() - start:.0f} s with {args.jobs} processes"
    )
    text = "\n\n".join([head, summary(table), markdown(table)])
    print(text)
    for p in problems(table):
        print("PROBLEM:", p, file=sys.stderr)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text + "\n")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(table, f, indent=1)
    return 1 if problems(table) else 0


if __name__ == "__main__":
    sys.exit(main())
