"""Test helpers: MindSpore's SppNet written independently of the zoo.

- :func:`ckpt_bytes` writes a ``.ckpt`` exactly as ``mindspore.save_checkpoint`` does (one single-value
  ``Checkpoint`` message per slice, hand-encoded here in the protobuf wire format: proto2 fields in number
  order, ``dims`` unpacked; a tensor split with ``numpy.array_split`` along its first axis, each slice with
  the full dims).
- :func:`ms_forward` is MindSpore's ``SppNet(train_model="sppnet_mult")`` forward in eval mode, written from
  the definitions of its operators: Conv2d ``pad_mode="same"``, ``P.LRN()`` (TensorFlow's formula), MaxPool2d
  ``pad_mode="valid"`` and its ``SpatialPyramidPool`` window rule, not from the zoo's modules.
"""

import math

import numpy as np
import torch
import torch.nn.functional as F

#: MindSpore SppNet parameter shapes at trunk width ``w`` (channels 96/256/384/384/256 times w),
#: fc width ``rep`` and ``classes`` outputs.


def sppnet_shapes(c=(96, 256, 384, 384, 256), rep=4096, classes=1000) -> dict[str, tuple[int, ...]]:
    c1, c2, c3, c4, c5 = c
    return {
        "conv1.weight": (c1, 3, 7, 7), "conv1.bias": (c1,),
        "conv2.weight": (c2, c1, 5, 5), "conv2.bias": (c2,),
        "conv3.weight": (c3, c2, 3, 3), "conv3.bias": (c3,),
        "conv4.weight": (c4, c3, 3, 3), "conv4.bias": (c4,),
        "conv5.weight": (c5, c4, 3, 3), "conv5.bias": (c5,),
        "fc1.weight": (rep, c5 * 50), "fc1.bias": (rep,),
        "fc2.weight": (rep, rep), "fc2.bias": (rep,),
        "fc3.weight": (classes, rep), "fc3.bias": (classes,),
    }  # fmt: skip


def random_weights(shapes: dict, seed: int = 0) -> dict[str, np.ndarray]:
    """He-scaled random float32 weights (activations stay O(1) through the network)."""
    rng = np.random.default_rng(seed)
    out = {}
    for key, shape in shapes.items():
        fan_in = math.prod(shape[1:]) if len(shape) > 1 else 1
        scale = math.sqrt(2.0 / fan_in) if key.endswith("weight") else 0.1
        out[key] = (rng.standard_normal(shape) * scale).astype(np.float32)
    return out


# ------------------------------------------------------------------------------------ protobuf wire format
def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _len_field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def value_message(tag: str, dims, tensor_type: str, content: bytes) -> bytes:
    """One single-value ``Checkpoint`` message: ``value { tag, tensor { dims..., tensor_type, tensor_content } }``."""
    tensor = b"".join(_varint(1 << 3 | 0) + _varint(int(d)) for d in dims)
    tensor += _len_field(2, tensor_type.encode()) + _len_field(3, content)
    return _len_field(1, _len_field(1, tag.encode()) + _len_field(2, tensor))


_TYPES = {np.dtype(np.float32): "Float32", np.dtype(np.float16): "Float16", np.dtype(np.int32): "Int32",
          np.dtype(np.int64): "Int64", np.dtype(np.float64): "Float64"}  # fmt: skip


def ckpt_bytes(entries, slices: dict[str, int] | None = None) -> bytes:
    """A MindSpore checkpoint of ``entries`` ((tag, numpy array) in order); ``slices[tag]`` splits that
    tensor into so many values (``numpy.array_split`` along axis 0, as MindSpore's serializer). A 0-d array
    is written with dims ``[0]``, as MindSpore writes scalars."""
    slices = slices or {}
    out = bytearray()
    for tag, array in entries:
        array = np.asarray(array)
        dims = [0] if array.ndim == 0 else list(array.shape)
        parts = np.array_split(array, slices[tag]) if tag in slices else [array]
        for part in parts:
            out += value_message(tag, dims, _TYPES[array.dtype], part.astype(array.dtype.newbyteorder("<")).tobytes())
    return bytes(out)


