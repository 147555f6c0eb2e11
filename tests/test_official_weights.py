"""Official (mmsegmentation) PSPNet weights entries: the registered table, and the download -> verify -> convert
-> cache path end to end against a loopback HTTP server standing in for download.openmmlab.com (no internet).

The stand-in checkpoint is mmsegmentation's PSPNet R-18-D8 with 19 classes (the architecture the real
Cityscapes entries need), randomly initialized with non-trivial BN statistics by the independent reference
of ``tests/mmseg_reference.py`` and saved in mmsegmentation's published layout. A real entry stands in for
it: its URL keeps the real host and path with the stand-in's own date-hash suffix, and its prefix is the
stand-in file's real sha256 prefix.
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
from mmseg_reference import MMSegPSPNet, mmseg_checkpoint, randomize
from upstream_server import FileServer

import zoo
import zoo.hub
from zoo.classes import CITYSCAPES_CATEGORIES, CITYSCAPES_PALETTE
from zoo.hub import upstream
from zoo.hub.files import HashMismatchError
from zoo.models import conversion

REPO = Path(__file__).resolve().parents[1]
ROOT = "https://download.openmmlab.com/mmsegmentation/v0.5/pspnet"
#: ../shared/REFERENCE.md section 7, transcribed independently of the registry: dir, date-hash, mIoU, ms+flip.
PUBLISHED = [
    ("pspnet_r50-d8_512x512_80k_ade20k", "20200615_014128-15a8b914", 41.13, 41.94),
    ("pspnet_r101-d8_512x512_80k_ade20k", "20200614_031423-b6e782f0", 43.57, 44.35),
    ("pspnet_r50-d8_512x512_160k_ade20k", "20200615_184358-1890b0bd", 42.48, 43.44),
    ("pspnet_r101-d8_512x512_160k_ade20k", "20200615_100650-967c316f", 44.39, 45.35),
    ("pspnet_r50-d8_512x512_20k_voc12aug", "20200617_101958-ed5dfbd9", 76.78, 77.61),
    ("pspnet_r101-d8_512x512_20k_voc12aug", "20200617_102003-4aef3c9a", 78.47, 79.25),
    ("pspnet_r50-d8_512x512_40k_voc12aug", "20200613_161222-ae9c1b8c", 77.29, 78.48),
    ("pspnet_r101-d8_512x512_40k_voc12aug", "20200613_161222-bc933b18", 78.52, 79.57),
    ("pspnet_r50-d8_512x1024_40k_cityscapes", "20200605_003338-2966598c", 77.85, 79.18),
    ("pspnet_r101-d8_512x1024_40k_cityscapes", "20200604_232751-467e7cf4", 78.34, 79.74),
    ("pspnet_r50-d8_769x769_40k_cityscapes", "20200606_112725-86638686", 78.26, 79.88),
    ("pspnet_r101-d8_769x769_40k_cityscapes", "20200606_112753-61c6f5be", 79.08, 80.28),
    ("pspnet_r50-d8_512x1024_80k_cityscapes", "20200606_112131-2376f12b", 78.55, 79.79),
    ("pspnet_r101-d8_512x1024_80k_cityscapes", "20200606_112211-e1e1100f", 79.76, 81.01),
    ("pspnet_r50-d8_769x769_80k_cityscapes", "20200606_210121-5ccf03dd", 79.59, 80.69),
    ("pspnet_r101-d8_769x769_80k_cityscapes", "20200606_225055-dba412fa", 79.77, 81.06),
    ("pspnet_r18-d8_512x1024_80k_cityscapes", "20201225_021458-09ffa746", 74.87, 76.04),
    ("pspnet_r18-d8_769x769_80k_cityscapes", "20201225_021458-3deefc62", 75.90, 77.86),
]
CLASSES = {"ade20k": 150, "voc12aug": 21, "cityscapes": 19}
SPLITS = {"ade20k": "ADE20K-val", "voc12aug": "VOC2012-val", "cityscapes": "Cityscapes-val"}


def official_entries() -> dict[str, tuple[str, object]]:
    """url -> (model name, entry) of every registered entry with an upstream mmsegmentation file."""
    found = {}
    for model in zoo.list_models():
        for entry in zoo.get_model_weights(model):
            if entry.url and entry.value.sha256_prefix and entry.value.converter == "mmseg":
                found[entry.url] = (model, entry)
    return found


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


# ------------------------------------------------------------------------------------ the registered table
def test_every_published_checkpoint_has_a_self_consistent_entry():
    entries = official_entries()
    assert len(entries) == len(PUBLISHED) == 18
    for directory, stamp, miou, ms in PUBLISHED:
        url = f"{ROOT}/{directory}/{directory}_{stamp}.pth"
        assert url in entries, url
        model, entry = entries[url]
        depth = int(directory.split("_r")[1].split("-")[0])
        crop = directory.split("_")[2]
        dataset = directory.rsplit("_", 1)[1]
        iters = directory.split("_")[3]
        weights = entry.value
        assert model == f"pspnet_resnet{depth}"
        assert weights.sha256_prefix == stamp.rsplit("-", 1)[1] == url[-12:-4]
        assert weights.converter == "mmseg"
        name = f"{dataset.upper()}{'_769' if crop == '769x769' else ''}_MMSEG_{iters.upper()}"
        assert entry.name == name and weights.repo == f"{model}.{name.lower()}"
        assert weights.revision is None and weights.sha256 is None  # no Hub copy pinned yet: upstream is the source
        meta = entry.meta
        assert len(meta["categories"]) == len(meta["palette"]) == CLASSES[dataset]
        assert meta["align_corners"] is (crop == "769x769")
        protocol = meta["test_protocol"]
        if crop == "769x769":
            assert protocol["mode"] == "slide" and list(protocol["crop_size"]) == [769, 769]
            assert list(protocol["stride"]) == [513, 513] and list(protocol["scale"]) == [2049, 1025]
        else:
            assert protocol["mode"] == "whole" and "crop_size" not in protocol
            assert list(protocol["scale"]) == ([2048, 1024] if dataset == "cityscapes" else [2048, 512])
        assert protocol["reduce_zero_label"] is (dataset == "ade20k") and protocol["ignore_index"] == 255
        published = meta["published_metrics"]
        assert published == {f"{SPLITS[dataset]} (mmsegmentation)": {"mIoU": miou, "mIoU(ms+flip)": ms}}
        assert meta["_metrics"] == {}  # nothing measured here
        assert meta["license"] == "Apache-2.0" and url in meta["source"]
        assert list(meta["mean"]) == pytest.approx([123.675 / 255, 116.28 / 255, 103.53 / 255], abs=1e-12)
        assert list(meta["std"]) == pytest.approx([58.395 / 255, 57.12 / 255, 57.375 / 255], abs=1e-12)


def test_parameter_counts_are_those_of_the_built_models():
    built = {}
    for model, entry in official_entries().values():
        key = (model, len(entry.meta["categories"]))
        if key not in built:
            stem = {} if model == "pspnet_resnet18" else {"stem_widths": (32, 32, 64)}  # mmseg's ResNetV1c stem
            net = zoo.get_model(model, num_classes=key[1], aux_loss=True, **stem)
            built[key] = sum(p.numel() for p in net.parameters())
        assert entry.meta["num_params"] == built[key], entry


def test_defaults_and_dataset_names():
    assert zoo.PSPNet_ResNet50_Weights.DEFAULT is zoo.PSPNet_ResNet50_Weights.ADE20K_MMSEG_160K
    assert zoo.PSPNet_ResNet101_Weights.DEFAULT is zoo.PSPNet_ResNet101_Weights.ADE20K_MMSEG_160K
    assert zoo.PSPNet_ResNet18_Weights.DEFAULT is zoo.PSPNet_ResNet18_Weights.SCENES_V3  # the offline main job
    voc = zoo.PSPNet_ResNet50_Weights.VOC12AUG_MMSEG_40K.meta
    assert voc["categories"][0] == "background" and voc["palette"][1] == [128, 0, 0]
    ade = zoo.PSPNet_ResNet101_Weights.ADE20K_MMSEG_80K.meta
    assert ade["categories"][:3] == ["wall", "building", "sky"] and ade["categories"][-2:] == ["clock", "flag"]
    city = zoo.PSPNet_ResNet18_Weights.CITYSCAPES_MMSEG_80K.meta
    assert city["categories"] == list(CITYSCAPES_CATEGORIES) and city["categories"][-1] == "bicycle"


# ------------------------------------------------------------------------------ download, convert, cache
ENTRY = "CITYSCAPES_MMSEG_80K"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """The stand-in R-18-D8 checkpoint (mmseg layout), its URL path, sha256 and the reference output."""
    torch.manual_seed(0)
    source = randomize(MMSegPSPNet(18, num_classes=19)).eval()
    root = tmp_path_factory.mktemp("upstream")
    directory = "pspnet_r18-d8_512x1024_80k_cityscapes"
    probe = root / "probe.pth"
    mmseg_checkpoint(source, probe, CITYSCAPES_CATEGORIES, CITYSCAPES_PALETTE)
    data = probe.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    name = f"{directory}_20990101_000000-{digest[:8]}.pth"
    x = torch.randn(1, 3, 45, 61)
    with torch.no_grad():
        y = source(x)
    return {"data": data, "sha256": digest, "url": f"{ROOT}/{directory}/{name}",
            "path": f"/mmsegmentation/v0.5/pspnet/{directory}/{name}", "x": x, "y": y}  # fmt: skip


@pytest.fixture
def env(tmp_path, monkeypatch, checkpoint):
    """A cold cache, the mirror pointing at a running loopback server, and the stand-in entry registered."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("SPP_ZOO_CACHE", str(cache))
    for name in ("SPP_ZOO_OFFLINE", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    entry = zoo.PSPNet_ResNet18_Weights[ENTRY]
    monkeypatch.setattr(entry.value, "url", checkpoint["url"])
    monkeypatch.setattr(entry.value, "sha256_prefix", checkpoint["sha256"][:8])
    with FileServer({checkpoint["path"]: checkpoint["data"]}) as server:
        monkeypatch.setenv("SPP_ZOO_DOWNLOAD_MIRROR", server.url)
        yield {"cache": cache, "server": server, "entry": entry}


def assert_same(actual, expected, rel=2e-5):
    scale = expected.abs().max().item()
    err = (actual - expected).abs().max().item()
    assert actual.shape == expected.shape and err <= rel * scale + 1e-6, f"max abs diff {err} vs scale {scale}"


def run(model, x):
    with torch.no_grad():
        return model.eval()(x)["out"]


def test_first_load_downloads_verifies_converts_and_caches_then_works_offline(env, checkpoint):
    entry, cache = env["entry"], env["cache"]
    model = zoo.pspnet_resnet18(weights=ENTRY, progress=False)
    assert_same(run(model, checkpoint["x"]), checkpoint["y"])
    assert model.align_corners is False and model.aux_classifier is not None
    assert env["server"].requests == [checkpoint["path"]]
    folder = conversion.converted_directory(entry)
    assert folder == cache / "converted" / "pspnet_resnet18.cityscapes_mmseg_80k" / checkpoint["sha256"][:8]
    assert files_under(cache) == sorted(
        f"converted/pspnet_resnet18.cityscapes_mmseg_80k/{checkpoint['sha256'][:8]}/{name}"
        for name in ("README.md", "SHA256SUMS", "config.json", "model.safetensors")
    )  # one converted copy; the upstream file is gone
    config = json.loads((folder / "config.json").read_text())
    assert config["architecture"] == "pspnet_resnet18" and config["upstream"]["sha256"] == checkpoint["sha256"]
    assert config["upstream"]["url"] == checkpoint["url"] and len(config["categories"]) == 19
    assert "published by mmsegmentation" in (folder / "README.md").read_text()

    env["server"].stop()  # later uses: no network
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        again = zoo.get_model("pspnet_resnet18", weights=f"PSPNet_ResNet18_Weights.{ENTRY}")
        assert_same(run(again, checkpoint["x"]), checkpoint["y"])
        loaded = zoo.hub.from_pretrained(f"PSPNet_ResNet18_Weights.{ENTRY}")
        assert_same(run(loaded, checkpoint["x"]), checkpoint["y"])
        hubbed = torch.hub.load(str(REPO), "pspnet_resnet18", source="local", weights=ENTRY, progress=False)
        assert_same(run(hubbed, checkpoint["x"]), checkpoint["y"])
    finally:
        del os.environ["HF_HUB_OFFLINE"]


def test_keep_upstream_keeps_the_downloaded_file(env, checkpoint):
    folder = zoo.hub.download(env["entry"], keep_upstream=True, progress=False)
    assert folder == conversion.converted_directory(env["entry"])
    kept = env["cache"] / "upstream" / checkpoint["url"].rsplit("/", 1)[1]
    assert kept.read_bytes() == checkpoint["data"]


def test_a_wrong_prefix_is_refused_and_nothing_is_cached(env, checkpoint, monkeypatch):
    wrong = format(int(checkpoint["sha256"][:8], 16) ^ 0x10, "08x")
    monkeypatch.setattr(env["entry"].value, "sha256_prefix", wrong)
    with pytest.raises(HashMismatchError, match=wrong):
        zoo.pspnet_resnet18(weights=ENTRY, progress=False)
    assert files_under(env["cache"]) == []


def test_a_truncated_download_is_refused_and_nothing_is_cached(env, checkpoint):
    env["server"].truncate[checkpoint["path"]] = len(checkpoint["data"]) - 1000
    with pytest.raises(HashMismatchError, match="truncated"):
        zoo.pspnet_resnet18(weights=ENTRY, progress=False)
    assert files_under(env["cache"]) == []


def test_a_tampered_cached_folder_is_refused_and_removed(env, checkpoint):
    folder = zoo.hub.download(env["entry"], progress=False)
    weights = folder / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-100] ^= 0x01  # one bit of one weight
    weights.write_bytes(bytes(data))
    with pytest.raises(HashMismatchError, match="removed from the cache"):
        zoo.pspnet_resnet18(weights=ENTRY, progress=False)
    assert files_under(env["cache"]) == []
    model = zoo.pspnet_resnet18(weights=ENTRY, progress=False)  # the next load converts it again
    assert_same(run(model, checkpoint["x"]), checkpoint["y"])


