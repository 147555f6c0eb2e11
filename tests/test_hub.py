"""zoo.hub and ``python -m zoo`` against real Hub servers on loopback (no internet).

olah (a Hugging Face Hub mirror from PyPI) serves git repositories; ``tests/hub_server.py``'s commit
server takes uploads into the same repositories. The client is always the real ``huggingface_hub``.
Client code runs in subprocesses with ``HF_ENDPOINT``, ``HF_HUB_CACHE`` and ``HF_HUB_OFFLINE`` set
before ``huggingface_hub`` is imported, as a user would set them.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import yaml
from hub_server import CommitServer, Olah, commit_folder, git

import zoo
import zoo.hub

REPO = Path(__file__).resolve().parents[1]
SMALL = {  # every family, with non-default kwargs
    "sppnet_zf5": {"num_classes": 3, "width": 0.125, "representation_size": 16},
    "sppnet_resnet50": {"num_classes": 2, "representation_size": 8, "levels": [2, 1]},
    "spp_detector_zf5": {"num_classes": 3, "trunk_width": 0.125, "representation_size": 16},
    "pspnet_resnet50": {"num_classes": 2, "aux_loss": True, "align_corners": False, "stem_widths": [32, 32, 64]},
    "deconvnet_vgg16": {"num_classes": 2, "width": 0.0625, "fc_channels": 16},
}
INPUT = {"sppnet_zf5": (1, 3, 40, 48), "sppnet_resnet50": (1, 3, 64, 64), "pspnet_resnet50": (1, 3, 33, 41),
         "deconvnet_vgg16": (1, 3, 224, 224)}  # fmt: skip


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def client_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_") and k != SPP_ORG}
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    env.update(PYTHONPATH=path, HF_HUB_DISABLE_TELEMETRY="1", **extra)
    return env


SPP_ORG = "SPP_ZOO_HUB_ORG"


def run_client(code: str, **env: str) -> dict:
    """Run ``code`` in a fresh interpreter (HF variables set before import); it prints one JSON line last."""
    result = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", textwrap.dedent(code)], env=client_env(**env),
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def run_cli(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-W", "ignore", "-m", "zoo", *args], env=client_env(**env), capture_output=True, text=True,
        timeout=300, cwd=REPO,
    )  # fmt: skip


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """olah + the commit server on one mirrors folder; the published model and its reference output."""
    root = tmp_path_factory.mktemp("hub")
    mirrors = root / "mirrors"
    mirrors.mkdir()
    olah = Olah(mirrors, root).start()
    with CommitServer(mirrors) as commits:
        torch.manual_seed(0)
        model = zoo.get_model("sppnet_zf5", **SMALL["sppnet_zf5"]).eval()
        x = torch.rand(2, 3, 45, 37)
        with torch.no_grad():
            torch.save({"x": x, "y": model(x)}, root / "reference.pt")
        folder = zoo.hub.save_pretrained(model, root / "saved", metadata={"categories": ["a", "b", "c"]})
        yield {"root": root, "mirrors": mirrors, "olah": olah, "commits": commits, "folder": folder,
               "sha256": sha256(folder / "model.safetensors")}  # fmt: skip
    olah.stop()


# ------------------------------------------------------------------------------------------ save / load
@pytest.mark.parametrize("name", sorted(SMALL))
def test_save_pretrained_rebuilds_every_family_exactly(name, tmp_path):
    torch.manual_seed(1)
    model = zoo.get_model(name, **SMALL[name]).eval()
    folder = zoo.hub.save_pretrained(model, tmp_path / name, metadata={"license": "mit", "dataset": "toy"})
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    config = json.loads((folder / "config.json").read_text())
    assert config["architecture"] == name
    for key, value in SMALL[name].items():
        assert config["kwargs"][key] == value
    assert config["num_params"] == sum(p.numel() for p in model.parameters())
    loaded = zoo.hub.from_pretrained(folder)
    assert type(loaded) is type(model) and not loaded.training
    reference = model.state_dict()
    assert loaded.state_dict().keys() == reference.keys()
    for key, value in loaded.state_dict().items():
        assert torch.equal(value, reference[key]), key
    if name in INPUT:
        x = torch.rand(INPUT[name])
        with torch.no_grad():
            a, b = model(x), loaded(x)
        a, b = (a["out"], b["out"]) if isinstance(a, dict) else (a, b)
        assert torch.equal(a, b)


def test_config_and_model_card_describe_the_weights(tmp_path):
    model = zoo.get_model("pspnet_resnet50", num_classes=2, stem_widths=None, align_corners=False)
    metrics = {"scenes-test": {"mIoU": 51.25, "pixel_accuracy": 90.5}}
    folder = zoo.hub.save_pretrained(
        model, tmp_path / "m", dtype=torch.float16,
        metadata={"categories": ["bg", "fg"], "mean": [0.5] * 3, "std": [0.25] * 3, "input_size": [160, 160],
                  "metrics": metrics, "dataset": "spp-zoo-scenes", "source": "trained by a test", "license": "mit",
                  "repo_id": "someone/pspnet.test"},
    )  # fmt: skip
    config = json.loads((folder / "config.json").read_text())
    assert config["align_corners"] is False and config["categories"] == ["bg", "fg"] and config["dtype"] == "float16"
    assert config["metrics"] == metrics and config["task"] == "image-segmentation"
    card = (folder / "README.md").read_text()
    header = yaml.safe_load(card.split("---")[1])
    assert header["library_name"] == "spp-zoo" and header["license"] == "mit"
    assert header["datasets"] == ["spp-zoo-scenes"] and "image-segmentation" in header["tags"]
    results = header["model-index"][0]["results"]
    metric_values = {(m["type"], m["value"]) for r in results for m in r["metrics"]}
    assert metric_values == {("mIoU", 51.25), ("pixel_accuracy", 90.5)}
    assert sha256(folder / "model.safetensors") in card and 'from_pretrained("someone/pspnet.test")' in card
    loaded = zoo.hub.from_pretrained(folder)  # float16 storage loads into the float32 model
    assert next(loaded.parameters()).dtype == torch.float32
    snippet = card.split("```python")[1].split("```")[0].replace("someone/pspnet.test", str(folder))
    exec(snippet, {})  # the card's usage snippet runs


def test_saved_folder_records_its_sha256_is_world_readable_and_verified(tmp_path, monkeypatch):
    """config.json records model.safetensors' sha256, which from_pretrained checks; files get the umask's mode;
    the card carries neither the source entry's metrics nor an absolute path; old folders still load."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # the shipped entry, without asking the Hub
    monkeypatch.chdir(tmp_path)
    tuned = zoo.get_model("sppnet_zf5", weights="DEFAULT")  # "fine-tuned" from a registered entry
    folder = zoo.hub.save_pretrained(tuned, "my-model")
    config = json.loads((folder / "config.json").read_text())
    assert config["sha256"] == sha256(folder / "model.safetensors")
    assert "metrics" not in config and config["source"] == "fine-tuned from SPPNet_ZF5_Weights.SCENES_V2"
    card = (folder / "README.md").read_text()
    assert "model-index" not in card and "## Results" not in card
    assert str(tmp_path) not in card and 'from_pretrained("path/to/my-model")' in card
    umask = os.umask(0)
    os.umask(umask)
    for name in ("model.safetensors", "config.json", "README.md"):
        assert (folder / name).stat().st_mode & 0o777 == 0o666 & ~umask, name
    zoo.hub.from_pretrained("my-model")

    weights = folder / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF  # same structure, another digest
    weights.write_bytes(bytes(data))
    with pytest.raises(zoo.hub.HashMismatchError, match=r"sha256 mismatch for model.safetensors in my-model/: "
                       rf"expected {config['sha256']} \(recorded in my-model/config.json\)"):  # fmt: skip
        zoo.hub.from_pretrained("my-model")
    weights.write_bytes(bytes(data[:-100]))
    with pytest.raises(zoo.hub.HashMismatchError, match=r"model.safetensors in my-model/ is damaged \(truncated at"):
        zoo.hub.from_pretrained("my-model")

    old = {k: v for k, v in config.items() if k != "sha256"}  # a folder saved before the field existed
    (folder / "config.json").write_text(json.dumps(old))
    with pytest.raises(
        ValueError, match=r"^model.safetensors in my-model/ is damaged \(truncated at \d+ of \d+ bytes\)$"
    ):
        zoo.hub.from_pretrained("my-model")
    zoo.hub.save_pretrained(tuned, "old-model")
    (tmp_path / "old-model" / "config.json").write_text(json.dumps(old))
    assert zoo.hub.from_pretrained("old-model").zoo_config["architecture"] == "sppnet_zf5"
    from zoo.engine.predict import shipped_entries

    for _, entry in shipped_entries():  # every shipped file: pinned, and recorded in its config.json
        repo = zoo.get_weight(entry).repo
        shipped = Path(zoo.__file__).parent / "weights" / repo
        recorded = json.loads((shipped / "config.json").read_text()).get("sha256")
        assert sha256(shipped / "model.safetensors") == zoo.get_weight(entry).sha256 == recorded


