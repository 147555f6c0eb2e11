import os

import pytest
import torch
from hypothesis import HealthCheck, settings

import kernels._runtime as runtime
from kernels._runtime import INTERPRET, triton, use_triton

settings.register_profile(
    "default",
    max_examples=int(os.environ.get("SPP_HYPOTHESIS_EXAMPLES", "12")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile("default")


def kernel_device() -> torch.device | None:
    """Where the Triton kernels run in this session: CUDA, else the CPU under TRITON_INTERPRET=1."""
    if triton is None:
        return None
    if torch.cuda.is_available() and not INTERPRET:
        return torch.device("cuda")
    if INTERPRET:
        return torch.device("cpu")
    return None


@pytest.fixture
def device() -> torch.device:
    dev = kernel_device()
    if dev is None:
        pytest.skip("Triton kernels need a CUDA GPU or TRITON_INTERPRET=1")
    assert use_triton(torch.empty(0, device=dev)), "the kernel path must be the one under test"
    return dev


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(autouse=True)
def _models_use_the_pytorch_dispatch(request, monkeypatch):
    """Model tests run the ops' PyTorch path on the CPU, since the interpreter would take minutes on
    model-sized maps. Tests marked ``triton_path`` (kernel path against reference path, at small
    widths) keep the Triton kernels."""
    is_model_test = request.node.path.name.startswith(("test_zoo_", "test_hubconf"))
    if is_model_test and request.node.get_closest_marker("triton_path") is None:
        monkeypatch.setattr(runtime, "INTERPRET", False)
