"""Pretrained models in Hugging Face Hub layout: save, publish, rebuild (on :mod:`zoo.hub.files`).

A model folder (local or a Hub repository) holds three files:

- ``model.safetensors``: the state dict (never pickle);
- ``config.json``: ``{"architecture": <registered builder>, "kwargs": {...builder kwargs...}, ...metadata}``,
  everything needed to rebuild the exact model with :func:`zoo.get_model`;
- ``README.md``: the model card, with the Hub metadata header (library, license, tags, datasets,
  metrics in model-index form).

Downloads, digests, the cache and the shipped copies are :mod:`zoo.hub.files`' business; this module
adds what needs the models: writing a model's folder and card, rebuilding a model from a folder or a
repo id, and finding the registered entry a repo id belongs to.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import nn

from ..models import registry
from . import files
from .files import CARD_NAME, CONFIG_NAME, WEIGHTS_NAME

# huggingface_hub is imported where it is used (start-up time: see zoo.hub.files).

__all__ = ["download", "from_pretrained", "load_config", "model_card", "push_to_hub", "save_pretrained"]

#: Task names of the Hub model card / config.json, by the model's ``task``.
HUB_TASKS = {
    "classification": "image-classification",
    "detection": "object-detection",
    "segmentation": "image-segmentation",
}


def published_split(key: str) -> tuple[str, str]:
    """``"ADE20K-val (mmsegmentation)"`` -> ``("ADE20K-val", "mmsegmentation")``: a published-metrics key's
    split and publisher (``"its authors"`` when the key names none)."""
    match = re.fullmatch(r"(.*\S)\s+\((.+)\)", key)
    return (match[1], match[2]) if match else (key, "its authors")


# ---------------------------------------------------------------------------------------------- saving
def _json_value(value: Any, where: str) -> Any:
    """``value`` as JSON data (tuples become lists), or a TypeError naming ``where``."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_json_value(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        return {str(k): _json_value(v, f"{where}.{k}") for k, v in value.items()}
    raise TypeError(f"{where}={value!r} cannot be written to config.json (only JSON values: numbers, str, lists...)")


def _model_config(model: nn.Module) -> dict[str, Any]:
    config = getattr(model, "zoo_config", None)
    if not isinstance(config, dict) or "architecture" not in config:
        raise TypeError(
            f"model ({type(model).__name__}) was not built by a registered zoo builder: build it with "
            "zoo.get_model(name, ...) or a builder such as zoo.pspnet_resnet50(...) so that it can be rebuilt"
        )
    return config


def _entry_metadata(weights_name: str | None) -> dict[str, Any]:
    """Metadata inherited from the weights entry a model was built with (categories, metrics...)."""
    if not weights_name:
        return {}
    meta = registry.get_weight(weights_name).meta
    # Not the entry's metrics: they were measured on the entry's weights, which these no longer are.
    inherited = {k: meta[k] for k in ("categories", "palette", "mean", "std", "input_size", "align_corners", "license")
                 if k in meta}  # fmt: skip
    inherited["source"] = f"fine-tuned from {weights_name}"
    return inherited


