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
- ``_metrics`` (dict[str, dict[str, float]]): dataset -> metric name -> value measured by the zoo itself
  (reproduced by ``python -m zoo eval``), e.g. ``{"scenes-test": {"mIoU": 15.34}}``.
- ``published_metrics`` (dict[str, dict[str, float]]): the same shape, figures published by the weights'
  authors and *not* re-measured here; each key names its publisher,
  e.g. ``{"ADE20K-val (mmsegmentation)": {"mIoU": 42.48, "mIoU(ms+flip)": 43.44}}``.
- ``palette`` (list[[r, g, b]]): for segmenters, the color of each category (0..255), as the dataset draws it.
- ``dataset`` (str): the dataset the weights were trained on (``"ade20k"``, ``"scenes"``...).
- ``test_protocol`` (dict): for segmenters, how the metrics were measured: ``scale`` (keep-ratio resize,
  mmcv's rule), ``keep_ratio``, ``mode`` (``"whole"`` or ``"slide"``, with ``crop_size`` and ``stride``),
  ``reduce_zero_label``, ``ignore_index``.
- ``recipe`` (str): URL of the training recipe or of the conversion script.
- ``source`` (str): where the weights come from (own training, or the original checkpoint).
- ``_file_size`` (float): file size in MB.
- ``license`` (str): license of the weights; ``license_note`` (str): terms its publisher adds to it.
- ``_docs`` (str): free text shown in the documentation.
- ``resize_size`` (tuple[int, int]): for classifiers evaluated with a warp-resize then a center crop of
  ``input_size`` (e.g. ImageNet's 256 x 256 -> 224): the (H, W) of the warp.
- ``trunk_layout`` (str): the ZF-5 layout the weights were trained with (``"caffe"`` when absent;
  ``"mindspore"``), see :class:`zoo.models.backbones.ZF5`.
- ``storage_dtype`` (str): the dtype of the tensors in the file when it is not float32 (``"float16"``); a
  model loads them into its own dtype, and the metrics are those of the stored weights.
- ``_backbone`` (str): for a trunk classifier (:mod:`zoo.models.classifiers`), its trunk and the families it
  starts through ``weights_backbone=``.
"""

from __future__ import annotations

import difflib
import fnmatch
import functools
import logging
import re
from collections.abc import Callable, Iterable
from inspect import signature
from pathlib import Path
from typing import Any, TypeVar, get_args, get_type_hints

import torch
from safetensors.torch import load_file
from torch import nn
from torchvision.models import Weights as _TorchvisionWeights
from torchvision.models import WeightsEnum as _TorchvisionWeightsEnum

from ..hub import files, upstream
from ..hub.files import DEFAULT_HUB_ORG, HubUnavailableError
from . import conversion

__all__ = [
    "Weights",
    "WeightsEnum",
    "get_model",
    "get_model_builder",
    "get_model_task",
    "get_model_weights",
    "get_weight",
    "list_models",
    "register_model",
]


class Weights(_TorchvisionWeights):
    """One set of pretrained weights (a torchvision ``Weights``): a Hub copy, an upstream file, or both.

    Keyword-only. ``repo`` is the Hub repository name without its organisation, ``{model}.{tag}``
    (timm/smp style); the repo id is ``{org}/{repo}`` with the organisation resolved at load time
    (argument, else ``$SPP_ZOO_HUB_ORG``, else ``spp-zoo``: see :func:`zoo.hub.files.repo_id`).

    - **Hub copy**: ``revision`` (branch, tag or commit) and ``sha256`` (hex digest of ``model.safetensors``)
      pin the folder on the Hub; a file with another digest is never used.
    - **Upstream file** (torchvision-style): ``url`` of the checkpoint exactly as its authors publish it,
      ``sha256_prefix`` (its sha256, or the first 8+ hex digits of it, e.g. from the file name) and
      ``converter``, the name of the converter that turns it into a Hub-layout folder (see
      :mod:`zoo.models.conversion`; ``"mmseg"`` for mmsegmentation's checkpoints). ``repo`` then names the
      Hub repository ``python -m zoo publish`` puts the converted folder into; ``revision`` and ``sha256``
      stay None until a maintainer publishes and pins it.

    An entry with both loads the Hub copy first and falls back to the upstream file. ``url`` is the upstream
    address when there is one, else the Hub address of ``model.safetensors`` (:attr:`hub_url`).
    ``transforms`` builds the preprocessing, ``meta`` follows the schema in this module's docstring.
    """

    def __init__(
        self,
        *,
        repo: str,
        transforms: Callable,
        meta: dict[str, Any],
        revision: str | None = None,
        sha256: str | None = None,
        url: str | None = None,
        sha256_prefix: str | None = None,
        converter: str | None = None,
    ):
        if not isinstance(repo, str) or "/" in repo or not repo:
            raise ValueError(f"repo must be a repository name without organisation, got {repo!r}")
        hub = revision is not None or sha256 is not None
        source = url is not None or sha256_prefix is not None or converter is not None
        if not hub and not source:
            raise ValueError(
                "a weights entry needs a Hub copy (revision and sha256) or an upstream file "
                "(url, sha256_prefix and converter)"
            )
        if hub:
            if not isinstance(sha256, str) or not re.fullmatch(r"[0-9a-f]{64}", sha256):
                raise ValueError(f"sha256 must be 64 lowercase hex digits, got {sha256!r}")
            if not isinstance(revision, str) or not revision:
                raise ValueError(f"revision must be a non-empty str, got {revision!r}")
        if source:
            upstream.file_name(url)  # an http(s) URL ending with a file name, or a ValueError naming url
            if not isinstance(sha256_prefix, str) or not re.fullmatch(r"[0-9a-f]{8,64}", sha256_prefix):
                raise ValueError(f"sha256_prefix must be 8 to 64 lowercase hex digits, got {sha256_prefix!r}")
            if not isinstance(converter, str) or not converter.isidentifier():
                raise ValueError(f"converter must be the name of a registered converter, got {converter!r}")
        self.repo = repo
        self.revision = revision
        self.sha256 = sha256
        self.sha256_prefix = sha256_prefix
        self.converter = converter
        super().__init__(url=url if source else self.hub_url, transforms=transforms, meta=meta)

    @property
    def hub_url(self) -> str:
        """Default Hub address of the converted or trained ``model.safetensors`` (for display)."""
        revision = self.revision or "main"
        return f"https://huggingface.co/{DEFAULT_HUB_ORG}/{self.repo}/resolve/{revision}/model.safetensors"

    @property
    def has_hub_copy(self) -> bool:
        """Whether a Hub copy is pinned (``revision`` and ``sha256``)."""
        return self.revision is not None

    @property
    def has_upstream_file(self) -> bool:
        """Whether the entry names an upstream file (``url``, ``sha256_prefix``, ``converter``)."""
        return self.sha256_prefix is not None

    def _pins(self) -> tuple:
        return (self.repo, self.revision, self.sha256, self.sha256_prefix, self.converter)

    def __eq__(self, other: Any) -> bool:
        if not isinstance(other, Weights):
            return NotImplemented
        return self._pins() == other._pins() and super().__eq__(other)

    __hash__ = None


class WeightsEnum(_TorchvisionWeightsEnum):
    """Base class of the zoo's weights enums (a torchvision ``WeightsEnum`` of :class:`Weights`).

    Files come through :mod:`zoo.hub.files` (Hub copies: downloaded from the Hub or a mirror,
    ``HF_ENDPOINT``, into the Hugging Face cache, pinned by revision and sha256, or taken from the copy
    shipped inside the package when the Hub cannot serve them) and :mod:`zoo.models.conversion` (upstream
    files: downloaded, verified and converted once into the zoo's cache).
    """

    @property
    def repo(self) -> str:
        """Hub repository name ``{model}.{tag}`` (the repo id is ``{org}/{repo}``)."""
        return self.value.repo

    @property
    def revision(self) -> str | None:
        """Pinned branch, tag or commit of the Hub copy (None: not published on the Hub yet)."""
        return self.value.revision

    @property
    def sha256(self) -> str | None:
        """Pinned sha256 of the Hub copy's ``model.safetensors`` (None: not published on the Hub yet)."""
        return self.value.sha256

    def get_state_dict(self, progress: bool = True, check_hash: bool = True) -> dict[str, torch.Tensor]:
        """The state dict of this entry (always verified; ``check_hash`` cannot turn that off)."""
        return load_file(str(self.folder(progress) / files.WEIGHTS_NAME))

    def get_config(self, progress: bool = True) -> dict[str, Any]:
        """The ``config.json`` of this entry's folder (architecture, builder kwargs, metadata)."""
        return files.read_config(self.folder(progress) / files.CONFIG_NAME)

    def folder(self, progress: bool = True, keep_upstream: bool = False) -> Path:
        """The verified local folder (Hub layout) of this entry.

        The pinned Hub copy first (:func:`zoo.hub.files.entry_folder`: the Hub, its cache, or the copy shipped
        with the package); for an upstream entry without one, or when the Hub cannot serve it, the converted
        folder (:func:`zoo.models.conversion.converted_folder`; ``keep_upstream`` keeps the downloaded file).
        """

        weights = self.value
        if weights.has_hub_copy:
            try:
                return files.entry_folder(self.repo, self.revision, self.sha256, progress)
            except (HubUnavailableError, FileNotFoundError) as error:
                if not weights.has_upstream_file:
                    raise
                _log.warning("spp-zoo: %s; using the upstream file %s", files.first_line(error), weights.url)
        return conversion.converted_folder(self, progress=progress, keep_upstream=keep_upstream)


_log = logging.getLogger(__name__)


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
        state = weights.get_state_dict(progress=progress, check_hash=True)
        load_state_dict(model, state, f"the weights of {type(weights).__name__}.{weights.name}")
    return model


#: How many keys of each kind a state-dict mismatch names (then a count of the rest).
_NAMED_KEYS = 3


def _some(keys: list[str]) -> str:
    more = f", ... {len(keys) - _NAMED_KEYS} more" if len(keys) > _NAMED_KEYS else ""
    return ", ".join(keys[:_NAMED_KEYS]) + more


def state_dict_mismatch(model: nn.Module, state: dict[str, torch.Tensor], strict: bool = True) -> str | None:
    """What keeps ``state`` from loading into ``model`` (missing and unexpected keys when ``strict``, shape
    mismatches always), the first few keys of each kind with counts; None when it fits."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state] if strict else []
    unexpected = [k for k in state if k not in expected] if strict else []
    shapes = [
        f"{k} {tuple(state[k].shape)} vs {tuple(expected[k].shape)}"
        for k in state
        if k in expected and state[k].shape != expected[k].shape
    ]
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing key(s) ({_some(missing)})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected key(s) ({_some(unexpected)})")
    if shapes:
        parts.append(f"{len(shapes)} shape mismatch(es), file vs model ({_some(shapes)})")
    return "; ".join(parts) or None


def load_state_dict(model: nn.Module, state: dict[str, torch.Tensor], source: str, strict: bool = True) -> None:
    """``model.load_state_dict(state, strict)``, or a ValueError naming ``source`` and the keys that do not fit."""
    problem = state_dict_mismatch(model, state, strict)
    if problem is not None:
        arch = getattr(model, "zoo_config", {}).get("architecture", type(model).__name__)
        raise ValueError(f"{source} does not fit the {arch} model: {problem}")
    model.load_state_dict(state, strict=strict)


def suggest(name: str, choices: Iterable[str]) -> str:
    """``"did you mean a or b?"`` for the choices closest to a mistyped ``name``, else ``"available: ..."``.

    The choices that start with ``name`` come first (``pspnet_resnet1`` -> ``pspnet_resnet101``,
    ``pspnet_resnet18``); otherwise :mod:`difflib`'s closest matches (within 0.05 of the best ratio).
    """
    choices = sorted(choices)
    typed = name.lower()
    close = [c for c in choices if len(typed) >= 3 and c.lower().startswith(typed)]
    if not close:
        ratios = {c: difflib.SequenceMatcher(None, typed, c.lower()).ratio() for c in choices}
        best = max(ratios.values(), default=0.0)
        close = [c for c in choices if ratios[c] >= max(0.6, best - 0.05)]
    if close and len(close) <= 4:
        return f"did you mean {' or '.join(close)}?"
    return f"available: {', '.join(choices) or 'none'}"


# ----------------------------------------------------------------------------------------- registry
_MODELS: dict[str, Callable[..., nn.Module]] = {}
M = TypeVar("M", bound=nn.Module)


#: Builder arguments that select how weights are obtained rather than what the model is.
_LOADING_ARGUMENTS = ("weights", "progress", "weights_backbone")


def register_model(name: str | None = None) -> Callable[[Callable[..., M]], Callable[..., M]]:
    """Decorator registering a builder under ``name`` (default: the function's name).

    The registered builder records how it built each model in ``model.zoo_config``:
    ``{"architecture": name, "kwargs": {...}}`` with every argument that shapes the network (the
    builder's named parameters with their defaults, plus extra keyword arguments), not the loading
    arguments ``weights``, ``progress`` and ``weights_backbone``. :func:`zoo.hub.save_pretrained`
    writes it to ``config.json`` so that the model is rebuilt without the caller's help. An argument the
    builder derives from a loading argument (``spp_detector_zf5``'s ``trunk_layout=None`` from its
    ``weights_backbone``) is recorded with the value it took, which the builder leaves in
    ``model._zoo_resolved_kwargs``.

    With ``weights=`` an entry of the builder's enum, the model is built with the builder kwargs
    published in that entry's ``config.json`` (explicit keyword arguments of the call take
    precedence), then its state dict is loaded strictly.
    """

    def wrapper(fn: Callable[..., M]) -> Callable[..., M]:
        key = name if name is not None else fn.__name__
        if key in _MODELS:
            raise ValueError(f"a model is already registered under the name {key!r}")
        parameters = signature(fn).parameters

        @functools.wraps(fn)
        def build(*args: Any, **kwargs: Any) -> M:
            if args:
                raise TypeError(f"{key}() takes keyword arguments only, got {len(args)} positional")
            weights = kwargs.get("weights")
            if weights is not None:
                entry = verify_weights(weights, get_model_weights(build), key)
                published = entry.get_config(progress=kwargs.get("progress", True))
                if published.get("architecture") != key:
                    raise ValueError(
                        f"{entry!r} was published for the architecture {published.get('architecture')!r}, not {key!r}"
                    )
                kwargs = {**published.get("kwargs", {}), **kwargs, "weights": entry}
            try:
                model = fn(**kwargs)
            except TypeError as error:
                raise _unknown_argument(key, fn, kwargs, error) from None
            recorded = {
                p.name: p.default
                for p in parameters.values()
                if p.kind is p.KEYWORD_ONLY and p.default is not p.empty and p.name not in _LOADING_ARGUMENTS
            }
            recorded.update((k, v) for k, v in kwargs.items() if k not in _LOADING_ARGUMENTS)
            # a builder that derives an argument (e.g. a trunk layout from weights_backbone) records its value
            recorded.update(model.__dict__.pop("_zoo_resolved_kwargs", {}))
            if weights is not None and recorded.get("num_classes") is None:
                recorded["num_classes"] = len(kwargs["weights"].meta["categories"])
            model.zoo_config = {"architecture": key, "kwargs": recorded}
            if weights is not None:
                model.zoo_config["weights"] = f"{type(kwargs['weights']).__name__}.{kwargs['weights'].name}"
            return model

        _MODELS[key] = build
        return build

    return wrapper


def _unknown_argument(name: str, fn: Callable[..., nn.Module], kwargs: dict[str, Any], error: TypeError) -> TypeError:
    """``error``, or, when a keyword argument is none of the builder's (or its model class's), a TypeError naming
    it and the accepted ones."""
    accepted = {p.name for p in signature(fn).parameters.values() if p.kind is p.KEYWORD_ONLY}
    if any(p.kind is p.VAR_KEYWORD for p in signature(fn).parameters.values()):
        model_class = get_type_hints(fn).get("return")
        if isinstance(model_class, type):
            accepted |= {p for p in signature(model_class.__init__).parameters if p not in ("self", "args", "kwargs")}
    unknown = sorted(set(kwargs) - accepted - set(_LOADING_ARGUMENTS))
    if not unknown or "unexpected keyword argument" not in str(error):
        return error
    names = ", ".join(sorted(accepted - set(_LOADING_ARGUMENTS)))
    return TypeError(f"{name} has no keyword argument {unknown[0]!r}; its keyword arguments: {names}")


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
        raise ValueError(f"unknown model {name!r}; {suggest(name, list_models())}") from None


def get_model(name: str, **config: Any) -> nn.Module:
    """Build the model registered under ``name`` with the builder's keyword arguments."""
    return get_model_builder(name)(**config)


def get_model_task(name: str) -> str:
    """The task of a registered model (``"classification"``, ``"detection"`` or ``"segmentation"``): the
    ``task`` of the class its builder is annotated to return, so that no model is built to ask."""
    fn = get_model_builder(name)
    task = getattr(get_type_hints(fn).get("return"), "task", None)
    if not isinstance(task, str):
        raise ValueError(f"the builder {name!r} does not name a return class with a 'task'")
    return task


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