def test_save_pretrained_rejects_what_it_cannot_rebuild(tmp_path):
    with pytest.raises(TypeError, match="not built by a registered zoo builder"):
        zoo.hub.save_pretrained(zoo.SPPNet(zoo.models.sppnet.ZF5(0.125), 3), tmp_path)
    model = zoo.get_model("sppnet_zf5", num_classes=3, width=0.125, representation_size=8)
    with pytest.raises(ValueError, match="unknown keys"):
        zoo.hub.save_pretrained(model, tmp_path, metadata={"colour": "blue"})
    model.zoo_config["kwargs"]["norm_layer"] = torch.nn.BatchNorm2d
    with pytest.raises(TypeError, match="kwargs.norm_layer"):
        zoo.hub.save_pretrained(model, tmp_path)


def test_from_pretrained_argument_errors(tmp_path, hub):
    with pytest.raises(FileNotFoundError, match="missing/dir: no such directory"):
        zoo.hub.from_pretrained(str(tmp_path / "missing" / "dir"))
    with pytest.raises(FileNotFoundError, match="has no model.safetensors"):
        zoo.hub.from_pretrained(tmp_path)
    with pytest.raises(ValueError, match="sha256 must be 64 hex digits"):
        zoo.hub.from_pretrained(hub["folder"], sha256="abc")
    with pytest.raises(ValueError, match="revision='main' applies to Hub repositories"):
        zoo.hub.from_pretrained(hub["folder"], revision="main")
    with pytest.raises(zoo.hub.HashMismatchError, match=f"expected {'0' * 64}, got {hub['sha256']}"):
        zoo.hub.from_pretrained(hub["folder"], sha256="0" * 64)
    assert (hub["folder"] / "model.safetensors").exists()  # a local folder is the user's: reported, not deleted
    with pytest.raises(TypeError, match="source must be"):
        zoo.hub.from_pretrained(42)