def save_pretrained(
    model: nn.Module,
    save_directory: str | os.PathLike,
    *,
    metadata: Mapping[str, Any] | None = None,
    dtype: torch.dtype | None = None,
) -> Path:
    """Write ``model`` in Hub layout: ``model.safetensors``, ``config.json`` and a model card ``README.md``.

    ``model`` must come from :func:`zoo.get_model` or a builder (it carries ``zoo_config``: the
    architecture and builder kwargs). ``metadata`` adds what is known of the weights: ``categories``,
    ``palette``, ``mean``/``std`` (on [0, 1] inputs), ``input_size`` ([H, W]), ``align_corners``, ``metrics``
    (``{"<dataset>-<split>": {"<name>": value}}``, measured here), ``published_metrics`` (same shape, the
    authors' figures, each key naming its publisher), ``test_protocol``, ``dataset``, ``source``,
    ``upstream`` (``{"url", "sha256", "converter"}`` of a converted checkpoint), ``entry`` (the weights
    entry it was converted for), ``license``, ``description``, ``training`` (command, hardware, time...),
    ``task``, ``repo_id`` (used in the card's usage snippet). ``dtype`` (e.g. ``torch.float16``) stores
    floating tensors in that dtype; loading casts them back to the model's dtype. Returns the directory.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    if dtype is not None and (not isinstance(dtype, torch.dtype) or not dtype.is_floating_point):
        raise TypeError(f"dtype must be a floating torch.dtype or None, got {dtype!r}")
    metadata = dict(metadata or {})
    unknown = sorted(set(metadata) - set(files.METADATA_KEYS))
    if unknown:
        raise ValueError(f"metadata has unknown keys {unknown}; known: {', '.join(files.METADATA_KEYS)}")
    build = _model_config(model)
    directory = Path(save_directory)
    if directory.exists() and not directory.is_dir():
        raise ValueError(f"save_directory {str(directory)!r} exists and is not a directory")

    tensors: dict[str, torch.Tensor] = {}
    for key, value in model.state_dict().items():
        value = value.detach().to("cpu")
        if dtype is not None and value.is_floating_point():
            value = value.to(dtype)
        tensors[key] = value.clone().contiguous()

    arch = build["architecture"]
    config: dict[str, Any] = {
        "library": "spp-zoo",
        "architecture": arch,
        "kwargs": _json_value(build.get("kwargs", {}), "kwargs"),
        "num_params": sum(p.numel() for p in model.parameters()),
        "dtype": str(dtype or next((t.dtype for t in tensors.values() if t.is_floating_point()), torch.float32)),
    }
    config["dtype"] = config["dtype"].replace("torch.", "")
    known = _entry_metadata(build.get("weights"))
    if hasattr(model, "align_corners"):
        known["align_corners"] = bool(model.align_corners)
    known.setdefault("task", HUB_TASKS.get(getattr(model, "task", None)))
    known.update(metadata)
    for key in files.METADATA_KEYS:
        if known.get(key) is not None:
            config[key] = _json_value(known[key], key)

    directory.mkdir(parents=True, exist_ok=True)
    weights = directory / WEIGHTS_NAME
    save_file(tensors, str(weights), metadata={"format": "pt"})
    _readable_as_umask_allows(weights)  # safetensors creates the file 0600
    config["sha256"] = files.sha256_of(weights)  # checked by from_pretrained
    (directory / CONFIG_NAME).write_text(json.dumps(config, indent=2, sort_keys=False) + "\n")
    (directory / CARD_NAME).write_text(model_card(config, config["sha256"], directory))
    return directory


def _readable_as_umask_allows(path: Path) -> None:
    """Give ``path`` the mode an ordinary ``open(path, "w")`` would (0666 less the umask)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def model_card(config: Mapping[str, Any], sha256: str, directory: str | os.PathLike | None = None) -> str:
    """The model card (``README.md``) of a saved model: Hub metadata header, description, usage, provenance."""
    from huggingface_hub import EvalResult, ModelCardData

    arch = config["architecture"]
    task = config.get("task")
    results = []
    for dataset, values in (config.get("metrics") or {}).items():
        for metric, value in values.items():
            results.append(
                EvalResult(
                    task_type=task or "other", dataset_type=str(config.get("dataset") or dataset),
                    dataset_name=dataset, metric_type=metric, metric_name=metric, metric_value=value,
                )
            )  # fmt: skip
    name = config.get("repo_id", "").split("/")[-1] or arch
    card_data = ModelCardData(
        library_name="spp-zoo",
        license=config.get("license"),
        tags=[t for t in ("spp-zoo", "pytorch", "safetensors", task, arch.split("_")[0]) if t],
        datasets=[config["dataset"]] if config.get("dataset") else None,
        metrics=sorted({r.metric_type for r in results}) or None,
        pipeline_tag=task,
        model_name=name,
        eval_results=results or None,
    )
    if config.get("repo_id"):
        load = f'zoo.hub.from_pretrained("{config["repo_id"]}")'
    else:  # never an absolute local path: the card travels with the folder
        load = f'zoo.hub.from_pretrained("path/to/{Path(directory).name if directory else "this-folder"}")'
    kwargs = ", ".join(f"{k}={v!r}" for k, v in config.get("kwargs", {}).items())
    lines = [
        "---",
        card_data.to_yaml(),
        "---",
        "",
        f"# {name}",
        "",
        config.get("description") or f"`{arch}` of [spp-zoo](https://github.com/spp-zoo/spp-zoo).",
        "",
        "## Usage",
        "",
        "```python",
        "import torch",
        "import zoo.hub",
        "",
        f"model = {load}.eval()",
    ]
    if task == "object-detection":
        lines += ["with torch.no_grad():", "    detections = model([torch.rand(3, 160, 160)])  # boxes, labels, scores"]
    else:
        lines += ["with torch.no_grad():", "    out = model(torch.rand(1, 3, 160, 160))"]
    lines += [
        "```",
        "",
        "## Model",
        "",
        f"- architecture: `{arch}` (`zoo.get_model({arch!r}{', ' + kwargs if kwargs else ''})`)",
        f"- parameters: {config.get('num_params', 0):,}",
        f"- `model.safetensors`: sha256 `{sha256}`, stored as {config.get('dtype', 'float32')}",
    ]
    for key in ("dataset", "source", "license", "align_corners", "input_size", "mean", "std"):
        if config.get(key) is not None:
            lines.append(f"- {key.replace('_', ' ')}: {config[key]}")
    if config.get("categories"):
        lines.append(f"- categories ({len(config['categories'])}): {', '.join(config['categories'])}")
    if results:
        lines += ["", "## Results", "", "| dataset | metric | value |", "|---|---|---|"]
        lines += [f"| {r.dataset_name} | {r.metric_type} | {r.metric_value} |" for r in results]
    if config.get("published_metrics"):
        lines += ["", "## Published results", "", "Figures published by the weights' authors, not re-measured here.",
                  "", "| dataset | metric | value | source |", "|---|---|---|---|"]  # fmt: skip
        for key, values in config["published_metrics"].items():
            split, publisher = published_split(key)
            lines += [f"| {split} | {name} | {value} | published by {publisher} |" for name, value in values.items()]
    if config.get("upstream"):
        origin = config["upstream"]
        lines += ["", "## Conversion", "", f"- converted by spp-zoo (converter `{origin.get('converter')}`) from "
                  f"{origin.get('url')}", f"- that file's sha256: `{origin.get('sha256')}`"]  # fmt: skip
    if config.get("training"):
        lines += ["", "## Training", ""]
        lines += [f"- {k.replace('_', ' ')}: {v}" for k, v in config["training"].items()]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------ publishing
