"""Model registry and pretrained-weights API, in the manner of ``torchvision.models``.

Every builder is registered under its name with :func:`register_model` and takes a keyword-only
``weights`` argument annotated with its own :class:`WeightsEnum` subclass, from which
:func:`get_model_weights` finds the enum. Weights enums are filled by later releases; a builder
only loads entries of its *own* enum and rejects anything else with a clear error.

Schema of :attr:`Weights.meta` (every key optional unless a builder needs it):

- ``categories`` (list[str]): class names, index = label. Sets ``num_classes``.
- ``num_params`` (int): parameter count of the built model.
- ``min_size`` (tuple[int, int]): smallest accepted input (H, W).
- ``input_size`` (tuple[int, int]): the (H, W) the reported metrics were measured at.
- ``mean`` / ``std`` (tuple[float, float, float]): RGB normalization, on [0, 1] inputs.
- ``align_corners`` (bool): for segmenters, the interpolation convention the weights expect.
- ``_metrics`` (dict[str, dict[str, float]]): dataset -> metric name -> value,
  e.g. ``{"VOC2012-val": {"mIoU": 77.05}}``.
- ``recipe`` (str): URL of the training recipe or of the conversion script.
- ``source`` (str): where the weights come from (own training, or the original checkpoint).
- ``_file_size`` (float): file size in MB.
- ``license`` (str): license of the weights.
- ``_docs`` (str): free text shown in the documentation.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from inspect import signature
from typing import Any, TypeVar, get_args, get_type_hints

import torch
from torch import nn
from torchvision.models import Weights as _TorchvisionWeights
from torchvision.models import WeightsEnum as _TorchvisionWeightsEnum

__all__ = [
    "Weights",
    "WeightsEnum",
    "get_model",
    "get_model_builder",
    "get_model_weights",
    "get_weight",
    "list_models",
    "register_model",
]


@dataclass(eq=False)
class Weights(_TorchvisionWeights):
    """One set of pretrained weights: ``url`` of the file, ``transforms`` (a callable building the
    preprocessing), ``meta`` (see the module docstring for the schema)."""


class WeightsEnum(_TorchvisionWeightsEnum):
    """Base class of the zoo's weights enums (a torchvision ``WeightsEnum``).

    ``get_state_dict`` reads ``.safetensors`` files as well as pickled ``.pth`` files (the latter
    with ``weights_only=True``); both are cached under ``torch.hub.get_dir()/checkpoints``.
    """

    def get_state_dict(self, progress: bool = True, check_hash: bool = False) -> dict[str, torch.Tensor]:
        url = self.url
        if url.endswith(".safetensors"):
            from safetensors.torch import load_file

            directory = os.path.join(torch.hub.get_dir(), "checkpoints")
            os.makedirs(directory, exist_ok=True)
            path = os.path.join(directory, os.path.basename(url))
            if not os.path.exists(path):
                torch.hub.download_url_to_file(url, path, progress=progress)
            return load_file(path)
        return torch.hub.load_state_dict_from_url(url, progress=progress, check_hash=check_hash, weights_only=True)


E = TypeVar("E", bound=_TorchvisionWeightsEnum)


def verify_weights(weights: Any, enum_cls: type[E], arch: str, argument: str = "weights") -> E | None:
    """Return ``weights`` as a member of ``enum_cls`` (None stays None), or raise a clear error.

    Strings ``"Entry"`` and ``"EnumName.Entry"`` are looked up in ``enum_cls``. A member of another
    enum (e.g. weights of another architecture) raises ``TypeError``; an unknown name ``ValueError``.
    """
    if weights is None:
        return None
    if isinstance(weights, str):
        entry = weights.split(".", 1)[1] if weights.startswith(enum_cls.__name__ + ".") else weights
        try:
            return enum_cls[entry]
        except KeyError:
            entries = ", ".join(enum_cls.__members__) or "none yet"
            raise ValueError(
                f"{argument}={weights!r} is not an entry of {enum_cls.__name__} for {arch} (entries: {entries})"
            ) from None
    if isinstance(weights, enum_cls):
        return weights
    raise TypeError(
        f"wrong {argument} for the architecture {arch}: expected a member of {enum_cls.__name__} or None, "
        f"got {weights!r} ({type(weights).__name__})"
    )


def override_num_classes(num_classes: int | None, weights: WeightsEnum | None, default: int) -> int:
    """``num_classes`` to build: the weights' category count (a conflicting value is an error)."""
    if weights is not None:
        expected = len(weights.meta["categories"])
        if num_classes is not None and num_classes != expected:
            raise ValueError(f"num_classes={num_classes} conflicts with {weights!r}, which has {expected} categories")
        return expected
    if num_classes is None:
        return default
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    return num_classes