# ------------------------------------------------------------------------------- publish, serve, load
def test_publish_then_load_by_branch_tag_and_commit(hub):
    zoo_push = zoo.hub.push_to_hub  # uploads go to the commit server; HfApi reads the endpoint per call
    import huggingface_hub.constants

    old = huggingface_hub.constants.ENDPOINT
    huggingface_hub.constants.ENDPOINT = hub["commits"].url
    try:
        main = zoo_push(hub["folder"], "org/sppnet_zf5.test", commit_message="first weights")
        dev = zoo_push(hub["folder"], "org/sppnet_zf5.test", revision="dev")
    finally:
        huggingface_hub.constants.ENDPOINT = old
    assert len(main.oid) == 40 and len(dev.oid) == 40
    repo = hub["mirrors"] / "models" / "org" / "sppnet_zf5.test"
    assert git(repo, "log", "-1", "--format=%s", "main") == "first weights"
    git(repo, "tag", "v1", main.oid)
    result = run_client(
        f"""
        import json, torch, zoo.hub
        ref = torch.load({str(hub["root"] / "reference.pt")!r})
        same = {{}}
        for revision in ("main", "dev", "v1", {main.oid!r}):
            model = zoo.hub.from_pretrained("org/sppnet_zf5.test", revision=revision, sha256={hub["sha256"]!r})
            with torch.no_grad():
                same[revision] = torch.equal(model(ref["x"]), ref["y"])
        print(json.dumps(same))
        """,
        HF_ENDPOINT=hub["olah"].url, HF_HUB_CACHE=str(hub["root"] / "cache"),
    )  # fmt: skip
    assert result == {"main": True, "dev": True, "v1": True, main.oid: True}


