"""Convert official PSPNet checkpoints into ready :func:`zoo.pspnet_resnet50` / ``pspnet_resnet101`` models.

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

Depth (50/101/152, from the number of layer3 blocks), ``num_classes`` (from the classifier), the
stem widths and the presence of the auxiliary head are read from the checkpoint. Files are read with
``torch.load(weights_only=True)``.

CLI: ``python -m zoo convert {semseg,mmseg} in.pth OUT_DIR`` writes the converted model as a Hub-layout
folder (:func:`zoo.hub.save_pretrained`); :func:`zoo.hub.from_pretrained` rebuilds it.
"""

import functools
import os
import re
from collections.abc import Callable, Mapping

import torch
from torch import Tensor

from ..models.pspnet import PSPNet, pspnet_resnet50, pspnet_resnet101

__all__ = ["from_semseg", "from_mmseg"]

_LAYER3_BLOCKS_TO_DEPTH = {6: 50, 23: 101, 36: 152}
_BUILDERS: dict[int, Callable[..., PSPNet]] = {50: pspnet_resnet50, 101: pspnet_resnet101}
_PSP_BINS = (1, 2, 3, 6)


def _load_checkpoint(path: str | os.PathLike) -> object:
    """``torch.load(path, weights_only=True)``; a file that is not a PyTorch checkpoint raises ValueError
    naming it (FileNotFoundError / IsADirectoryError for a missing file or a directory)."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"{os.fspath(path)}: no such file")
    if os.path.isdir(path):
        raise IsADirectoryError(f"{os.fspath(path)}: is a directory, not a .pth checkpoint file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # the unpickler raises anything from UnpicklingError to KeyError on foreign bytes
        text = str(error).strip().splitlines()[0] if str(error).strip() else ""
        reason = f"{type(error).__name__}: {text}" if text else type(error).__name__
        raise ValueError(
            f"{os.fspath(path)}: not a PyTorch checkpoint torch.load can read with weights_only=True ({reason:.120})"
        ) from None


def _read_state_dict(path_or_state_dict) -> dict[str, Tensor]:
    if isinstance(path_or_state_dict, (str, os.PathLike)):
        checkpoint = _load_checkpoint(path_or_state_dict)
    elif isinstance(path_or_state_dict, Mapping):
        checkpoint = path_or_state_dict
    else:
        raise TypeError(f"path_or_state_dict must be a path or a state dict, got {type(path_or_state_dict).__name__}")
    if not isinstance(checkpoint, Mapping):
        raise ValueError(f"the checkpoint holds a {type(checkpoint).__name__}, not a state dict (a dict of tensors)")
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
    "from_mmseg": "an mmsegmentation PSPNet R-50-D8/R-101-D8 .pth checkpoint",
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


@_names_the_checkpoint
def from_mmseg(path_or_state_dict, **kwargs) -> PSPNet:
    """A :class:`~zoo.models.pspnet.PSPNet` equal to mmsegmentation's PSPNet R-50-D8 / R-101-D8 checkpoint (eval mode).

    ``kwargs`` go to the builder (e.g. ``bins`` if the config changed ``pool_scales``).
    """
    state = _read_state_dict(path_or_state_dict)
    depth = _infer_depth(state, "backbone.layer3.")
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
    kwargs.setdefault("bins", _PSP_BINS)
    model = _BUILDERS[depth](
        num_classes=num_classes,
        aux_loss="auxiliary_head.conv_seg.weight" in state,
        stem_widths=stem_widths,
        contract_dilation=True,
        align_corners=False,
        **kwargs,
    )
    return _apply(model, renamed, "mmseg")
