"""The README's two set-up commands are the ones CI runs."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    setup = ROOT.joinpath("README.md").read_text().split("## Set-up", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", setup)


def test_readme_has_two_setup_commands():
    commands = _readme_commands()
    assert len(commands) == 2, commands
    assert commands[0].startswith('pip install -e ".[dev]" && ')


def test_ci_runs_the_readme_install_and_test_commands():
    install, test = _readme_commands()[0].split(" && ")[0], _readme_commands()[1]
    ci = [line for line in ROOT.joinpath(".ci/run").read_text().splitlines() if line and not line.startswith("#")]
    assert install in ci and test in ci
    # after the README's test command, only the GPU run's rehearsal and the floor-versions step (its own virtualenv)
    dry_run = 'python -m benchmarks.gpu_run --dry-run --out "$(mktemp -d)"'
    assert ci.index(install) < ci.index(test) and ci[ci.index(test) + 1 :] == [dry_run, ".ci/floors.sh"]


def _pins() -> dict[str, str]:
    lines = ROOT.joinpath(".ci/floors.txt").read_text().splitlines()
    return dict(line.split("==") for line in lines if line and not line.startswith("#"))


def test_declared_floors_are_the_tested_versions():
    """pyproject.toml's floors are exactly what .ci/floors.sh installs, and the README names them."""
    text = ROOT.joinpath("pyproject.toml").read_text()
    deps = text.split("dependencies = [", 1)[1].split("]", 1)[0]
    floors = dict(re.findall(r'"([A-Za-z0-9_.-]+)>=([0-9.]+)', deps))
    pins = _pins()
    assert {name: pins.get(name) for name in floors} == floors
    assert set(pins) == set(floors)
    readme = ROOT.joinpath("README.md").read_text().split("### Tested versions", 1)[1].split("\n## ", 1)[0]
    for name, version in floors.items():
        assert f"{name} {version}" in readme


def test_readme_model_table_is_the_registry():
    """The README's model table is what ``python -m zoo list --markdown`` prints (regenerate it with that)."""
    import subprocess
    import sys

    readme = ROOT.joinpath("README.md").read_text()
    table = readme.split("<!-- model-table:start -->\n", 1)[1].split("<!-- model-table:end -->", 1)[0].strip()
    printed = subprocess.run([sys.executable, "-m", "zoo", "list", "--markdown"], cwd=ROOT, capture_output=True,
                             text=True, check=True, timeout=300).stdout.strip()  # fmt: skip
    assert table == printed


def test_readme_loading_example_runs_offline(tmp_path):
    """The README's first loading example (Pretrained weights section) runs as written, offline, in a checkout."""
    import os
    import subprocess
    import sys

    section = ROOT.joinpath("README.md").read_text().split("## Pretrained weights", 1)[1]
    example = re.findall(r"```python\n(.+?)\n```", section, re.S)[0]
    example = example.replace('"my-model"', repr(str(tmp_path / "my-model")))  # written beside the test, not the repo
    example += "\nassert logits.shape == (1, 11, 128, 128), logits.shape\nprint('ok')"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(HF_HUB_OFFLINE="1", HF_HUB_CACHE=str(tmp_path / "hf"), TORCH_HOME=str(tmp_path / "torch"))
    result = subprocess.run([sys.executable, "-W", "ignore", "-c", example], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=600)  # fmt: skip
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stderr[-3000:]


def test_readme_photo_to_segmentation_example_runs(tmp_path):
    """The README's path from an image file to a drawn segmentation and detections runs as written."""
    import os
    import subprocess
    import sys

    section = ROOT.joinpath("README.md").read_text().split("### From a photo to a segmentation and detections", 1)[1]
    example = re.findall(r"```python\n(.+?)\n```", section, re.S)[0]
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    result = subprocess.run([sys.executable, "-W", "ignore", "-c", example], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    from PIL import Image

    for name in ("segmentation.png", "detections.png"):
        with Image.open(tmp_path / name) as picture:
            assert picture.size == Image.open(ROOT / "zoo/data/examples/scene_test_0005.png").size
