"""MindSpore ``.ckpt`` checkpoints: a safe reader, and the converter of MindSpore's ImageNet SPP-net.

**The file format** (MindSpore's ``checkpoint.proto``, proto2)::

    message TensorProto { repeated int64 dims = 1; required string tensor_type = 2; required bytes tensor_content = 3; }
    message Checkpoint { message Value { required string tag = 1; required TensorProto tensor = 2; }
                         repeated Value value = 1; }

``mindspore.save_checkpoint`` writes one single-value ``Checkpoint`` message per tensor, one after the
other (no header, no CRC unless asked for, no pickle), so the whole file parses as one ``Checkpoint``
whose ``value`` list holds every tensor in order. ``tensor_type`` names the element type (``"Float32"``,
``"Float16"``, ...), ``tensor_content`` holds the elements in C order, little-endian, and ``dims`` the
shape (``[0]`` for a scalar). A tensor larger than the slice size (512 MiB) is written as several
consecutive values with the same tag and the full ``dims``, each holding a slice along the first axis:
they are concatenated. :func:`read_checkpoint` parses the messages with the ``protobuf`` package, its
classes built at run time from the definition above (no ``protoc``, no generated file, no MindSpore),
walking the file value by value through a memory map, so that only the requested tensors are ever copied
(a training checkpoint also holds the optimizer's moments: twice the network's size).

**The network**: ``SppNet(train_model="sppnet_mult")`` of mindspore-ai/models (``research/cv/SPPNet``),
published on the MindSpore hub as ``sppnet_mult`` (ImageNet-1k). Its parameters ``conv1..conv5`` and
``fc1..fc3`` (weight and bias, PyTorch's layouts) are :func:`zoo.sppnet_zf5`'s, and its trunk computes
what ``sppnet_zf5(layout="mindspore")`` computes (see :class:`zoo.models.backbones.ZF5`). Its SPP layer
exists for 224 (conv5 13 x 13) and 180 (10 x 10) inputs only; at 224 its windows are exactly the
adaptive bins of :class:`kernels.SpatialPyramidPool`, so the converted model gives MindSpore's output
there (at 180 MindSpore's 6 x 6 level pads the map and pools 2 x 2, which differs from adaptive bins).
"""

from __future__ import annotations

import math
import mmap
import os
import sys
from collections.abc import Iterable, Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torchvision.models._meta import _IMAGENET_CATEGORIES

from ..hub.files import METADATA_KEYS
from ..hub.pretrained import save_pretrained
from ..models.conversion import register_converter
from ..models.presets import IMAGENET_MEAN, IMAGENET_STD
from ..models.sppnet import MINDSPORE_DISCLAIMER, MINDSPORE_SOURCE, SPPNet, sppnet_zf5

__all__ = [
    "MINDSPORE_TO_ZOO",
    "checkpoint_classes",
    "from_mindspore",
    "hub_metadata",
    "mindspore_folder",
    "read_checkpoint",
]

#: MindSpore SppNet parameter -> :class:`~zoo.models.sppnet.SPPNet` state-dict key.
MINDSPORE_TO_ZOO = {
    **{f"conv{i}.{p}": f"features.conv{i}.{p}" for i in range(1, 6) for p in ("weight", "bias")},
    "fc1.weight": "fc6.0.weight",
    "fc1.bias": "fc6.0.bias",
    "fc2.weight": "fc7.0.weight",
    "fc2.bias": "fc7.0.bias",
    "fc3.weight": "classifier.weight",
    "fc3.bias": "classifier.bias",
}

#: ``tensor_type`` -> torch dtype (element size from the dtype). MindSpore's names, as its serializer writes them.
TENSOR_TYPES = {
    "Float16": torch.float16,
    "Float32": torch.float32,
    "Float64": torch.float64,
    "BFloat16": torch.bfloat16,
    "Int8": torch.int8,
    "Int16": torch.int16,
    "Int32": torch.int32,
    "Int64": torch.int64,
    "UInt8": torch.uint8,
    "Bool": torch.bool,
}

LICENSE = "Apache-2.0"