def push_to_hub(
    model_or_directory: nn.Module | str | os.PathLike,
    repo_id: str,
    *,
    revision: str | None = None,
    token: str | None = None,
    private: bool = False,
    commit_message: str | None = None,
):
    """Upload a model (saved first with :func:`save_pretrained`) or a Hub-layout folder to ``repo_id``.

    Creates the repository (and the branch ``revision``) if needed. Returns the commit
    (``huggingface_hub.CommitInfo``: ``.oid`` is the commit hash, ``.commit_url`` its address).
    """
    from huggingface_hub import HfApi

    files.check_repo_id(repo_id)
    api = HfApi(token=token)
    with contextlib.ExitStack() as stack:
        if isinstance(model_or_directory, nn.Module):
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="spp-zoo-push-")))
            save_pretrained(model_or_directory, folder, metadata={"repo_id": repo_id})
        else:
            folder = Path(model_or_directory)
            files.check_folder(folder)
        message = commit_message or f"Upload {files.read_config(folder / CONFIG_NAME)['architecture']}"
        with _connection_errors(repo_id):
            api.create_repo(repo_id, private=private, exist_ok=True)
            if revision is not None and revision != "main":
                api.create_branch(repo_id, branch=revision, exist_ok=True)
            return api.upload_folder(
                folder_path=str(folder),
                repo_id=repo_id,
                revision=revision,
                commit_message=message,
                allow_patterns=[WEIGHTS_NAME, CONFIG_NAME, CARD_NAME],
            )


def _is_connection_error(error: BaseException) -> bool:
    """No answer from the server: offline mode, refused or timed-out connections (requests or httpx, by the
    names of their exception classes, which huggingface_hub's versions raise unwrapped)."""
    names = {cls.__name__ for cls in type(error).__mro__}
    return isinstance(error, (ConnectionError, TimeoutError)) or bool(
        names & {"TransportError", "ConnectionError", "ConnectTimeout", "Timeout"}
    )


@contextlib.contextmanager
def _connection_errors(repo_id: str):
    """A failed connection to the Hub as one :class:`HubUnavailableError` line naming the endpoint."""
    from huggingface_hub import constants

    try:
        yield
    except Exception as error:
        if not _is_connection_error(error):
            raise
        why = "offline mode is on (HF_HUB_OFFLINE=1)" if constants.HF_HUB_OFFLINE else files.first_line(error)
        raise files.HubUnavailableError(
            f"cannot publish to {repo_id}: the Hub at {constants.ENDPOINT} cannot be reached ({why}); "
            "check the connection or HF_ENDPOINT"
        ) from None


