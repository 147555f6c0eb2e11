"""Pretrained weights in Hugging Face Hub layout: save, publish, download, verify, cache, offline.

A model folder (local or a Hub repository) holds three files:

- ``model.safetensors``: the state dict (never pickle);
- ``config.json``: ``{"architecture": <registered builder>, "kwargs": {...builder kwargs...}, ...metadata}``,
  everything needed to rebuild the exact model with :func:`zoo.get_model`;
- ``README.md``: the model card, with the Hub metadata header (library, license, tags, datasets,
  metrics in model-index form).

All Hub traffic goes through ``huggingface_hub`` (``hf_hub_download``, ``HfApi``), so ``HF_ENDPOINT``
(a mirror), ``HF_HUB_OFFLINE``, ``HF_HUB_CACHE``, ``HF_TOKEN`` and its progress bars behave as usual.
Files are cached in the Hugging Face cache; a pinned revision that is cached loads without network.
A ``sha256`` pin is checked on every load: a file with another digest is removed from the cache and
never used. Nothing here touches the network at import time.

Weights entries of the zoo's enums (:class:`zoo.Weights`) load through :func:`load_entry_state_dict`:
from the Hub at their pinned revision, or, when the Hub cannot serve them (offline, unreachable,
repository missing), from the copy shipped inside the package (``zoo/weights/<repo>/``), after the
same sha256 check and with a one-line notice on the ``zoo.hub`` logger.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = [
    "CONFIG_NAME",
    "HashMismatchError",
    "HubUnavailableError",
    "WEIGHTS_NAME",
    "download",
    "from_pretrained",
    "load_config",
    "push_to_hub",
    "repo_id",
    "save_pretrained",
    "shipped_directory",
]

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
CARD_NAME = "README.md"
#: Environment variable naming the organisation of the zoo's Hub repositories (default ``spp-zoo``).
ORG_ENV = "SPP_ZOO_HUB_ORG"
#: Where the package keeps the weights it ships, one Hub-layout folder per repository name.
SHIPPED_ROOT = Path(__file__).resolve().parent / "weights"

_TASKS = {
    "sppnet": "image-classification",
    "spp_detector": "object-detection",
    "pspnet": "image-segmentation",
    "deconvnet": "image-segmentation",
}
_METADATA_KEYS = (
    "categories", "mean", "std", "input_size", "align_corners", "metrics", "dataset", "source", "license",
    "description", "training", "task", "repo_id",
)  # fmt: skip
_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
_log = logging.getLogger(__name__)


class HashMismatchError(ValueError):
    """A downloaded or shipped ``model.safetensors`` whose sha256 is not the pinned one."""


class HubUnavailableError(ConnectionError):
    """The Hub cannot be reached (offline mode or no connection) and the file is not cached."""


# ---------------------------------------------------------------------------------------------- naming
def repo_id(repo: str, org: str | None = None) -> str:
    """The Hub repo id of a zoo repository name (``{model}.{tag}``): ``{org}/{repo}``.

    ``org`` defaults to ``$SPP_ZOO_HUB_ORG``, else ``spp-zoo``.
    """
    from ._api import DEFAULT_HUB_ORG

    org = org or os.environ.get(ORG_ENV) or DEFAULT_HUB_ORG
    result = f"{org}/{repo}"
    if not _REPO_ID.match(result):
        raise ValueError(f"invalid Hub repo id {result!r} (expected 'org/name')")
    return result


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
    from ._api import get_weight

    meta = get_weight(weights_name).meta
    inherited = {k: meta[k] for k in ("categories", "mean", "std", "input_size", "align_corners", "license")
                 if k in meta}  # fmt: skip
    if "_metrics" in meta:
        inherited["metrics"] = meta["_metrics"]
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
    ``mean``/``std`` (on [0, 1] inputs), ``input_size`` ([H, W]), ``align_corners``, ``metrics``
    (``{"<dataset>-<split>": {"<name>": value}}``), ``dataset``, ``source``, ``license``,
    ``description``, ``training`` (command, hardware, time...), ``task``, ``repo_id`` (used in the
    card's usage snippet). ``dtype`` (e.g. ``torch.float16``) stores floating tensors in that dtype;
    loading casts them back to the model's dtype. Returns the directory.
    """
    from safetensors.torch import save_file

    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    if dtype is not None and (not isinstance(dtype, torch.dtype) or not dtype.is_floating_point):
        raise TypeError(f"dtype must be a floating torch.dtype or None, got {dtype!r}")
    metadata = dict(metadata or {})
    unknown = sorted(set(metadata) - set(_METADATA_KEYS))
    if unknown:
        raise ValueError(f"metadata has unknown keys {unknown}; known: {', '.join(_METADATA_KEYS)}")
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
    known.setdefault("task", next((t for prefix, t in _TASKS.items() if arch.startswith(prefix)), None))
    known.update(metadata)
    for key in _METADATA_KEYS:
        if known.get(key) is not None:
            config[key] = _json_value(known[key], key)

    directory.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(directory / WEIGHTS_NAME), metadata={"format": "pt"})
    (directory / CONFIG_NAME).write_text(json.dumps(config, indent=2, sort_keys=False) + "\n")
    sha256 = _sha256(directory / WEIGHTS_NAME)
    (directory / CARD_NAME).write_text(model_card(config, sha256, directory))
    return directory


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
    else:
        load = f'zoo.hub.from_pretrained("{Path(directory).resolve() if directory else "path/to/this/folder"}")'
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

    _check_repo_id(repo_id)
    api = HfApi(token=token)
    with contextlib.ExitStack() as stack:
        if isinstance(model_or_directory, nn.Module):
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="spp-zoo-push-")))
            save_pretrained(model_or_directory, folder, metadata={"repo_id": repo_id})
        else:
            folder = Path(model_or_directory)
            _check_folder(folder)
        api.create_repo(repo_id, private=private, exist_ok=True)
        if revision is not None and revision != "main":
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        return api.upload_folder(
            folder_path=str(folder),
            repo_id=repo_id,
            revision=revision,
            commit_message=commit_message or f"Upload {_read_json(folder / CONFIG_NAME)['architecture']}",
            allow_patterns=[WEIGHTS_NAME, CONFIG_NAME, CARD_NAME],
        )