def test_cold_cache_offline_is_one_line_naming_the_url_and_the_path(env, checkpoint, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(upstream.UpstreamUnavailableError) as info:
        zoo.pspnet_resnet18(weights=ENTRY, progress=False)
    message = str(info.value)
    assert "\n" not in message and checkpoint["url"] in message and "SPP_ZOO_DOWNLOAD_MIRROR" in message
    assert str(env["cache"] / "upstream" / checkpoint["url"].rsplit("/", 1)[1]) in message
    assert env["server"].requests == [] and files_under(env["cache"]) == []


class Payload:
    """Any class: torch.load(weights_only=True) refuses to rebuild its instances (unpickling runs code)."""


def test_a_checkpoint_with_arbitrary_pickled_objects_is_refused(env, checkpoint, tmp_path, monkeypatch):
    torch.manual_seed(0)
    state = randomize(MMSegPSPNet(18, num_classes=19)).state_dict()
    path = tmp_path / "evil.pth"
    torch.save({"meta": {"hook": Payload()}, "state_dict": state}, path)
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    url = checkpoint["url"].rsplit("-", 1)[0] + f"-{digest[:8]}.pth"
    env["server"].files["/" + url.split("/", 3)[3]] = data
    monkeypatch.setattr(env["entry"].value, "url", url)
    monkeypatch.setattr(env["entry"].value, "sha256_prefix", digest[:8])
    with pytest.raises(ValueError, match="weights_only") as info:
        zoo.pspnet_resnet18(weights=ENTRY, progress=False)
    assert "Payload" in str(info.value)
    assert not (env["cache"] / "converted").exists() or files_under(env["cache"] / "converted") == []


# ------------------------------------------------------------------------------------------------- CLI
CLI = """
import sys, zoo
from zoo.cli import main
entry = zoo.PSPNet_ResNet18_Weights[{entry!r}]
entry.value.url, entry.value.sha256_prefix = {url!r}, {prefix!r}
sys.exit(main({argv!r}))
"""


def cli(argv, checkpoint, **env):
    code = textwrap.dedent(CLI.format(entry=ENTRY, url=checkpoint["url"], prefix=checkpoint["sha256"][:8], argv=argv))
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("SPP_ZOO", "HF_HUB_OFFLINE"))}
    environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    environ.update(env)
    return subprocess.run([sys.executable, "-W", "ignore", "-c", code], env=environ, capture_output=True, text=True,
                          timeout=300, cwd=REPO)  # fmt: skip


