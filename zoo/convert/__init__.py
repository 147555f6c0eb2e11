"""Convert official checkpoints into ready zoo models: PSPNet (here) and MindSpore's SPP-net (:mod:`.mindspore`).

PSPNet checkpoints become :func:`zoo.pspnet_resnet50` / ``pspnet_resnet101`` models.

Sources (key layouts verified against the published code):

- hszhao/semseg (``from_semseg``): ``module.``-prefixed (DDP) keys; deep stem 3->64->64->128 as
  ``layer0.{0,1,3,4,6,7}``; torchvision-named ``layer1..4`` (stride on the 3x3 conv; every block of
  layer3/layer4 dilated by 2/4, no contraction); ``ppm.features.{i}.{1 conv,2 bn}``;
  ``cls.{0 conv3x3,1 bn,4 conv1x1}``; ``aux.{0,1,4}``; ``align_corners=True``.
- mmsegmentation (``from_mmseg``): a dict with ``state_dict``; ResNetV1c deep stem 3->32->32->64 as
  ``backbone.stem.{0,1,3,4,6,7}``; ``backbone.layer1..4`` (pytorch style: stride on the 3x3 conv;
  ``contract_dilation=True``: the first block of layer3/layer4 dilated by 1/2);
  ``decode_head.psp_modules.{i}.1.{conv,bn}``, ``decode_head.bottleneck.{conv,bn}``,
  ``decode_head.conv_seg``, ``auxiliary_head.convs.0.{conv,bn}``, ``auxiliary_head.conv_seg``;
  ``align_corners=False``.

Depth (R-18 BasicBlock from mmsegmentation, R-50/101 Bottleneck, from the block type and counts),
``num_classes`` (from the classifier), the stem, pyramid, head and auxiliary widths and the presence of
the auxiliary head are read from the checkpoint; mmsegmentation's ``align_corners`` (True in its 769x769
Cityscapes configs) from the config text its checkpoints keep in ``meta["config"]``, unless given.

Files are read with ``torch.load(weights_only=True)``, which rebuilds tensors, containers and plain values
only, never arbitrary objects: NumPy scalars and dtypes are allow-listed (harmless values some training
frameworks leave in ``meta``); a file holding anything else is refused with a ValueError that says what to
do (extract the state dict in a trusted environment, then convert that).

MindSpore's ImageNet SPP-net (``.ckpt``, protobuf) becomes ``sppnet_zf5(layout="mindspore")``:
:func:`from_mindspore` (:mod:`zoo.convert.mindspore`).

CLI: ``python -m zoo convert {semseg,mmseg,mindspore} IN OUT_DIR`` writes the converted model as a Hub-layout
folder (:func:`zoo.hub.save_pretrained`); :func:`zoo.hub.from_pretrained` rebuilds it.

Converter hooks (:mod:`zoo.models.conversion`): ``"mmseg"`` and ``"semseg"`` turn a checkpoint file into such
a folder for weights entries sourced from an upstream file (they register when :mod:`zoo` is imported).
"""

import functools
import os
import pickle
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..hub.pretrained import save_pretrained
from ..models.conversion import register_converter
from ..models.pspnet import PSPNet, pspnet_resnet18, pspnet_resnet50, pspnet_resnet101

__all__ = ["from_semseg", "from_mmseg", "from_mindspore", "load_checkpoint", "mmseg_folder", "semseg_folder"]

_LAYER3_BLOCKS_TO_DEPTH = {6: 50, 23: 101, 36: 152}
_BASIC_LAYERS_TO_DEPTH = {(2, 2, 2, 2): 18}
_BUILDERS: dict[int, Callable[..., PSPNet]] = {18: pspnet_resnet18, 50: pspnet_resnet50, 101: pspnet_resnet101}
_PSP_BINS = (1, 2, 3, 6)


def _harmless_globals() -> list:
    """NumPy scalar and dtype rebuilders: values, no code (torch's documented allow-list for NumPy scalars)."""
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy is a dependency
        return []
    core = getattr(np, "_core", None) or np.core
    dtypes = [type(np.dtype(name)) for name in ("float64", "float32", "int64", "int32", "bool")]
    return [core.multiarray.scalar, np.dtype, *dtypes]


