"""One prepared call measures everything on a GPU; ``--dry-run`` rehearses the same code on the CPU.

    python -m benchmarks.gpu_run --out DIR [--budget-s 420] [--dry-run] [--steps a,b] [--step-budget NAME=S]

Steps, in order of value, each with its own time budget (``--step-budget`` overrides one; what no longer
fits is skipped and reported as skipped, never as passed):

1. ``correctness``: a chosen subset of the kernel tests (every op forward and backward, fp32/fp64/fp16/bf16,
   channels-last and strided layouts, odd shapes, ``opcheck``, ``torch.compile(fullgraph=True)``) in a pytest
   subprocess with a timeout, then the race check (identical forward results over repeated runs on the same
   random inputs, backward within atomic-order rounding).
2. ``memcheck``: ``compute-sanitizer --tool memcheck`` on one small launch of each kernel, forward and backward
   (this module's ``--launch-each-kernel`` mode: fp32, bf16 and channels-last; every allocation exact, with
   ``PYTORCH_NO_CUDA_MEMORY_CACHING=1``).
3. ``benchmarks``: ``benchmarks/test_kernels_bench.py``'s cases (REFERENCE.md section 2's shapes): fused vs
   eager composite (4x ``roi_pool`` + cat for ``roi_spp``, YOLOv5's three pools + cat for SPPF) vs
   ``torch.compile`` default, then max-autotune (without CUDA graphs) while time is left; forward and
   forward+backward, fp32 then bf16; device copy bandwidth in the same run; medians of
   ``triton.testing.do_bench`` (CUDA events, L2 flushed before every repetition, inputs rotated as the suite
   does).
4. ``end_to_end``: ``pspnet_resnet50`` and ``spp_detector_zf5`` inference images/s, fp32 and bf16 autocast,
   kernels vs reference path (``zoo.kernel_path``); SPP-net training images/s, multi-size (224 -/+ 32 in turn:
   the same mean area) vs fixed 224.
5. ``retrain``: with the time left, the ``python -m zoo train`` commands of ``recipes/train_shipped.sh``
   (shipped entries first), their weights written as one zip under 16 MiB.

It writes at most 8 files to DIR: ``RESULTS.md``, ``results.json`` (every number of every table),
``ops_vs_floor.png``, ``run.log``, ``pytest.log``, ``memcheck.log``, ``retrain.log`` and, when a run finished,
``retrained_weights.zip``. RESULTS.md and results.json are rewritten after every step, so a run killed from
outside still leaves the steps done so far. Targets are checked and reported, not asserted. The exit status
is 1 only when a step raised (a bug of this script), else 0.

``--dry-run``: the same code on the CPU with a 60 s budget: the in-process steps run the ops' PyTorch
reference path (the kernels' CPU dispatch) at tiny shapes and ``torch.compile(backend="aot_eager")`` (Inductor's
CPU compiles alone would take the minute); the subprocess steps (pytest, the launch snippet) run the Triton
kernels under ``TRITON_INTERPRET=1``; compute-sanitizer is absent, so memcheck is reported skipped after the
launch snippet ran without it; retraining runs the recipe's commands cut to one epoch of 8 items.

Dry-run stopwatch (``python -m benchmarks.gpu_run --dry-run --out DIR``, this repository's 2-core CPU shared
with other jobs, 2026-12-01; wall time of the whole process, then each step's seconds):

- quiet machine (load ~2): 44.5 s. Start-up 1.0 (the kernels were then imported inside the first step, ~2 s),
  correctness 7.2 (a pytest subprocess of 4 tests, then the race check), memcheck 8.2 (skipped: no
  compute-sanitizer; the launch snippet ran under the interpreter), benchmarks 3.2 (all 70 timings), end_to_end
  2.6, retrain 20.7 (all 5 recipe runs cut to 8 items; 3 fit the 16 MiB zip).
- loaded machine (load ~9, the final code): 56.4 s. Start-up 7.5, correctness 17.2 (pytest stopped at its share
  after its 4 tests passed), memcheck 13.1 (the snippet stopped at its share after 4 of 5 launches), benchmarks
  10.0 (57 of 70 timings, the rest reported not timed), end_to_end 3.7 (2 of 10 items reported not measured),
  retrain skipped (no time left).
- Each step stops at its share and the total keeps 8 s for writing the files and Python's exit (4 s measured
  under load ~8), so the process ends inside 60 s under load too; what did not fit is reported, never passed.

GPU time estimate (one H200, the default ``--budget-s 420``), with the reasoning:

- start-up: Python, torch, triton, zoo imports and the CUDA context: ~10 s (inside the total).
- 1 correctness, share 110 s: pytest collection ~5 s; the subset runs a few hundred test cases whose cost is
  Triton compiling each new specialization (~0.5-1.5 s each, several dozen: 4 dtypes x layouts x ops x
  forward/backward) plus Inductor compiles for the fullgraph test (~10 s); the launches are microseconds.
  Estimate 60-100 s; the timeout stops it at the share (the tests are ordered most valuable first). The race
  check: 5 ops x 2 dtypes x ~30 launches at the benchmark shapes, kernels compiled by then: ~5-10 s.
- 2 memcheck, share 60 s: compute-sanitizer's start and torch's CUDA init under it ~15 s; 5 ops forward and
  backward in 3 variants (fp32, bf16, channels-last) launched once each on tiny tensors, mostly compiled in step
  1's cache (~1 s per new specialization); memcheck slows small launches ~100x, still milliseconds. Estimate
  25-45 s.
- 3 benchmarks, share 130 s: copy bandwidth ~1 s; 5 cases x 2 dtypes x 2 passes x 3 implementations = 60
  timings at ~0.2 s each (do_bench: 25 ms warm-up + 100 ms of repetitions, plus 3 untimed calls) = ~12 s; the
  Inductor compiles of the composites, 20 graphs at 2-5 s = 40-100 s; max-autotune (~30 s a graph) only with
  what is left, fp32 only.
- 4 end_to_end, share 60 s: builds (ResNet-50 PSPNet ~2 s, ZF-5 detector ~1 s), cuDNN autotuning per shape;
  PSPNet-50 at 512x512 is ~0.36 TFLOP an image, ~2.9 TFLOP a batch of 8: ~15-30 ms with TF32 convolutions
  (cuDNN's default), ~5-10 ms in bf16; 8 configurations x (2 warm-up + up to 10 timed) batches, capped at 3 s
  each, plus 2 x 20 SPP-net training steps: estimate 20-40 s.
- 5 retrain, the rest (~60-100 s when the steps above use less than their shares; all unused time flows here):
  each recipe command synthesizes its data on the CPU inside the training process (no workers), which likely
  bounds it on the GPU machine too: on this CPU the recipe took tens of minutes per model, so expect the first
  one or two shipped entries. A second call ``--steps retrain --retrain NAME,...`` retrains the rest if the
  lease has time left.
- Total 420 s + ~10 s: one device command with ``timeout_s`` 540 leaves ~5 minutes of the 15-minute lease for
  the machine's start (1-2 minutes), the transfers and a short second call.
"""

from __future__ import annotations

import time

T_START = time.perf_counter()  # the stopwatch of the whole run starts at import

import argparse  # noqa: E402
import contextlib  # noqa: E402
import dataclasses  # noqa: E402
import datetime  # noqa: E402
import importlib  # noqa: E402
import importlib.metadata  # noqa: E402
import io  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import shlex  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import traceback  # noqa: E402
import zipfile  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
STEPS = ("correctness", "memcheck", "benchmarks", "end_to_end", "retrain")
STEP_TITLES = {
    "correctness": "1. Correctness on CUDA",
    "memcheck": "2. compute-sanitizer memcheck",
    "benchmarks": "3. Kernel benchmarks",
    "end_to_end": "4. End to end",
    "retrain": "5. Retrained weights",
}
SECTIONS = ("Run", "Steps", "Targets", *STEP_TITLES.values(), "Files")
FILES = ("RESULTS.md", "results.json", "ops_vs_floor.png", "run.log", "pytest.log", "memcheck.log", "retrain.log")
WEIGHTS_ZIP = "retrained_weights.zip"
STEP_LOGS = {"correctness": "pytest.log", "memcheck": "memcheck.log", "retrain": "retrain.log"}
ZIP_LIMIT = 16 * 2**20 - 64 * 2**10  # under 16 MiB, with room to spare
LOG_LIMIT = 4 * 2**20
MIB = 2**20