# ------------------------------------------------------------------------------------------- loading
def from_pretrained(
    source: str | os.PathLike,
    *,
    revision: str | None = None,
    sha256: str | None = None,
    strict: bool = True,
    map_location: str | torch.device = "cpu",
) -> nn.Module:
    """Rebuild a model saved by :func:`save_pretrained`, from a Hub repo id (``org/name``), a local folder, or a
    weights entry (a member or ``"Enum.ENTRY"``, e.g. ``"PSPNet_ResNet50_Weights.ADE20K_MMSEG_160K"``: its Hub
    copy, or its upstream file converted and cached on first use, see :meth:`zoo.WeightsEnum.folder`).

    ``revision`` (branch, tag or commit; Hub only) and ``sha256`` (hex digest of
    ``model.safetensors``) pin the file: on a digest mismatch a :class:`HashMismatchError` names both
    digests, and the bad file is removed from the Hugging Face cache. The state dict is loaded with
    ``strict`` key matching; tensors are put on ``map_location``. Returns the model in eval mode.

    A repo id of one of the zoo's own weights entries (at its pinned revision, or with no revision)
    loads as the entry does: from the copy shipped with the package when its digest is the pinned
    one, with no network call (see :func:`zoo.hub.files.entry_folder`).
    """
    entry = _as_entry(source)
    if entry is not None:
        if revision is not None or sha256 is not None:
            raise ValueError(f"revision and sha256 are pinned by the weights entry {source!r}; pass neither")
        return _build(entry.folder(progress=True), strict=strict, map_location=map_location)
    sha256 = files.check_sha256(sha256)
    entry = None if files.is_local(source) else _shipped_entry(str(source), revision)
    if entry is not None and sha256 in (None, entry.sha256):
        folder = files.entry_folder(entry.repo, entry.revision, entry.sha256, progress=True)
    else:
        folder = files.resolve(source, revision=revision, sha256=sha256, progress=True)
    return _build(folder, strict=strict, map_location=map_location)


def _shipped_entry(source: str, revision: str | None):
    """The registered weights entry published as ``source`` (at ``revision``, if given) that ships with the package."""
    for model in registry.list_models():
        for entry in registry.get_model_weights(model):
            if (
                files.repo_id(entry.repo) == source
                and revision in (None, entry.revision)
                and files.shipped_directory(entry.repo)
            ):
                return entry
    return None


def load_config(source: str | os.PathLike, *, revision: str | None = None) -> dict[str, Any]:
    """The ``config.json`` of a Hub repo id or a local folder."""
    if files.is_local(source):
        return files.read_config(Path(source) / CONFIG_NAME)
    return files.read_config(Path(files.hub_file(str(source), CONFIG_NAME, revision, progress=False)))


def _as_entry(source: Any):
    """``source`` as a weights entry (a member, or ``"Enum.ENTRY"``), else None (a repo id or a folder)."""
    if isinstance(source, registry.WeightsEnum):
        return source
    if isinstance(source, str) and re.fullmatch(r"[A-Za-z_]\w*\.[A-Za-z_]\w*", source) and not os.path.isdir(source):
        return registry.get_weight(source)
    return None


def download(
    source: Any,
    *,
    revision: str | None = None,
    sha256: str | None = None,
    progress: bool = True,
    keep_upstream: bool = False,
) -> Path:
    """Download (or find in the cache) and verify a weights entry (a member, ``"Enum.ENTRY"``) or a repo id.

    Returns the local folder holding ``model.safetensors`` and ``config.json``: the Hugging Face cache
    snapshot of a Hub copy, or, for an entry sourced from an upstream file (no Hub copy pinned, or the Hub
    unreachable), the converted folder in the zoo's cache (``keep_upstream`` keeps the downloaded upstream
    file beside it). This is how a connected machine fills the caches for offline use.
    """
    entry = _as_entry(source)
    if entry is not None:
        if revision is not None or sha256 is not None:
            raise ValueError(f"revision and sha256 are pinned by the weights entry {source!r}; pass neither")
        return entry.folder(progress=progress, keep_upstream=keep_upstream)
    if not isinstance(source, str):
        raise TypeError(f"source must be a weights entry or a Hub repo id, got {type(source).__name__}")
    return files.resolve(source, revision=revision, sha256=files.check_sha256(sha256), progress=progress)


def _build(folder: Path, *, strict: bool, map_location) -> nn.Module:
    config = files.read_config(folder / CONFIG_NAME)
    kwargs = config.get("kwargs", {})
    if not isinstance(kwargs, dict):
        raise ValueError(f"{str(folder / CONFIG_NAME)!r}: 'kwargs' must be an object, got {type(kwargs).__name__}")
    model = registry.get_model(config["architecture"], **kwargs)
    state = files.load_safetensors(folder / WEIGHTS_NAME, device=str(map_location))
    registry.load_state_dict(model, state, files.describe(folder / WEIGHTS_NAME), strict=strict)
    model.to(map_location)
    model.zoo_config = {**model.zoo_config, "source": str(folder)}
    return model.eval()