# ------------------------------------------------------------------------------------------- loading
def from_pretrained(
    source: str | os.PathLike,
    *,
    revision: str | None = None,
    sha256: str | None = None,
    strict: bool = True,
    map_location: str | torch.device = "cpu",
) -> nn.Module:
    """Rebuild a model saved by :func:`save_pretrained`, from a Hub repo id (``org/name``) or a local folder.

    ``revision`` (branch, tag or commit; Hub only) and ``sha256`` (hex digest of
    ``model.safetensors``) pin the file: on a digest mismatch a :class:`HashMismatchError` names both
    digests, and the bad file is removed from the Hugging Face cache. The state dict is loaded with
    ``strict`` key matching; tensors are put on ``map_location``. Returns the model in eval mode.

    A repo id of one of the zoo's own weights entries that ships with the package loads from that
    copy (after its sha256 check, with a one-line notice) when the Hub cannot serve it.
    """
    sha256 = _check_sha256(sha256)
    try:
        folder = _resolve(source, revision=revision, sha256=sha256, progress=True)
    except (HubUnavailableError, FileNotFoundError) as error:
        entry = None if _is_local(source) else _shipped_entry(str(source), revision)
        if entry is None:
            raise
        folder = _shipped_copy(entry, error)
        _verify(folder / WEIGHTS_NAME, sha256, cached=False)
    return _build(folder, strict=strict, map_location=map_location)


def _shipped_entry(source: str, revision: str | None):
    """The registered weights entry published as ``source`` (at ``revision``, if given) that ships with the package."""
    from ._api import get_model_weights, list_models

    for model in list_models():
        for entry in get_model_weights(model):
            if repo_id(entry.repo) == source and revision in (None, entry.revision) and shipped_directory(entry.repo):
                return entry
    return None


def load_config(source: str | os.PathLike, *, revision: str | None = None) -> dict[str, Any]:
    """The ``config.json`` of a Hub repo id or a local folder."""
    if _is_local(source):
        return _read_json(Path(source) / CONFIG_NAME)
    return _read_json(Path(_hub_file(str(source), CONFIG_NAME, revision, progress=False)))


def download(source: Any, *, revision: str | None = None, sha256: str | None = None, progress: bool = True) -> Path:
    """Download (or find in the cache) and verify a weights entry (a member, ``"Enum.ENTRY"``) or a repo id.

    Returns the local folder (the cache snapshot) holding ``model.safetensors`` and ``config.json``.
    Entries are fetched from the Hub only: this is how a connected machine fills the cache for
    offline use.
    """
    from ._api import WeightsEnum, get_weight

    if isinstance(source, str) and not _REPO_ID.match(source) and source.count(".") == 1:
        source = get_weight(source)
    if isinstance(source, WeightsEnum):
        return _resolve(repo_id(source.repo), revision=source.revision, sha256=source.sha256, progress=progress)
    if not isinstance(source, str):
        raise TypeError(f"source must be a weights entry or a Hub repo id, got {type(source).__name__}")
    return _resolve(source, revision=revision, sha256=_check_sha256(sha256), progress=progress)