# The kernel tests that matter for the compiled kernels, most valuable first (pytest keeps this order).
GPU_TESTS = [
    "tests/test_kernels_api.py::test_torch_compile_fullgraph_forward_backward",
    "tests/test_kernels_api.py::test_opcheck",
    "tests/test_kernels_api.py::test_kernel_path_matches_reference_path",
    "tests/test_kernels_api.py::test_out_of_range_batch_index_checked_on_kernel_path",
    "tests/test_kernels_spp.py",
    "tests/test_kernels_sppf.py",
    "tests/test_kernels_roi.py",
    "tests/test_kernels_upsample.py",
    "tests/test_determinism.py::test_deterministic_ops_run_and_repeat_bitwise_without_any_alert",
    "tests/test_determinism.py::test_roi_spp_triton_backward_raises_the_standard_error",
]
# One quick test per op under the Triton interpreter (the full subset takes many minutes on a CPU).
DRY_TESTS = [
    "tests/test_kernels_spp.py::test_gradcheck_float64",
    "tests/test_kernels_upsample.py::test_output_follows_x_memory_format",
    "tests/test_kernels_roi.py::test_list_of_boxes_and_empty",
    "tests/test_kernels_sppf.py::test_output_follows_x_memory_format",
]


# --------------------------------------------------------------------------- configuration
def _tiny_cases():
    """Tiny inputs for the dry run, keyed by the suite's case names (same structure as its ``make``)."""

    def spp(device, dtype, gen):
        return {"x": torch.randn(2, 8, 13, 13, device=device, dtype=dtype, generator=gen)}

    def psp(device, dtype, gen):
        return {"x": torch.randn(1, 16, 16, 16, device=device, dtype=dtype, generator=gen)}

    def upsample(device, dtype, gen):
        return {
            "x": torch.randn(1, 16, 16, 16, device=device, dtype=dtype, generator=gen),
            "pooled": [torch.randn(1, 4, n, n, device=device, dtype=dtype, generator=gen) for n in (1, 2, 3, 6)],
        }

    def roi(device, dtype, gen):
        features = torch.randn(1, 8, 10, 12, device=device, dtype=dtype, generator=gen)
        xy = torch.rand(16, 4, device=device, generator=gen) * torch.tensor([192, 160, 192, 160], device=device)
        boxes = torch.cat([xy[:, :2].minimum(xy[:, 2:]), xy[:, :2].maximum(xy[:, 2:])], 1)
        return {"x": features, "rois": torch.cat([torch.zeros(16, 1, device=device), boxes], 1).to(dtype)}

    def sppf(device, dtype, gen):
        return {"x": torch.randn(2, 8, 10, 10, device=device, dtype=dtype, generator=gen)}

    return {
        "spp_max": (spp, "2x8x13x13, levels (6,3,2,1)"),
        "psp_pool_avg": (psp, "1x16x16x16, bins (1,2,3,6)"),
        "psp_upsample_concat": (upsample, "1x16x16x16 + 4x 1x4xnxn"),
        "roi_spp": (roi, "16 RoIs, 1x8x10x12, levels (6,3,2,1)"),
        "sppf": (sppf, "2x8x10x10, k=5"),
    }


@dataclasses.dataclass
class Config:
    dry_run: bool
    device: torch.device
    budget_s: float
    shares: dict  # planned seconds per step; retrain gets all that is left
    reserve_s: float  # kept back at the end for writing the files
    min_step_s: float  # a step given less is skipped
    tests: list
    test_env: dict
    race_forward_runs: int
    race_backward_runs: int
    compile_backend: str | None  # None: Inductor
    warmup_ms: float  # do_bench on CUDA
    rep_ms: float
    cpu_reps: int  # timed repetitions on the CPU
    copy_numel: int
    item_s: dict  # estimated seconds per benchmark timing, by implementation kind
    psp_input: tuple
    det_input: tuple  # (images, 3, H, W)
    det_kwargs: dict
    infer_iters: int
    infer_seconds: float
    train_kwargs: dict
    train_batch: int
    train_size: int
    train_delta: int
    train_steps: int
    retrain_overrides: dict
    retrain_min_s: float
    memcheck_min_s: float
    retrain: list | None = None  # run names (--retrain); None: all


def make_config(dry_run: bool, budget_s: float | None) -> Config:
    if dry_run:
        budget = 60.0 if budget_s is None else budget_s
        scale = budget / 60.0
        return Config(
            dry_run=True, device=torch.device("cpu"), budget_s=budget,
            shares={"correctness": 20 * scale, "memcheck": 13 * scale, "benchmarks": 10 * scale,
                    "end_to_end": 8 * scale, "retrain": math.inf},
            reserve_s=8.0, min_step_s=1.0, tests=DRY_TESTS,
            test_env={"TRITON_INTERPRET": "1", "SPP_HYPOTHESIS_EXAMPLES": "2", "OMP_NUM_THREADS": "1"},
            race_forward_runs=3, race_backward_runs=2, compile_backend="aot_eager", warmup_ms=0, rep_ms=0,
            cpu_reps=3, copy_numel=1 << 22, item_s={"fused": 0.05, "eager": 0.05, "compiled": 0.3},
            psp_input=(1, 3, 40, 40), det_input=(1, 3, 64, 80),
            det_kwargs={"min_size": 64, "max_size": 96, "rpn_pre_nms_top_n_test": 100, "rpn_post_nms_top_n_test": 20},
            infer_iters=1, infer_seconds=0.5, train_kwargs={"width": 0.25, "representation_size": 256},
            train_batch=4, train_size=64, train_delta=8, train_steps=3,
            retrain_overrides={"--epochs": "1", "--limit": "8", "--batch-size": "4", "--val-size": "0"},
            retrain_min_s=4.0, memcheck_min_s=4.0,
        )  # fmt: skip
    budget = 420.0 if budget_s is None else budget_s
    scale = budget / 420.0
    return Config(
        dry_run=False, device=torch.device("cuda"), budget_s=budget,
        shares={"correctness": 110 * scale, "memcheck": 60 * scale, "benchmarks": 130 * scale,
                "end_to_end": 60 * scale, "retrain": math.inf},
        reserve_s=10.0, min_step_s=5.0, tests=GPU_TESTS, test_env={},
        race_forward_runs=20, race_backward_runs=10, compile_backend=None, warmup_ms=25, rep_ms=100,
        cpu_reps=5, copy_numel=1 << 28, item_s={"fused": 0.5, "eager": 0.5, "compiled": 6.0},
        psp_input=(8, 3, 512, 512), det_input=(4, 3, 600, 800), det_kwargs={},
        infer_iters=10, infer_seconds=3.0, train_kwargs={}, train_batch=64, train_size=224, train_delta=32,
        train_steps=20, retrain_overrides={}, retrain_min_s=20.0, memcheck_min_s=15.0,
    )  # fmt: skip


# --------------------------------------------------------------------------- small utilities
def now() -> float:
    return time.perf_counter()


class Deadline:
    def __init__(self, seconds: float):
        self.end = now() + max(0.0, seconds)

    def left(self) -> float:
        return self.end - now()


LOG_LINES: list[str] = []
_LOG_FILE = None
_DRY_RUN = False


def log(message: str) -> None:
    line = f"[{now() - T_START:7.1f}s] {message}"
    print(line, flush=True)
    LOG_LINES.append(line)
    if _LOG_FILE is not None:
        _LOG_FILE.write(line + "\n")
        _LOG_FILE.flush()


def clean_number(v):
    """Numbers as JSON and the tables hold them: non-finite floats become None ("-")."""
    if isinstance(v, bool) or v is None or isinstance(v, (int, str)):
        return v
    v = float(v)
    return v if math.isfinite(v) else None


def fmt(v) -> str:
    """A table cell: None "-", bools yes/no, ints exact, floats to 4 significant digits."""
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v).replace("|", "/").replace("\n", " ")


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def write_capped(path: Path, text: str) -> None:
    data = text.encode("utf-8", "replace")
    if len(data) > LOG_LIMIT:
        half = LOG_LIMIT // 2
        data = data[:half] + b"\n\n[... cut to keep the file under 4 MiB ...]\n\n" + data[-half:]
    path.write_bytes(data)


