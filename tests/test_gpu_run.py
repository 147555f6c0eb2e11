"""benchmarks/gpu_run.py: the dry run on the CPU proves the GPU run's script, files and format.

The dry run finishes inside its budget and writes every file with every section filled; a step given no time
is reported as skipped, never as passed; the JSON's numbers are the numbers in RESULTS.md's tables.
"""

import json
import math
import os
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from benchmarks import gpu_run

ROOT = Path(__file__).resolve().parents[1]
RAN = {"passed", "failed", "partial", "done", "timed out", "error"}


def dry_run(out: Path, *extra: str) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "benchmarks.gpu_run", "--dry-run", "--out", str(out), *extra],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    wall = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return {"wall": wall, "stdout": proc.stdout, "json": json.loads((out / "results.json").read_text()),
            "md": (out / "RESULTS.md").read_text(), "out": out}  # fmt: skip


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    return dry_run(tmp_path_factory.mktemp("gpu_run"))


@pytest.fixture(scope="module")
def some_skipped(tmp_path_factory):
    """Every step but the benchmarks (3 s) given no time."""
    zero = [a for s in ("correctness", "memcheck", "end_to_end", "retrain") for a in ("--step-budget", f"{s}=0")]
    return dry_run(tmp_path_factory.mktemp("gpu_run_skip"), *zero, "--step-budget", "benchmarks=3")


def md_tables(text: str) -> dict[str, tuple[list[str], list[list[str]]]]:
    lines = text.splitlines()
    tables = {}
    for i, line in enumerate(lines):
        m = re.fullmatch(r"<!-- table: (\w+) -->", line)
        if not m:
            continue
        j = i + 1
        while not lines[j].startswith("|"):
            j += 1
        header = [c.strip() for c in lines[j].strip().strip("|").split("|")]
        rows = []
        j += 2
        while j < len(lines) and lines[j].startswith("|"):
            rows.append([c.strip() for c in lines[j].strip().strip("|").split("|")])
            j += 1
        tables[m.group(1)] = (header, rows)
    return tables


def sections(text: str) -> dict[str, str]:
    parts = re.split(r"^## (.+)$", text, flags=re.M)
    return {parts[i].strip(): parts[i + 1] for i in range(1, len(parts), 2)}


def same_value(cell: str, value) -> bool:
    """A table cell shows the JSON's value: floats to 4 significant digits, the rest exactly."""
    if value is None:
        return cell == "-"
    if isinstance(value, bool):
        return cell == ("yes" if value else "no")
    if isinstance(value, int):
        return cell == str(value)
    if isinstance(value, float):
        return math.isclose(float(cell), value, rel_tol=5e-4, abs_tol=1e-300)
    return cell == str(value).replace("|", "/").replace("\n", " ")


# --------------------------------------------------------------------------- the full dry run
def test_dry_run_finishes_inside_its_budget(full):
    meta = full["json"]["meta"]
    assert meta["dry_run"] is True and meta["budget_s"] == 60
    assert meta["wall_s"] <= meta["budget_s"]
    assert full["wall"] <= meta["budget_s"], f"the whole process took {full['wall']:.1f} s"
    # every step had its turn: none is left pending, and the budgets handed out never exceed the total
    steps = full["json"]["steps"]
    assert [s["step"] for s in steps] == list(gpu_run.STEPS)
    assert all(s["status"] != "pending" for s in steps)
    assert sum(s["seconds"] for s in steps) <= meta["budget_s"]