def test_cache_hit_with_the_server_stopped_and_cold_cache_offline_error(hub):
    files = {name: (hub["folder"] / name).read_bytes() for name in ("model.safetensors", "config.json")}
    commit = commit_folder(hub["mirrors"], "org/cached.test", files, "weights")
    git(hub["mirrors"] / "models" / "org" / "cached.test", "tag", "v1", commit)
    cache = str(hub["root"] / "cache-hit")
    code = f"""
        import json, torch, zoo.hub
        ref = torch.load({str(hub["root"] / "reference.pt")!r})
        out = {{}}
        for revision in ({commit!r}, "v1"):
            model = zoo.hub.from_pretrained("org/cached.test", revision=revision, sha256={hub["sha256"]!r})
            with torch.no_grad():
                out[revision] = torch.equal(model(ref["x"]), ref["y"])
        print(json.dumps(out))
        """
    assert run_client(code, HF_ENDPOINT=hub["olah"].url, HF_HUB_CACHE=cache) == {commit: True, "v1": True}
    hub["olah"].stop()
    try:
        result = run_client(code, HF_ENDPOINT=hub["olah"].url, HF_HUB_CACHE=cache, HF_HUB_OFFLINE="1")
        assert result == {commit: True, "v1": True}
        cold = run_cli("download", "org/cached.test", "--revision", "v1", HF_HUB_OFFLINE="1",
                       HF_HUB_CACHE=str(hub["root"] / "cold"))  # fmt: skip
        assert cold.returncode == 1 and len(cold.stderr.strip().splitlines()) == 1, cold.stderr
        assert "offline mode is on (HF_HUB_OFFLINE=1)" in cold.stderr
        assert "python -m zoo download org/cached.test --revision v1" in cold.stderr
        assert "HF_ENDPOINT" in cold.stderr
    finally:
        hub["olah"].start()


def test_corrupted_file_is_refused_and_leaves_nothing_in_the_cache(hub):
    good = (hub["folder"] / "model.safetensors").read_bytes()
    bad = bytearray(good)
    bad[-1] ^= 0xFF
    files = {"model.safetensors": bytes(bad), "config.json": (hub["folder"] / "config.json").read_bytes()}
    commit_folder(hub["mirrors"], "org/corrupt.test", files, "tampered weights")
    cache = hub["root"] / "cache-corrupt"
    code = f"""
        import json, zoo.hub
        try:
            zoo.hub.from_pretrained("org/corrupt.test", sha256={hub["sha256"]!r})
            print(json.dumps({{"error": None}}))
        except (zoo.hub.HashMismatchError, zoo.hub.HubUnavailableError) as e:
            print(json.dumps({{"error": type(e).__name__ + ": " + str(e)}}))
        """
    result = run_client(code, HF_ENDPOINT=hub["olah"].url, HF_HUB_CACHE=str(cache))
    bad_digest = hashlib.sha256(bad).hexdigest()
    assert result["error"].startswith("HashMismatchError") and hub["sha256"] in result["error"]
    assert bad_digest in result["error"]
    cached = [p for p in cache.rglob("*") if p.is_file() or p.is_symlink()]
    assert not [p for p in cached if p.name == "model.safetensors" or p.read_bytes() == bytes(bad)]
    # a later offline call cannot pick the bad file up
    again = run_client(code, HF_ENDPOINT=hub["olah"].url, HF_HUB_CACHE=str(cache), HF_HUB_OFFLINE="1")
    assert again["error"].startswith("HubUnavailableError") and "offline mode is on" in again["error"]


def test_missing_repo_revision_and_file_are_named(hub):
    commit_folder(hub["mirrors"], "org/noweights.test", {"config.json": b'{"architecture": "sppnet_zf5"}'}, "c")
    files = {name: (hub["folder"] / name).read_bytes() for name in ("model.safetensors", "config.json")}
    commit_folder(hub["mirrors"], "org/onlymain.test", files, "weights on main only")
    result = run_client(
        """
        import json, zoo.hub
        out = []
        for repo, revision in (("org/nothere", None), ("org/noweights.test", None), ("org/onlymain.test", "v9")):
            try:
                zoo.hub.from_pretrained(repo, revision=revision)
            except FileNotFoundError as e:
                out.append(str(e))
        print(json.dumps(out))
        """,
        HF_ENDPOINT=hub["olah"].url, HF_HUB_CACHE=str(hub["root"] / "cache-missing"),
    )  # fmt: skip
    assert len(result) == 3
    assert "Hub repository 'org/nothere' not found" in result[0]
    assert "file 'model.safetensors' not found in Hub repository org/noweights.test@main" in result[1]
    assert "revision 'v9' not found in Hub repository 'org/onlymain.test'" in result[2]


