"""Hugging Face's PyPI package ``kernels`` installs the same top-level name as ours: ``import zoo`` says so
in one clear error instead of failing somewhere inside."""

import os
import subprocess
import sys


def test_a_foreign_kernels_module_is_named_with_the_fix(tmp_path):
    foreign = tmp_path / "site" / "kernels"
    foreign.mkdir(parents=True)
    (foreign / "__init__.py").write_text('__version__ = "0.4.0"  # stands in for Hugging Face\'s kernels\n')
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    # the foreign package first, then the project (as when both are installed and theirs wins)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "site"), repo])}
    for command in (["-c", "import zoo"], ["-m", "zoo", "list"]):
        result = subprocess.run([sys.executable, *command], env=env, cwd=tmp_path, capture_output=True, text=True)
        assert result.returncode != 0
        last = result.stderr.strip().splitlines()[-1]
        assert last.startswith("ImportError: the module 'kernels' imported from ")
        assert str(foreign / "__init__.py") in last and "Hugging Face" in last and "virtual environment" in last


def test_our_kernels_say_whose_they_are():
    import kernels

    assert kernels.__distribution__ == "spp-zoo"
