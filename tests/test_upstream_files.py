"""zoo.hub.upstream, the file layer for upstream hosts, against a real HTTP server on loopback (no internet).

The server stands in for the upstream host through ``SPP_ZOO_DOWNLOAD_MIRROR``; the URLs the tests ask for
are the real upstream addresses, so the mirror rule (scheme and host replaced, path kept) is exercised.
"""

from __future__ import annotations

import hashlib
import os
import socket
from pathlib import Path

import pytest
from upstream_server import FileServer

from zoo.hub import upstream
from zoo.hub.files import HashMismatchError

UPSTREAM = "https://download.openmmlab.com/mmsegmentation/v0.5/pspnet/demo/demo_20200101-{}.pth"
PAYLOAD = os.urandom(3 * (1 << 20) + 12345)  # several chunks, not a multiple of the chunk size
DIGEST = hashlib.sha256(PAYLOAD).hexdigest()
URL = UPSTREAM.format(DIGEST[:8])
PATH = "/mmsegmentation/v0.5/pspnet/demo/" + URL.rsplit("/", 1)[1]


@pytest.fixture
def cache(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setenv("SPP_ZOO_CACHE", str(root))
    for name in ("SPP_ZOO_DOWNLOAD_MIRROR", "SPP_ZOO_OFFLINE", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    return root


@pytest.fixture
def server(cache, monkeypatch):
    with FileServer({PATH: PAYLOAD}) as srv:
        monkeypatch.setenv("SPP_ZOO_DOWNLOAD_MIRROR", srv.url)
        yield srv


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ----------------------------------------------------------------------------------------- locations
def test_cache_root_precedence(monkeypatch, tmp_path):
    monkeypatch.delenv("SPP_ZOO_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert upstream.cache_root() == tmp_path / "home" / ".cache" / "spp-zoo"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert upstream.cache_root() == tmp_path / "xdg" / "spp-zoo"
    monkeypatch.setenv("SPP_ZOO_CACHE", str(tmp_path / "mine"))
    assert upstream.cache_root() == tmp_path / "mine"
    assert upstream.upstream_path(URL) == tmp_path / "mine" / "upstream" / URL.rsplit("/", 1)[1]


def test_mirror_replaces_scheme_and_host_and_keeps_the_path(monkeypatch):
    monkeypatch.delenv("SPP_ZOO_DOWNLOAD_MIRROR", raising=False)
    assert upstream.mirrored_url(URL) == URL
    monkeypatch.setenv("SPP_ZOO_DOWNLOAD_MIRROR", "http://10.0.0.7:8080")
    assert upstream.mirrored_url(URL) == "http://10.0.0.7:8080" + PATH
    monkeypatch.setenv("SPP_ZOO_DOWNLOAD_MIRROR", "http://10.0.0.7:8080/files/")  # a path prefix is kept too
    assert upstream.mirrored_url(URL) == "http://10.0.0.7:8080/files" + PATH
    monkeypatch.setenv("SPP_ZOO_DOWNLOAD_MIRROR", "10.0.0.7:8080")
    with pytest.raises(ValueError, match="SPP_ZOO_DOWNLOAD_MIRROR"):
        upstream.mirrored_url(URL)


@pytest.mark.parametrize(
    ("value", "error"),
    [(123, TypeError), ("1890b0b", ValueError), ("1890b0bz", ValueError), ("a" * 65, ValueError), ("", ValueError)],
)
def test_bad_hashes_and_urls_name_the_argument(value, error):
    with pytest.raises(error, match="sha256"):
        upstream.check_sha256(value)
    with pytest.raises(ValueError, match="url"):
        upstream.fetch("ftp://host/file.pth", DIGEST[:8])
    with pytest.raises(ValueError, match="file name"):
        upstream.upstream_path("https://host/dir/")


# ------------------------------------------------------------------------------------------- downloads
@pytest.mark.parametrize("pin", [DIGEST[:8], DIGEST, DIGEST.upper()[:12]])
def test_download_through_the_mirror_is_verified_and_cached(server, cache, pin):
    path = upstream.fetch(URL, pin, progress=False)
    assert path == cache / "upstream" / URL.rsplit("/", 1)[1]
    assert path.read_bytes() == PAYLOAD
    assert server.requests == [PATH]
    assert files_under(cache) == ["upstream/" + path.name]  # no temporary file left beside it
    server.stop()
    assert upstream.fetch(URL, pin, progress=False) == path  # cache hit: verified again, no network


def test_a_wrong_hash_is_refused_and_nothing_is_kept(server, cache):
    wrong = format(int(DIGEST[:8], 16) ^ 1, "08x")
    with pytest.raises(HashMismatchError) as info:
        upstream.fetch(URL, wrong, progress=False)
    message = str(info.value)
    assert wrong in message and DIGEST in message and "\n" not in message
    assert files_under(cache) == []


def test_a_truncated_download_is_refused_and_nothing_is_kept(server, cache):
    server.truncate[PATH] = len(PAYLOAD) // 2
    with pytest.raises(HashMismatchError, match="truncated"):
        upstream.fetch(URL, DIGEST[:8], progress=False)
    assert files_under(cache) == []
    del server.truncate[PATH]
    assert upstream.fetch(URL, DIGEST[:8], progress=False).read_bytes() == PAYLOAD


def test_a_tampered_cached_file_is_refused_and_removed(server, cache):
    path = upstream.fetch(URL, DIGEST[:8], progress=False)
    data = bytearray(path.read_bytes())
    data[1000] ^= 0xFF
    path.write_bytes(bytes(data))
    server.stop()
    with pytest.raises(HashMismatchError, match="removed from the cache"):
        upstream.fetch(URL, DIGEST[:8], progress=False)
    assert files_under(cache) == []


def test_a_missing_file_on_the_server_is_file_not_found(server, cache):
    other = UPSTREAM.format("00000000")
    with pytest.raises(FileNotFoundError, match="404"):
        upstream.fetch(other, "00000000", progress=False)
    assert files_under(cache) == []


# --------------------------------------------------------------------------------------------- offline
def check_offline_message(message: str, cache: Path) -> None:
    assert "\n" not in message
    assert URL in message  # what to fetch on a connected machine...
    assert str(cache / "upstream" / URL.rsplit("/", 1)[1]) in message  # ...and where to put it
    assert "SPP_ZOO_DOWNLOAD_MIRROR" in message


def test_cold_cache_offline_gives_one_line_naming_url_and_path(server, cache, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(upstream.UpstreamUnavailableError) as info:
        upstream.fetch(URL, DIGEST[:8], progress=False)
    check_offline_message(str(info.value), cache)
    assert server.requests == []  # offline means no request at all
    assert files_under(cache) == []


def test_an_unreachable_host_fails_at_once_with_the_same_advice(cache, monkeypatch):
    monkeypatch.setenv("SPP_ZOO_DOWNLOAD_MIRROR", f"http://127.0.0.1:{closed_port()}")
    with pytest.raises(upstream.UpstreamUnavailableError, match="cannot connect") as info:
        upstream.fetch(URL, DIGEST[:8], progress=False)
    check_offline_message(str(info.value), cache)
    assert files_under(cache) == []


def test_a_file_put_by_hand_at_the_named_path_is_used(cache, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    target = upstream.upstream_path(URL)
    target.parent.mkdir(parents=True)
    target.write_bytes(PAYLOAD)
    assert upstream.fetch(URL, DIGEST[:8], progress=False) == target
