"""Deployment: TorchScript files, ``torch.export`` programs with dynamic H/W, and ONNX.

TorchScript (:func:`torchscript`): the zoo's kernel layers run their pure-PyTorch reference when
scripted, so the saved file loads with ``torch.jit.load`` in a process where only ``torch`` is
installed, the SPP-net detector included (scripted, its RoI-SPP, NMS and box operations are
pure PyTorch). The kernel-backed alternative is ``torch.export``
(:func:`export_program`, ``use_kernels=True``): the program calls the ``torch.ops.spp_zoo``
operators (Triton on CUDA), so ``import kernels`` must run before ``torch.export.load`` / running it,
as for any custom-operator artifact ("Unknown builtin op" otherwise).

ONNX (:func:`to_onnx`): exported with ``torch.onnx.export(..., dynamo=True)`` on the reference path,
because ONNX has no ``spp_zoo`` operators, with a dynamic batch at a fixed height and width; needs the
``onnx`` and ``onnxscript`` packages (``onnxruntime`` to run it).

:func:`export_model` (``python -m zoo export``) does the whole job for a registered model name or a saved
folder: it refuses up front what a format cannot hold (the detector's data-dependent post-processing in
``torch.export`` and ONNX), checks the output path before any work, exports with a dynamic batch (and
dynamic height and width in ``torch.export``; TorchScript is dynamic in every dimension) at the weights'
``input_size`` (else :data:`DEFAULT_SIZE`), and returns every file it wrote (ONNX may add external data).
"""

import contextlib
import logging
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.export import Dim, ExportedProgram

from .hub.pretrained import from_pretrained, load_config
from .models import kernel_path
from .models.registry import get_model, get_model_builder, get_model_task, get_model_weights, verify_weights

__all__ = ["torchscript", "export_program", "to_onnx", "export_model", "FORMATS", "DEFAULT_SIZE"]

#: The formats of :func:`export_model`.
FORMATS = ("torchscript", "export", "onnx")
#: Example input size (H, W) of :func:`export_model` when the weights record no ``input_size``.
DEFAULT_SIZE = (224, 224)
#: Batch size of the example input: not 1, which torch.export would otherwise treat as a special size.
EXAMPLE_BATCH = 2


def _size_oblivious():
    """torch.export otherwise specializes every size that is 1 for the example (DeconvNet's fc6 map at
    224, ZF-5's conv5 at small inputs) and assumes the others are never 1, which would cut the range
    of sizes the program accepts. ``backed_size_oblivious`` avoids both."""
    from torch.fx.experimental import _config

    if hasattr(_config, "backed_size_oblivious"):
        return _config.patch(backed_size_oblivious=True)
    return contextlib.nullcontext()


def _check_model(model) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")


def torchscript(model: nn.Module, path: str | os.PathLike | None = None) -> torch.jit.ScriptModule:
    """Script ``model`` (as it is: call ``.eval()`` first for inference) and save it to ``path`` if given.

    The file needs only ``torch`` at load time.
    TorchScript is deprecated upstream (warnings since torch 2.11) but still supported.
    """
    _check_model(model)
    scripted = torch.jit.script(model)
    if path is not None:
        scripted.save(os.fspath(path))
    return scripted


def _dynamic_shapes(example: Tensor, dynamic_hw: bool, dynamic_batch: bool):
    if not isinstance(example, Tensor) or example.dim() != 4:
        raise ValueError(f"example must be a 4-D (N, C, H, W) tensor, got {example!r:.80}")
    dims = {}
    if dynamic_batch:
        dims[0] = Dim.DYNAMIC
    if dynamic_hw:
        dims.update({2: Dim.DYNAMIC, 3: Dim.DYNAMIC})
    return (dims,) if dims else None


