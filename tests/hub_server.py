"""Hub servers on loopback for the tests: olah (a real Hub mirror, downloads) and a small commit-API server.

``CommitServer`` implements the part of the Hugging Face Hub API that ``huggingface_hub`` uses to publish
(``create_repo``, ``create_branch``, ``upload_folder``: preupload and NDJSON commit, every file uploaded
in the "regular" mode) and writes each commit into a git repository ``{mirrors}/models/{org}/{name}``.
olah, started on the same ``mirrors`` folder in offline mode, serves those repositories to the real
client (``hf_hub_download`` by branch, tag or commit). Both bind to 127.0.0.1 only.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

GIT_ENV = {
    "GIT_AUTHOR_NAME": "spp-zoo tests", "GIT_AUTHOR_EMAIL": "tests@spp-zoo.invalid",
    "GIT_COMMITTER_NAME": "spp-zoo tests", "GIT_COMMITTER_EMAIL": "tests@spp-zoo.invalid",
}  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, **GIT_ENV}
    return subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True).stdout.strip()


def commit_folder(mirrors: Path, repo_id: str, files: dict[str, bytes], message: str, branch: str = "main") -> str:
    """Commit ``files`` to ``branch`` of the mirror repository of ``repo_id`` (created if needed); its sha."""
    repo = mirrors / "models" / repo_id
    if not (repo / ".git").is_dir():
        repo.mkdir(parents=True, exist_ok=True)
        git(repo, "init", "-q", "-b", "main")
        git(repo, "commit", "-q", "--allow-empty", "-m", "initial commit")
    git(repo, "checkout", "-q", branch)
    for path, content in files.items():
        target = repo / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        git(repo, "add", path)
    git(repo, "commit", "-q", "--allow-empty", "-m", message)
    sha = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "-q", "main")
    return sha


class _CommitHandler(BaseHTTPRequestHandler):
    server: CommitServer

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def _reply(self, status: int, payload: dict) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> bytes:
        data = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        return gzip.decompress(data) if self.headers.get("Content-Encoding") == "gzip" else data

    def _validate_card(self, content: str) -> None:
        """The Hub's model-card check: a YAML header between '---' lines, with model-index entries complete."""
        import yaml

        header = content.split("---")[1] if content.startswith("---") else ""
        try:
            meta = yaml.safe_load(header) or {}
            for model in meta.get("model-index", []):
                for result in model["results"]:
                    assert result["task"]["type"] and result["dataset"]["name"] and result["dataset"]["type"]
                    assert all("type" in m and "value" in m for m in result["metrics"])
        except Exception as error:  # any parse or schema failure is the Hub's 400
            return self._reply(400, {"errors": [{"message": f"invalid card metadata: {error!r}"}]})
        warnings = [] if meta else [{"message": "empty metadata"}]
        return self._reply(200, {"errors": [], "warnings": warnings})

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        parts = self.path.split("?")[0].strip("/").split("/")
        mirrors = self.server.mirrors
        self.server.requests.append(("POST", self.path))
        if parts[:2] == ["api", "validate-yaml"]:
            return self._validate_card(json.loads(self._body())["content"])
        if parts[:3] == ["api", "repos", "create"]:
            body = json.loads(self._body() or b"{}")
            name = body["name"] if "/" in body["name"] else f"{body.get('organization')}/{body['name']}"
            repo = mirrors / "models" / name
            if repo.is_dir():
                return self._reply(409, {"error": "You already created this model repo", "url": name})
            commit_folder(mirrors, name, {}, "initial commit")
            return self._reply(200, {"url": f"{self.server.url}/{name}", "name": name})
        if len(parts) >= 6 and parts[:2] == ["api", "models"]:
            repo_id, action, revision = f"{parts[2]}/{parts[3]}", parts[4], "/".join(parts[5:])
            repo = mirrors / "models" / repo_id
            if not repo.is_dir():
                return self._reply(404, {"error": "Repository not found"})
            if action == "branch":
                if revision in git(repo, "branch", "--format=%(refname:short)").split():
                    return self._reply(409, {"error": f"branch {revision} exists"})
                git(repo, "branch", revision, "main")
                return self._reply(200, {})
            if action == "preupload":
                files = json.loads(self._body())["files"]
                modes = [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]
                return self._reply(200, {"files": modes, "commitOid": git(repo, "rev-parse", revision)})
            if action == "commit":
                lines = [json.loads(line) for line in self._body().decode().splitlines() if line.strip()]
                header = next(x["value"] for x in lines if x["key"] == "header")
                files = {
                    x["value"]["path"]: base64.b64decode(x["value"]["content"]) for x in lines if x["key"] == "file"
                }
                if any(x["key"] not in ("header", "file") for x in lines):
                    return self._reply(400, {"error": "this test server accepts regular file uploads only"})
                sha = commit_folder(mirrors, repo_id, files, header.get("summary", "commit"), revision)
                url = f"{self.server.url}/{repo_id}/commit/{sha}"
                return self._reply(200, {"commitUrl": url, "commitOid": sha, "pullRequestUrl": None})
        return self._reply(404, {"error": f"not implemented: {self.path}"})


class CommitServer(ThreadingHTTPServer):
    """The Hub's repo-creation and commit API on 127.0.0.1, committing into git mirrors that olah serves."""

    def __init__(self, mirrors: Path):
        super().__init__(("127.0.0.1", free_port()), _CommitHandler)
        self.mirrors = mirrors
        self.requests: list[tuple[str, str]] = []
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    def __enter__(self) -> CommitServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()
        self.server_close()


class Olah:
    """olah (``olah-cli``) serving ``mirrors`` in offline mode on a free loopback port."""

    def __init__(self, mirrors: Path, workdir: Path):
        self.mirrors, self.workdir = mirrors, workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> Olah:
        config = self.workdir / "olah.toml"
        repos = self.workdir / "olah-repos"
        repos.mkdir(parents=True, exist_ok=True)
        config.write_text(
            f'[basic]\nhost = "127.0.0.1"\nport = {self.port}\nmirrors-path = ["{self.mirrors}"]\n'
            f'repos-path = "{repos}"\n[accessibility]\noffline = true\n'
        )
        olah = shutil.which("olah-cli") or str(Path(sys.executable).parent / "olah-cli")
        log = open(self.workdir / "olah.log", "wb")  # noqa: SIM115 (closed with the process)
        self.process = subprocess.Popen(  # olah writes its own logs/ under the working directory
            [olah, "-c", str(config)], stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"olah exited: {(self.workdir / 'olah.log').read_text()[-2000:]}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("olah did not start within 60 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
