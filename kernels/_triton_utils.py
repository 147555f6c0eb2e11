"""Small Triton helpers shared by the kernels."""

import torch
import triton
import triton.language as tl

_TL_DTYPES = {torch.float16: tl.float16, torch.bfloat16: tl.bfloat16, torch.float32: tl.float32,
              torch.float64: tl.float64}


def tl_dtype(dtype: torch.dtype):
    """The Triton dtype of a torch floating dtype."""
    return _TL_DTYPES[dtype]


def acc_dtype(dtype: torch.dtype):
    """Accumulator / compute dtype of the kernels: float64 for float64 inputs, float32 otherwise."""
    return tl.float64 if dtype == torch.float64 else tl.float32


@triton.jit
def round_to(v, OUT: tl.constexpr):
    """Round ``v`` (fp32 or fp64) to dtype ``OUT`` with round-to-nearest-even; result keeps v's dtype.

    bfloat16 is rounded by hand so that the Triton interpreter (whose cast truncates) and GPUs agree.
    """
    if OUT == tl.bfloat16:
        f = v.to(tl.float32)
        bits = f.to(tl.uint32, bitcast=True)
        bits = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
        return tl.where(f != f, f, bits.to(tl.float32, bitcast=True)).to(v.dtype)
    else:
        return v.to(OUT).to(v.dtype)


@triton.jit
def div(a, b, ACC: tl.constexpr):
    """Correctly rounded division in the accumulator dtype (Triton's fp32 ``/`` is approximate)."""
    if ACC == tl.float64:
        return a / b
    else:
        return tl.math.div_rn(a, b)
