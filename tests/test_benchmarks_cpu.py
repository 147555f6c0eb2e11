"""On a machine without CUDA the benchmarks say that the fused kernels were not timed, and label the CPU
reference timings as what they are (never as ``fused``)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(torch.cuda.is_available(), reason="the CPU labelling applies where there is no CUDA device")
def test_cpu_benchmarks_do_not_label_reference_timings_as_fused(tmp_path):
    table = tmp_path / "table.md"
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}  # interpreted timings are skipped
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "benchmarks", "--benchmark-only", "-p", "no:xdist", "-p", "no:cacheprovider",
         "-rs", "-k", "spp_max-fp32-forward-", "--bench-markdown", str(table)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "fused kernels not timed: no CUDA device" in result.stdout  # the skip reason
    rows = [line for line in table.read_text().splitlines() if line.startswith("| spp_max |")]
    assert rows and all("| eager (CPU reference) |" in row for row in rows), rows
    assert "fused kernels not timed: no CUDA device" in table.read_text()