def test_cli_download_info_and_offline_error(env, checkpoint):
    name = f"PSPNet_ResNet18_Weights.{ENTRY}"
    common = {"SPP_ZOO_CACHE": str(env["cache"]), "SPP_ZOO_DOWNLOAD_MIRROR": env["server"].url}
    info = cli(["info", name], checkpoint, **common)
    assert info.returncode == 0, info.stderr
    described = json.loads(info.stdout)
    assert described["source"].startswith("upstream") and described["url"] == checkpoint["url"]
    assert described["hub_copy"] is None
    cold = cli(["download", name], checkpoint, HF_HUB_OFFLINE="1", **common)
    assert cold.returncode == 1 and cold.stderr.count("\n") == 1 and checkpoint["url"] in cold.stderr
    assert cold.stderr.startswith("zoo download: error: ")
    done = cli(["download", name, "--keep-upstream", "--quiet"], checkpoint, **common)
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()) == conversion.converted_directory(env["entry"])
    assert (env["cache"] / "upstream" / checkpoint["url"].rsplit("/", 1)[1]).is_file()


def test_cli_list_marks_published_metrics():
    result = subprocess.run([sys.executable, "-W", "ignore", "-m", "zoo", "list", "--markdown"], capture_output=True,
                            text=True, timeout=300, cwd=REPO)  # fmt: skip
    assert result.returncode == 0, result.stderr
    row = next(line for line in result.stdout.splitlines() if "PSPNet_ResNet50_Weights.ADE20K_MMSEG_160K" in line)
    assert "42.48" in row and "43.44" in row and "published by mmsegmentation" in row
    assert "download.openmmlab.com" in row