def run_logged(cmd: list[str], timeout: float, env_extra: dict, header: str, out: io.StringIO) -> dict:
    """Run ``cmd`` in its own process group, killing the whole group at ``timeout``; output into ``out``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    env["PYTHONUNBUFFERED"] = "1"
    env.update(env_extra)
    out.write(f"==== {header}\n$ {shlex.join(cmd)}\n(timeout {timeout:.0f} s, env {env_extra})\n")
    t0 = now()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            errors="replace", start_new_session=True)  # fmt: skip
    timed_out = False
    try:
        text, _ = proc.communicate(timeout=max(1.0, timeout))
    except subprocess.TimeoutExpired:
        timed_out = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        text, _ = proc.communicate()
    seconds = now() - t0
    out.write(text or "")
    out.write(f"\n==== rc {proc.returncode}{' (timed out)' if timed_out else ''} after {seconds:.1f} s\n\n")
    return {"rc": proc.returncode, "timed_out": timed_out, "output": text or "", "seconds": seconds}


# --------------------------------------------------------------------------- the report
class Report:
    def __init__(self, cfg: Config, out_dir: Path, command: str):
        self.cfg = cfg
        self.out_dir = out_dir
        self.meta = {
            "command": command,
            "dry_run": cfg.dry_run,
            "budget_s": cfg.budget_s,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        }
        self.steps: dict[str, dict] = {
            name: {"step": name, "status": "pending", "budget_s": None, "seconds": None, "note": ""} for name in STEPS
        }
        self.tables: dict[str, dict] = {}
        self.text: dict[str, list[str]] = {title: [] for title in STEP_TITLES.values()}
        self.targets: list[dict] = []
        self.errors = 0

    def table(self, section: str, table_id: str, title: str, columns: list[str], rows: list[list]) -> None:
        rows = [[clean_number(v) for v in row] for row in rows]
        self.tables[table_id] = {"section": section, "title": title, "columns": columns, "rows": rows}
        self.text[section].append(f"@table:{table_id}")

    def say(self, section: str, line: str) -> None:
        self.text[section].append(line)

    # ---- rendering
    def render_table(self, table_id: str) -> list[str]:
        t = self.tables[table_id]
        lines = [f"<!-- table: {table_id} -->", f"**{t['title']}**", "", "| " + " | ".join(t["columns"]) + " |",
                 "|" + "---|" * len(t["columns"])]  # fmt: skip
        lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in t["rows"]]
        if not t["rows"]:
            lines.append("| " + " | ".join(["(none)"] + ["-"] * (len(t["columns"]) - 1)) + " |")
        return [*lines, ""]

    def markdown(self) -> str:
        m = self.meta
        title = "# spp-zoo GPU measurement"
        if self.cfg.dry_run:
            title += " (DRY RUN on the CPU: rehearses the script and its format; the numbers mean nothing)"
        lines = [title, "", "## Run", ""]
        keys = ("date", "device", "driver", "versions", "commit", "command", "budget_s", "wall_s", "start-up error")
        for key in [k for k in keys if k in m]:
            lines.append(f"- {key}: `{fmt(m.get(key))}`" if key == "command" else f"- {key}: {fmt(m.get(key))}")
        lines += ["", "## Steps", ""]
        lines += self.render_table("steps")
        lines += ["## Targets", "", "Checked and reported, not asserted.", ""]
        lines += self.render_table("targets")
        for step, section in STEP_TITLES.items():
            lines += [f"## {section}", ""]
            s = self.steps[step]
            lines += [f"Status: **{s['status']}**" + (f": {s['note']}" if s["note"] else ""), ""]
            for item in self.text[section]:
                lines += self.render_table(item[len("@table:") :]) if item.startswith("@table:") else [item, ""]
        lines += ["## Files", ""]
        lines += [f"- `{name}`" for name in self.meta.get("files", [])]
        return "\n".join(lines) + "\n"

    def as_json(self) -> dict:
        return {"meta": self.meta, "steps": list(self.steps.values()), "targets": self.targets,
                "tables": self.tables}  # fmt: skip

    def refresh_summary_tables(self) -> None:
        rows = [[s["step"], s["status"], s["budget_s"], s["seconds"], s["note"]] for s in self.steps.values()]
        self.tables["steps"] = {"section": "Steps", "title": "Steps (seconds of wall time)",
                                "columns": ["step", "status", "budget s", "used s", "note"],
                                "rows": [[clean_number(v) for v in r] for r in rows]}  # fmt: skip
        self.targets = compute_targets(self)
        rows = [[t["target"], t["measured"], t["threshold"], t["status"], t["detail"]] for t in self.targets]
        self.tables["targets"] = {"section": "Targets", "title": "Targets",
                                  "columns": ["target", "measured", "threshold", "status", "detail"],
                                  "rows": [[clean_number(v) for v in r] for r in rows]}  # fmt: skip

    def write(self, logs: dict[str, io.StringIO]) -> None:
        self.meta["wall_s"] = clean_number(now() - T_START)
        self.refresh_summary_tables()
        draw_plot(self, self.out_dir / "ops_vs_floor.png")
        for name, buf in logs.items():
            write_capped(self.out_dir / name, buf.getvalue())
        self.meta["files"] = [n for n in (*FILES, WEIGHTS_ZIP) if n in FILES or (self.out_dir / n).is_file()]
        (self.out_dir / "results.json").write_text(json.dumps(self.as_json(), indent=1, allow_nan=False) + "\n")
        (self.out_dir / "RESULTS.md").write_text(self.markdown())


# --------------------------------------------------------------------------- targets
def _bench_rows(report: Report) -> list[dict]:
    t = report.tables.get("bench")
    if not t:
        return []
    return [dict(zip(t["columns"], row, strict=True)) for row in t["rows"]]


def _time(rows, case, dtype, mode, impl):
    for r in rows:
        if (r["case"], r["dtype"], r["pass"], r["impl"]) == (case, dtype, mode, impl):
            return r["median us"]
    return None


def compute_targets(report: Report) -> list[dict]:
    rows = _bench_rows(report)
    targets = []

    def add(target, measured, threshold, detail):
        status = "not measured" if measured is None else ("met" if measured >= threshold else "missed")
        targets.append({"target": target, "measured": clean_number(measured), "threshold": threshold,
                        "status": status, "detail": detail})  # fmt: skip

    # every fused op faster than its eager composite and its torch.compile, at every listed shape
    ratios, misses = [], []
    for r in rows:
        if r["impl"] != "fused" or r["median us"] is None:
            continue
        for other in ("eager", "compiled", "compiled-max-autotune"):
            t = _time(rows, r["case"], r["dtype"], r["pass"], other)
            if t is not None:
                ratios.append(t / r["median us"])
                if t <= r["median us"]:
                    misses.append(f"{r['case']} {r['dtype']} {r['pass']} vs {other}")
    detail = f"{len(ratios)} comparisons (slowest ratio shown)"
    if misses:
        detail += "; not faster: " + ", ".join(misses[:6]) + (" ..." if len(misses) > 6 else "")
    add(
        "fused faster than eager and torch.compile (x, min over every shape, dtype, pass)",
        min(ratios) if ratios else None,
        1.0,
        detail,
    )
    # PSPNet-size pooling and upsample+concat at >= 80 % of the copy bandwidth
    for case in ("psp_pool_avg", "psp_upsample_concat"):
        pcts = [r["% of copy"] for r in rows if r["case"] == case and r["impl"] == "fused"
                and r["pass"] == "forward" and r["% of copy"] is not None]  # fmt: skip
        add(
            f"{case} forward at >= 80 % of copy bandwidth (%, min over dtypes)",
            min(pcts) if pcts else None,
            80.0,
            f"{len(pcts)} dtypes measured",
        )
    # roi_spp vs 4x roi_pool + cat at 2000 RoIs (fp32): forward >= 3x, backward >= 2x
    fused_f = _time(rows, "roi_spp", "float32", "forward", "fused")
    eager_f = _time(rows, "roi_spp", "float32", "forward", "eager")
    fused_fb = _time(rows, "roi_spp", "float32", "forward+backward", "fused")
    eager_fb = _time(rows, "roi_spp", "float32", "forward+backward", "eager")
    add(
        "roi_spp forward vs 4x roi_pool + cat (x, float32)",
        eager_f / fused_f if fused_f and eager_f else None,
        3.0,
        "eager / fused median",
    )
    bwd = None
    if None not in (fused_f, eager_f, fused_fb, eager_fb) and fused_fb > fused_f:
        bwd = (eager_fb - eager_f) / (fused_fb - fused_f)
    add(
        "roi_spp backward vs 4x roi_pool + cat (x, float32)",
        bwd,
        2.0,
        "backward = (forward+backward) - forward medians",
    )
    # SPPF vs YOLOv5's three pools + cat
    sp = [_time(rows, "sppf", d, "forward", "eager") / _time(rows, "sppf", d, "forward", "fused")
          for d in ("float32", "bfloat16")
          if _time(rows, "sppf", d, "forward", "eager") and _time(rows, "sppf", d, "forward", "fused")]  # fmt: skip
    add(
        "SPPF forward vs three max_pool2d + cat (x, min over dtypes)",
        min(sp) if sp else None,
        2.0,
        f"{len(sp)} dtypes measured",
    )
    # multi-size SPP-net training >= 90 % of fixed-size throughput
    ratio = None
    t = report.tables.get("training")
    if t:
        by_mode = {row[0]: dict(zip(t["columns"], row, strict=True)) for row in t["rows"]}
        if "multi-size" in by_mode and "fixed-size" in by_mode and by_mode["fixed-size"]["images/s"]:
            ratio = (by_mode["multi-size"]["images/s"] or 0) / by_mode["fixed-size"]["images/s"]
    add("multi-size SPP-net training / fixed-size throughput", ratio, 0.9, "images/s ratio, same mean image area")
    return targets


# --------------------------------------------------------------------------- step 1: correctness
PYTEST_LINE = re.compile(r"^\S+::.*? (PASSED|FAILED|SKIPPED|ERROR|XFAIL|XPASS)\b")  # a -v line, not a summary


def parse_pytest(output: str) -> dict:
    counts = {"passed": 0, "failed": 0, "skipped": 0, "errors": 0}
    key = {"PASSED": "passed", "XPASS": "passed", "FAILED": "failed", "ERROR": "errors"}
    for line in output.splitlines():
        m = PYTEST_LINE.match(line)
        if m:
            counts[key.get(m.group(1), "skipped")] += 1
    return counts


def _bench_suite():
    """``benchmarks/test_kernels_bench.py``: its cases and helpers (it imports its conftest as ``conftest``)."""
    here = str(Path(__file__).resolve().parent)
    if here not in sys.path:
        sys.path.insert(0, here)
    return importlib.import_module("test_kernels_bench")


def bench_cases(cfg: Config) -> list:
    suite = _bench_suite()
    if not cfg.dry_run:
        return list(suite.CASES)
    tiny = _tiny_cases()
    return [dataclasses.replace(c, make=tiny[c.name][0], shape=tiny[c.name][1]) for c in suite.CASES]


def _race_case(cfg: Config, case, dtype) -> list:
    """One case: forward bitwise equal over repeated runs; backward within atomic-order rounding."""
    suite = _bench_suite()
    device = cfg.device
    gen = torch.Generator(device=device).manual_seed(1)
    inputs = case.make(device, dtype, gen)
    leaves = suite._leaves(inputs, case.grad_inputs)
    for t in leaves:
        t.requires_grad_(True)
    with torch.no_grad():
        first = case.fused(inputs)
        fwd_same = all(torch.equal(case.fused(inputs), first) for _ in range(cfg.race_forward_runs - 1))
    grad_out = torch.randn(first.shape, device=device, generator=gen).to(first.dtype)
    grads = [torch.autograd.grad(case.fused(inputs), leaves, grad_out) for _ in range(cfg.race_backward_runs)]
    # bound: 64 float32 ulps of the sum of |contributions| (the gradient of |grad_out|), plus one ulp of the dtype
    gabs = torch.autograd.grad(case.fused(inputs), leaves, grad_out.abs())
    eps = 64 * torch.finfo(torch.float32).eps + torch.finfo(dtype).eps
    worst, ratio, bitwise = 0.0, 0.0, True
    for g in grads[1:]:
        for a, b, s in zip(g, grads[0], gabs, strict=True):
            diff = (a.double() - b.double()).abs()
            bitwise &= torch.equal(a, b)
            if diff.numel():
                worst = max(worst, float(diff.max()))
                ratio = max(ratio, float((diff / (s.double().abs() * eps + torch.finfo(dtype).tiny)).max()))
    passed = fwd_same and ratio <= 1.0
    return [case.name, str(dtype).replace("torch.", ""), case.shape, cfg.race_forward_runs, cfg.race_backward_runs,
            fwd_same, bitwise, worst, ratio, "pass" if passed else "FAIL"]  # fmt: skip


def race_check(cfg: Config, deadline: Deadline, report: Report) -> tuple[bool, int]:
    """Every benchmark case, fp32 then bf16, at the benchmark shapes (tiny in the dry run)."""
    rows, skipped = [], 0
    for dtype in (torch.float32, torch.bfloat16):
        for case in bench_cases(cfg):
            if deadline.left() < 1.0:
                skipped += 1
                continue
            try:
                rows.append(_race_case(cfg, case, dtype))
            except Exception as e:  # report it and go on with the other cases
                log(f"race check {case.name} {dtype} raised:\n{traceback.format_exc()}")
                rows.append([case.name, str(dtype).replace("torch.", ""), case.shape, cfg.race_forward_runs,
                             cfg.race_backward_runs, None, None, None, None, f"ERROR {type(e).__name__}"])  # fmt: skip
            if cfg.device.type == "cuda":
                torch.cuda.empty_cache()
    report.table(STEP_TITLES["correctness"], "race", "Race check (fused kernels, same inputs, repeated runs)",
                 ["case", "dtype", "shape", "forward runs", "backward runs", "forward identical",
                  "backward bitwise", "backward max abs diff", "diff / bound", "status"], rows)  # fmt: skip
    report.say(
        STEP_TITLES["correctness"],
        "Backward bound per element: (64 float32 ulps + 1 ulp of the dtype) x the gradient of |grad_out| "
        "(the sum of the magnitudes that any summation order adds).",
    )
    return all(r[-1] == "pass" for r in rows), skipped


def step_correctness(cfg: Config, deadline: Deadline, report: Report, logs: dict) -> tuple[str, str]:
    section = STEP_TITLES["correctness"]
    race_reserve = 3.0 if cfg.dry_run else 10.0
    pytest_time = deadline.left() - race_reserve
    notes, status = [], "passed"
    if pytest_time >= cfg.min_step_s:
        cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-o", "addopts=", "-v", "-rfE",
               "--tb=short", *cfg.tests]  # fmt: skip
        res = run_logged(cmd, pytest_time, cfg.test_env, "correctness: pytest", logs["pytest.log"])
        counts = parse_pytest(res["output"])
        summary = [ln for ln in res["output"].splitlines() if re.match(r"=+ .*(passed|failed|error).* in ", ln)]
        part = "timed out" if res["timed_out"] else ("passed" if res["rc"] == 0 else "failed")
        report.table(section, "pytest", "pytest subset (pytest.log has every test's line)",
                     ["tests", "status", "passed", "failed", "skipped", "errors", "seconds"],
                     [[" ".join(cfg.tests), part, counts["passed"], counts["failed"], counts["skipped"],
                       counts["errors"], res["seconds"]]])  # fmt: skip
        if summary:
            report.say(section, f"pytest: `{summary[-1].strip('= ')}`")
        if part == "failed" or counts["failed"] or counts["errors"]:
            status = "failed"
        elif part == "timed out":
            status = "partial"
            notes.append(f"pytest stopped at its {pytest_time:.0f} s share after {sum(counts.values())} tests")
    else:
        status = "partial"
        notes.append("no time for pytest")
        report.say(section, f"pytest skipped: {pytest_time:.0f} s left for it")
    if deadline.left() >= 1.0:
        race_ok, race_skipped = race_check(cfg, Deadline(deadline.left()), report)
        if not race_ok:
            status = "failed"
        if race_skipped:
            notes.append(f"race check: {race_skipped} cases not run for lack of time")
            status = "partial" if status == "passed" else status
    else:
        status = "partial" if status == "passed" else status
        notes.append("no time for the race check")
    return status, "; ".join(notes)


# --------------------------------------------------------------------------- step 2: memcheck
def launch_each_kernel() -> int:
    """One small launch of every kernel, forward and backward (fp32, bf16, channels-last): the memcheck target."""
    import kernels

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    gen = torch.Generator(device=device).manual_seed(0)

    def rnd(*shape, dtype):
        return torch.randn(*shape, device=device, generator=gen).to(dtype)

    variants = [(torch.float32, torch.contiguous_format), (torch.bfloat16, torch.contiguous_format),
                (torch.float32, torch.channels_last)]  # fmt: skip
    if device.type == "cpu":  # the dry run's rehearsal under the Triton interpreter: one variant is enough
        variants = variants[:1]
    for dtype, layout in variants:
        x = rnd(2, 5, 13, 11, dtype=dtype).to(memory_format=layout)
        rois = torch.tensor([[0, 0, 0, 150, 120], [1, 30, 20, 60, 200], [1, -5, -5, 400, 400]], device=device)
        calls = {
            "spatial_pyramid_pool max": lambda t: kernels.spatial_pyramid_pool(t, (6, 3, 2, 1)),
            "spatial_pyramid_pool avg": lambda t: kernels.spatial_pyramid_pool(t, (1, 2, 3, 6), "avg"),
            "upsample_concat": lambda t, d=dtype: kernels.upsample_concat(
                t, [rnd(2, 3, n, n, dtype=d) for n in (1, 2, 3, 6)], True
            ),
            "roi_spp": lambda t, r=rois: kernels.roi_spp(t, r.to(torch.float32), (6, 3, 2, 1), 1 / 16),
            "sppf": lambda t: kernels.sppf(t, 5),
        }
        for name, call in calls.items():
            leaf = x.detach().clone().requires_grad_(True)
            out = call(leaf)
            (grad,) = torch.autograd.grad(out, [leaf], torch.ones_like(out))
            synchronize(device)
            finite = bool(torch.isfinite(out.float()).all() and torch.isfinite(grad.float()).all())
            print(
                f"launched {name} {str(dtype).replace('torch.', '')} {layout}: forward + backward, finite={finite}",
                flush=True,
            )
            if not finite:
                return 3
    print("all launches done", flush=True)
    return 0


def step_memcheck(cfg: Config, deadline: Deadline, report: Report, logs: dict) -> tuple[str, str]:
    section = STEP_TITLES["memcheck"]
    sanitizer = shutil.which("compute-sanitizer")
    snippet = [sys.executable, "-m", "benchmarks.gpu_run", "--launch-each-kernel"]
    if sanitizer and torch.cuda.is_available():
        cmd = [sanitizer, "--tool", "memcheck", "--error-exitcode", "86", "--print-limit", "40", *snippet]
        env = {**cfg.test_env, "PYTORCH_NO_CUDA_MEMORY_CACHING": "1"}  # every allocation exact: bounds are real
        res = run_logged(cmd, deadline.left(), env, "memcheck", logs["memcheck.log"])
        m = re.search(r"ERROR SUMMARY: (\d+) error", res["output"])
        errors = int(m.group(1)) if m else None
        launched = res["output"].count("launched ")
        status = (
            "timed out"
            if res["timed_out"]
            else ("passed" if res["rc"] == 0 and errors == 0 and "all launches done" in res["output"] else "failed")
        )
        report.table(section, "memcheck", "compute-sanitizer --tool memcheck",
                     ["tool", "status", "launches (fwd+bwd)", "errors", "seconds"],
                     [[sanitizer, status, launched, errors, res["seconds"]]])  # fmt: skip
        return status, "" if status == "passed" else "see memcheck.log"
    reason = "compute-sanitizer is not on PATH" if not sanitizer else "no CUDA device"
    res = run_logged(snippet, deadline.left(), cfg.test_env, f"memcheck skipped ({reason}): the snippet alone",
                     logs["memcheck.log"])  # fmt: skip
    launched = res["output"].count("launched ")
    ran = "ran" if res["rc"] == 0 else ("timed out" if res["timed_out"] else "failed")
    report.table(section, "memcheck", "compute-sanitizer --tool memcheck (not available: the launch snippet ran alone)",
                 ["tool", "status", "launches (fwd+bwd)", "errors", "seconds"],
                 [["none", f"snippet {ran}", launched, None, res["seconds"]]])  # fmt: skip
    if res["rc"] != 0 and not res["timed_out"]:
        return "failed", f"{reason}; the launch snippet itself failed (memcheck.log)"
    return "skipped", f"{reason}; the launch snippet {ran} without it ({launched} launches)"


# --------------------------------------------------------------------------- step 3: benchmarks
def median_seconds(cfg: Config, fn) -> float:
    if cfg.device.type == "cuda":
        import triton.testing

        return triton.testing.do_bench(fn, warmup=cfg.warmup_ms, rep=cfg.rep_ms, return_mode="median") / 1e3
    times = []
    for _ in range(cfg.cpu_reps):
        t0 = now()
        fn()
        times.append(now() - t0)
    return sorted(times)[len(times) // 2]


def copy_bandwidth(cfg: Config) -> tuple[float, int]:
    """Bytes/s of a large device-to-device copy (read + write): the floor of these memory-bound ops."""
    src = torch.empty(cfg.copy_numel, dtype=torch.float32, device=cfg.device).uniform_()
    dst = torch.empty_like(src)
    dst.copy_(src)
    seconds = median_seconds(cfg, lambda: dst.copy_(src))
    return 2 * src.numel() * src.element_size() / seconds, 2 * src.numel() * src.element_size()


def _compiled(cfg: Config, fn, impl: str):
    if cfg.compile_backend is not None:
        return torch.compile(fn, backend=cfg.compile_backend)
    # max-autotune without CUDA graphs: graph replay would add a copy of every (rotated) input to the timing
    return torch.compile(fn, mode="max-autotune-no-cudagraphs" if impl == "compiled-max-autotune" else None)


def _nbytes(t) -> int:
    if isinstance(t, (list, tuple)):
        return sum(_nbytes(u) for u in t)
    return t.numel() * t.element_size() if isinstance(t, torch.Tensor) else 0


def time_case(cfg: Config, case, dtype, mode: str, fn) -> tuple[float, int]:
    """Median seconds of ``fn`` on rotated input sets and the op's minimal traffic in bytes (as the suite)."""
    suite = _bench_suite()
    backward = mode == "forward+backward"
    sets = suite._input_sets(case, cfg.device, dtype, backward)
    cycle = itertools.cycle(sets)
    grad_out = torch.randn_like(case.eager(sets[0]).detach())

    def run():
        inputs = next(cycle)
        out = fn(inputs)
        if backward:
            torch.autograd.grad(out, suite._leaves(inputs, case.grad_inputs), grad_out)

    for _ in range(3):  # compile, autotune and warm caches outside the timing
        run()
    synchronize(cfg.device)
    seconds = median_seconds(cfg, run)
    in_bytes = _nbytes(suite._leaves(sets[0], case.grad_inputs))
    out_bytes = grad_out.numel() * grad_out.element_size()
    moved = in_bytes + out_bytes + (out_bytes + in_bytes if backward else 0)
    return seconds, moved