def shipped_directory(repo: str) -> Path | None:
    """The folder of the weights the package ships for repository name ``repo``, if any."""
    folder = SHIPPED_ROOT / repo
    return folder if (folder / WEIGHTS_NAME).is_file() and (folder / CONFIG_NAME).is_file() else None


def _entry_folder(entry, progress: bool) -> Path:
    """The verified folder of a weights entry: the Hub (or its cache) at its pins, else the shipped copy."""
    from huggingface_hub import constants

    key = (repo_id(entry.repo), entry.revision, entry.sha256)
    if key in _ENTRY_FOLDERS:
        return _ENTRY_FOLDERS[key]
    shipped = shipped_directory(entry.repo)
    try:
        if shipped is not None and (constants.HF_HUB_OFFLINE or _HUB_STATE["unreachable"]):
            why = "offline mode is on (HF_HUB_OFFLINE=1)" if constants.HF_HUB_OFFLINE else "the Hub is unreachable"
            folder = _cached_folder(key[0], entry.revision)
            if folder is None:
                raise HubUnavailableError(f"{key[0]}@{entry.revision} is not cached and {why}")
            _verify(folder / WEIGHTS_NAME, entry.sha256, cached=True)
        else:
            folder = _resolve(key[0], revision=entry.revision, sha256=entry.sha256, progress=progress)
    except (HubUnavailableError, FileNotFoundError) as error:
        if shipped is None:
            raise
        folder = _shipped_copy(entry, error)
    _ENTRY_FOLDERS[key] = folder
    return folder


def _shipped_copy(entry, error: BaseException) -> Path:
    """The shipped folder of ``entry`` (verified against its pin), used because the Hub failed with ``error``."""
    shipped = shipped_directory(entry.repo)
    _verify(shipped / WEIGHTS_NAME, entry.sha256, cached=False)
    _log.warning("spp-zoo: %s; using the copy of %s shipped with the package", _first_line(error), repo_id(entry.repo))
    return shipped


def _cached_folder(repo: str, revision: str) -> Path | None:
    """The cache snapshot holding both files of ``repo`` at ``revision``, without network; None if absent."""
    from huggingface_hub import try_to_load_from_cache

    paths = [try_to_load_from_cache(repo, name, revision=revision) for name in (CONFIG_NAME, WEIGHTS_NAME)]
    if all(isinstance(p, str) for p in paths):
        return Path(paths[1]).parent
    return None


_ENTRY_FOLDERS: dict[tuple[str, str, str], Path] = {}


def load_entry_state_dict(entry, progress: bool = True) -> dict[str, torch.Tensor]:
    """The verified state dict of a weights entry (see :class:`zoo.Weights`)."""
    from safetensors.torch import load_file

    return load_file(str(_entry_folder(entry, progress) / WEIGHTS_NAME))


def load_entry_config(entry, progress: bool = True) -> dict[str, Any]:
    """The ``config.json`` published with a weights entry."""
    return _read_json(_entry_folder(entry, progress) / CONFIG_NAME)


# ----------------------------------------------------------------------------------------- internals
def _first_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def _check_repo_id(value: Any) -> str:
    if not isinstance(value, str) or not _REPO_ID.match(value):
        raise ValueError(f"repo_id must look like 'org/name', got {value!r}")
    return value


def _check_sha256(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", value):
        raise ValueError(f"sha256 must be 64 hex digits, got {value!r}")
    return value.lower()


def _is_local(source: Any) -> bool:
    if isinstance(source, os.PathLike):
        return True
    if not isinstance(source, str):
        raise TypeError(f"source must be a Hub repo id or a directory, got {type(source).__name__}")
    if os.path.isdir(source):
        return True
    if _REPO_ID.match(source):
        return False
    raise FileNotFoundError(f"source {source!r} is neither an existing directory nor a Hub repo id ('org/name')")


def _check_folder(folder: Path) -> None:
    if not folder.is_dir():
        raise FileNotFoundError(f"directory {str(folder)!r} does not exist")
    for name in (WEIGHTS_NAME, CONFIG_NAME):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{str(folder)!r} has no {name}: not a folder written by zoo.hub.save_pretrained")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        config = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{str(path)!r} does not exist") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"{str(path)!r} is not valid JSON: {error}") from None
    if not isinstance(config, dict) or not isinstance(config.get("architecture"), str):
        raise ValueError(f"{str(path)!r} has no 'architecture': not a config written by zoo.hub.save_pretrained")
    return config


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _verify(path: Path, sha256: str | None, cached: bool) -> None:
    """Check the digest of ``path``; on mismatch remove it from the cache (``cached``) and raise."""
    if sha256 is None:
        return
    actual = _sha256(path)
    if actual == sha256:
        return
    if cached:
        _evict(path)
    where = "removed from the Hugging Face cache" if cached else "not used"
    raise HashMismatchError(f"sha256 mismatch for {path.name}: expected {sha256}, got {actual} (file {where})")


