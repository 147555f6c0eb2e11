"""Files from upstream hosts (outside the Hugging Face Hub): download, mirror, sha256 check, local cache.

This is the file layer for weights the zoo does not host itself (e.g. mmsegmentation's checkpoints on
``download.openmmlab.com``). It knows nothing of models: it turns ``(url, sha256)`` into a verified local
file, or a clear error.

- **Cache root**: ``$SPP_ZOO_CACHE``, else ``$XDG_CACHE_HOME/spp-zoo``, else ``~/.cache/spp-zoo``
  (:func:`cache_root`). Upstream files go to ``<root>/upstream/<file name>``.
- **Mirror**: ``SPP_ZOO_DOWNLOAD_MIRROR=http://host:port`` replaces the scheme and host of every upstream
  URL, keeping its path (as ``HF_ENDPOINT`` does for the Hub): a file listed at
  ``https://download.openmmlab.com/a/b.pth`` is fetched from ``http://host:port/a/b.pth``.
- **Offline**: with ``HF_HUB_OFFLINE=1`` (or ``SPP_ZOO_OFFLINE=1``) nothing is downloaded.
- **Hash**: ``sha256`` is the full 64-hex digest or a prefix of it (at least 8 hex digits, the rule of
  ``torch.hub``'s ``check_hash`` and of file names such as ``..._20200615-1890b0bd.pth``). It is checked
  on every source: a fresh download, and a file already in the cache (which ``torch.hub``'s loader
  skips). A file that fails is never returned and never left in the cache: downloads go to a temporary
  file beside their destination (``.<name>.partial-*``) and are renamed into place only after the byte
  count (``Content-Length``) and the hash match; a cached file that fails is removed. An 8-hex prefix
  guards against corruption and wrong files, not against a determined forger (2**32 work): the loaders
  built on this never unpickle arbitrary objects from such files.
- **Failures are fast and single**: 2 s to connect (then 60 s per read), no retries. A missing file that
  cannot be downloaded raises :class:`UpstreamUnavailableError` with one line naming the URL to fetch on
  a connected machine and the path where to put it.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import re
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from .files import CONNECT_TIMEOUT_S, HashMismatchError, sha256_of

__all__ = [
    "CACHE_ENV",
    "MIRROR_ENV",
    "UpstreamUnavailableError",
    "cache_root",
    "check_sha256",
    "download_url",
    "fetch",
    "mirrored_url",
    "upstream_path",
    "verify_file",
]

#: Environment variable naming the zoo's cache root (default ``$XDG_CACHE_HOME/spp-zoo`` or ``~/.cache/spp-zoo``).
CACHE_ENV = "SPP_ZOO_CACHE"
#: Environment variable naming a mirror (``http://host:port``) that serves every upstream file by its path.
MIRROR_ENV = "SPP_ZOO_DOWNLOAD_MIRROR"
#: Environment variables that forbid downloads (any of them set to 1/true/yes/on).
OFFLINE_ENVS = ("SPP_ZOO_OFFLINE", "HF_HUB_OFFLINE")
READ_TIMEOUT_S = 60.0
_CHUNK = 1 << 20
_HEX = re.compile(r"[0-9a-f]+")


class UpstreamUnavailableError(ConnectionError):
    """An upstream file is not in the cache and cannot be downloaded (offline, host unreachable, server error)."""


# ------------------------------------------------------------------------------------------ locations
def cache_root() -> Path:
    """The zoo's cache root: ``$SPP_ZOO_CACHE``, else ``$XDG_CACHE_HOME/spp-zoo``, else ``~/.cache/spp-zoo``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "spp-zoo"


def _url_parts(url: str, argument: str = "url") -> urllib.parse.SplitResult:
    if not isinstance(url, str):
        raise TypeError(f"{argument} must be a str, got {type(url).__name__}")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{argument} must be an http(s) URL like 'https://host/path/file', got {url!r}")
    return parts