def step_benchmarks(cfg: Config, deadline: Deadline, report: Report, logs: dict) -> tuple[str, str]:
    section = STEP_TITLES["benchmarks"]
    bw, moved = copy_bandwidth(cfg)
    report.table(section, "copy", "Device copy bandwidth, measured in this run (read + write)",
                 ["bytes", "GB/s"], [[moved, bw / 1e9]])  # fmt: skip
    cases = bench_cases(cfg)
    plan = []
    for dtype, mode in ((torch.float32, "forward"), (torch.float32, "forward+backward"),
                        (torch.bfloat16, "forward"), (torch.bfloat16, "forward+backward")):  # fmt: skip
        plan += [(c, dtype, mode, impl) for c in cases for impl in ("fused", "eager", "compiled")]
    plan += [(c, torch.float32, mode, "compiled-max-autotune") for mode in ("forward", "forward+backward")
             for c in cases]  # fmt: skip
    results, skipped, failed = [], [], []
    for case, dtype, mode, impl in plan:
        label = f"{case.name} {str(dtype).replace('torch.', '')} {mode} {impl}"
        kind = "compiled" if impl.startswith("compiled") else impl
        estimate = cfg.item_s[kind] * (5 if impl == "compiled-max-autotune" else 1)
        if deadline.left() < estimate:
            skipped.append(label)
            continue
        fn = case.fused if impl == "fused" else case.eager if impl == "eager" else _compiled(cfg, case.eager, impl)
        try:
            seconds, nbytes = time_case(cfg, case, dtype, mode, fn)
        except Exception as e:  # one failing implementation must not stop the others
            failed.append(f"{label}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
            log(f"benchmark {label} failed:\n{traceback.format_exc()}")
            if cfg.device.type == "cuda":
                torch.cuda.empty_cache()
            continue
        results.append({"case": case.name, "shape": case.shape, "dtype": str(dtype).replace("torch.", ""),
                        "pass": mode, "impl": impl, "seconds": seconds, "bytes": nbytes})  # fmt: skip
        log(f"benchmark {label}: {seconds * 1e6:.1f} us")
    base = {(r["case"], r["dtype"], r["pass"], r["impl"]): r["seconds"] for r in results}
    rows = []
    for r in results:
        key = (r["case"], r["dtype"], r["pass"])
        eager, compiled = base.get((*key, "eager")), base.get((*key, "compiled"))
        floor = r["bytes"] / bw
        rows.append(
            [
                r["case"],
                r["shape"],
                r["dtype"],
                r["pass"],
                r["impl"],
                r["seconds"] * 1e6,
                r["bytes"],
                r["bytes"] / r["seconds"] / 1e9,
                100 * floor / r["seconds"],
                floor * 1e6,
                eager / r["seconds"] if eager and r["impl"] != "eager" else None,
                compiled / r["seconds"] if compiled and r["impl"] not in ("eager", "compiled") else None,
            ]
        )
    timer = ("triton.testing.do_bench median: CUDA events, L2 cleared before every repetition" if cfg.device.type ==
             "cuda" else f"median of {cfg.cpu_reps} wall-clock repetitions")  # fmt: skip
    report.table(section, "bench", f"Kernels vs composites ({timer}; inputs rotated as the suite does; floor = "
                 "bytes / copy bandwidth; eager = kernels.reference: 4x roi_pool + cat, three pools + cat; "
                 "max-autotune without CUDA graphs)",
                 ["case", "shape", "dtype", "pass", "impl", "median us", "bytes", "GB/s", "% of copy", "floor us",
                  "vs eager x", "vs compiled x"], rows)  # fmt: skip
    if skipped:
        report.say(section, f"Not timed for lack of time ({len(skipped)}): " + ", ".join(skipped))
    if failed:
        report.say(section, f"Failed ({len(failed)}): " + "; ".join(failed))
    status = "failed" if failed else ("partial" if skipped else "done")
    note = (
        f"{len(results)} timings"
        + (f", {len(skipped)} not timed" if skipped else "")
        + (f", {len(failed)} failed" if failed else "")
    )
    return status, note


# --------------------------------------------------------------------------- plot (PIL only: no extra package)
def draw_plot(report: Report, path: Path) -> None:
    from PIL import Image, ImageDraw, ImageFont

    rows = _bench_rows(report)
    groups: dict[tuple, dict] = {}
    for r in rows:
        if r["median us"] is not None:
            groups.setdefault((r["case"], r["dtype"], r["pass"]), {})[r["impl"]] = (r["median us"], r["floor us"])
    colors = {"fused": (214, 39, 40), "eager": (31, 119, 180), "compiled": (44, 160, 44),
              "compiled-max-autotune": (148, 103, 189)}  # fmt: skip
    font = ImageFont.load_default()
    left, right, top, row_h = 330, 30, 60, 22
    width = 1100
    height = top + row_h * max(1, len(groups)) + 60
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    title = "Each op's median time against its bandwidth floor (bytes / measured copy bandwidth), log scale"
    if report.cfg.dry_run:
        title += "  [DRY RUN]"
    draw.text((10, 10), title, fill="black", font=font)
    x = 10
    for impl, color in [*colors.items(), ("floor", (0, 0, 0))]:
        draw.rectangle([x, 32, x + 10, 42], fill=color)
        draw.text((x + 14, 31), impl, fill="black", font=font)
        x += 30 + 7 * len(impl)
    if not groups:
        draw.text(
            (10, top + 10), "no benchmark timings in this run (step skipped or not reached)", fill="black", font=font
        )
        img.save(path)
        return
    values = [v for g in groups.values() for t, f in g.values() for v in (t, f) if v and v > 0]
    lo = 10 ** math.floor(math.log10(min(values)))
    hi = 10 ** math.ceil(math.log10(max(values)))
    if hi <= lo:
        hi = lo * 10

    def xpos(v):
        return left + (width - left - right) * (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))

    decade = lo
    while decade <= hi * 1.0001:
        xp = xpos(decade)
        draw.line([xp, top - 5, xp, height - 45], fill=(220, 220, 220))
        draw.text((xp - 12, height - 40), f"{decade:g} us", fill="black", font=font)
        decade *= 10
    for i, ((case, dtype, mode), impls) in enumerate(sorted(groups.items())):
        y = top + i * row_h + row_h // 2
        draw.text((10, y - 6), f"{case} {dtype} {mode}", fill="black", font=font)
        floor = next(iter(impls.values()))[1]
        if floor and floor > 0:
            xf = xpos(floor)
            draw.line([xf, y - 9, xf, y + 9], fill=(0, 0, 0), width=3)
        for impl, (t, _) in sorted(impls.items(), key=lambda kv: kv[0] == "fused"):  # fused drawn last, on top
            if t and t > 0:
                xt = xpos(t)
                c = colors.get(impl, (128, 128, 128))
                draw.ellipse([xt - 5, y - 5, xt + 5, y + 5], fill=c)
    img.save(path)