# ------------------------------------------------------------------------------------------- protobuf
@cache
def checkpoint_classes() -> tuple[type, type, type]:
    """The message classes ``(Checkpoint, Checkpoint.Value, TensorProto)`` of MindSpore's ``checkpoint.proto``,
    built at run time in a private descriptor pool (no generated code, no clash with a MindSpore install)."""
    # protobuf is imported when a checkpoint is read: importing zoo must not need it (the GPU machines lack it)
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    fdp = descriptor_pb2.FileDescriptorProto(name="spp_zoo_ms_checkpoint.proto", package="spp_zoo_ms", syntax="proto2")
    F = descriptor_pb2.FieldDescriptorProto
    message = F.TYPE_MESSAGE
    tensor = fdp.message_type.add(name="TensorProto")
    tensor.field.add(name="dims", number=1, label=F.LABEL_REPEATED, type=F.TYPE_INT64)
    tensor.field.add(name="tensor_type", number=2, label=F.LABEL_REQUIRED, type=F.TYPE_STRING)
    tensor.field.add(name="tensor_content", number=3, label=F.LABEL_REQUIRED, type=F.TYPE_BYTES)
    checkpoint = fdp.message_type.add(name="Checkpoint")
    value = checkpoint.nested_type.add(name="Value")
    value.field.add(name="tag", number=1, label=F.LABEL_REQUIRED, type=F.TYPE_STRING)
    value.field.add(name="tensor", number=2, label=F.LABEL_REQUIRED, type=message, type_name=".spp_zoo_ms.TensorProto")
    values = checkpoint.field.add(name="value", number=1, label=F.LABEL_REPEATED, type=message)
    values.type_name = ".spp_zoo_ms.Checkpoint.Value"
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    classes = (
        message_factory.GetMessageClass(pool.FindMessageTypeByName(name))
        for name in ("spp_zoo_ms.Checkpoint", "spp_zoo_ms.Checkpoint.Value", "spp_zoo_ms.TensorProto")
    )
    return tuple(classes)


def _varint(data, pos: int, end: int, where: str) -> tuple[int, int]:
    """A protobuf base-128 varint of ``data`` at ``pos``: (value, next position)."""
    result = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise ValueError(f"{where}: truncated or corrupt protobuf (bad varint at byte {pos})")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _records(data, where: str) -> Iterator[tuple[int, int]]:
    """(start, end) of every ``Checkpoint.value`` (field 1, length-delimited) in a serialized ``Checkpoint``;
    other fields are skipped by wire type, as a protobuf parser does."""
    pos, end = 0, len(data)
    while pos < end:
        key, pos = _varint(data, pos, end, where)
        field, wire = key >> 3, key & 7
        if wire == 2:
            length, pos = _varint(data, pos, end, where)
            if pos + length > end:
                raise ValueError(f"{where}: truncated file (a value of {length} bytes runs past the end)")
            if field == 1:
                yield pos, pos + length
            pos += length
        elif wire == 0:
            _, pos = _varint(data, pos, end, where)
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
        else:
            raise ValueError(f"{where}: not a MindSpore checkpoint (protobuf wire type {wire} at byte {pos})")
    if pos != end:
        raise ValueError(f"{where}: truncated file")


def _peek_tag(data, start: int, end: int, where: str) -> str | None:
    """The tag of a serialized ``Value`` when it comes first (as every serializer writes it), else None."""
    key, pos = _varint(data, start, end, where)
    if key != (1 << 3 | 2):
        return None
    length, pos = _varint(data, pos, end, where)
    if pos + length > end:
        raise ValueError(f"{where}: truncated value")
    return bytes(data[pos : pos + length]).decode("utf-8", errors="replace")


class _Parts:
    """The consecutive values of one tag: their contents are concatenated into one tensor."""

    def __init__(self, tag: str, dims: list[int], tensor_type: str):
        self.tag, self.dims, self.tensor_type, self.contents = tag, dims, tensor_type, []

    def tensor(self, where: str) -> Tensor:
        dtype = TENSOR_TYPES.get(self.tensor_type)
        if dtype is None:
            known = ", ".join(TENSOR_TYPES)
            raise ValueError(f"{where}: tensor {self.tag!r} has tensor_type {self.tensor_type!r} (readable: {known})")
        shape = [] if self.dims == [0] else self.dims  # MindSpore writes a scalar's dims as [0]
        if any(d < 0 for d in shape):
            raise ValueError(f"{where}: tensor {self.tag!r} has negative dims {self.dims}")
        itemsize = torch.empty((), dtype=dtype).element_size()
        expected = math.prod(shape) * itemsize
        total = sum(len(c) for c in self.contents)
        if total != expected:
            raise ValueError(
                f"{where}: tensor {self.tag!r} holds {total} bytes in {len(self.contents)} value(s), "
                f"expected {expected} for {self.tensor_type} of shape {shape}"
            )
        raw = torch.empty(total, dtype=torch.uint8)
        out, offset = raw.numpy(), 0
        for content in self.contents:
            out[offset : offset + len(content)] = memoryview(content)
            offset += len(content)
        self.contents = []
        return raw.view(dtype).reshape(shape)