def load_checkpoint(path: str | os.PathLike) -> Mapping[str, Any]:
    """A checkpoint file read safely: ``torch.load(weights_only=True)``, NumPy scalars allowed, nothing else.

    A missing file or a directory raises FileNotFoundError / IsADirectoryError naming it; a file that is not
    a PyTorch checkpoint, or one holding pickled objects, a ValueError naming it and what to do."""
    name = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{name}: no such file")
    if os.path.isdir(path):
        raise IsADirectoryError(f"{name}: is a directory, not a .pth checkpoint file")
    try:
        with torch.serialization.safe_globals(_harmless_globals()):
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # the unpickler raises anything from UnpicklingError to KeyError on foreign bytes
        refused = next((line.strip() for line in str(error).splitlines() if "GLOBAL" in line), "")
        if isinstance(error, pickle.UnpicklingError) and refused:
            refused = re.sub(r"^.*?(Unsupported global: )?GLOBAL ", "", refused).split(" ")[0] or "an object"
            raise ValueError(
                f"{name}: holds pickled objects that torch.load(weights_only=True) refuses ({refused}); "
                "spp-zoo never unpickles arbitrary objects. If you trust the file, extract its weights in a trusted "
                "environment: torch.save({'state_dict': torch.load(FILE, weights_only=False)['state_dict']}, OUT) "
                "and convert OUT"
            ) from None
        text = str(error).strip().splitlines()[0] if str(error).strip() else ""
        reason = f"{type(error).__name__}: {text}" if text else type(error).__name__
        raise ValueError(
            f"{name}: not a PyTorch checkpoint torch.load can read with weights_only=True ({reason:.120})"
        ) from None
    if not isinstance(checkpoint, Mapping):
        raise ValueError(f"the checkpoint holds a {type(checkpoint).__name__}, not a state dict (a dict of tensors)")
    return checkpoint


def _read_checkpoint(path_or_state_dict) -> Mapping[str, Any]:
    if isinstance(path_or_state_dict, (str, os.PathLike)):
        return load_checkpoint(path_or_state_dict)
    if isinstance(path_or_state_dict, Mapping):
        return path_or_state_dict
    raise TypeError(f"path_or_state_dict must be a path or a state dict, got {type(path_or_state_dict).__name__}")


def _read_state_dict(path_or_state_dict) -> dict[str, Tensor]:
    checkpoint = _read_checkpoint(path_or_state_dict)
    if "state_dict" in checkpoint and isinstance(checkpoint["state_dict"], Mapping):
        checkpoint = checkpoint["state_dict"]
    state = {}
    for key, value in checkpoint.items():
        if not isinstance(value, Tensor):
            raise TypeError(f"checkpoint entry {key!r} is a {type(value).__name__}, not a tensor")
        state[key[len("module.") :] if key.startswith("module.") else key] = value
    return state


def _infer_depth(state: Mapping[str, Tensor], layer3_prefix: str) -> int:
    pattern = re.compile(re.escape(layer3_prefix) + r"(\d+)\.")
    blocks = {int(m.group(1)) for key in state if (m := pattern.match(key))}
    if not blocks:
        raise ValueError(f"no '{layer3_prefix}*' keys: not a ResNet PSPNet checkpoint of this layout")
    depth = _LAYER3_BLOCKS_TO_DEPTH.get(max(blocks) + 1)
    if depth not in _BUILDERS:
        raise ValueError(f"unsupported ResNet depth: layer3 has {max(blocks) + 1} blocks (supported: 50, 101)")
    return depth


def _require(state: Mapping[str, Tensor], key: str) -> Tensor:
    if key not in state:
        raise ValueError(f"checkpoint lacks {key!r}: not a PSPNet checkpoint of the expected layout")
    return state[key]


def _apply(model: PSPNet, renamed: dict[str, Tensor], source: str) -> PSPNet:
    """Load ``renamed`` strictly, except BN ``num_batches_tracked`` counters absent from old checkpoints."""
    target = model.state_dict()
    unexpected = sorted(set(renamed) - set(target))
    missing = sorted(k for k in set(target) - set(renamed) if not k.endswith("num_batches_tracked"))
    if unexpected or missing:
        raise ValueError(
            f"{source} checkpoint does not fit the model: unexpected {unexpected[:5]}, missing {missing[:5]}"
        )
    for key, value in renamed.items():
        if value.shape != target[key].shape:
            expected = tuple(target[key].shape)
            raise ValueError(f"{source} checkpoint: {key} has shape {tuple(value.shape)}, expected {expected}")
    target.update(renamed)
    model.load_state_dict(target)
    return model.eval()


def _rename(
    state: Mapping[str, Tensor], rules: list[tuple[str, str]], ignore: tuple[str, ...] = ()
) -> dict[str, Tensor]:
    out = {}
    for key, value in state.items():
        if key.startswith(ignore):
            continue
        for pattern, replacement in rules:
            new_key, count = re.subn(pattern, replacement, key)
            if count:
                out[new_key] = value
                break
        else:
            raise ValueError(f"unexpected checkpoint key {key!r}")
    return out