def test_predict_draws_the_dataset_palette_and_names(env, checkpoint, tmp_path):
    import numpy as np
    from PIL import Image

    from zoo.data import EXAMPLES_DIR
    from zoo.engine.predict import predict_files, read_image

    image = sorted(EXAMPLES_DIR.glob("scene_*.png"))[0]
    (written,) = predict_files("pspnet_resnet18", ENTRY, [str(image)], tmp_path).written
    picture = np.asarray(Image.open(written).convert("RGB"))
    model = zoo.pspnet_resnet18(weights=ENTRY, progress=False)  # cached now: the model predict ran
    with torch.no_grad():  # the entry's own preprocessing: keep-ratio resize to (2048, 1024), normalize
        labels = run(model, env["entry"].transforms()(read_image(image))[None])[0].argmax(0)
    counts = torch.bincount(labels.flatten(), minlength=19)
    top = int(counts.argmax())  # even label 0 ("road"): a Cityscapes class, not background
    shown = round(image_height(image) * 384 / max(image_height(image), image_width(image)))
    legend = picture[shown:]  # below the image pair: title, then a swatch and a name per class found
    swatch = np.all(legend == np.array(CITYSCAPES_PALETTE[top]), axis=-1)
    assert swatch.sum() >= 16 * 16, f"no legend swatch in the Cityscapes color of the most frequent class {top}"