def test_dry_run_writes_every_file_with_every_section_filled(full):
    out = full["out"]
    files = sorted(p.name for p in out.iterdir())
    assert len(files) <= 8
    assert set(gpu_run.FILES) <= set(files) <= {*gpu_run.FILES, gpu_run.WEIGHTS_ZIP}
    assert full["json"]["meta"]["files"] == [f for f in (*gpu_run.FILES, gpu_run.WEIGHTS_ZIP) if f in files]
    for name in files:
        assert (out / name).stat().st_size > 0, name
    with Image.open(out / "ops_vs_floor.png") as img:
        assert img.format == "PNG" and img.width >= 800
    md = full["md"]
    found = sections(md)
    assert list(found) == list(gpu_run.SECTIONS)
    for title, body in found.items():
        assert body.strip(), f"section {title!r} is empty"
    for step, title in gpu_run.STEP_TITLES.items():
        status = next(s["status"] for s in full["json"]["steps"] if s["step"] == step)
        assert f"Status: **{status}**" in found[title]
    for key in ("date", "device", "driver", "versions", "command", "budget_s", "wall_s"):
        assert re.search(rf"^- {key}: \S", found["Run"], flags=re.M), key
    assert "--dry-run" in full["json"]["meta"]["command"]
    # the targets are all reported, each met, missed or not measured
    targets = full["json"]["targets"]
    assert len(targets) == 7 and {t["status"] for t in targets} <= {"met", "missed", "not measured"}
    # the steps that ran on this machine fill their tables
    statuses = {s["step"]: s["status"] for s in full["json"]["steps"]}
    if statuses["benchmarks"] in RAN:
        assert full["json"]["tables"]["bench"]["rows"] and full["json"]["tables"]["copy"]["rows"]
    if statuses["retrain"] in RAN:
        rows = full["json"]["tables"]["retrain"]["rows"]
        status = {row[0]: row[3] for row in rows}
        assert rows and set(status) == {run["name"] for run in gpu_run.recipe_runs()}
        if status["deconvnet_vgg16_w25_objects"] == "trained":  # the 2nd stage starts from this run's 1st stage
            assert status["deconvnet_vgg16_w25_scenes"] == "trained"
    if gpu_run.WEIGHTS_ZIP in files:
        assert (out / gpu_run.WEIGHTS_ZIP).stat().st_size < 16 * 2**20
        with zipfile.ZipFile(out / gpu_run.WEIGHTS_ZIP) as z:
            names = z.namelist()
            assert z.testzip() is None
        assert "SHIP.txt" in names and any(n.endswith("/model.safetensors") for n in names)


def test_json_numbers_are_the_numbers_in_the_tables(full):
    md_found = md_tables(full["md"])
    tables = full["json"]["tables"]
    assert set(md_found) == set(tables)
    compared = 0
    for table_id, table in tables.items():
        header, rows = md_found[table_id]
        assert header == table["columns"], table_id
        if not table["rows"]:
            assert rows == [["(none)"] + ["-"] * (len(header) - 1)], table_id
            continue
        assert len(rows) == len(table["rows"]), table_id
        for md_row, json_row in zip(rows, table["rows"], strict=True):
            assert len(md_row) == len(json_row), (table_id, md_row)
            for cell, value in zip(md_row, json_row, strict=True):
                assert same_value(cell, value), (table_id, cell, value)
                compared += isinstance(value, (int, float)) and not isinstance(value, bool)
    assert compared >= 20  # the steps and targets tables alone hold more
    found = sections(full["md"])["Run"]
    for key in ("budget_s", "wall_s"):
        shown = re.search(rf"^- {key}: (\S+)$", found, flags=re.M).group(1)
        assert same_value(shown, full["json"]["meta"][key])


# --------------------------------------------------------------------------- steps given no time
def test_a_step_given_no_time_is_reported_skipped(some_skipped):
    steps = {s["step"]: s for s in some_skipped["json"]["steps"]}
    found = sections(some_skipped["md"])
    for step in ("correctness", "memcheck", "end_to_end", "retrain"):
        assert steps[step]["status"] == "skipped", steps[step]
        assert steps[step]["budget_s"] == 0 and steps[step]["seconds"] == 0
        assert "no time" in steps[step]["note"]
        assert "Status: **skipped**" in found[gpu_run.STEP_TITLES[step]]
    assert steps["benchmarks"]["status"] in RAN  # the one step given time ran
    for log in ("pytest.log", "memcheck.log", "retrain.log"):
        assert "skipped" in (some_skipped["out"] / log).read_text()
    assert not (some_skipped["out"] / gpu_run.WEIGHTS_ZIP).exists()
    targets = {t["target"]: t["status"] for t in some_skipped["json"]["targets"]}
    assert targets["multi-size SPP-net training / fixed-size throughput"] == "not measured"
    assert "passed" not in {s["status"] for s in steps.values()}


# --------------------------------------------------------------------------- pieces, without a run
def test_recipe_runs_put_the_shipped_entries_first():
    runs = gpu_run.recipe_runs()
    shipped = ["sppnet_zf5.scenes", "spp_detector_zf5.scenes", "pspnet_resnet18.scenes", "deconvnet_vgg16.scenes"]
    # the shipped entries first, in the order they ship, each right after the run its --weights names (DeconvNet's
    # first stage), then the from-scratch twins
    assert [r["entry"] for r in runs][:5] == [*shipped[:3], None, shipped[3]]
    assert runs[4]["after"] == runs[3]["output"] and runs[3]["args"][runs[3]["args"].index("--data") + 1] == (
        "scene-objects"
    )
    assert all(r["entry"] is None for r in runs[5:]) and runs[-1]["name"] == "pspnet_resnet18_scratch"
    for run in runs:  # every command is one zoo train call the GPU run can replay (no shell variables)
        assert not any("$" in a for a in run["args"]), run["args"]
    args = gpu_run._override(runs[0]["args"], {"--epochs": "1", "--limit": "8"}, "/tmp/x")
    assert args[args.index("--epochs") + 1] == "1" and args[args.index("--output") + 1] == "/tmp/x"
    assert args[args.index("--limit") + 1] == "8" and "--multi-size" in args