def _names_the_checkpoint(convert: Callable[..., PSPNet]) -> Callable[..., PSPNet]:
    """Errors of a converter given a file start with the file's name and say what it expected."""

    @functools.wraps(convert)
    def wrapper(path_or_state_dict, **kwargs) -> PSPNet:
        try:
            return convert(path_or_state_dict, **kwargs)
        except (ValueError, TypeError) as error:
            if not isinstance(path_or_state_dict, (str, os.PathLike)):
                raise
            text = str(error)
            name = os.fspath(path_or_state_dict)
            expected = _EXPECTED[convert.__name__]
            if not text.startswith(name):
                text = f"{name}: {text}"
            raise type(error)(f"{text} (expected {expected})") from None

    return wrapper


_EXPECTED = {
    "from_semseg": "a hszhao/semseg PSPNet50/101 .pth checkpoint",
    "from_mmseg": "an mmsegmentation PSPNet R-18-D8/R-50-D8/R-101-D8 .pth checkpoint",
}


@_names_the_checkpoint
def from_semseg(path_or_state_dict, **kwargs) -> PSPNet:
    """A :class:`~zoo.models.pspnet.PSPNet` equal to hszhao/semseg's PSPNet50/101 checkpoint (eval mode).

    ``kwargs`` go to the builder (e.g. ``bins`` when the checkpoint did not use (1, 2, 3, 6)).
    semseg's network needs (H - 1) % 8 == 0 and upsamples to exactly (H, W) then; the converted model
    gives the same output there and accepts any other size too.
    """
    state = _read_state_dict(path_or_state_dict)
    depth = _infer_depth(state, "layer3.")
    num_classes = _require(state, "cls.4.weight").shape[0]
    stem_widths = tuple(_require(state, f"layer0.{i}.weight").shape[0] for i in (0, 3, 6))
    rules = [
        (r"^layer0\.([0-8])\.", r"backbone.stem.\1."),
        (r"^(layer[1-4]\.)", r"backbone.\1"),
        (r"^ppm\.features\.(\d+)\.1\.", r"ppm.stages.\1.0."),
        (r"^ppm\.features\.(\d+)\.2\.", r"ppm.stages.\1.1."),
        (r"^(cls|aux)\.0\.", r"\1.0.0."),
        (r"^(cls|aux)\.1\.", r"\1.0.1."),
        (r"^(cls|aux)\.4\.", r"\1.2."),
    ]
    renamed = _rename(state, rules)
    renamed = {re.sub(r"^cls\.", "classifier.", k): v for k, v in renamed.items()}
    renamed = {re.sub(r"^aux\.", "aux_classifier.", k): v for k, v in renamed.items()}
    kwargs.setdefault("bins", _PSP_BINS)
    model = _BUILDERS[depth](
        num_classes=num_classes,
        aux_loss="aux.0.weight" in state,
        stem_widths=stem_widths,
        contract_dilation=False,
        align_corners=True,
        **kwargs,
    )
    return _apply(model, renamed, "semseg")


def _mmseg_depth(state: Mapping[str, Tensor]) -> int:
    """ResNet depth of an mmsegmentation backbone: Bottleneck (``conv3`` keys) by layer3's length, else BasicBlock."""
    if "backbone.layer1.0.conv3.weight" in state:
        return _infer_depth(state, "backbone.layer3.")
    counts = []
    for layer in range(1, 5):
        pattern = re.compile(rf"backbone\.layer{layer}\.(\d+)\.")
        blocks = {int(m.group(1)) for key in state if (m := pattern.match(key))}
        counts.append(max(blocks) + 1 if blocks else 0)
    if counts[2] == 0:
        raise ValueError("no 'backbone.layer3.*' keys: not a ResNet PSPNet checkpoint of this layout")
    depth = _BASIC_LAYERS_TO_DEPTH.get(tuple(counts))
    if depth is None:
        raise ValueError(f"unsupported BasicBlock ResNet: blocks per layer {tuple(counts)} (supported: R-18)")
    return depth


def _mmseg_align_corners(checkpoint: Mapping[str, Any]) -> bool:
    """``align_corners`` of the heads, from the config text mmsegmentation keeps in ``meta["config"]`` (else False)."""
    meta = checkpoint.get("meta")
    config = meta.get("config") if isinstance(meta, Mapping) else None
    if isinstance(config, str):
        values = set(re.findall(r"align_corners\s*=\s*(True|False)", config))
        if len(values) == 1:
            return values.pop() == "True"
    return False