def _evict(path: Path) -> None:
    """Remove a cached file: the snapshot entry and the blob it points to."""
    blob = Path(os.path.realpath(path))
    for p in {path, blob}:
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


def _resolve(source, *, revision: str | None, sha256: str | None, progress: bool) -> Path:
    """Local folder holding the verified ``model.safetensors`` and ``config.json`` of ``source``."""
    if _is_local(source):
        if revision is not None:
            raise ValueError(f"revision={revision!r} applies to Hub repositories, not to the directory {source!r}")
        folder = Path(source)
        _check_folder(folder)
        _verify(folder / WEIGHTS_NAME, sha256, cached=False)
        return folder
    _hub_file(source, CONFIG_NAME, revision, progress=False)
    weights = Path(_hub_file(source, WEIGHTS_NAME, revision, progress=progress))
    _verify(weights, sha256, cached=True)
    return weights.parent


@contextlib.contextmanager
def _progress_bars(enabled: bool) -> Iterator[None]:
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    was_disabled = are_progress_bars_disabled()
    if not enabled and not was_disabled:
        disable_progress_bars()
    try:
        yield
    finally:
        if not enabled and not was_disabled:
            enable_progress_bars()


def _hub_file(repo: str, filename: str, revision: str | None, progress: bool) -> str:
    """``hf_hub_download`` with the zoo's error messages (offline, missing repo, revision or file)."""
    import huggingface_hub
    from huggingface_hub import constants, hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    at = f"{repo}@{revision or 'main'}"
    try:
        with _progress_bars(progress):
            return hf_hub_download(repo, filename, revision=revision)
    except (LocalEntryNotFoundError, OfflineModeIsEnabled):  # before EntryNotFoundError: a subclass of it
        why = (
            "offline mode is on (HF_HUB_OFFLINE=1)"
            if constants.HF_HUB_OFFLINE
            else (f"the Hub at {constants.ENDPOINT} cannot be reached")
        )
        _HUB_STATE["unreachable"] = not constants.HF_HUB_OFFLINE
        raise HubUnavailableError(
            f"{filename} of {at} is not in the cache ({constants.HF_HUB_CACHE}) and {why}: on a connected machine "
            f"run `python -m zoo download {repo}{' --revision ' + revision if revision else ''}` with the same "
            "HF_HUB_CACHE, or set HF_ENDPOINT to a Hub mirror"
        ) from None
    except RevisionNotFoundError:
        raise FileNotFoundError(f"revision {revision!r} not found in Hub repository {repo!r}") from None
    except EntryNotFoundError:
        raise FileNotFoundError(f"file {filename!r} not found in Hub repository {at}") from None
    except RepositoryNotFoundError:
        # Some servers (mirrors) answer a missing file or revision like a missing repository: ask which it is.
        if _repo_exists(repo, revision or "main"):
            raise FileNotFoundError(f"file {filename!r} not found in Hub repository {at}") from None
        if revision not in (None, "main") and _repo_exists(repo, "main"):
            raise FileNotFoundError(f"revision {revision!r} not found in Hub repository {repo!r}") from None
        raise FileNotFoundError(
            f"Hub repository {repo!r} not found at {constants.ENDPOINT} (or it is private: set HF_TOKEN)"
        ) from None
    except huggingface_hub.errors.HfHubHTTPError as error:
        raise HubUnavailableError(f"the Hub refused {filename} of {at}: {_first_line(error)}") from None


#: Set once a download failed for lack of a connection: later weights entries then go straight to
#: their shipped copies instead of waiting for huggingface_hub's retries again.
_HUB_STATE = {"unreachable": False}


def _repo_exists(repo: str, revision: str) -> bool:
    from huggingface_hub import HfApi

    try:
        HfApi().repo_info(repo, revision=revision)
    except Exception:  # any failure means we cannot show that the repository exists
        return False
    return True


def _build(folder: Path, *, strict: bool, map_location) -> nn.Module:
    from safetensors.torch import load_file

    from ._api import get_model

    config = _read_json(folder / CONFIG_NAME)
    kwargs = config.get("kwargs", {})
    if not isinstance(kwargs, dict):
        raise ValueError(f"{str(folder / CONFIG_NAME)!r}: 'kwargs' must be an object, got {type(kwargs).__name__}")
    model = get_model(config["architecture"], **kwargs)
    state = load_file(str(folder / WEIGHTS_NAME), device=str(map_location))
    model.load_state_dict(state, strict=strict)
    model.to(map_location)
    model.zoo_config = {**model.zoo_config, "source": str(folder)}
    return model.eval()
