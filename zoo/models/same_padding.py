"""Convolution with TensorFlow / MindSpore ``pad_mode="same"`` padding, computed from the input size.

"same" gives an output of ``ceil(size / stride)`` per side, whatever the size: the padding it needs,
``max(0, (out - 1) * stride + kernel - size)``, depends on the input size and goes ``need // 2`` on
the top (left) and the rest on the bottom (right), so an odd need pads one more pixel at the end.
PyTorch's ``padding="same"`` exists only for stride 1, and a fixed ``padding=`` cannot follow the input
size, so :class:`SameConv2d` pads explicitly before a plain convolution.

The padding is computed with integer arithmetic on ``x.shape`` in :func:`pad_same`, a function
``torch.fx`` records as one call (so FX traces run it on the real input sizes), that TorchScript
compiles as it is, and that ``torch.export`` traces with symbolic sizes (dynamic height and width).
"""

import torch.fx
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["same_padding", "pad_same", "SameConv2d"]


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """(before, after) padding of one side of length ``size`` under "same": out = ceil(size / stride)."""
    out = (size + stride - 1) // stride
    need = (out - 1) * stride + kernel - size
    if kernel < stride:  # kernel >= stride needs no clamp (need >= kernel - stride): no guard when exported
        need = max(0, need)
    return need // 2, need - need // 2


def pad_same(x: Tensor, kernel: list[int], stride: list[int]) -> Tensor:
    """``x`` (N, C, H, W) zero-padded for a "same" window of ``kernel`` (kh, kw) and ``stride`` (sh, sw)."""
    top, bottom = same_padding(x.shape[-2], kernel[0], stride[0])
    left, right = same_padding(x.shape[-1], kernel[1], stride[1])
    return F.pad(x, [left, right, top, bottom])


# FX: one call node, run on the real input when the traced module runs (the amounts follow the input size)
torch.fx.wrap("pad_same")


class SameConv2d(nn.Conv2d):
    """``nn.Conv2d`` with "same" padding (TensorFlow, MindSpore ``pad_mode="same"``): output ceil(H/s) x ceil(W/s).

    Same parameters (``weight``, ``bias``) and arguments as ``nn.Conv2d`` except ``padding``, which is
    computed from each input's size (asymmetric when the need is odd: the extra pixel at the bottom/right).
    Dilation is not supported (MindSpore's network does not use it).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, bias: bool = True, groups: int = 1):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=0, bias=bias, groups=groups)
        self.same_kernel = [int(k) for k in self.kernel_size]
        self.same_stride = [int(s) for s in self.stride]

    def forward(self, x: Tensor) -> Tensor:
        return self._conv_forward(pad_same(x, self.same_kernel, self.same_stride), self.weight, self.bias)

    def extra_repr(self) -> str:
        return super().extra_repr() + ", padding=same (TF/MindSpore)"