def export_program(
    model: nn.Module, example: Tensor, dynamic_hw: bool = True, dynamic_batch: bool = True, use_kernels: bool = True
) -> ExportedProgram:
    """``torch.export.export(model, (example,))`` with height and width dynamic (``dynamic_hw``) and the
    batch dynamic (``dynamic_batch``). Export in eval mode for inference.

    With ``use_kernels=True`` the program contains the ``torch.ops.spp_zoo`` operators (one node each);
    with ``False`` the plain PyTorch composites. Size checks of the models become range constraints
    (e.g. H, W >= 224 for DeconvNet). Exported with ``backed_size_oblivious`` so that feature maps
    which are 1 pixel wide at the example size (or at other sizes) do not specialize the program.
    """
    _check_model(model)
    dynamic_shapes = _dynamic_shapes(example, dynamic_hw, dynamic_batch)
    with kernel_path(model, use_kernels), _size_oblivious():
        return torch.export.export(model, (example,), dynamic_shapes=dynamic_shapes)


def _adaptive_max_pool2d_by_bins(x: Tensor, output_size) -> tuple[Tensor, Tensor]:
    """``aten.adaptive_max_pool2d`` at a static input size, as per-bin ``amax``/``argmax`` (ONNX has no
    adaptive max pooling). Bins ``[floor(i*a/n), ceil((i+1)*a/n))``; indices flat over H*W, first max wins."""
    height, width = int(x.shape[-2]), int(x.shape[-1])
    out_h, out_w = int(output_size[0]), int(output_size[1])
    values, indices = [], []
    for i in range(out_h):
        h0, h1 = (i * height) // out_h, -((-(i + 1) * height) // out_h)
        for j in range(out_w):
            w0, w1 = (j * width) // out_w, -((-(j + 1) * width) // out_w)
            window = x[..., h0:h1, w0:w1].flatten(-2)
            local = window.argmax(-1)
            values.append(window.amax(-1))
            indices.append((local // (w1 - w0) + h0) * width + local % (w1 - w0) + w0)
    shape = (*x.shape[:-2], out_h, out_w)
    return torch.stack(values, -1).reshape(shape), torch.stack(indices, -1).reshape(shape)


def to_onnx(model: nn.Module, path: str | os.PathLike, example: Tensor, dynamic_batch: bool = True, **kwargs):
    """Export ``model`` to ONNX at ``example``'s size with the dynamo-based exporter, on the pure-PyTorch path.

    The graph is static in H and W: adaptive pooling whose bins do not divide the input decomposes
    into size-dependent index tables, so export once per deployment size (any size works, divisible
    by the pyramid or not). Adaptive max pooling (SPP-net's pyramid) becomes per-bin max reductions.
    The batch is dynamic (``dynamic_batch``). Input name ``"images"``; ``kwargs`` go to
    ``torch.onnx.export`` (e.g. ``opset_version``). The exporter may write the weights beside ``path``
    as ONNX external data (``<path>.data``). Returns the ``ONNXProgram``.
    """
    _check_model(model)
    dynamic_shapes = _dynamic_shapes(example, False, dynamic_batch)
    with kernel_path(model, False), _size_oblivious():
        program = torch.export.export(model, (example,), dynamic_shapes=dynamic_shapes)
    table = {torch.ops.aten.adaptive_max_pool2d.default: _adaptive_max_pool2d_by_bins}
    program = program.run_decompositions(table)
    kwargs.setdefault("verbose", False)
    return torch.onnx.export(program, (example,), os.fspath(path), dynamo=True, input_names=["images"], **kwargs)


# ------------------------------------------------------------------------------------- export_model
def refusal(architecture: str, fmt: str) -> str | None:
    """Why ``architecture`` cannot be exported to ``fmt`` and what to export instead, or None if it can."""
    if fmt not in FORMATS:
        return f"format {fmt!r} is not one of {', '.join(FORMATS)}"
    if get_model_task(architecture) == "detection" and fmt != "torchscript":
        what = "torch.export (--format export)" if fmt == "export" else "ONNX (--format onnx)"
        return (
            f"{architecture} cannot be exported with {what}: the detector's post-processing (RPN proposals, NMS, "
            "per-image box counts) is data-dependent, which these graphs cannot hold; export the whole detector "
            "with --format torchscript, or its trunk (model.backbone) and heads (model.roi_heads.box_head, "
            "model.roi_heads.box_predictor) with zoo.export in Python"
        )
    return None


def check_output(path: str | os.PathLike) -> Path:
    """``path`` as a file to write: not a directory, in an existing, writable directory (errors name it)."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path}: is a directory; the output must be a file path")
    parent = path.parent
    if not parent.is_dir():
        raise FileNotFoundError(f"{path}: no such directory {str(parent)!r} to write into")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"{path}: the directory {str(parent)!r} is not writable")
    return path


def _source_config(source: str | os.PathLike) -> tuple[str, dict[str, Any]]:
    """(architecture, config.json) of a saved folder, or (model name, {}) of a registered model."""
    if isinstance(source, os.PathLike) or os.path.isdir(source):
        config = load_config(Path(source))
        return config["architecture"], config
    if "/" in source or os.sep in source:
        raise FileNotFoundError(f"{source}: no such directory")
    get_model_builder(source)  # unknown model: the closest names
    return source.lower(), {}


@contextlib.contextmanager
def _quiet():
    """The exporters' warnings and symbolic-shape log lines, silenced (errors still raise)."""
    loggers = [logging.getLogger(name) for name in ("torch.fx.experimental.symbolic_shapes", "torch.export",
                                                    "torch.onnx", "torch._dynamo", "torch.utils._sympy")]  # fmt: skip
    levels = [logger.level for logger in loggers]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels, strict=True):
                logger.setLevel(level)


def export_model(
    source: str | os.PathLike,
    fmt: str,
    output: str | os.PathLike,
    *,
    weights: str | None = None,
    kwargs: Mapping[str, Any] | None = None,
    size: tuple[int, int] | None = None,
) -> list[Path]:
    """Export a registered model (``source`` a name, built with ``weights`` and builder ``kwargs``) or a folder
    written by :func:`zoo.hub.save_pretrained` to ``output`` in ``fmt`` (one of :data:`FORMATS`).

    Refused up front, with one line saying why and what to export instead: a format that cannot hold the
    model (the detector to ``export``/``onnx``). The output path is checked before any work. ``size``
    (H, W) is the example input: default the weights' ``input_size``, else :data:`DEFAULT_SIZE`;
    ``torch.export`` programs take any batch, height and width the model accepts, ONNX graphs any batch
    at that height and width, TorchScript any input. Returns the files written: ``output``, and for ONNX
    its external data file (``<output>.data``) when the exporter wrote one.
    """
    architecture, config = _source_config(source)
    why = refusal(architecture, fmt)
    if why is not None:
        raise ValueError(why)
    if config and (weights is not None or kwargs):
        raise ValueError("weights and kwargs apply to registered model names, not to a saved folder")
    output = check_output(output)
    if size is not None and (len(size) != 2 or any(isinstance(v, bool) or int(v) < 1 for v in size)):
        raise ValueError(f"size must be two positive ints (H, W), got {size!r}")
    if config:
        model = from_pretrained(source)
        meta = config
    else:
        entry = verify_weights(weights, get_model_weights(architecture), architecture) if weights else None
        model = get_model(architecture, weights=entry, **dict(kwargs or {}))
        meta = dict(entry.meta) if entry is not None else {}
    model.eval()
    height, width = (int(v) for v in (size or meta.get("input_size") or DEFAULT_SIZE))
    example = torch.rand(EXAMPLE_BATCH, 3, height, width)
    external = output.with_name(output.name + ".data")
    with _quiet():
        if fmt == "torchscript":
            torchscript(model, output)
        elif fmt == "export":
            torch.export.save(export_program(model, example), output)
        else:
            external.unlink(missing_ok=True)  # the data of an earlier export to this path
            to_onnx(model, output, example)
    return [output] + ([external] if fmt == "onnx" and external.is_file() else [])
