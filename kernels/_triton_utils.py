"""Small Triton helpers shared by the kernels."""

import triton
import triton.language as tl


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