def read_checkpoint(source: str | os.PathLike | bytes, tags: Iterable[str] | None = None) -> dict[str, Tensor]:
    """The tensors of a MindSpore ``.ckpt`` (a path or the file's bytes), by tag, in their stored dtype.

    ``tags``: read only these (others, e.g. optimizer moments, are skipped without being copied);
    ``None`` reads every tensor. Values with the same tag in a row (a tensor saved in slices) are
    concatenated. Raises ``ValueError`` on a corrupt or truncated file, a tensor whose byte count does not
    fit its dims, a tag repeated apart from its run, or an unreadable ``tensor_type`` of a requested tag.
    """
    from google.protobuf.message import DecodeError

    if sys.byteorder != "little":  # the file is little-endian; no big-endian host runs the zoo
        raise RuntimeError("reading MindSpore checkpoints needs a little-endian machine")
    wanted = None if tags is None else set(tags)
    if wanted is not None and not all(isinstance(t, str) for t in wanted):
        raise TypeError(f"tags must be strings, got {sorted(map(repr, wanted))}")
    _, value_class, _ = checkpoint_classes()
    with _open(source) as (data, where):
        result: dict[str, Tensor] = {}
        run: _Parts | None = None
        previous_tag = None
        for start, end in _records(data, where):
            tag = _peek_tag(data, start, end, where)
            if tag is not None and wanted is not None and tag not in wanted:
                previous_tag = tag
                continue
            try:
                value = value_class.FromString(data[start:end])  # parsing copies: no view outlives the map
            except DecodeError as error:
                raise ValueError(f"{where}: not a MindSpore checkpoint ({error})") from None
            tag = value.tag
            if wanted is not None and tag not in wanted:
                previous_tag = tag
                continue
            dims, tensor_type = list(value.tensor.dims), value.tensor.tensor_type
            if run is not None and tag == run.tag and previous_tag == tag:
                if (dims, tensor_type) != (run.dims, run.tensor_type):
                    raise ValueError(f"{where}: the slices of tensor {tag!r} disagree on dims or type")
            else:
                if run is not None:
                    result[run.tag] = run.tensor(where)
                if tag in result:
                    raise ValueError(f"{where}: tensor {tag!r} appears twice, apart")
                run = _Parts(tag, dims, tensor_type)
            run.contents.append(value.tensor.tensor_content)
            del value
            previous_tag = tag
        if run is not None:
            result[run.tag] = run.tensor(where)
    return result


class _open:
    """``(data, name)`` of a path (memory-mapped, read-only) or of bytes."""

    def __init__(self, source):
        self.source, self.file, self.map, self.view = source, None, None, None

    def __enter__(self):
        if isinstance(self.source, (bytes, bytearray, memoryview)):
            return memoryview(self.source).cast("B"), "checkpoint bytes"
        if not isinstance(self.source, (str, os.PathLike)):
            raise TypeError(f"source must be a path or bytes, got {type(self.source).__name__}")
        path = os.fspath(self.source)
        if os.path.isdir(path):
            raise IsADirectoryError(f"{os.fspath(path)}: is a directory, not a MindSpore .ckpt file")
        if not os.path.exists(path):
            raise FileNotFoundError(f"{os.fspath(path)}: no such file")
        self.file = open(path, "rb")
        if os.fstat(self.file.fileno()).st_size == 0:
            return b"", path
        self.map = mmap.mmap(self.file.fileno(), 0, access=mmap.ACCESS_READ)
        self.view = memoryview(self.map)
        return self.view, path

    def __exit__(self, *exc):
        if self.view is not None:
            self.view.release()
        if self.map is not None:
            self.map.close()
        if self.file is not None:
            self.file.close()


