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
    assert hubconf.dependencies[:2] == ["torch", "torchvision"]
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