def test_pytest_lines_are_counted():
    out = "\n".join(
        [
            "tests/a.py::test_x[1] PASSED  [ 10%]",
            "tests/a.py::test_y FAILED",
            "tests/b.py::test_z SKIPPED (no)",
            "tests/b.py::test_w ERROR",
            "FAILED tests/a.py::test_y - assert 0",
            "==== 1 failed, 1 passed in 1s ====",
        ]
    )
    assert gpu_run.parse_pytest(out) == {"passed": 1, "failed": 1, "skipped": 1, "errors": 1}


def _report_with(rows, training=None):
    report = gpu_run.Report(gpu_run.make_config(True, None), Path("."), "cmd")
    cols = [
        "case",
        "shape",
        "dtype",
        "pass",
        "impl",
        "median us",
        "bytes",
        "GB/s",
        "% of copy",
        "floor us",
        "vs eager x",
        "vs compiled x",
    ]
    report.table(gpu_run.STEP_TITLES["benchmarks"], "bench", "t", cols, rows)
    if training:
        report.table(
            gpu_run.STEP_TITLES["end_to_end"],
            "training",
            "t",
            ["mode", "sizes", "batch", "steps", "images/s", "megapixels/s", "vs fixed-size"],
            training,
        )
    return {t["target"].split(" ")[0] + ("-bwd" if "backward" in t["target"] else ""): t
            for t in gpu_run.compute_targets(report)}  # fmt: skip


def test_targets_are_met_or_missed_by_the_numbers():
    def row(case, dtype, mode, impl, us, pct=None):
        return [case, "s", dtype, mode, impl, us, 1, 1.0, pct, 1.0, None, None]

    rows = [row("roi_spp", "float32", "forward", "fused", 10.0), row("roi_spp", "float32", "forward", "eager", 31.0),
            row("roi_spp", "float32", "forward+backward", "fused", 30.0),
            row("roi_spp", "float32", "forward+backward", "eager", 69.0),
            row("sppf", "float32", "forward", "fused", 10.0, 85.0), row("sppf", "float32", "forward", "eager", 19.0),
            row("sppf", "float32", "forward", "compiled", 30.0),
            row("psp_pool_avg", "bfloat16", "forward", "fused", 5.0, 79.0),
            row("psp_upsample_concat", "float32", "forward", "fused", 5.0, 81.0)]  # fmt: skip
    t = _report_with(rows, [["fixed-size", "64", 4, 3, 100.0, 1.0, 1.0], ["multi-size", "56,64,72", 4, 3, 89.0, 1.0,
                                                                          0.89]])  # fmt: skip
    assert t["roi_spp"]["status"] == "met" and t["roi_spp"]["measured"] == pytest.approx(3.1)
    assert t["roi_spp-bwd"]["status"] == "missed" and t["roi_spp-bwd"]["measured"] == pytest.approx(38 / 20)
    assert t["SPPF"]["status"] == "missed" and t["SPPF"]["measured"] == pytest.approx(1.9)
    assert t["psp_pool_avg"]["status"] == "missed" and t["psp_upsample_concat"]["status"] == "met"
    assert t["fused"]["status"] == "met" and t["fused"]["measured"] == pytest.approx(1.9)
    assert t["multi-size"]["status"] == "missed" and t["multi-size"]["measured"] == pytest.approx(0.89)
    rows[1][5] = 9.0  # eager faster than fused: the first target is missed
    t = _report_with(rows)
    assert t["fused"]["status"] == "missed" and "roi_spp float32 forward vs eager" in t["fused"]["detail"]
    assert t["multi-size"]["status"] == "not measured"


def test_the_chosen_tests_exist():
    """A renamed test would make the GPU run's pytest step fail on "not found": caught here, on the CPU."""
    for node in [*gpu_run.GPU_TESTS, *gpu_run.DRY_TESTS]:
        path, _, name = node.partition("::")
        assert (ROOT / path).is_file(), node
        if name:
            assert re.search(rf"^def {name}\(", (ROOT / path).read_text(), flags=re.M), node
