"""Where an op runs (Triton or the PyTorch reference) and small cached device-side index tables."""

import os
from collections import OrderedDict
from contextlib import contextmanager

import torch

try:  # Triton is a Linux-only dependency; elsewhere every op runs the reference path.
    import triton
except ImportError:  # pragma: no cover
    triton = None

# Read once: Triton itself decides at import (decoration) time whether kernels are interpreted.
INTERPRET = os.environ.get("TRITON_INTERPRET", "0") == "1"


def use_triton(t: torch.Tensor) -> bool:
    """CUDA tensors run the Triton kernels; CPU tensors do too under ``TRITON_INTERPRET=1``."""
    if triton is None:
        return False
    return t.device.type == "cuda" or (INTERPRET and t.device.type == "cpu")


_forced_gpu_tiles = 0


def gpu_tiles() -> bool:
    """Whether launches use the GPU tile configuration (block sizes, num_warps, num_stages).

    Always on a GPU; under the interpreter only when forced, by ``SPP_ZOO_GPU_TILES=1`` in the
    environment (read at each launch) or inside :func:`force_gpu_tiles`. The interpreter's own tiles
    are larger, because it runs one program at a time and pays per program, not per element.
    """
    return not INTERPRET or _forced_gpu_tiles > 0 or os.environ.get("SPP_ZOO_GPU_TILES", "0") == "1"


@contextmanager
def force_gpu_tiles():
    """Run the kernels with the tiles a CUDA launch would use, also under ``TRITON_INTERPRET=1``."""
    global _forced_gpu_tiles
    _forced_gpu_tiles += 1
    try:
        yield
    finally:
        _forced_gpu_tiles -= 1


def next_pow2(n: int) -> int:
    return 1 if n <= 1 else 1 << (n - 1).bit_length()


class _TableCache:
    """LRU of small int/float tables copied to a device once, keyed by shape parameters."""

    def __init__(self, capacity: int = 512):
        self.capacity = capacity
        self._items: OrderedDict = OrderedDict()

    def get(self, key, device: torch.device, build):
        full_key = (key, str(device))
        hit = self._items.get(full_key)
        if hit is not None:
            self._items.move_to_end(full_key)
            return hit
        value = tuple(t.to(device) if isinstance(t, torch.Tensor) else t for t in build())
        self._items[full_key] = value
        if len(self._items) > self.capacity:
            self._items.popitem(last=False)
        return value


tables = _TableCache()


def adaptive_start(i: int, size: int, n: int) -> int:
    """First index of adaptive bin ``i`` of ``n`` over ``size``: floor(i * size / n)."""
    return (i * size) // n


def adaptive_end(i: int, size: int, n: int) -> int:
    """One past the last index of adaptive bin ``i``: ceil((i + 1) * size / n)."""
    return -((-(i + 1) * size) // n)