# ----------------------------------------------------------------------- weights entries and shipping
ENTRY_SCRIPT = """
import json, logging, torch, zoo, zoo.hub
from pathlib import Path
from zoo import Weights
logging.basicConfig(level=logging.WARNING, format="%(message)s")
zoo.hub.files.SHIPPED_ROOT = Path({shipped!r})

class TestWeights(zoo.WeightsEnum):
    SHIPPED = Weights(repo={repo!r}, revision="v1", sha256={sha!r}, transforms=None,
                      meta={{"categories": ["a", "b", "c"]}})

# SPPNet_ZF5_Weights has entries (an enum with members cannot be subclassed): the test enum stands in for it
import zoo.models.registry, zoo.models.sppnet
zoo.models.sppnet.SPPNet_ZF5_Weights = TestWeights
_enum_of = zoo.models.registry.get_model_weights
zoo.models.registry.get_model_weights = lambda fn: (
    TestWeights if getattr(fn, "__name__", fn) == "sppnet_zf5" else _enum_of(fn)
)

ref = torch.load({reference!r})
model = zoo.sppnet_zf5(weights=TestWeights.SHIPPED, progress=False).eval()
with torch.no_grad():
    same = torch.equal(model(ref["x"]), ref["y"])
print(json.dumps({{"same": same, "config": model.zoo_config}}))
"""


def _entry_script(hub, shipped: Path, repo: str, sha: str) -> str:
    return ENTRY_SCRIPT.format(shipped=str(shipped), repo=repo, sha=sha, reference=str(hub["root"] / "reference.pt"))


def test_weights_entries_load_local_first_then_from_the_hub(hub, tmp_path):
    shipped = tmp_path / "weights"
    (shipped / "sppnet_zf5.test").mkdir(parents=True)
    for name in ("model.safetensors", "config.json", "README.md"):
        (shipped / "sppnet_zf5.test" / name).write_bytes((hub["folder"] / name).read_bytes())
    script = _entry_script(hub, shipped, "sppnet_zf5.test", hub["sha256"])
    # shipped with the pinned digest: the package's copy, no Hub call (the org has no such repository)
    env = {"HF_ENDPOINT": hub["olah"].url, "HF_HUB_CACHE": str(tmp_path / "cache"), SPP_ORG: "elsewhere"}
    result = subprocess.run([sys.executable, "-W", "ignore", "-c", script], env=client_env(**env),
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr
    local = json.loads(result.stdout.splitlines()[-1])
    assert local["same"] and local["config"]["weights"] == "TestWeights.SHIPPED"
    assert local["config"]["kwargs"]["width"] == 0.125  # built with the published config
    assert result.stderr.strip() == "", result.stderr
    assert not (tmp_path / "cache").exists()  # nothing was downloaded
    # not shipped: the Hub at the pinned revision
    env[SPP_ORG] = "org"
    from_hub = run_client(_entry_script(hub, tmp_path / "nothing-shipped", "sppnet_zf5.test", hub["sha256"]), **env)
    assert from_hub["same"], from_hub
    # a damaged shipped copy is never used: the Hub serves the entry, with one line saying why
    (shipped / "sppnet_zf5.test" / "model.safetensors").write_bytes(b"damaged")
    env["HF_HUB_CACHE"] = str(tmp_path / "cache2")
    result = subprocess.run([sys.executable, "-W", "ignore", "-c", script], env=client_env(**env),
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1])["same"]
    notice = [line for line in result.stderr.splitlines() if "sha256 mismatch for the shipped" in line]
    assert len(notice) == 1 and "org/sppnet_zf5.test" in notice[0], result.stderr
    # ... and offline with a cold cache, the damaged copy is refused, naming the digests
    bad = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", script],
        env=client_env(HF_HUB_OFFLINE="1", HF_HUB_CACHE=str(tmp_path / "cold")), capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert bad.returncode != 0 and "HashMismatchError" in bad.stderr and hub["sha256"] in bad.stderr


def test_repo_id_and_org_configuration(monkeypatch):
    monkeypatch.delenv(SPP_ORG, raising=False)
    assert zoo.hub.repo_id("pspnet_resnet18.scenes") == "spp-zoo/pspnet_resnet18.scenes"
    assert zoo.hub.repo_id("pspnet_resnet18.scenes", org="me") == "me/pspnet_resnet18.scenes"
    monkeypatch.setenv(SPP_ORG, "mirror-org")
    assert zoo.hub.repo_id("x.y") == "mirror-org/x.y"
    with pytest.raises(ValueError, match="invalid Hub repo id"):
        zoo.hub.repo_id("bad name")
    with pytest.raises(ValueError, match="sha256 must be 64 lowercase hex digits"):
        zoo.Weights(repo="a.b", revision="v1", sha256="xyz", transforms=None, meta={})


