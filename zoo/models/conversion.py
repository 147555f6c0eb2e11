"""Weights entries sourced from an upstream file: download, verify, convert, cache. Generic: any converter.

An entry such as ``Weights(url=..., sha256_prefix=..., converter="mmseg", repo=...)`` (see
:class:`zoo.models.registry.Weights`) names a checkpoint published by its authors in their own format.
On first use :func:`converted_folder`:

1. fetches the upstream file into ``<cache root>/upstream/`` and checks its sha256 (prefix) there
   (:func:`zoo.hub.upstream.fetch`: mirror, progress bar, one-line offline error);
2. runs the converter registered under the entry's ``converter`` name, which writes a Hub-layout folder
   (``model.safetensors``, ``config.json``, ``README.md``) into a temporary folder of the cache;
3. records the sha256 of every file of that folder in ``SHA256SUMS`` (``sha256sum -c SHA256SUMS`` checks it
   too), renames it to ``<cache root>/converted/<repo>/<sha256 prefix>/`` and deletes the upstream file
   unless ``keep_upstream`` (one converted copy on disk, not two).

Later uses find the folder, check every file against ``SHA256SUMS`` (a folder that fails is removed,
never used) and need no network. The cache root is :func:`zoo.hub.upstream.cache_root`
(``$SPP_ZOO_CACHE``, else ``$XDG_CACHE_HOME/spp-zoo``, else ``~/.cache/spp-zoo``).

Converters: ``fn(upstream_file: Path, output_dir: Path, metadata: dict) -> None``, registered with
:func:`register_converter`. ``metadata`` is what the entry knows of the weights (categories, palette,
normalization, ``align_corners``, test protocol, published metrics, license, source, upstream URL and
full sha256), for the folder's ``config.json`` and model card. The official-checkpoint converters of
:mod:`zoo.convert` (``"mmseg"``, ``"semseg"``) register when :mod:`zoo` is imported; another format plugs
in the same way.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..hub import files, upstream
from ..hub.files import CONFIG_NAME, METADATA_KEYS, WEIGHTS_NAME, HashMismatchError

__all__ = [
    "CHECKSUMS_NAME",
    "Converter",
    "converted_directory",
    "converted_folder",
    "get_converter",
    "list_converters",
    "register_converter",
    "upstream_metadata",
    "verify_checksums",
    "write_checksums",
]

#: Sidecar of a converted folder: ``<sha256>  <file name>`` per line (``sha256sum`` format).
CHECKSUMS_NAME = "SHA256SUMS"
#: Metadata keys of an entry's ``meta`` passed on to converters (and so to ``config.json``).

Converter = Callable[[Path, Path, dict], None]
_CONVERTERS: dict[str, Converter] = {}
_LOCK = threading.Lock()
_log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------- converters
def register_converter(name: str) -> Callable[[Converter], Converter]:
    """Decorator registering ``fn(upstream_file, output_dir, metadata)`` as the converter ``name``."""
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"converter name must be an identifier such as 'mmseg', got {name!r}")

    def wrapper(fn: Converter) -> Converter:
        if name in _CONVERTERS and _CONVERTERS[name] is not fn:
            raise ValueError(f"a converter is already registered under the name {name!r}")
        _CONVERTERS[name] = fn
        return fn

    return wrapper


def list_converters() -> list[str]:
    """Names of the registered converters."""
    return sorted(_CONVERTERS)


def get_converter(name: str) -> Converter:
    """The converter registered under ``name``."""
    try:
        return _CONVERTERS[name]
    except KeyError:
        known = ", ".join(list_converters()) or "none"
        raise ValueError(f"no converter is registered under the name {name!r} (registered: {known})") from None


# -------------------------------------------------------------------------------------- checksums
def write_checksums(folder: Path) -> dict[str, str]:
    """Write ``SHA256SUMS`` for every file of ``folder``; return ``{file name: sha256}``."""
    sums = {p.name: files.sha256_of(p) for p in sorted(folder.iterdir()) if p.is_file() and p.name != CHECKSUMS_NAME}
    (folder / CHECKSUMS_NAME).write_text("".join(f"{digest}  {name}\n" for name, digest in sums.items()))
    return sums


def _read_checksums(folder: Path) -> dict[str, str]:
    sums = {}
    for line in (folder / CHECKSUMS_NAME).read_text().splitlines():
        digest, _, name = line.partition("  ")
        if len(digest) != 64 or not name or "/" in name:
            raise ValueError(f"malformed line in {folder / CHECKSUMS_NAME}: {line!r}")
        sums[name] = digest
    return sums


def verify_checksums(folder: Path) -> dict[str, str]:
    """Check every file listed in ``folder/SHA256SUMS`` (the weights and config must be listed).

    A folder that fails (a file changed, missing or unlisted) is removed whole and :class:`HashMismatchError`
    raised: it is never used.
    """
    try:
        sums = _read_checksums(folder)
        if not {WEIGHTS_NAME, CONFIG_NAME} <= set(sums):
            raise ValueError(f"{CHECKSUMS_NAME} does not list {WEIGHTS_NAME} and {CONFIG_NAME}")
        for name, digest in sums.items():
            path = folder / name
            actual = files.sha256_of(path) if path.is_file() else "missing"
            if actual != digest:
                raise ValueError(f"{name} has sha256 {actual}, {CHECKSUMS_NAME} says {digest}")
    except (OSError, ValueError) as error:
        shutil.rmtree(folder, ignore_errors=True)
        raise HashMismatchError(
            f"the converted folder {str(folder)!r} fails its check ({error}); it was removed from the cache "
            "(the next load downloads and converts the upstream file again)"
        ) from None
    return sums


# ------------------------------------------------------------------------------------------ folders
def _weights(entry) -> Any:
    return getattr(entry, "value", entry)


def converted_directory(entry) -> Path:
    """Where the cache keeps the converted folder of an upstream entry: ``<root>/converted/<repo>/<prefix>``."""
    weights = _weights(entry)
    if getattr(weights, "url", None) is None or getattr(weights, "sha256_prefix", None) is None:
        raise ValueError(f"{entry!r} has no upstream file (url and sha256_prefix)")
    return upstream.cache_root() / "converted" / weights.repo / weights.sha256_prefix


def upstream_metadata(entry, upstream_sha256: str) -> dict[str, Any]:
    """What the converted folder's ``config.json`` records of an upstream entry."""
    weights = _weights(entry)
    metadata = {key: weights.meta[key] for key in METADATA_KEYS if key in weights.meta}
    metadata["upstream"] = {"url": weights.url, "sha256": upstream_sha256, "converter": weights.converter}
    if hasattr(entry, "name"):
        metadata["entry"] = f"{type(entry).__name__}.{entry.name}"
    return metadata


def converted_folder(entry, *, progress: bool = True, keep_upstream: bool = False) -> Path:
    """The verified converted folder of an upstream ``entry``: from the cache, or downloaded and converted now.

    ``keep_upstream`` keeps the downloaded upstream file in ``<root>/upstream/`` after a conversion
    (default: deleted, so that one converted copy is kept).
    """
    weights = _weights(entry)
    folder = converted_directory(entry)
    with _LOCK:
        if folder.is_dir():
            verify_checksums(folder)
            return folder
        converter = get_converter(weights.converter)
        source = upstream.fetch(weights.url, weights.sha256_prefix, progress=progress)
        source_sha256 = files.sha256_of(source)  # fetch verified it; the full digest is recorded
        folder.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.converting-"))
        try:
            converter(source, work, upstream_metadata(entry, source_sha256))
            for name in (WEIGHTS_NAME, CONFIG_NAME):
                if not (work / name).is_file():
                    raise RuntimeError(f"the converter {weights.converter!r} wrote no {name}")
            write_checksums(work)
            os.replace(work, folder)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        if not keep_upstream:
            with contextlib.suppress(FileNotFoundError):
                source.unlink()
        _log.info("spp-zoo: converted %s into %s", weights.url, folder)
        return folder
