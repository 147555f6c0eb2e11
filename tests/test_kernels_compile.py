"""Every kernel specialization the four ops launch compiles for Hopper (sm_90) and Ampere (sm_80).

No GPU needed: ``benchmarks.compile_report`` compiles each launch ahead of time with the
signature, specialization, constexprs and launch options the launchers' own plans give a CUDA
launch (see ``kernels._aot``), in a subprocess without ``TRITON_INTERPRET`` (interpreted kernels
cannot be compiled). Any compile error fails, and so does a register spill on sm_90 in a
benchmark case: a benchmark shape in a dtype the benchmarks time (float32, bfloat16). Spills in other
cases are reported by the compile report, not failed here: they change with the Triton release
(benchmarks/COMPILE_REPORT.md lists them).
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import compile_report

ROOT = Path(__file__).resolve().parents[1]
KERNELS = {
    "_spp_triton._cells_kernel",
    "_spp_triton._bins_kernel",
    "_spp_triton._backward_kernel",
    "_upsample_triton._forward_kernel",
    "_upsample_triton._backward_kernel",
    "_roi_triton._forward_kernel",
    "_roi_triton._backward_kernel",
    "_sppf_triton._forward_kernel",
    "_sppf_triton._argmax_kernel",
    "_sppf_triton._gather_kernel",
}


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> list[dict]:
    pytest.importorskip("triton")
    out = tmp_path_factory.mktemp("aot") / "table.json"
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    jobs = str(max(1, min(4, os.cpu_count() or 1)))
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.compile_report", "--jobs", jobs, "--json", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    if not out.exists():
        pytest.fail(f"compile report crashed (exit {proc.returncode}):\n{proc.stderr[-6000:]}")
    return json.loads(out.read_text())


@pytest.mark.parametrize("arch", ["sm_90", "sm_80"])
def test_every_specialization_compiles(table, arch):
    rows = [r for r in table if r["arch"] == arch]
    assert {r["kernel"] for r in rows} == KERNELS
    failed = [f"{r['kernel']} {r['constexprs']} ({r['cases'][0]}):\n{r['error']}" for r in rows if not r["ok"]]
    assert not failed, "\n\n".join(failed)


def test_no_spills_on_sm90_at_benchmark_shapes(table):
    spills = [p for p in compile_report.problems(table) if " spills " in p]
    assert not spills, "\n".join(spills)


def test_benchmark_cases_are_the_dtypes_the_benchmarks_time():
    """The spill check guards what the benchmarks run: their dtypes are compile_report.BENCHMARK_DTYPES."""
    # read, not imported: the benchmark module imports its own conftest, which is not this one
    source = (Path(compile_report.__file__).parent / "test_kernels_bench.py").read_text()
    timed = re.search(r'parametrize\("dtype", \[[^]]*\], ids=\[([^]]*)\]\)', source)
    assert timed, "benchmarks/test_kernels_bench.py no longer parametrizes 'dtype' with ids"
    assert tuple(re.findall(r'"(\w+)"', timed.group(1))) == compile_report.BENCHMARK_DTYPES
    bench_dtypes = {c.dtype for c in compile_report.cases() if c.bench}
    assert bench_dtypes == set(compile_report.BENCHMARK_DTYPES)


def test_cases_cover_every_op_dtype_mode_and_direction():
    seen = {(c.op, c.dtype, c.variant, c.direction) for c in compile_report.cases()}
    variants = {
        "spatial_pyramid_pool": {"max", "avg"},
        "roi_spp": {"max"},
        "sppf": {"k=5"},
        "upsample_concat": {"align_corners=False", "align_corners=True"},
    }
    for op, modes in variants.items():
        for dtype in ("fp32", "fp16", "bf16", "fp64"):
            for mode in modes:
                for direction in ("forward", "backward"):
                    assert (op, dtype, mode, direction) in seen
    bench = {c.op for c in compile_report.cases() if c.bench}
    assert bench == set(variants)


def test_specializations_follow_the_arguments(table):
    """Integer arguments equal to 1 become constants, multiples of 16 and views at an offset show."""
    cells = [r for r in table if r["kernel"] == "_spp_triton._cells_kernel" and r["bench"] and r["dtype"] == "fp32"]
    assert cells and all("==1:sxw" in r["constexprs"] and "%16:C," in r["constexprs"] for r in cells)
    # sppf's backward reads grad[:, 3C:]: at C = 3, H*W = 35 that view is not 16-byte aligned
    gathers = [
        r
        for r in table
        if r["kernel"] == "_sppf_triton._gather_kernel" and any("2x3x7x5" in c and "fp32" in c for c in r["cases"])
    ]
    assert gathers and any("unaligned:gout_ptr" in r["constexprs"] for r in gathers)