@_names_the_checkpoint
def from_mmseg(path_or_state_dict, **kwargs) -> PSPNet:
    """A :class:`~zoo.models.pspnet.PSPNet` equal to mmsegmentation's PSPNet R-18/50/101-D8 checkpoint (eval mode).

    ``kwargs`` go to the builder (e.g. ``bins`` if the config changed ``pool_scales``; ``align_corners``,
    read from the checkpoint's config text when absent, else False). R-18-D8 builds
    :func:`~zoo.models.pspnet.pspnet_resnet18` with ``dilate_conv2=False`` (mmsegmentation's BasicBlock).
    """
    checkpoint = _read_checkpoint(path_or_state_dict)
    state = _read_state_dict(checkpoint)
    depth = _mmseg_depth(state)
    num_classes = _require(state, "decode_head.conv_seg.weight").shape[0]
    stem_widths = tuple(_require(state, f"backbone.stem.{i}.weight").shape[0] for i in (0, 3, 6))
    rules = [
        (r"^backbone\.stem\.", "backbone.stem."),
        (r"^backbone\.(layer[1-4])\.", r"backbone.\1."),
        (r"^decode_head\.psp_modules\.(\d+)\.1\.conv\.", r"ppm.stages.\1.0."),
        (r"^decode_head\.psp_modules\.(\d+)\.1\.bn\.", r"ppm.stages.\1.1."),
        (r"^decode_head\.bottleneck\.conv\.", "classifier.0.0."),
        (r"^decode_head\.bottleneck\.bn\.", "classifier.0.1."),
        (r"^decode_head\.conv_seg\.", "classifier.2."),
        (r"^auxiliary_head\.convs\.0\.conv\.", "aux_classifier.0.0."),
        (r"^auxiliary_head\.convs\.0\.bn\.", "aux_classifier.0.1."),
        (r"^auxiliary_head\.conv_seg\.", "aux_classifier.2."),
    ]
    renamed = _rename(state, rules, ignore=("data_preprocessor.",))
    has_aux = "auxiliary_head.conv_seg.weight" in state
    kwargs.setdefault("bins", _PSP_BINS)
    kwargs.setdefault("align_corners", _mmseg_align_corners(checkpoint))
    kwargs.setdefault("ppm_channels", _require(state, "decode_head.psp_modules.0.1.conv.weight").shape[0])
    kwargs.setdefault("head_channels", _require(state, "decode_head.bottleneck.conv.weight").shape[0])
    if has_aux:
        kwargs.setdefault("aux_channels", _require(state, "auxiliary_head.convs.0.conv.weight").shape[0])
    if depth == 18:
        kwargs.setdefault("dilate_conv2", False)
    model = _BUILDERS[depth](
        num_classes=num_classes,
        aux_loss=has_aux,
        stem_widths=stem_widths,
        contract_dilation=True,
        **kwargs,
    )
    return _apply(model, renamed, "mmseg")


# ------------------------------------------------------------------------------- converter hooks
#: Metadata a converter hook writes into the converted folder's config.json (see zoo.hub.save_pretrained).
_FOLDER_METADATA = ("categories", "palette", "mean", "std", "input_size", "align_corners", "published_metrics",
                    "test_protocol", "dataset", "source", "upstream", "entry", "license")  # fmt: skip


def _save_converted(model: PSPNet, output_dir: Path, metadata: Mapping[str, Any], origin: str) -> None:
    categories = metadata.get("categories")
    if categories is not None and len(categories) != model.num_classes:
        raise ValueError(
            f"the {origin} checkpoint has {model.num_classes} classes but the entry lists {len(categories)} categories"
        )
    kept = {key: metadata[key] for key in _FOLDER_METADATA if key in metadata}
    kept.setdefault("source", f"converted from an {origin} checkpoint by zoo.convert")
    kept["description"] = (
        f"{origin}'s PSPNet checkpoint, converted exactly by [spp-zoo](https://github.com/spp-zoo/spp-zoo)."
    )
    save_pretrained(model, output_dir, metadata=kept)


@register_converter("mmseg")
def mmseg_folder(source: Path, output_dir: Path, metadata: Mapping[str, Any]) -> None:
    """Converter hook ``"mmseg"`` (:mod:`zoo.models.conversion`): an mmsegmentation checkpoint file -> a Hub-layout
    folder, with the entry's ``align_corners`` and metadata."""
    kwargs = {"align_corners": bool(metadata["align_corners"])} if "align_corners" in metadata else {}
    _save_converted(from_mmseg(source, **kwargs), output_dir, metadata, "open-mmlab/mmsegmentation")


@register_converter("semseg")
def semseg_folder(source: Path, output_dir: Path, metadata: Mapping[str, Any]) -> None:
    """Converter hook ``"semseg"``: a hszhao/semseg checkpoint file -> a Hub-layout folder."""
    _save_converted(from_semseg(source), output_dir, metadata, "hszhao/semseg")


from . import mindspore  # noqa: E402, F401 (zoo.convert.mindspore: the reader, converter and its hook)
from .mindspore import from_mindspore  # noqa: E402