# --------------------------------------------------------------------------- step 4: end to end
def _images_per_second(cfg: Config, model, batch, images: int, deadline: Deadline) -> tuple[float | None, float]:
    synchronize(cfg.device)
    model(batch)  # warm-up: cuDNN autotuning, Triton compiles
    synchronize(cfg.device)
    t0 = now()
    model(batch)
    synchronize(cfg.device)
    one = now() - t0
    iters = max(1, min(cfg.infer_iters, int(min(cfg.infer_seconds, deadline.left() / 2) / max(one, 1e-6))))
    t0 = now()
    for _ in range(iters):
        model(batch)
    synchronize(cfg.device)
    seconds = (now() - t0) / iters
    return images / seconds, seconds


def step_end_to_end(cfg: Config, deadline: Deadline, report: Report, logs: dict) -> tuple[str, str]:

    section = STEP_TITLES["end_to_end"]
    device = cfg.device
    gen = torch.Generator(device=device).manual_seed(0)
    rows, skipped = [], []
    specs = [
        ("pspnet_resnet50", {}, "x".join(map(str, cfg.psp_input))),
        ("spp_detector_zf5", cfg.det_kwargs, f"{cfg.det_input[0]} images " + "x".join(map(str, cfg.det_input[1:]))),
    ]
    failed = []
    for name, kwargs, shape in specs:
        if deadline.left() < 2.0:
            skipped.append(name)
            continue
        try:
            rows += _inference_rows(cfg, name, kwargs, shape, gen, deadline, skipped)
        except Exception as e:  # one model failing must not cost the other measurements
            failed.append(f"{name}: {type(e).__name__}: {e}")
            log(f"end to end {name} raised:\n{traceback.format_exc()}")
        if device.type == "cuda":
            torch.cuda.empty_cache()
    ref = {(r[0], r[2]): r[4] for r in rows if r[3] == "reference"}
    for r in rows:
        r.append(r[4] / ref[(r[0], r[2])] if r[3] == "kernels" and (r[0], r[2]) in ref else None)
    report.table(
        section,
        "inference",
        "Inference throughput (eval mode, inference_mode)",
        ["model", "input", "dtype", "path", "images/s", "ms per batch", "kernels / reference x"],
        rows,
    )
    train_rows = []
    if deadline.left() >= 2.0:
        try:
            train_rows = training_throughput(cfg, deadline)
        except Exception as e:
            failed.append(f"training throughput: {type(e).__name__}: {e}")
            log(f"training throughput raised:\n{traceback.format_exc()}")
    else:
        skipped.append("training throughput")
    report.table(
        section,
        "training",
        "SPP-net (sppnet_zf5) training throughput: SGD step on random data, "
        "cross-entropy" + (", bf16 autocast" if device.type == "cuda" else ""),
        ["mode", "sizes", "batch", "steps", "images/s", "megapixels/s", "vs fixed-size"],
        train_rows,
    )
    if skipped:
        report.say(section, "Not measured for lack of time: " + ", ".join(skipped))
    if failed:
        report.say(section, "Failed (run.log has the tracebacks): " + "; ".join(failed))
        return "failed", f"{len(failed)} failed"
    return ("partial" if skipped else "done"), (f"{len(skipped)} items not measured" if skipped else "")


