"""Deployment: TorchScript files, ``torch.export`` programs with dynamic H/W, and ONNX.

TorchScript (:func:`torchscript`): the zoo's kernel layers run their pure-PyTorch reference when
scripted, so the saved file loads with ``torch.jit.load`` in a process where only ``torch`` is
installed, the SPP-net detector included (scripted, its RoI-SPP, NMS and box operations are
pure PyTorch). The kernel-backed alternative is ``torch.export``
(:func:`export_program`, ``use_kernels=True``): the program calls the ``torch.ops.spp_zoo``
operators (Triton on CUDA), so ``import kernels`` must run before ``torch.export.load`` / running it,
as for any custom-operator artifact ("Unknown builtin op" otherwise).

ONNX (:func:`to_onnx`): exported with ``torch.onnx.export(..., dynamo=True)`` on the reference path,
because ONNX has no ``spp_zoo`` operators, at a fixed input size; needs the ``onnx`` and
``onnxscript`` packages (``onnxruntime`` to run it).
"""

import contextlib
import os

import torch
from torch import Tensor, nn
from torch.export import Dim, ExportedProgram

from .models import kernel_path

__all__ = ["torchscript", "export_program", "to_onnx"]


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
    model: nn.Module, example: Tensor, dynamic_hw: bool = True, dynamic_batch: bool = False, use_kernels: bool = True
) -> ExportedProgram:
    """``torch.export.export(model, (example,))`` with height and width dynamic (``dynamic_hw``).
    Export in eval mode for inference. ``dynamic_batch`` also marks the batch dimension dynamic; export
    may then still guard it (e.g. batch != 1 for PSPNet), so the default is the example's batch size.

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


def to_onnx(model: nn.Module, path: str | os.PathLike, example: Tensor, **kwargs):
    """Export ``model`` to ONNX at ``example``'s size with the dynamo-based exporter, on the pure-PyTorch path.

    The graph is static in H and W: adaptive pooling whose bins do not divide the input decomposes
    into size-dependent index tables, so export once per deployment size (any size works, divisible
    by the pyramid or not). Adaptive max pooling (SPP-net's pyramid) becomes per-bin max reductions.
    Input name ``"images"``; ``kwargs`` go to ``torch.onnx.export`` (e.g. ``opset_version``).
    Returns the ``ONNXProgram``.
    """
    _check_model(model)
    _dynamic_shapes(example, False, False)
    with kernel_path(model, False):
        program = torch.export.export(model, (example,))
    table = {torch.ops.aten.adaptive_max_pool2d.default: _adaptive_max_pool2d_by_bins}
    program = program.run_decompositions(table)
    return torch.onnx.export(program, (example,), os.fspath(path), dynamo=True, input_names=["images"], **kwargs)