def file_name(url: str) -> str:
    """The file name of ``url`` (its last path segment), checked to be a plain name."""
    name = urllib.parse.unquote(_url_parts(url).path.rsplit("/", 1)[-1])
    if not name or name in (".", "..") or "/" in name or "\\" in name or name.startswith("."):
        raise ValueError(f"url {url!r} does not end with a file name")
    return name


def upstream_path(url: str) -> Path:
    """Where the cache keeps the file of ``url``: ``<cache root>/upstream/<file name>``."""
    return cache_root() / "upstream" / file_name(url)


def mirrored_url(url: str) -> str:
    """``url`` with its scheme and host replaced by ``$SPP_ZOO_DOWNLOAD_MIRROR`` (path and query kept); unchanged
    when the variable is unset."""
    parts = _url_parts(url)
    mirror = os.environ.get(MIRROR_ENV, "").strip()
    if not mirror:
        return url
    base = _url_parts(mirror, MIRROR_ENV)
    path = base.path.rstrip("/") + parts.path
    return urllib.parse.urlunsplit((base.scheme, base.netloc, path, parts.query, ""))


def offline() -> bool:
    """True when downloads are forbidden (``SPP_ZOO_OFFLINE`` or ``HF_HUB_OFFLINE`` set to 1/true/yes/on)."""
    return any(os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on") for name in OFFLINE_ENVS)


# ----------------------------------------------------------------------------------------------- hashes
def check_sha256(value: object, argument: str = "sha256") -> str:  # a prefix is enough here (cf. files)
    """``value`` as lowercase hex: a full sha256 digest (64 hex) or a prefix of at least 8 hex digits."""
    if not isinstance(value, str):
        raise TypeError(f"{argument} must be a str of hex digits, got {type(value).__name__}")
    lowered = value.lower()
    if not 8 <= len(lowered) <= 64 or not _HEX.fullmatch(lowered):
        raise ValueError(f"{argument} must be 8 to 64 hex digits (a sha256 digest or its prefix), got {value!r}")
    return lowered


def _describe(expected: str) -> str:
    return f"sha256 {expected}" if len(expected) == 64 else f"sha256 prefix {expected}"


def verify_file(path: str | os.PathLike, sha256: str, *, remove: bool = True, what: str | None = None) -> str:
    """Check that the sha256 of ``path`` is (or starts with) ``sha256``; return the full digest.

    On a mismatch the file is removed when ``remove`` (a cache entry) and :class:`HashMismatchError`
    names the file, the expected and the actual digest.
    """
    expected = check_sha256(sha256)
    actual = sha256_of(path)
    if actual.startswith(expected):
        return actual
    if remove:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    fate = "removed from the cache" if remove else "not used"
    raise HashMismatchError(
        f"{what or Path(path).name} fails its hash check: expected {_describe(expected)}, got {actual} "
        f"(file {str(path)!r} {fate})"
    )


# -------------------------------------------------------------------------------------------- transfers
class _HTTPConnection(http.client.HTTPConnection):
    """Connects within :data:`CONNECT_TIMEOUT_S`, then reads with :data:`READ_TIMEOUT_S`."""

    def connect(self) -> None:
        super().connect()
        self.sock.settimeout(READ_TIMEOUT_S)


class _HTTPSConnection(http.client.HTTPSConnection):
    def connect(self) -> None:
        super().connect()
        self.sock.settimeout(READ_TIMEOUT_S)


class _HTTPHandler(urllib.request.HTTPHandler):
    def http_open(self, req):
        return self.do_open(_HTTPConnection, req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def https_open(self, req):
        return self.do_open(_HTTPSConnection, req, context=self._context)


def _opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(_HTTPHandler(), _HTTPSHandler())  # proxies, redirects as urllib does


def _unavailable(url: str, fetched: str, destination: Path, why: str) -> UpstreamUnavailableError:
    via = "" if fetched == url else f" (through the mirror {MIRROR_ENV}: {fetched})"
    return UpstreamUnavailableError(
        f"{destination.name} is not in the cache and cannot be downloaded{via}: {why}. On a connected machine "
        f"download {url} and put it at {destination}, or set {MIRROR_ENV}=http://host:port to a mirror "
        "that serves it by the same path"
    )


def _truncated(destination: Path, fetched: str, received: int, total: int | None) -> HashMismatchError:
    expected = f"{total} bytes announced" if total is not None else "the transfer was cut short"
    return HashMismatchError(
        f"{destination.name}: truncated download from {fetched}: {received} bytes received, {expected} "
        "(nothing kept; run again to retry)"
    )


def download_url(url: str, destination: str | os.PathLike, *, sha256: str, progress: bool = True) -> str:
    """Download ``url`` (through the mirror, if set) to ``destination``, verified; return the file's full sha256.

    The bytes go to a temporary file in the destination's folder, hashed while they arrive; the file is
    renamed to ``destination`` only when its length matches ``Content-Length`` and its hash matches
    ``sha256`` (full digest or prefix). Otherwise it is deleted and ``HashMismatchError`` (wrong or
    truncated content), :class:`UpstreamUnavailableError` (no connection, offline, server error) or
    ``FileNotFoundError`` (the server has no such file) is raised. Shows a tqdm progress bar when ``progress``.
    """
    from tqdm.auto import tqdm

    expected = check_sha256(sha256)
    destination = Path(destination)
    fetched = mirrored_url(url)
    if offline():
        names = "/".join(OFFLINE_ENVS)
        raise _unavailable(url, fetched, destination, f"downloads are off ({names} is set)")
    destination.parent.mkdir(parents=True, exist_ok=True)
    request = urllib.request.Request(fetched, headers={"User-Agent": "spp-zoo", "Accept-Encoding": "identity"})
    handle, partial = tempfile.mkstemp(dir=destination.parent, prefix=f".{destination.name}.partial-")
    try:
        with os.fdopen(handle, "wb") as out:
            try:
                response = _opener().open(request, timeout=CONNECT_TIMEOUT_S)
            except urllib.error.HTTPError as error:
                if error.code in (404, 410):
                    raise FileNotFoundError(f"{fetched} answered {error.code} {error.reason}: no such file") from None
                why = f"the server answered {error.code} {error.reason}"
                raise _unavailable(url, fetched, destination, why) from None
            except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
                reason = getattr(error, "reason", error)
                raise _unavailable(url, fetched, destination, f"cannot connect ({reason})") from None
            with response:
                length = response.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
                digest = hashlib.sha256()
                received = 0
                bar = tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=destination.name,
                           disable=not progress, leave=False)  # fmt: skip
                with bar:
                    while True:
                        try:
                            chunk = response.read(_CHUNK)
                        except http.client.IncompleteRead:  # a chunked transfer cut short
                            raise _truncated(destination, fetched, received, total) from None
                        except (OSError, http.client.HTTPException) as error:
                            raise _unavailable(url, fetched, destination, f"the transfer broke off ({error})") from None
                        if not chunk:
                            break
                        out.write(chunk)
                        digest.update(chunk)
                        received += len(chunk)
                        bar.update(len(chunk))
        if total is not None and received != total:
            raise _truncated(destination, fetched, received, total)
        actual = digest.hexdigest()
        if not actual.startswith(expected):
            raise HashMismatchError(
                f"{destination.name} downloaded from {fetched} fails its hash check: expected {_describe(expected)}, "
                f"got {actual} (nothing kept)"
            )
        os.replace(partial, destination)
        return actual
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(partial)


def fetch(url: str, sha256: str, *, progress: bool = True, destination: str | os.PathLike | None = None) -> Path:
    """The verified local copy of ``url``: the cached file (checked again) or a fresh download.

    ``destination`` defaults to :func:`upstream_path`. A cached file that fails its check is removed
    and :class:`HashMismatchError` raised (the next call downloads it again).
    """
    expected = check_sha256(sha256)
    path = Path(destination) if destination is not None else upstream_path(url)
    if path.is_file():
        verify_file(path, expected, remove=True, what=f"cached {path.name}")
        return path
    download_url(url, path, sha256=expected, progress=progress)
    return path