def _inference_rows(cfg: Config, name: str, kwargs: dict, shape: str, gen, deadline: Deadline, skipped: list):
    import zoo

    device = cfg.device
    rows = []
    model = zoo.get_model(name, **kwargs).eval().to(device)
    if name.startswith("pspnet"):
        batch = torch.rand(cfg.psp_input, device=device, generator=gen)
        images = cfg.psp_input[0]
    else:
        batch = list(torch.rand(cfg.det_input, device=device, generator=gen))
        images = cfg.det_input[0]
    for dtype in (torch.float32, torch.bfloat16):
        for path in ("kernels", "reference"):
            label = f"{name} {str(dtype).replace('torch.', '')} {path}"
            if deadline.left() < 1.0:
                skipped.append(label)
                continue
            with (
                torch.inference_mode(),
                zoo.kernel_path(model, path == "kernels"),
                torch.autocast(device.type, dtype=torch.bfloat16, enabled=dtype == torch.bfloat16),
            ):
                ips, seconds = _images_per_second(cfg, model, batch, images, deadline)
            rows.append([name, shape, "bfloat16 autocast" if dtype == torch.bfloat16 else "float32", path, ips,
                         seconds * 1e3])  # fmt: skip
            log(f"end to end {label}: {ips:.2f} images/s")
    return rows


