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
    assert ci.index(install) < ci.index(test) and ci[-1] == test


def test_readme_model_table_is_the_registry():
    """The README's model table is what ``python -m zoo list --markdown`` prints (regenerate it with that)."""
    import subprocess
    import sys

    readme = ROOT.joinpath("README.md").read_text()
    table = readme.split("<!-- model-table:start -->\n", 1)[1].split("<!-- model-table:end -->", 1)[0].strip()
    printed = subprocess.run([sys.executable, "-m", "zoo", "list", "--markdown"], cwd=ROOT, capture_output=True,
                             text=True, check=True, timeout=300).stdout.strip()  # fmt: skip
    assert table == printed
