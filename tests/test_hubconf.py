"""hubconf.py: dependencies, one documented entry point per model, torch.hub.load from the checkout."""

import importlib.util
import pathlib
import subprocess
import sys

import torch

import zoo

REPO = pathlib.Path(__file__).resolve().parents[1]


def _load_hubconf():
    spec = importlib.util.spec_from_file_location("spp_zoo_hubconf", REPO / "hubconf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_hubconf_has_an_entry_point_per_model_with_docstrings():
    hubconf = _load_hubconf()
    assert hubconf.dependencies == ["torch", "torchvision", "safetensors", "huggingface_hub"]
    for name in hubconf.dependencies:
        assert importlib.util.find_spec(name) is not None, name
    public = {n for n in dir(hubconf) if callable(getattr(hubconf, n)) and not n.startswith("_")}
    assert set(zoo.list_models()) <= public
    for name in zoo.list_models():
        entry = getattr(hubconf, name)
        assert entry is zoo.get_model_builder(name)
        assert entry.__doc__ and len(entry.__doc__.strip()) > 40


def test_importing_hubconf_builds_nothing():
    code = (
        "import sys, torch; built = []\n"
        "orig = torch.nn.Module.__init__\n"
        "torch.nn.Module.__init__ = lambda self, *a, **k: (built.append(type(self)), orig(self, *a, **k))[1]\n"
        f"sys.path.insert(0, {str(REPO)!r}); import hubconf\n"
        "assert not built, built\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_torch_hub_load_local_returns_a_working_model():
    model = torch.hub.load(str(REPO), "pspnet_resnet50", source="local", weights=None, num_classes=3)
    assert isinstance(model, zoo.PSPNet)
    model.eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 41, 33))["out"]
    assert out.shape == (1, 3, 41, 33)


def _default_entry() -> tuple[str, str]:
    """(model, "Enum.ENTRY") of the first model whose DEFAULT weights ship with the package."""
    import zoo.hub

    for name in zoo.list_models():
        enum = zoo.get_model_weights(name)
        if "DEFAULT" in enum.__members__ and zoo.hub.shipped_directory(enum.DEFAULT.repo) is not None:
            return name, f"{enum.__name__}.{enum.DEFAULT.name}"
    raise AssertionError("no weights entry ships with the package")


HUB_SCRIPT = """
import json, sys, torch
model = torch.hub.load({repo!r}, {name!r}, {source}weights="DEFAULT", progress=False)
import zoo
entry = zoo.get_weight({entry!r})
reference = zoo.get_model({name!r}, weights=entry).eval()
model.eval()
same = all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), reference.state_dict().values()))
print(json.dumps({{"same": same, "zoo": zoo.__file__, "weights": model.zoo_config.get("weights")}}))
"""


def _run_offline(script: str, tmp_path: pathlib.Path, **env) -> dict:
    import json
    import os

    environ = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    environ.update(HF_HUB_OFFLINE="1", HF_HUB_CACHE=str(tmp_path / "hf"), TORCH_HOME=str(tmp_path / "torch"), **env)
    result = subprocess.run([sys.executable, "-W", "ignore", "-c", script], env=environ, capture_output=True,
                            text=True, timeout=300, cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_torch_hub_load_local_with_weights_offline(tmp_path):
    name, entry = _default_entry()
    script = HUB_SCRIPT.format(repo=str(REPO), name=name, source="source='local', ", entry=entry)
    result = _run_offline(script, tmp_path, PYTHONPATH=str(REPO))
    assert result["same"] and result["weights"] == entry


def test_torch_hub_load_github_tag_from_a_preseeded_cache(tmp_path):
    """``torch.hub.load('<owner>/spp-zoo:<tag>', ...)`` with the repository already in ``$TORCH_HOME/hub``
    (as a first, connected call leaves it): no network, and the cached copy of the code is the one imported."""
    import shutil

    name, entry = _default_entry()
    cached = tmp_path / "torch" / "hub" / "spp-zoo_spp-zoo_v0.1.0"
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True,
                           text=True, check=True).stdout.split()  # fmt: skip
    for relative in files:
        if (REPO / relative).is_file() and relative.split("/")[0] in ("zoo", "kernels", "hubconf.py"):
            (cached / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(REPO / relative, cached / relative)
    script = "import torch; torch.hub.set_dir({!r})\n".format(str(tmp_path / "torch" / "hub")) + HUB_SCRIPT.format(
        repo="spp-zoo/spp-zoo:v0.1.0", name=name, source="trust_repo=True, ", entry=entry
    )
    result = _run_offline(script, tmp_path)
    assert result["same"] and result["weights"] == entry
    assert result["zoo"].startswith(str(cached)), result["zoo"]
