"""Shared test helpers: layouts, dtypes, comparisons against CPU references."""

import torch
from hypothesis import strategies as st

DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]
LAYOUTS = ["contiguous", "channels_last", "strided", "transposed"]


def with_layout(x: torch.Tensor, layout: str) -> torch.Tensor:
    """The same values as ``x`` in another memory layout."""
    if layout == "contiguous":
        return x.contiguous()
    if layout == "channels_last":
        return x.to(memory_format=torch.channels_last)
    if layout == "strided":  # every other channel and column of a larger tensor
        N, C, H, W = x.shape
        big = torch.zeros((N, 2 * C, H, 2 * W), dtype=x.dtype, device=x.device)
        big[:, ::2, :, ::2] = x
        return big[:, ::2, :, ::2]
    if layout == "transposed":
        return x.transpose(2, 3).contiguous().transpose(2, 3)
    raise ValueError(layout)


def make_input(shape, dtype, device, ties: bool, layout: str = "contiguous") -> torch.Tensor:
    if ties:  # a few distinct values: many equal maxima
        x = torch.randint(-2, 3, shape).to(dtype)
    else:
        x = torch.randn(shape, dtype=torch.float64).to(dtype)
    return with_layout(x.to(device), layout)


def assert_same(actual: torch.Tensor, expected: torch.Tensor) -> None:
    """Bitwise equal values (NaN equal to NaN), same shape and dtype."""
    assert actual.shape == expected.shape and actual.dtype == expected.dtype
    torch.testing.assert_close(actual.cpu(), expected.cpu(), rtol=0, atol=0, equal_nan=True)


def tolerance(dtype: torch.dtype) -> dict:
    return {
        torch.float64: dict(rtol=1e-12, atol=1e-12),
        torch.float32: dict(rtol=1e-5, atol=1e-6),
        torch.float16: dict(rtol=2e-3, atol=2e-3),
        torch.bfloat16: dict(rtol=1.6e-2, atol=1.6e-2),
    }[dtype]


def assert_near(actual: torch.Tensor, expected: torch.Tensor, dtype: torch.dtype, scale: float = 1.0) -> None:
    assert actual.shape == expected.shape and actual.dtype == expected.dtype
    tol = {k: v * scale for k, v in tolerance(dtype).items()}
    torch.testing.assert_close(actual.cpu().double(), expected.cpu().double(), equal_nan=True, **tol)


def grad_of(fn, x: torch.Tensor, grad_out: torch.Tensor, *args) -> tuple[torch.Tensor, torch.Tensor]:
    """Output and input gradient of ``fn(x, *args)`` for the upstream gradient ``grad_out``."""
    leaf = x.detach().clone().requires_grad_(True)
    out = fn(leaf, *args)
    out.backward(grad_out.to(out.device))
    return out.detach(), leaf.grad


def cpu_copy(x: torch.Tensor) -> torch.Tensor:
    """The same values on the CPU, same layout (references run on CPU: deterministic)."""
    return x.detach().cpu()


levels_strategy = st.lists(st.sampled_from([1, 2, 3, 4, 5, 6, 7, 8]), min_size=1, max_size=4)