def training_throughput(cfg: Config, deadline: Deadline) -> list[list]:
    import zoo

    device = cfg.device
    model = zoo.get_model("sppnet_zf5", **cfg.train_kwargs).train().to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    gen = torch.Generator(device=device).manual_seed(0)
    s, d = cfg.train_size, cfg.train_delta
    modes = {"fixed-size": (s,), "multi-size": (s - d, s, s + d)}  # same mean area within 1 %
    batches = {size: torch.randn(cfg.train_batch, 3, size, size, device=device, generator=gen)
               for size in {*modes["fixed-size"], *modes["multi-size"]}}  # fmt: skip
    labels = torch.randint(0, 1000, (cfg.train_batch,), device=device, generator=gen)

    def step(size):
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            loss = torch.nn.functional.cross_entropy(model(batches[size]), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for size in batches:  # warm-up: every size once (cuDNN autotuning, Triton compiles)
        step(size)
    synchronize(device)
    rows = []
    for mode, sizes in modes.items():
        if deadline.left() < 1.0:
            break
        t0 = now()
        for i in range(cfg.train_steps):
            step(sizes[i % len(sizes)])
        synchronize(device)
        seconds = now() - t0
        pixels = sum(sizes[i % len(sizes)] ** 2 for i in range(cfg.train_steps)) * cfg.train_batch
        ips = cfg.train_steps * cfg.train_batch / seconds
        rows.append([mode, ",".join(map(str, sizes)), cfg.train_batch, cfg.train_steps, ips, pixels / seconds / 1e6])
        log(f"training {mode}: {ips:.1f} images/s")
    fixed = rows[0][4] if rows else None
    for r in rows:
        r.append(r[4] / fixed if fixed else None)
    return rows


# --------------------------------------------------------------------------- step 5: retrain
def recipe_runs(path: Path = ROOT / "recipes" / "train_shipped.sh") -> list[dict]:
    """The ``python -m zoo train`` commands of the recipe, shipped entries first (in the order they ship)."""
    text = path.read_text().replace("\\\n", " ")
    trains, ships = [], {}
    for line in text.splitlines():
        words = shlex.split(line, comments=True)
        if words[:4] == ["python", "-m", "zoo", "train"]:
            args = words[4:]
            output = args[args.index("--output") + 1]
            trains.append({"name": Path(output).name, "model": args[0], "args": args, "output": output})
        elif words[:2] == ["python", "recipes/ship.py"] and len(words) >= 4:
            ships[words[2]] = words[3]
    order = list(ships)
    for t in trains:
        t["entry"] = ships.get(t["output"])
        t["after"] = _flag_value(t["args"], "--weights")  # a run started from another run's checkpoint
    by_output = {t["output"]: t for t in trains}
    ordered: list[dict] = []

    def place(run: dict) -> None:  # a run's starting checkpoint is trained right before it
        if run in ordered:
            return
        if run["after"] in by_output:
            place(by_output[run["after"]])
        ordered.append(run)

    for t in sorted(trains, key=lambda t: order.index(t["output"]) if t["output"] in order else len(order)):
        place(t)
    return ordered


def _flag_value(args: list[str], flag: str) -> str | None:
    return args[args.index(flag) + 1] if flag in args[:-1] else None


def _override(args: list[str], overrides: dict, output: str) -> list[str]:
    args = list(args)
    for flag, value in {**overrides, "--output": output}.items():
        if flag in args:
            args[args.index(flag) + 1] = value
        else:
            args += [flag, value]
    return args


def step_retrain(cfg: Config, deadline: Deadline, report: Report, logs: dict) -> tuple[str, str]:
    section = STEP_TITLES["retrain"]
    runs = [r for r in recipe_runs() if cfg.retrain is None or r["name"] in cfg.retrain]
    work = Path(tempfile.mkdtemp(prefix="gpu_run_retrain_"))
    zip_path = report.out_dir / WEIGHTS_ZIP
    archived: list[dict] = []
    rows = []
    retrained: dict[str, str] = {}  # recipe output -> this run's output
    try:
        for run in runs:
            left = deadline.left()
            if left < cfg.retrain_min_s:
                logs["retrain.log"].write(f"{run['name']}: not started, {left:.0f} s left\n")
                rows.append([run["name"], run["model"], run["entry"], "skipped (no time)", None, False, None])
                continue
            out = work / "runs" / run["name"]
            args = _override(run["args"], cfg.retrain_overrides, str(out))
            if run["after"] in retrained:  # start from the checkpoint this GPU run just trained
                args[args.index("--weights") + 1] = retrained[run["after"]]
            retrained[run["output"]] = str(out)
            res = run_logged([sys.executable, "-m", "zoo", "train", *args], left, {"OMP_NUM_THREADS": "1"},
                             f"retrain {run['name']}", logs["retrain.log"])  # fmt: skip
            status = "timed out" if res["timed_out"] else ("trained" if res["rc"] == 0 else "failed")
            size = None
            ok_files = status == "trained" and (out / "model.safetensors").is_file()
            if ok_files:
                size = (out / "model.safetensors").stat().st_size / MIB
                ok_files = _add_to_zip(zip_path, archived, run, out)
            rows.append([run["name"], run["model"], run["entry"], status, res["seconds"], ok_files, size])
            log(f"retrain {run['name']}: {status} in {res['seconds']:.0f} s, archived={ok_files}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report.table(
        section,
        "retrain",
        "Recipe runs (recipes/train_shipped.sh; shipped entries first)",
        ["run", "model", "ships as", "status", "seconds", "in zip", "weights MiB"],
        rows,
    )
    if archived:
        report.say(
            section,
            f"`{WEIGHTS_ZIP}` ({zip_path.stat().st_size / MIB:.2f} MiB) holds runs/<run>/ of "
            + ", ".join(a["name"] for a in archived)
            + ": unzip it in the repository, then run the "
            "`python recipes/ship.py` lines of SHIP.txt inside it.",
        )
    if cfg.dry_run and rows:
        report.say(
            section,
            "Dry run: each command cut to " + " ".join(f"{k} {v}" for k, v in cfg.retrain_overrides.items()) + ".",
        )
    failed = [r for r in rows if r[3] == "failed"]
    if failed:
        return "failed", f"{len(failed)} runs failed (retrain.log)"
    if not archived:
        return "skipped", "no run finished in the time left"
    done = len(archived)
    return ("done" if done == len(runs) else "partial"), f"{done} of {len(runs)} runs archived"


def _add_to_zip(zip_path: Path, archived: list[dict], run: dict, out: Path) -> bool:
    """Rewrite the archive with this run added; keep it only if it stays under the limit."""
    candidate = [*archived, {**run, "dir": out}]
    tmp = zip_path.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as z:
        ship = [f"python recipes/ship.py runs/{a['name']} {a['entry']}" for a in candidate if a["entry"]]
        warning = ["# DRY RUN: one epoch of a few items on the CPU, NOT weights to ship"] if _DRY_RUN else []
        z.writestr("SHIP.txt", "\n".join([*warning, *ship]) + "\n")
        for a in candidate:
            for name in ("model.safetensors", "config.json", "README.md", "log.jsonl"):
                f = Path(a["dir"]) / name
                if f.is_file():
                    z.write(f, f"runs/{a['name']}/{name}")
    if tmp.stat().st_size > ZIP_LIMIT:
        tmp.unlink()
        return False
    tmp.replace(zip_path)
    archived.append({**run, "dir": out})
    return True


# --------------------------------------------------------------------------- run facts
def _versions() -> str:
    parts = [f"python {platform.python_version()}", f"torch {torch.__version__}"]
    for name in (
        "torchvision",
        "triton",
        "numpy",
        "pillow",
        "safetensors",
        "huggingface-hub",
        "torchmetrics",
        "pytest",
    ):
        try:  # the installed distributions' metadata: no import (and no import-time cost)
            parts.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            parts.append(f"{name} missing")
    if torch.version.cuda:
        parts.append(f"CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}")
    sanitizer = shutil.which("compute-sanitizer")
    if sanitizer:
        try:
            out = subprocess.run([sanitizer, "--version"], capture_output=True, text=True, timeout=20).stdout
            parts.append("compute-sanitizer " + (re.findall(r"[Vv]ersion ([\w.]+)", out) or ["?"])[-1])
        except Exception:
            parts.append("compute-sanitizer (version unreadable)")
    return ", ".join(parts)


def _device_and_driver() -> tuple[str, str]:
    if not torch.cuda.is_available():
        return f"CPU only: {platform.processor() or platform.machine()}, {os.cpu_count()} cores", "none"
    p = torch.cuda.get_device_properties(0)
    device = (f"{p.name}, {p.total_memory / 2**30:.0f} GiB, {p.multi_processor_count} SMs, "
              f"L2 {p.L2_cache_size / 2**20:.0f} MiB, capability {p.major}.{p.minor}")  # fmt: skip
    driver = "unknown"
    if shutil.which("nvidia-smi"):
        with contextlib.suppress(Exception):
            query = ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"]
            driver = subprocess.run(query, capture_output=True, text=True, timeout=20).stdout.strip() or driver
    return device, driver


def _commit() -> str:
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain"], capture_output=True, text=True,
                               timeout=10).stdout.strip()  # fmt: skip
        return (out.stdout.strip() + (" (with uncommitted changes)" if dirty else "")) or "unknown"
    except Exception:
        return "unknown (no git)"