# ------------------------------------------------------------------------------------------------- CLI
def test_cli_download_and_publish(hub, tmp_path):
    published = run_cli("publish", str(hub["folder"]), "org/cli.test", "--revision", "exp", "--message", "via cli",
                        HF_ENDPOINT=hub["commits"].url)  # fmt: skip
    assert published.returncode == 0, published.stderr
    oid = published.stdout.split()[0]
    assert git(hub["mirrors"] / "models" / "org" / "cli.test", "rev-parse", "exp") == oid
    done = run_cli("download", "org/cli.test", "--revision", oid, "--sha256", hub["sha256"], "--quiet",
                   HF_ENDPOINT=hub["olah"].url, HF_HUB_CACHE=str(tmp_path / "cache"))  # fmt: skip
    assert done.returncode == 0, done.stderr
    folder = Path(done.stdout.strip().splitlines()[-1])
    assert sha256(folder / "model.safetensors") == hub["sha256"] and str(tmp_path / "cache") in str(folder)
    wrong = run_cli("download", "org/cli.test", "--revision", oid, "--sha256", "2" * 64, "--quiet",
                    HF_ENDPOINT=hub["olah"].url, HF_HUB_CACHE=str(tmp_path / "cache2"))  # fmt: skip
    assert wrong.returncode == 2 and len(wrong.stderr.strip().splitlines()) == 1 and "2" * 64 in wrong.stderr
    missing = run_cli("publish", str(tmp_path / "nowhere"), "org/x", HF_ENDPOINT=hub["commits"].url)
    assert missing.returncode == 2 and "nowhere: no such directory" in missing.stderr


@pytest.mark.parametrize("fmt", ["torchscript", "export", "onnx"])
def test_cli_export(fmt, tmp_path):
    out = tmp_path / f"model.{fmt}"
    kwargs = json.dumps(SMALL["sppnet_zf5"])
    done = run_cli("export", "sppnet_zf5", "--format", fmt, "--kwargs", kwargs, "--size", "48", "56", "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert out.stat().st_size > 1000
    if fmt == "torchscript":
        scripted = torch.jit.load(str(out))
        assert scripted(torch.rand(1, 3, 48, 56)).shape == (1, 3)


def _cli(capsys, *args: str) -> tuple[int, str, str]:
    """``python -m zoo ARGS`` in this process: (exit code, stdout, stderr)."""
    from zoo.cli import main

    try:
        code = main(list(args))
    except SystemExit as exit_:  # argparse: --help and usage errors
        code = exit_.code
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_list_info_and_bad_usage(capsys):
    code, out, _ = _cli(capsys, "list", "--json")
    assert code == 0 and {r["model"] for r in json.loads(out)} == set(zoo.list_models())
    code, out, _ = _cli(capsys, "info", "pspnet_resnet50")
    assert code == 0 and json.loads(out)["model"] == "pspnet_resnet50"
    bad_usages = (
        ["info", "NoSuch_Weights.X"], ["bogus"], ["export", "sppnet_zf5"], ["download"],
        ["export", "no_such_model", "--format", "onnx", "-o", "x"], ["convert", "semseg", "/nonexistent", "o"],
        ["export", "sppnet_zf5", "--format", "onnx", "-o", "x", "--kwargs", "[1]"], ["download", "Nope.X"],
        ["download", "sppnet_resnet50"],  # a model without published weights
    )  # fmt: skip
    for args in bad_usages:
        code, _, err = _cli(capsys, *args)
        assert code == 2, (args, err)
        assert len(err.strip().splitlines()) == 1 and "error" in err, (args, err)
    for command in ("list", "info", "download", "publish", "convert", "export"):
        code, out, _ = _cli(capsys, command, "--help")
        assert code == 0 and "usage:" in out
    # the real entry point, once: exit code and a one-line message from `python -m zoo`
    bad = run_cli("info", "NoSuch_Weights.X")
    assert bad.returncode == 2 and bad.stderr.strip() == "zoo info: error: unknown weights enum 'NoSuch_Weights'; " + (
        "known: " + ", ".join(sorted({zoo.get_model_weights(m).__name__ for m in zoo.list_models()}))
    )