# ------------------------------------------------------------------------------------------ converter
def from_mindspore(source: str | os.PathLike | bytes, **kwargs: Any) -> SPPNet:
    """A :func:`zoo.sppnet_zf5` (``layout="mindspore"``, eval mode) holding the network of a MindSpore SppNet
    checkpoint: its 16 tensors ``conv1..5`` / ``fc1..3`` (weight, bias), converted to float32, renamed
    (:data:`MINDSPORE_TO_ZOO`) and loaded strictly; every other entry (optimizer moments, learning rate,
    step counters) is ignored.

    The trunk width (``conv1``'s channels / 96), fc6/fc7 width and class count are read from the file and
    every shape is checked against the model they define (1.0, 4096 and 1000 for MindSpore's published
    ``sppnet_mult``). ``kwargs`` go to the builder (e.g. ``dropout``).
    """
    state = read_checkpoint(source, tags=MINDSPORE_TO_ZOO)
    missing = [k for k in MINDSPORE_TO_ZOO if k not in state]
    if missing:
        raise ValueError(f"not a MindSpore SppNet checkpoint: it lacks {missing}")
    for key, value in state.items():
        if not value.is_floating_point():
            raise ValueError(f"MindSpore checkpoint: {key} is {value.dtype}, not a floating tensor")
    conv1, fc1, fc3 = state["conv1.weight"], state["fc1.weight"], state["fc3.weight"]
    if conv1.dim() != 4 or fc1.dim() != 2 or fc3.dim() != 2:
        raise ValueError(
            f"MindSpore checkpoint: conv1.weight {tuple(conv1.shape)}, fc1.weight {tuple(fc1.shape)} and "
            f"fc3.weight {tuple(fc3.shape)} do not have the shapes of an SppNet"
        )
    kwargs = {"width": conv1.shape[0] / 96, "representation_size": fc1.shape[0], **kwargs}
    model = sppnet_zf5(layout="mindspore", num_classes=fc3.shape[0], **kwargs)
    target = model.state_dict()
    renamed = {}
    for key, zoo_key in MINDSPORE_TO_ZOO.items():
        value = state.pop(key)
        if value.shape != target[zoo_key].shape:
            raise ValueError(
                f"MindSpore checkpoint: {key} has shape {tuple(value.shape)}, sppnet_zf5({_kwargs_text(model)}) "
                f"expects {tuple(target[zoo_key].shape)} for {zoo_key}"
            )
        renamed[zoo_key] = value.float()
    model.load_state_dict(renamed, strict=True)
    return model.eval()


def _kwargs_text(model) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in model.zoo_config["kwargs"].items())


def _description() -> str:
    return (
        f"MindSpore's SPP-net (`SppNet`, {MINDSPORE_SOURCE}) converted exactly to `sppnet_zf5(layout='mindspore')` "
        f"by spp-zoo (zoo.convert.mindspore). {MINDSPORE_DISCLAIMER}"
    )


def hub_metadata(model: SPPNet, source: str) -> dict[str, Any]:
    """``save_pretrained`` metadata of a MindSpore SppNet converted from a file (``python -m zoo convert mindspore``):
    ImageNet's class names (torchvision's order, MindSpore's sorted synsets) when it has 1000 classes."""
    metadata: dict[str, Any] = {
        "mean": IMAGENET_MEAN,
        "std": IMAGENET_STD,
        "input_size": [224, 224],
        "resize_size": [256, 256],  # MindSpore's warp before the center crop (WarpCropPreprocess)
        "source": source,
        "license": LICENSE,
        "license_note": MINDSPORE_DISCLAIMER,
        "description": _description(),
    }
    if model.classifier.out_features == len(_IMAGENET_CATEGORIES):
        metadata["categories"] = list(_IMAGENET_CATEGORIES)
        metadata["dataset"] = "imagenet-1k"
    return metadata


@register_converter("mindspore")
def mindspore_folder(source: Path, output_dir: Path, metadata: Mapping[str, Any]) -> None:
    """Converter hook ``"mindspore"`` (:mod:`zoo.models.conversion`): a MindSpore SppNet ``.ckpt`` -> a Hub-layout
    folder, with the entry's metadata (categories, normalization, published metrics, license...)."""
    model = from_mindspore(source)
    categories = metadata.get("categories")
    if categories is not None and len(categories) != model.classifier.out_features:
        raise ValueError(
            f"the MindSpore checkpoint has {model.classifier.out_features} classes but the entry lists "
            f"{len(categories)} categories"
        )
    kept = {key: metadata[key] for key in METADATA_KEYS if key in metadata}
    kept.setdefault("source", "converted from a MindSpore SppNet checkpoint by zoo.convert.mindspore")
    kept["description"] = _description()
    save_pretrained(model, output_dir, metadata=kept)