# --------------------------------------------------------------------------- main
STEP_FUNCTIONS = {
    "correctness": step_correctness,
    "memcheck": step_memcheck,
    "benchmarks": step_benchmarks,
    "end_to_end": step_end_to_end,
    "retrain": step_retrain,
}


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", help="directory for the files (created)")
    p.add_argument("--budget-s", type=float, default=None, help="total seconds (default 420; dry run 60)")
    p.add_argument("--dry-run", action="store_true", help="rehearse on the CPU: tiny shapes, 60 s")
    p.add_argument("--steps", default=",".join(STEPS), help=f"comma list of steps to run (default all: {STEPS})")
    p.add_argument(
        "--step-budget",
        action="append",
        default=[],
        metavar="STEP=SECONDS",
        help="override one step's share of the budget (0 skips it); repeatable",
    )
    p.add_argument(
        "--retrain",
        default=None,
        metavar="RUN,RUN",
        help="recipe runs to retrain (default all, shipped first), e.g. deconvnet_vgg16,sppnet_zf5_single",
    )
    p.add_argument("--launch-each-kernel", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if not args.launch_each_kernel and not args.out:
        p.error("--out is required")
    return args


def main(argv=None) -> int:
    global _LOG_FILE, _DRY_RUN
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.launch_each_kernel:
        return launch_each_kernel()
    if os.environ.pop("TRITON_INTERPRET", None) is not None:  # read by kernels at import: in-process steps native
        print("TRITON_INTERPRET unset for this process (the subprocess steps set what they need)", flush=True)
    cfg = make_config(args.dry_run, args.budget_s)
    _DRY_RUN = cfg.dry_run
    torch.backends.cudnn.benchmark = True  # the end-to-end models' convolutions: autotuned in their warm-up
    if cfg.dry_run:  # tiny ops on a shared CPU: one thread avoids the thread pool's wake-up stalls
        torch.set_num_threads(1)
    if not cfg.dry_run and not torch.cuda.is_available():
        print("no CUDA device: run with --dry-run to rehearse on the CPU", file=sys.stderr)
        return 2
    selected = [s.strip() for s in args.steps.split(",") if s.strip()]
    unknown = set(selected) - set(STEPS)
    if args.retrain:
        cfg.retrain = [r.strip() for r in args.retrain.split(",") if r.strip()]
        unknown |= {f"--retrain {r}" for r in set(cfg.retrain) - {r["name"] for r in recipe_runs()}}
    for item in args.step_budget:
        name, _, value = item.partition("=")
        if name not in STEPS:
            unknown.add(name)
        else:
            cfg.shares[name] = float(value)
    if unknown:
        runs = [r["name"] for r in recipe_runs()]
        print(f"unknown: {sorted(unknown)}; steps are {STEPS}, recipe runs {runs}", file=sys.stderr)
        return 2
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    stale = [p for p in out_dir.iterdir() if p.name in (*FILES, WEIGHTS_ZIP)]
    for p in stale:
        p.unlink()
    _LOG_FILE = (out_dir / "run.log").open("w")
    command = shlex.join([Path(sys.executable).name, "-m", "benchmarks.gpu_run",
                          *(sys.argv[1:] if argv is None else argv)])  # fmt: skip
    report = Report(cfg, out_dir, command)
    logs = {name: io.StringIO() for name in ("pytest.log", "memcheck.log", "retrain.log")}
    total = Deadline(cfg.budget_s - cfg.reserve_s - (now() - T_START))
    try:
        report.meta["device"], report.meta["driver"] = _device_and_driver()
        report.meta["versions"] = _versions()
        report.meta["commit"] = _commit()
        try:  # kernels, the benchmark suite and the zoo imported once, at start-up, not inside a step
            _bench_suite()
            importlib.import_module("zoo")
        except Exception as e:  # the subprocess steps can still tell something: go on, each step reports its error
            report.errors += 1
            report.meta["start-up error"] = f"{type(e).__name__}: {e}"
            log(f"start-up imports raised:\n{traceback.format_exc()}")
        log(f"{'DRY RUN ' if cfg.dry_run else ''}on {report.meta['device']}; budget {cfg.budget_s:.0f} s")
        for step in STEPS:
            s = report.steps[step]
            share = cfg.shares[step]
            budget = max(0.0, min(share, total.left()))
            s["budget_s"] = clean_number(round(budget, 1))
            ran = False
            if step not in selected:
                s.update(status="skipped", note="not selected (--steps)", seconds=0.0)
            elif budget < max(cfg.min_step_s, cfg.memcheck_min_s if step == "memcheck" else 0.0):
                s.update(status="skipped", note=f"given {budget:.1f} s: no time", seconds=0.0)
            else:
                log(f"step {step}: {budget:.0f} s")
                if step in STEP_LOGS:
                    logs[STEP_LOGS[step]].write(f"step {step}: {budget:.0f} s\n")
                t0, ran = now(), True
                try:
                    status, note = STEP_FUNCTIONS[step](cfg, Deadline(budget), report, logs)
                except Exception as e:
                    report.errors += 1
                    status, note = "error", f"{type(e).__name__}: {e}"
                    log(f"step {step} raised:\n{traceback.format_exc()}")
                s.update(status=status, note=note, seconds=round(now() - t0, 2))
                log(f"step {step}: {status} in {s['seconds']:.1f} s {note}")
                if cfg.device.type == "cuda":
                    torch.cuda.empty_cache()
            if not ran:
                report.say(STEP_TITLES[step], f"Skipped: {s['note']}.")
            if step in STEP_LOGS:
                logs[STEP_LOGS[step]].write(f"step {step}: {s['status']} after {s['seconds']} s {s['note']}\n")
            report.write(logs)
    finally:
        log(f"done in {now() - T_START:.1f} s (budget {cfg.budget_s:.0f} s); files in {out_dir}")
        _LOG_FILE.close()
        _LOG_FILE = None
        report.write(logs)
    for s in report.steps.values():
        print(f"{s['step']:>12}: {s['status']:<10} {fmt(s['seconds']):>6} s  {s['note']}")
    for t in report.targets:
        print(f"target: {t['status']:<12} {t['target']}: {fmt(t['measured'])} (threshold {fmt(t['threshold'])})")
    return 1 if report.errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
