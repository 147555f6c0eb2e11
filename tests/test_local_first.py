"""Local-first weights: the main job and the shipped entries make no network call at all, and a Hub that
cannot be reached fails fast with one line (no retries)."""

import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


class RecordingServer:
    """A loopback TCP server that counts the connections made to it (and closes them)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def _serve(self):
        while not self._stop.is_set():
            try:
                connection, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            connection.close()

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.sock.close()


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "SPP_ZOO_"))}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    env.update(extra)
    return env


def test_main_job_makes_no_network_call(tmp_path):
    with RecordingServer() as hub:
        result = subprocess.run(
            [sys.executable, "-m", "zoo", "predict", "--output", str(tmp_path / "out")],
            env=_env(HF_ENDPOINT=hub.url, HF_HUB_CACHE=str(tmp_path / "hf")), cwd=tmp_path,
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert hub.connections == 0
    pictures = sorted((tmp_path / "out").rglob("*.png"))
    assert len(pictures) == len(result.stdout.split()) > 0
    # it prints its own progress only: the written paths and the summary line
    assert result.stderr.strip().splitlines() == [f"{len(pictures)} picture(s) written to {tmp_path / 'out'}"]


def test_registered_entries_load_without_the_network(tmp_path):
    code = (
        "import zoo\n"
        "for name in zoo.list_models():\n"
        "    for entry in zoo.get_model_weights(name):\n"
        "        if zoo.hub.shipped_directory(entry.repo):\n"
        "            zoo.get_model(name, weights=entry)\n"
        "print('ok')\n"
    )
    with RecordingServer() as hub:
        result = subprocess.run([sys.executable, "-c", code], env=_env(HF_ENDPOINT=hub.url), cwd=tmp_path,
                                capture_output=True, text=True, timeout=600)  # fmt: skip
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-3000:]
    assert hub.connections == 0 and result.stderr.strip() == ""


def test_unreachable_hub_fails_fast_with_one_line(tmp_path):
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there: every connection is refused
    for endpoint in (f"http://127.0.0.1:{port}", "http://hub.example.invalid"):
        result = subprocess.run(
            [sys.executable, "-m", "zoo", "download", "someone/not-shipped.repo"],
            env=_env(HF_ENDPOINT=endpoint, HF_HUB_CACHE=str(tmp_path / "hf")), cwd=tmp_path,
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 1, result.stderr
        assert len(lines) == 1 and "cannot be reached" in lines[0] and "Retrying" not in result.stderr, lines