# ------------------------------------------------------------------------------------ MindSpore's operators
def ms_same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """MindSpore / TF "same": the total is ``kernel - (size % stride or stride)`` (never negative), top gets half."""
    total = max(kernel - (size % stride or stride), 0)
    return total // 2, total - total // 2


def ms_conv_same(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, stride: int) -> torch.Tensor:
    n, c, h, w = x.shape
    k = weight.shape[-1]
    (top, bottom), (left, right) = ms_same_padding(h, k, stride), ms_same_padding(w, k, stride)
    canvas = x.new_zeros(n, c, h + top + bottom, w + left + right)
    canvas[:, :, top : top + h, left : left + w] = x
    out = F.conv2d(canvas, weight, bias, stride=stride)
    assert out.shape[-2:] == (math.ceil(h / stride), math.ceil(w / stride))
    return out


def ms_lrn(x: torch.Tensor, depth_radius: int = 5, bias: float = 1.0, alpha: float = 1.0, beta: float = 0.5):
    """TF / MindSpore LRN: ``x / (bias + alpha * sum(x[c-r .. c+r] ** 2)) ** beta`` over channels."""
    squares = x.double() ** 2
    channels = x.shape[1]
    sums = torch.stack([squares[:, max(0, c - depth_radius) : c + depth_radius + 1].sum(1) for c in range(channels)], 1)
    return (x.double() / (bias + alpha * sums) ** beta).to(x.dtype)


def ms_max_pool_valid(x: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    """Max pooling without padding, floor rounding: out = (n - kernel) // stride + 1, from the windows."""
    h, w = x.shape[-2:]
    oh, ow = (h - kernel) // stride + 1, (w - kernel) // stride + 1
    rows = [
        torch.stack([x[..., i * stride : i * stride + kernel, j * stride : j * stride + kernel].amax((-2, -1))
                     for j in range(ow)], -1)
        for i in range(oh)
    ]  # fmt: skip
    return torch.stack(rows, -2)


def ms_spp(x: torch.Tensor, levels=(6, 3, 2, 1)) -> torch.Tensor:
    """MindSpore's ``SpatialPyramidPool`` on a square map (window ceil(a/n), stride floor(a/n), valid; n=1 global)."""
    size = x.shape[-1]
    assert x.shape[-2] == size and size != 10, "MindSpore's 180-input special case is not modelled here"
    out = []
    for n in levels:
        if n == 1:
            pooled = x.amax((2, 3), keepdim=True)
        else:
            pooled = ms_max_pool_valid(x, math.ceil(size / n), size // n)
            assert pooled.shape[-1] == n
        out.append(pooled.reshape(x.shape[0], -1))
    return torch.cat(out, 1)


def ms_trunk(x: torch.Tensor, w: dict[str, torch.Tensor]) -> torch.Tensor:
    x = ms_max_pool_valid(ms_lrn(torch.relu(ms_conv_same(x, w["conv1.weight"], w["conv1.bias"], 2))), 3, 2)
    x = ms_max_pool_valid(ms_lrn(torch.relu(ms_conv_same(x, w["conv2.weight"], w["conv2.bias"], 2))), 3, 2)
    for i in (3, 4, 5):
        x = torch.relu(F.conv2d(x, w[f"conv{i}.weight"], w[f"conv{i}.bias"], padding=1))
    return x


def ms_forward(x: torch.Tensor, w: dict[str, torch.Tensor]) -> torch.Tensor:
    """MindSpore SppNet logits (eval: dropout off)."""
    v = ms_spp(ms_trunk(x, w))
    v = torch.relu(F.linear(v, w["fc1.weight"], w["fc1.bias"]))
    v = torch.relu(F.linear(v, w["fc2.weight"], w["fc2.bias"]))
    return F.linear(v, w["fc3.weight"], w["fc3.bias"])