def image_height(path) -> int:
    from PIL import Image

    with Image.open(path) as im:
        return im.height


def image_width(path) -> int:
    from PIL import Image

    with Image.open(path) as im:
        return im.width


def test_a_pinned_hub_copy_is_used_first_and_the_upstream_file_when_the_hub_fails(env, checkpoint, monkeypatch):
    import shutil

    from zoo.hub import files

    converted = zoo.hub.download(env["entry"], progress=False)
    hub_copy = env["cache"].parent / "hub-copy"
    shutil.copytree(converted, hub_copy)
    shutil.rmtree(env["cache"])
    env["server"].requests.clear()
    sha = hashlib.sha256((hub_copy / "model.safetensors").read_bytes()).hexdigest()
    monkeypatch.setattr(env["entry"].value, "revision", "v1")  # a maintainer published and pinned it
    monkeypatch.setattr(env["entry"].value, "sha256", sha)
    asked = []

    def hub(repo, revision, sha256, progress=True):
        asked.append((repo, revision, sha256))
        return hub_copy

    monkeypatch.setattr(files, "entry_folder", hub)
    model = zoo.pspnet_resnet18(weights=ENTRY, progress=False)
    assert_same(run(model, checkpoint["x"]), checkpoint["y"])
    assert asked[0] == ("pspnet_resnet18.cityscapes_mmseg_80k", "v1", sha)
    assert env["server"].requests == [] and files_under(env["cache"]) == []  # the Hub copy only

    def unavailable(repo, revision, sha256, progress=True):
        raise files.HubUnavailableError("the Hub at https://huggingface.co cannot be reached")

    monkeypatch.setattr(files, "entry_folder", unavailable)
    model = zoo.pspnet_resnet18(weights=ENTRY, progress=False)
    assert_same(run(model, checkpoint["x"]), checkpoint["y"])
    assert env["server"].requests == [checkpoint["path"]]  # fell back to the upstream file
