"""The Hub's file layer: download, verify, cache and the copies shipped with the package.

Knows files, repositories, revisions and digests, nothing of models (the registry in
:mod:`zoo.models.registry` asks it for an entry's files; :mod:`zoo.hub.pretrained` builds models on top).

All Hub traffic goes through ``huggingface_hub`` (``hf_hub_download``, ``HfApi``), so ``HF_ENDPOINT``
(a mirror), ``HF_HUB_OFFLINE``, ``HF_HUB_CACHE``, ``HF_TOKEN`` and its progress bars behave as usual.
Files are cached in the Hugging Face cache; a pinned revision that is cached loads without network.
A ``sha256`` pin is checked on every load: a file with another digest is removed from the cache and
never used. Nothing here touches the network at import time.

A weights entry's folder (:func:`entry_folder`) is local first: the copy shipped inside the package
(``zoo/weights/<repo>/``) when its sha256 is the pinned one, with no network call; otherwise the Hub at
the entry's pinned revision (or its cache). A Hub endpoint that does not accept a connection within
:data:`CONNECT_TIMEOUT_S` seconds is not retried: the cache answers alone, as offline.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import socket
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# huggingface_hub is imported where it is used: importing it costs start-up time that loading a
# shipped or cached file does not need.

__all__ = [
    "CARD_NAME",
    "CONFIG_NAME",
    "DEFAULT_HUB_ORG",
    "HashMismatchError",
    "HubUnavailableError",
    "WEIGHTS_NAME",
    "entry_folder",
    "repo_id",
    "shipped_directory",
]

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
CARD_NAME = "README.md"
#: Environment variable naming the organisation of the zoo's Hub repositories (default ``spp-zoo``).
ORG_ENV = "SPP_ZOO_HUB_ORG"
#: Where the package keeps the weights it ships, one Hub-layout folder per repository name.
SHIPPED_ROOT = Path(__file__).resolve().parent.parent / "weights"
#: The keys ``config.json`` may carry beside ``architecture``/``kwargs`` (the schema of a model folder's metadata:
#: see :func:`zoo.hub.save_pretrained`). One list for every writer of folders.
METADATA_KEYS = (
    "categories", "palette", "mean", "std", "input_size", "resize_size", "align_corners", "metrics",
    "published_metrics", "test_protocol", "dataset", "source", "upstream", "entry", "license", "license_note",
    "description", "training", "task", "repo_id",
)  # fmt: skip
#: Organisation of the zoo's Hub repositories unless an argument or ``$SPP_ZOO_HUB_ORG`` names another.
DEFAULT_HUB_ORG = "spp-zoo"
REPO_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
_log = logging.getLogger("zoo.hub")


class HashMismatchError(ValueError):
    """A downloaded or shipped ``model.safetensors`` whose sha256 is not the pinned one."""


class HubUnavailableError(ConnectionError):
    """The Hub cannot be reached (offline mode or no connection) and the file is not cached."""


# ---------------------------------------------------------------------------------------------- naming
def repo_id(repo: str, org: str | None = None) -> str:
    """The Hub repo id of a zoo repository name (``{model}.{tag}``): ``{org}/{repo}``.

    ``org`` defaults to ``$SPP_ZOO_HUB_ORG``, else ``spp-zoo``.
    """
    org = org or os.environ.get(ORG_ENV) or DEFAULT_HUB_ORG
    result = f"{org}/{repo}"
    if not REPO_ID_PATTERN.match(result):
        raise ValueError(f"invalid Hub repo id {result!r} (expected 'org/name')")
    return result


def shipped_directory(repo: str) -> Path | None:
    """The folder of the weights the package ships for repository name ``repo``, if any."""
    folder = SHIPPED_ROOT / repo
    return folder if (folder / WEIGHTS_NAME).is_file() and (folder / CONFIG_NAME).is_file() else None


def entry_folder(repo: str, revision: str, sha256: str, progress: bool = True) -> Path:
    """The verified folder of the weights entry pinned at ``{org}/{repo}@{revision}`` with ``sha256``.

    Local first: the copy shipped with the package when its digest is the pinned one, with no network
    call at all; otherwise the Hub (or its cache). A shipped copy with another digest is never used: the
    Hub is asked instead, and if it cannot serve the entry either, a :class:`HashMismatchError` names
    the damaged shipped file.
    """
    key = (repo_id(repo), revision, sha256)
    if key in _ENTRY_FOLDERS:
        return _ENTRY_FOLDERS[key]
    shipped = shipped_directory(repo)
    damaged = None
    if shipped is not None:
        actual = sha256_of(shipped / WEIGHTS_NAME)
        if actual == sha256:
            _ENTRY_FOLDERS[key] = shipped
            return shipped
        damaged = HashMismatchError(
            f"sha256 mismatch for the shipped {shipped / WEIGHTS_NAME}: expected {sha256}, got {actual} (not used)"
        )
        _log.warning("spp-zoo: %s; downloading %s@%s instead", damaged, key[0], revision)
    try:
        folder = resolve(key[0], revision=revision, sha256=sha256, progress=progress)
    except (HubUnavailableError, FileNotFoundError) as error:
        if damaged is None:
            raise
        raise HashMismatchError(f"{damaged}, and the Hub cannot serve it: {first_line(error)}") from None
    _ENTRY_FOLDERS[key] = folder
    return folder


_ENTRY_FOLDERS: dict[tuple[str, str, str], Path] = {}


# ----------------------------------------------------------------------------------------- internals
def first_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def check_repo_id(value: Any) -> str:
    if not isinstance(value, str) or not REPO_ID_PATTERN.match(value):
        raise ValueError(f"repo_id must look like 'org/name', got {value!r}")
    return value


def check_sha256(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", value):
        raise ValueError(f"sha256 must be 64 hex digits, got {value!r}")
    return value.lower()


def is_local(source: Any) -> bool:
    """Whether ``source`` names a local folder (True) or a Hub repo id (False).

    A path object, an existing directory, or a string written as a path (absolute, ``./``, ``../``,
    ``~``, more than one ``/``, a trailing ``/``, or a first component that is a local directory, as in
    ``runs/nothere``) is local; a path that does not exist raises FileNotFoundError (``"X: no such
    directory"``) instead of being looked up on the Hub. Other ``org/name`` strings are repo ids.
    """
    if isinstance(source, os.PathLike):
        return True
    if not isinstance(source, str):
        raise TypeError(f"source must be a Hub repo id or a directory, got {type(source).__name__}")
    if os.path.isdir(source):
        return True
    if REPO_ID_PATTERN.match(source) and not _written_as_path(source):
        return False
    hint = "" if _written_as_path(source) else " (nor a Hub repo id 'org/name')"
    raise FileNotFoundError(f"{source}: no such directory{hint}")


def _written_as_path(text: str) -> bool:
    if text.startswith(("/", "./", "../", "~", ".")) or text.endswith("/") or "\\" in text or text.count("/") > 1:
        return True
    first = text.split("/", 1)[0]
    return "/" in text and os.path.isdir(first)


def check_folder(folder: Path) -> None:
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such directory")
    for name in (WEIGHTS_NAME, CONFIG_NAME):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{str(folder)!r} has no {name}: not a folder written by zoo.hub.save_pretrained")


def read_config(path: Path) -> dict[str, Any]:
    try:
        config = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{str(path)!r} does not exist") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"{str(path)!r} is not valid JSON: {error}") from None
    if not isinstance(config, dict) or not isinstance(config.get("architecture"), str):
        raise ValueError(f"{str(path)!r} has no 'architecture': not a config written by zoo.hub.save_pretrained")
    return config


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify(path: Path, sha256: str | None, cached: bool, pinned_by: str = "") -> None:
    """Check the digest of ``path``; on mismatch remove it from the cache (``cached``) and raise.

    ``pinned_by`` says where the expected digest comes from (e.g. ``"its config.json"``); a file whose
    structure is broken (:func:`safetensors_damage`) is called damaged, with what is wrong."""
    if sha256 is None:
        return
    actual = sha256_of(path)
    if actual == sha256:
        return
    damage = safetensors_damage(path) if path.name.endswith(".safetensors") else None
    if cached:
        evict(path)
    where = "removed from the Hugging Face cache" if cached else "not used"
    source = f" (recorded in {pinned_by})" if pinned_by else ""
    if damage is not None:
        raise HashMismatchError(
            f"{describe(path)} is damaged ({damage}): sha256 {actual}, expected {sha256}{source} (file {where})"
        )
    raise HashMismatchError(
        f"sha256 mismatch for {describe(path)}: expected {sha256}{source}, got {actual} (file {where})"
    )


def describe(path: Path) -> str:
    """``model.safetensors in my-model/``: a file named with its folder."""
    return f"{path.name} in {path.parent}/"


#: safetensors' own limit on the JSON header (100 MB).
_MAX_HEADER = 100_000_000


def safetensors_damage(path: Path) -> str | None:
    """What is structurally wrong with a ``.safetensors`` file (truncated, bad header...), or None.

    Reads the 8-byte header length, the JSON header and the tensors' data offsets; a file shorter than
    they say is ``"truncated at <size> of <expected> bytes"``."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        if size < 8:
            return f"truncated at {size} bytes, inside the 8-byte header length"
        header_length = int.from_bytes(f.read(8), "little")
        if header_length > _MAX_HEADER:
            return "not a .safetensors file: its first 8 bytes are no header length"
        if header_length > size - 8:
            return f"truncated at {size} of at least {8 + header_length} bytes, inside its header"
        try:
            header = json.loads(f.read(header_length))
            ends = [int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"]
        except (ValueError, TypeError, KeyError, IndexError, AttributeError):
            return "its header is not the JSON a .safetensors file starts with"
    expected = 8 + header_length + max(ends, default=0)
    if size < expected:
        return f"truncated at {size} of {expected} bytes"
    if size > expected:
        return f"{size - expected} unexpected bytes after the last tensor"
    return None


def load_safetensors(path: Path, device: str = "cpu") -> dict[str, Any]:
    """The tensors of a ``.safetensors`` file; a damaged file raises ValueError naming it and what is wrong."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device=device)
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        if isinstance(error, FileNotFoundError):
            raise FileNotFoundError(f"{describe(path)}: no such file") from None
        damage = safetensors_damage(path) or first_line(error)
        raise ValueError(f"{describe(path)} is damaged ({damage})") from None


def evict(path: Path) -> None:
    """Remove a cached file: the snapshot entry and the blob it points to."""
    blob = Path(os.path.realpath(path))
    for p in {path, blob}:
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


def resolve(source, *, revision: str | None, sha256: str | None, progress: bool) -> Path:
    """Local folder holding the verified ``model.safetensors`` and ``config.json`` of ``source``."""
    if is_local(source):
        if revision is not None:
            raise ValueError(f"revision={revision!r} applies to Hub repositories, not to the directory {source!r}")
        folder = Path(source)
        check_folder(folder)
        verify(folder / WEIGHTS_NAME, sha256, cached=False)
        verify_recorded(folder, cached=False)
        return folder
    hub_file(source, CONFIG_NAME, revision, progress=False)
    weights = Path(hub_file(source, WEIGHTS_NAME, revision, progress=progress))
    verify(weights, sha256, cached=True)
    verify_recorded(weights.parent, cached=True)
    return weights.parent


def verify_recorded(folder: Path, cached: bool) -> None:
    """Check ``model.safetensors`` against the ``sha256`` its ``config.json`` records (folders written by
    ``save_pretrained``); older folders without the field are not checked."""
    recorded = read_config(folder / CONFIG_NAME).get("sha256")
    if recorded is not None:
        if not isinstance(recorded, str) or not re.fullmatch(r"[0-9a-f]{64}", recorded):
            raise ValueError(f"{describe(folder / CONFIG_NAME)}: 'sha256' must be 64 lowercase hex digits")
        verify(folder / WEIGHTS_NAME, recorded, cached=cached, pinned_by=f"{folder}/{CONFIG_NAME}")


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


def hub_file(repo: str, filename: str, revision: str | None, progress: bool) -> str:
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
    # An endpoint that does not accept a connection within CONNECT_TIMEOUT_S is not asked at all (no
    # retries): the cache answers alone, as offline.
    local_only = not constants.HF_HUB_OFFLINE and not endpoint_reachable(constants.ENDPOINT)
    try:
        with _progress_bars(progress):
            return hf_hub_download(repo, filename, revision=revision, local_files_only=local_only)
    except (LocalEntryNotFoundError, OfflineModeIsEnabled):  # before EntryNotFoundError: a subclass of it
        why = (
            "offline mode is on (HF_HUB_OFFLINE=1)"
            if constants.HF_HUB_OFFLINE
            else (f"the Hub at {constants.ENDPOINT} cannot be reached (no connection within {CONNECT_TIMEOUT_S:g} s)")
        )
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
        if repo_exists(repo, revision or "main"):
            raise FileNotFoundError(f"file {filename!r} not found in Hub repository {at}") from None
        if revision not in (None, "main") and repo_exists(repo, "main"):
            raise FileNotFoundError(f"revision {revision!r} not found in Hub repository {repo!r}") from None
        raise FileNotFoundError(
            f"Hub repository {repo!r} not found at {constants.ENDPOINT} (or it is private: set HF_TOKEN)"
        ) from None
    except huggingface_hub.errors.HfHubHTTPError as error:
        raise HubUnavailableError(f"the Hub refused {filename} of {at}: {first_line(error)}") from None


#: Seconds a Hub endpoint (or the proxy in front of it) has to accept a TCP connection.
CONNECT_TIMEOUT_S = 2.0
_REACHABLE: dict[tuple[str, int], bool] = {}


def endpoint_reachable(url: str, timeout: float = CONNECT_TIMEOUT_S) -> bool:
    """Whether ``url``'s host (or the proxy the environment names for it) accepts a TCP connection within
    ``timeout`` seconds, name resolution included; remembered per host for the process."""
    parts = urllib.parse.urlsplit(url)
    proxy = urllib.request.getproxies().get(parts.scheme)
    if proxy and not urllib.request.proxy_bypass(parts.hostname or ""):
        parts = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    address = (parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80))
    if address not in _REACHABLE:
        outcome: list[bool] = []

        def connect() -> None:
            try:
                socket.create_connection(address, timeout=timeout).close()
                outcome.append(True)
            except OSError:
                outcome.append(False)

        worker = threading.Thread(target=connect, daemon=True)  # getaddrinfo has no timeout of its own
        worker.start()
        worker.join(timeout)
        _REACHABLE[address] = bool(outcome and outcome[0])
    return _REACHABLE[address]


def repo_exists(repo: str, revision: str) -> bool:
    from huggingface_hub import HfApi

    try:
        HfApi().repo_info(repo, revision=revision)
    except Exception:  # any failure means we cannot show that the repository exists
        return False
    return True
