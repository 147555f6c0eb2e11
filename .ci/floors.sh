#!/usr/bin/env bash
# The floor versions: a second virtualenv with the oldest supported versions (.ci/floors.txt, the
# floors declared in pyproject.toml), then the kernel, zoo and ahead-of-time compile tests in it.
# SPP_FLOORS_VENV chooses where the environment lives (default .venv-floors; reused when present).
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${SPP_FLOORS_VENV:-.venv-floors}"
python -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet -c .ci/floors.txt -e ".[dev]"
"$venv/bin/python" - <<'PY'
from importlib.metadata import version
pins = dict(line.split("==") for line in open(".ci/floors.txt") if "==" in line and not line.startswith("#"))
got = {name: version(name) for name in pins}
assert got == {k: v.strip() for k, v in pins.items()}, f"floor environment drifted: {got}"
print("floor versions:", ", ".join(f"{k}=={v}" for k, v in got.items()))
PY
echo "floor environment ready after ${SECONDS} s"
# one process per core, whole files per process (the compile test builds its table once)
# (triton 3.6's interpreter converts 1-element arrays to scalars: numpy warns on every such call)
TRITON_INTERPRET=1 "$venv/bin/python" -m pytest -q -n auto --dist loadfile \
    -W "ignore:Conversion of an array with ndim > 0:DeprecationWarning" tests/test_kernels_*.py tests/test_zoo_*.py tests/test_hub*.py
# the GPU run's rehearsal at the GPU machines' versions (these floors): its imports and calls work there
"$venv/bin/python" -m benchmarks.gpu_run --dry-run --out "$(mktemp -d)"
echo "floors step: ${SECONDS} s"