def load_weights(model: nn.Module, weights: WeightsEnum | None, progress: bool) -> nn.Module:
    """Load ``weights`` (if any) into ``model``, strictly."""
    if weights is not None:
        model.load_state_dict(weights.get_state_dict(progress=progress, check_hash=True))
    return model


# ----------------------------------------------------------------------------------------- registry
_MODELS: dict[str, Callable[..., nn.Module]] = {}
M = TypeVar("M", bound=nn.Module)


def register_model(name: str | None = None) -> Callable[[Callable[..., M]], Callable[..., M]]:
    """Decorator registering a builder under ``name`` (default: the function's name)."""

    def wrapper(fn: Callable[..., M]) -> Callable[..., M]:
        key = name if name is not None else fn.__name__
        if key in _MODELS:
            raise ValueError(f"a model is already registered under the name {key!r}")
        _MODELS[key] = fn
        return fn

    return wrapper


def list_models(include: str | Iterable[str] | None = None, exclude: str | Iterable[str] | None = None) -> list[str]:
    """Sorted names of the registered models, filtered by ``fnmatch`` patterns."""
    names = set(_MODELS)
    if include:
        patterns = [include] if isinstance(include, str) else list(include)
        names = {n for n in names if any(fnmatch.fnmatch(n, p) for p in patterns)}
    if exclude:
        patterns = [exclude] if isinstance(exclude, str) else list(exclude)
        names = {n for n in names if not any(fnmatch.fnmatch(n, p) for p in patterns)}
    return sorted(names)


def get_model_builder(name: str) -> Callable[..., nn.Module]:
    """The builder registered under ``name``."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    try:
        return _MODELS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(list_models())}") from None


def get_model(name: str, **config: Any) -> nn.Module:
    """Build the model registered under ``name`` with the builder's keyword arguments."""
    return get_model_builder(name)(**config)


def get_model_weights(name: str | Callable[..., nn.Module]) -> type[WeightsEnum]:
    """The weights enum class of a model (by registered name or builder), read from the
    annotation of the builder's ``weights`` parameter."""
    fn = get_model_builder(name) if isinstance(name, str) else name
    if "weights" not in signature(fn).parameters:
        raise ValueError(f"{getattr(fn, '__name__', fn)!r} has no 'weights' parameter")
    annotation = get_type_hints(fn).get("weights")
    for candidate in (annotation, *get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, WeightsEnum):
            return candidate
    raise ValueError(f"the 'weights' annotation of {getattr(fn, '__name__', fn)!r} names no WeightsEnum")


def get_weight(name: str) -> WeightsEnum:
    """A weights entry by its full name, e.g. ``"PSPNet_ResNet50_Weights.VOC2012_SEMSEG"``."""
    if not isinstance(name, str) or name.count(".") != 1:
        raise ValueError(f"weights name must look like 'EnumName.ENTRY', got {name!r}")
    enum_name, entry = name.split(".")
    enums = {get_model_weights(fn).__name__: get_model_weights(fn) for fn in _MODELS.values()}
    if enum_name not in enums:
        raise ValueError(f"unknown weights enum {enum_name!r}; known: {', '.join(sorted(enums))}")
    return verify_weights(entry, enums[enum_name], enum_name)
