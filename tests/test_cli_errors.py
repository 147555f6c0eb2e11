"""``python -m zoo`` as a new user meets it: every user error is ONE line ``zoo <command>: error: ...`` naming the
argument, file or key at fault, with exit code 2 (1 when the Hub cannot be reached); export refuses or succeeds
per model and format; predict streams folders with duplicate names, unreadable files, EXIF and 16-bit images.

Most commands run in this process (``zoo.cli.main``: fast); the real entry point runs as a subprocess where the
process boundary matters (exit codes of ``python -m zoo``, publishing without a connection).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import zoo
import zoo.hub
from zoo.cli import main

ROOT = Path(__file__).resolve().parents[1]
TINY = {"sppnet_zf5": {"num_classes": 3, "width": 0.125, "representation_size": 8}}
MISTYPED = "pspnet_resnet1"
SUGGESTION = f"unknown model '{MISTYPED}'; did you mean pspnet_resnet101 or pspnet_resnet18?"


@pytest.fixture(autouse=True)
def _offline_in_a_scratch_directory(monkeypatch, tmp_path):
    """Shipped weights without asking the Hub; relative paths resolve in the test's own directory."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.chdir(tmp_path)


def run(capsys, *args: str) -> tuple[int, str, str]:
    """``python -m zoo ARGS`` in this process: (exit code, stdout, stderr)."""
    try:
        code = main(list(args))
    except SystemExit as exit_:  # argparse's usage errors
        code = exit_.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def error_line(capsys, *args: str, code: int = 2) -> str:
    """The one stderr line of a failing command (asserting the exit code, the one line and its prefix)."""
    actual, _, err = run(capsys, *args)
    lines = err.strip().splitlines()
    assert actual == code, (args, actual, err)
    assert len(lines) == 1 and "Traceback" not in err, (args, err)
    assert lines[0].startswith(f"zoo {args[0]}: error: "), lines[0]
    return lines[0].removeprefix(f"zoo {args[0]}: error: ")


def saved_tiny_model(directory: str | Path, **metadata) -> Path:
    torch.manual_seed(0)
    model = zoo.get_model("sppnet_zf5", **TINY["sppnet_zf5"])
    return zoo.hub.save_pretrained(model, directory, metadata=metadata or None)


def subprocess_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_") and k != "TRITON_INTERPRET"}
    env.update(PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p))
    env.update(HF_HUB_DISABLE_TELEMETRY="1", OMP_NUM_THREADS="1", **extra)
    return env


# ------------------------------------------------------------------------------------------- model names
@pytest.mark.parametrize(
    "args",
    [
        ["info", MISTYPED],
        ["download", MISTYPED],
        ["export", MISTYPED, "--format", "onnx", "-o", "x.onnx"],
        ["eval", MISTYPED, "--weights", "DEFAULT"],
        ["predict", MISTYPED, "photo.jpg"],  # the model is checked before the (missing) file
        ["train", MISTYPED, "--epochs", "1"],
    ],
    ids=lambda args: args[0],
)
def test_unknown_model_names_the_closest_ones(capsys, args):
    assert error_line(capsys, *args) == SUGGESTION


def test_unknown_model_suggestions():
    from zoo.models.registry import suggest

    names = zoo.list_models()
    assert suggest("sppnet_zf", names) == "did you mean sppnet_zf5?"
    assert suggest("resnet50", names) == "did you mean pspnet_resnet50 or sppnet_resnet50?"
    assert suggest("xyz", names) == "available: " + ", ".join(names)
    with pytest.raises(ValueError, match=SUGGESTION):
        zoo.get_model(MISTYPED)


def test_list_include_that_matches_nothing(capsys):
    assert error_line(capsys, "list", "--include", MISTYPED).startswith(f"--include '{MISTYPED}' matches no model")


def test_the_real_entry_point_prints_one_line_and_exits_2(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "zoo", "export", MISTYPED, "--format", "onnx", "-o", "x.onnx"],
        cwd=tmp_path, env=subprocess_env(HF_HUB_OFFLINE="1"), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2 and result.stderr == f"zoo export: error: {SUGGESTION}\n"


# ------------------------------------------------------------------------------------------ missing paths
@pytest.mark.parametrize(
    "args, message",
    [
        (["export", "runs/nothere", "--format", "torchscript", "-o", "x.pt"], "runs/nothere: no such directory"),
        (["publish", "runs/nothere", "org/name"], "runs/nothere: no such directory"),
        (["eval", "sppnet_zf5", "--weights", "runs/nothere"], "runs/nothere: no such directory (--weights takes"),
        (["predict", "sppnet_zf5", "runs/nothere"], "runs/nothere: no such file or directory"),
        (["predict", "sppnet_zf5", "runs/*.jpg"], "runs/*.jpg: no file matches this pattern"),
        (["train", "sppnet_zf5", "--resume", "runs/nothere"], "runs/nothere: no such directory (--resume takes"),
        (["download", "./runs/nothere"], "./runs/nothere: no such directory"),
        (["convert", "semseg", "runs/nothere.pth", "out"], "runs/nothere.pth: no such file"),
    ],
    ids=lambda value: value[0] if isinstance(value, list) else None,
)
def test_a_path_that_does_not_exist_is_named_not_looked_up_on_the_hub(capsys, args, message):
    Path("runs").mkdir()  # as after a first training run: runs/nothere is a path, not the Hub repo "runs/nothere"
    assert error_line(capsys, *args).startswith(message)


def test_repo_ids_stay_repo_ids_when_no_such_local_directory_exists():
    from zoo.hub import files

    assert files.is_local("org/name") is False  # no ./org here: a Hub repo id
    Path("org").mkdir()
    with pytest.raises(FileNotFoundError, match="^org/name: no such directory$"):
        files.is_local("org/name")


# ---------------------------------------------------------------------------------------- damaged files
def test_damaged_safetensors_in_a_folder(capsys):
    folder = saved_tiny_model("my-model")
    weights = folder / "model.safetensors"
    size = weights.stat().st_size
    weights.write_bytes(weights.read_bytes()[:-100])
    message = error_line(capsys, "export", "my-model", "--format", "torchscript", "-o", "m.pt")
    assert message.startswith(f"model.safetensors in my-model/ is damaged (truncated at {size - 100} of {size} bytes)")
    config = json.loads((folder / "config.json").read_text())
    del config["sha256"]  # a folder of an older save_pretrained: the structure check names the damage
    (folder / "config.json").write_text(json.dumps(config))
    message = error_line(capsys, "eval", "sppnet_zf5", "--weights", "./my-model", "--limit", "1")
    assert message == f"model.safetensors in my-model/ is damaged (truncated at {size - 100} of {size} bytes)"
    weights.write_bytes(b"\x00" * 4)
    message = error_line(capsys, "export", "my-model", "--format", "torchscript", "-o", "m.pt")
    assert (
        message == "model.safetensors in my-model/ is damaged (truncated at 4 bytes, inside the 8-byte header length)"
    )


def test_state_dict_mismatch_names_the_keys(capsys):
    folder = saved_tiny_model("my-model")
    config = json.loads((folder / "config.json").read_text())
    config["kwargs"]["representation_size"] = 16  # the file holds representation_size=8
    del config["sha256"]
    (folder / "config.json").write_text(json.dumps(config))
    message = error_line(capsys, "export", "my-model", "--format", "torchscript", "-o", "m.pt")
    assert message.startswith("model.safetensors in my-model/ does not fit the sppnet_zf5 model: 5 shape mismatch(es)")
    assert "classifier.weight (3, 8) vs (3, 16)" in message and "... 2 more" in message


def test_state_dict_mismatch_counts_missing_and_unexpected_keys():
    from zoo.models.registry import load_state_dict

    model = zoo.get_model("sppnet_zf5", **TINY["sppnet_zf5"])
    state = model.state_dict()
    missing = [k for k in state if k.startswith("features.")]
    state = {k: v for k, v in state.items() if k not in missing}
    state.update({"extra.a": torch.zeros(1), "extra.b": torch.zeros(1)})
    with pytest.raises(ValueError) as info:
        load_state_dict(model, state, "my.safetensors")
    text = str(info.value)
    assert text.startswith("my.safetensors does not fit the sppnet_zf5 model: ")
    assert f"{len(missing)} missing key(s) ({', '.join(missing[:3])}, ... {len(missing) - 3} more)" in text
    assert "2 unexpected key(s) (extra.a, extra.b)" in text and "shape" not in text
    load_state_dict(model, {k: v for k, v in model.state_dict().items() if k != "classifier.bias"}, "x", strict=False)


CONVERTERS = {"semseg": "a hszhao/semseg PSPNet50/101 .pth checkpoint",
              "mmseg": "an mmsegmentation PSPNet R-18-D8/R-50-D8/R-101-D8 .pth checkpoint"}  # fmt: skip


@pytest.mark.parametrize("source", sorted(CONVERTERS))
def test_convert_given_files_that_are_not_its_checkpoints(capsys, source):
    import torchvision

    Path("notes.txt").write_text("hello, not a checkpoint")
    Path("noise.bin").write_bytes(np.random.default_rng(0).bytes(3000))
    torch.save([1, 2, 3], "list.pth")
    torch.save(torch.zeros(3), "tensor.pth")
    torch.save(torchvision.models.resnet18().state_dict(), "resnet18.pth")
    saved_tiny_model("my-model")
    expected = f"(expected {CONVERTERS[source]})"
    for name, start in [
        ("notes.txt", "notes.txt: not a PyTorch checkpoint torch.load can read with weights_only=True ("),
        ("noise.bin", "noise.bin: not a PyTorch checkpoint torch.load can read with weights_only=True ("),
        ("list.pth", "list.pth: the checkpoint holds a list, not a state dict"),
        ("tensor.pth", "tensor.pth: the checkpoint holds a Tensor, not a state dict"),
        ("resnet18.pth", "resnet18.pth: "),
        ("my-model/model.safetensors", "my-model/model.safetensors: "),  # read by torch.load or not: not its layout
    ]:
        message = error_line(capsys, "convert", source, name, "out")
        assert message.startswith(start) and message.endswith(expected), message
    assert (
        error_line(capsys, "convert", source, "my-model", "out")
        == "my-model: is a directory, not a .pth checkpoint file"
    )
    assert not Path("out").exists()


# ------------------------------------------------------------------------------------------ publishing
def test_publish_without_a_connection_is_one_line_and_exit_1(tmp_path):
    folder = saved_tiny_model(tmp_path / "my-model")
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    for env in ({"HF_ENDPOINT": f"http://127.0.0.1:{port}", "HF_TOKEN": "hf_test"}, {"HF_HUB_OFFLINE": "1"}):
        result = subprocess.run(
            [sys.executable, "-m", "zoo", "publish", str(folder), "org/name"],
            cwd=tmp_path, env=subprocess_env(**env), capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 1 and len(lines) == 1, result.stderr[-3000:]
        assert lines[0].startswith("zoo publish: error: cannot publish to org/name: the Hub at "), lines[0]
        assert ("offline mode is on" in lines[0]) == ("HF_HUB_OFFLINE" in env)


# ---------------------------------------------------------------------------------------------- -k values
def test_malformed_k_value(capsys):
    message = error_line(capsys, "train", "sppnet_zf5", "-k", "width=abc")
    assert "-k width=abc: expected a JSON value" in message and """-k 'width="abc"'""" in message
    assert "-k width: expected KEY=VALUE" in error_line(capsys, "train", "sppnet_zf5", "-k", "width")
    message = error_line(capsys, "train", "sppnet_zf5", "-k", "widht=0.25", "--limit", "8", "--batch-size", "8")
    assert message.startswith("sppnet_zf5 has no keyword argument 'widht'; its keyword arguments: ")
    assert "representation_size, width" in message
    message = error_line(capsys, "export", "sppnet_zf5", "--format", "onnx", "-o", "x", "--kwargs", "{width: 1}")
    assert message == """--kwargs {width: 1}: expected a JSON object, e.g. '{"num_classes": 5}'"""


def test_k_values_are_json():
    from zoo.cli.tasks import _kwarg

    assert _kwarg("width=0.25") == ("width", 0.25)
    assert _kwarg('name="x"') == ("name", "x")
    assert _kwarg("levels=[4, 2, 1]") == ("levels", [4, 2, 1])
    assert _kwarg("aux_loss=false") == ("aux_loss", False)


# ---------------------------------------------------------------------------------------------- resume
TRAIN = ["sppnet_zf5", "-k", "width=0.125", "-k", "representation_size=8", "--batch-size", "8", "--limit", "8",
         "--image-size", "32"]  # fmt: skip


def test_resume_refuses_contradicting_settings_and_reports_a_complete_run(capsys):
    code, out, _ = run(capsys, "train", *TRAIN, "--epochs", "2", "--stop-after", "1", "-o", "runs/a")
    assert code == 0 and out.strip() == "runs/a"
    before = (Path("runs/a") / "model.safetensors").read_bytes()
    for args, message in [
        (["--epochs", "3"], "--resume runs/a: --epochs 3 contradicts the run's --epochs 2"),
        (["-k", "width=0.25"], "--resume runs/a: -k width=0.25 contradicts the run's width=0.125"),
        (
            ["-k", "dropout=0.1"],
            "--resume runs/a: -k dropout=0.1 contradicts the run, which left dropout at the builder's default",
        ),  # fmt: skip
        (["--lr", "0.01"], "--resume runs/a: --lr 0.01 contradicts the run's --lr 0.001"),
        (["--no-augment"], "--resume runs/a: --no-augment contradicts the run, which had augment=True"),
        (["--rotate"], "--resume runs/a: --rotate contradicts the run, which had rotate=False"),
        (["-o", "runs/b"], "--resume runs/a: --output runs/b contradicts it (a resumed run continues in runs/a)"),
    ]:
        assert error_line(capsys, "train", "sppnet_zf5", "--resume", "runs/a", *args) == message
    message = error_line(capsys, "train", *TRAIN, "--rotate", "--no-augment")
    assert message == "rotate is an augmentation: it contradicts augment=False (--no-augment)"
    message = error_line(capsys, "train", "pspnet_resnet18", "--resume", "runs/a")
    assert message == "--resume runs/a holds a sppnet_zf5 run, not pspnet_resnet18 (another architecture)"
    assert (Path("runs/a") / "model.safetensors").read_bytes() == before  # refused before any work
    assert not Path("runs/b").exists()

    code, out, _ = run(capsys, "train", *TRAIN, "--epochs", "2", "--resume", "runs/a", "--workers", "0")
    assert code == 0 and out.strip() == "runs/a"  # agreeing flags are fine; it continued in runs/a
    assert [json.loads(line)["epoch"] for line in Path("runs/a/log.jsonl").read_text().splitlines()] == [1, 2]
    code, out, err = run(capsys, "train", "sppnet_zf5", "--resume", "runs/a")
    assert code == 0 and out.strip() == "runs/a"
    assert err == "runs/a: the run is already complete: 2 of 2 epochs trained; nothing to do\n"


# ---------------------------------------------------------------------------------------------- export
EXPORTED = {  # small configurations of each family (a full-size ONNX export takes minutes)
    "sppnet_zf5": ({"num_classes": 3, "width": 0.125, "representation_size": 8}, (48, 40)),
    "pspnet_resnet18": ({"num_classes": 3, "width": 0.25}, (40, 48)),
    "deconvnet_vgg16": ({"num_classes": 3, "width": 1 / 16, "fc_channels": 16}, (224, 232)),
}


def _outputs(result):
    out = result["out"] if isinstance(result, dict) else result
    return out.detach()


@pytest.mark.parametrize("fmt", ["torchscript", "export", "onnx"])
@pytest.mark.parametrize("name", sorted(EXPORTED))
def test_export_every_family_with_a_dynamic_batch_at_the_weights_size(capsys, name, fmt):
    kwargs, (height, width) = EXPORTED[name]
    torch.manual_seed(0)
    model = zoo.get_model(name, **kwargs).eval()
    zoo.hub.save_pretrained(model, "saved", metadata={"input_size": [height, width]})
    code, out, err = run(capsys, "export", "saved", "--format", fmt, "-o", f"model.{fmt}")
    assert code == 0, err
    written = [Path(line) for line in out.split()]
    assert written[0] == Path(f"model.{fmt}") and all(p.is_file() for p in written)
    assert sorted(p.name for p in Path(".").glob("model.*")) == sorted(p.name for p in written)  # all named
    inputs = [torch.rand(1, 3, height, width), torch.rand(3, 3, height, width)]  # another batch size
    if fmt == "torchscript":
        program = torch.jit.load(f"model.{fmt}")
        inputs.append(torch.rand(2, 3, height + 8, width + 16))
    elif fmt == "export":
        program = torch.export.load(f"model.{fmt}").module()
        inputs.append(torch.rand(2, 3, height + 8, width + 16))
    else:
        import onnx
        import onnxruntime as ort

        (graph_input,) = onnx.load(f"model.{fmt}", load_external_data=False).graph.input
        dims = graph_input.type.tensor_type.shape.dim
        assert dims[0].dim_param and [d.dim_value for d in dims[1:]] == [3, height, width]  # weights' size
        session = ort.InferenceSession(f"model.{fmt}", providers=["CPUExecutionProvider"])

        def program(x):
            return torch.from_numpy(session.run(None, {"images": x.numpy()})[0])

    with torch.no_grad():
        for x in inputs:
            expected = _outputs(model(x))  # float32 rounding of other kernels (onnxruntime): relative to the scale
            scale = float(expected.abs().max())
            torch.testing.assert_close(_outputs(program(x)), expected, rtol=1e-4, atol=1e-4 * max(scale, 1.0))


@pytest.mark.parametrize("fmt", ["export", "onnx"])
@pytest.mark.parametrize("name", ["spp_detector_zf5", "spp_detector_resnet50"])
def test_export_refuses_the_detector_where_its_post_processing_cannot_go(capsys, monkeypatch, name, fmt):
    import zoo.export

    monkeypatch.setattr(zoo.export, "get_model", lambda *a, **k: pytest.fail("refused only after building"))
    message = error_line(capsys, "export", name, "--format", fmt, "-o", "detector.out")
    assert message.startswith(f"{name} cannot be exported with ")
    assert "post-processing" in message and "data-dependent" in message
    assert "--format torchscript" in message and "model.backbone" in message and "model.roi_heads" in message
    assert not Path("detector.out").exists()


def test_export_of_the_detector_to_torchscript_works(capsys):
    code, out, err = run(capsys, "export", "spp_detector_zf5", "--format", "torchscript", "-o", "det.pt",
                         "--kwargs", '{"num_classes": 3, "trunk_width": 0.125, "representation_size": 16}')  # fmt: skip
    assert code == 0 and out.split() == ["det.pt"], err
    detections = torch.jit.load("det.pt").eval()([torch.rand(3, 120, 100)])
    assert set(detections[1][0]) == {"boxes", "labels", "scores"}


def test_export_checks_the_output_path_before_any_work(capsys, monkeypatch):
    import zoo.export

    monkeypatch.setattr(zoo.export, "get_model", lambda *a, **k: pytest.fail("built before the output was checked"))
    Path("folder").mkdir()
    args = ["export", "sppnet_zf5", "--format", "onnx"]
    assert error_line(capsys, *args, "-o", "nodir/x.onnx") == "nodir/x.onnx: no such directory 'nodir' to write into"
    assert error_line(capsys, *args, "-o", "folder") == "folder: is a directory; the output must be a file path"


# --------------------------------------------------------------------------------------------- predict
def _photos(root: Path) -> None:
    """A folder as a camera roll makes it: same names in subfolders, a broken file, EXIF-rotated, 16-bit."""
    from zoo.data import EXAMPLES_DIR

    scene = Image.open(sorted(EXAMPLES_DIR.glob("scene_*.png"))[0]).convert("RGB")
    for sub in ("day1", "day2"):
        (root / sub).mkdir(parents=True)
        scene.save(root / sub / "IMG_0001.png")
    (root / "day2" / "IMG_0002.jpg").write_bytes(b"\xff\xd8\xff\xe0 a truncated download")
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    scene.resize((80, 40)).save(root / "portrait.jpg", exif=exif.tobytes())
    Image.fromarray(np.linspace(0, 65535, 48 * 64).reshape(48, 64).astype(np.uint16)).save(root / "deep.png")


def test_predict_a_folder_streams_keeps_relative_paths_and_skips_unreadable_files(capsys, caplog):
    _photos(Path("photos"))
    weights = saved_tiny_model("classifier", categories=["a", "b", "c"], input_size=[32, 32])
    code, out, err = run(capsys, "predict", "sppnet_zf5", "photos", "--weights", str(weights), "-o", "out")
    assert code == 0, err
    expected = ["out/day1/IMG_0001_sppnet_zf5.png", "out/day2/IMG_0001_sppnet_zf5.png", "out/deep_sppnet_zf5.png",
                "out/portrait_sppnet_zf5.png"]  # fmt: skip
    assert sorted(out.split()) == expected and all(Path(p).is_file() for p in expected)
    assert err.strip().splitlines()[-1] == "4 picture(s) written to out; 1 unreadable file(s) skipped"
    (warning,) = [r.getMessage() for r in caplog.records if r.name == "zoo.predict"]
    assert warning.startswith("spp-zoo: skipped photos/day2/IMG_0002.jpg: not an image file PIL can read")
    # the same names given as files: unique outputs
    code, out, err = run(capsys, "predict", "sppnet_zf5", "photos/day1/IMG_0001.png", "photos/day2/IMG_0001.png",
                         "--weights", str(weights), "-o", "flat")  # fmt: skip
    assert code == 0 and out.split() == ["flat/IMG_0001_sppnet_zf5.png", "flat/IMG_0001-2_sppnet_zf5.png"], err
    # a glob pattern (quoted: not expanded by a shell)
    code, out, err = run(capsys, "predict", "sppnet_zf5", "photos/**/*.png", "--weights", str(weights), "-o", "g")
    assert code == 0 and sorted(out.split()) == ["g/day1/IMG_0001_sppnet_zf5.png", "g/day2/IMG_0001_sppnet_zf5.png",
                                                 "g/deep_sppnet_zf5.png"], err  # fmt: skip
    # a file named on the command line that is not an image: the one-line error, nothing written
    message = error_line(capsys, "predict", "sppnet_zf5", "photos/day2/IMG_0002.jpg", "--weights", str(weights),
                         "-o", "bad")  # fmt: skip
    assert message.startswith("photos/day2/IMG_0002.jpg: not an image file PIL can read")
    assert not Path("bad").exists()


def test_read_image_applies_exif_orientation_and_scales_16_bit_images():
    from zoo.engine.predict import read_image

    _photos(Path("photos"))
    portrait = read_image("photos/portrait.jpg")
    assert portrait.shape == (3, 80, 40) and portrait.dtype == torch.uint8  # upright: 40 x 80 turned
    deep = read_image("photos/deep.png")
    expected = np.round(np.linspace(0, 65535, 48 * 64).reshape(48, 64).astype(np.uint16) / 257)
    assert deep.shape == (3, 48, 64)
    assert torch.equal(deep[0], torch.from_numpy(expected.astype(np.uint8))) and torch.equal(deep[0], deep[2])
    gray = Image.fromarray(np.full((8, 8), 77, np.uint8))
    gray.save("gray.png")
    Image.new("RGBA", (8, 8), (255, 0, 0, 0)).save("clear.png")
    assert read_image("gray.png").unique().tolist() == [77]
    assert read_image("clear.png").unique().tolist() == [255]  # transparent pixels on white


def test_predict_captions_are_never_clipped():
    """A long title (a weights folder deep in a path) wraps inside the picture instead of running off it."""
    from zoo.engine import predict

    image = torch.randint(0, 255, (3, 40, 30), dtype=torch.uint8)
    title = "sppnet_zf5 (" + "/very/long/directory" * 12 + ")"
    categories = ["a category with a rather long name"] * 3
    pictures = [
        predict._classification_picture(image, torch.tensor([3.0, 2.0, 1.0]), categories, title),
        predict._segmentation_picture(image, torch.randn(3, 10, 8) * 5, categories, title),
        predict._detection_picture(
            image,
            {
                "boxes": torch.tensor([[0.0, 0.0, 20.0, 20.0]]),
                "labels": torch.tensor([1]),
                "scores": torch.tensor([0.9]),
            },
            categories,
            title,
        ),  # fmt: skip
    ]
    shown = predict._display(image).shape[-1]  # 384 x 288: the image's part of each picture
    for kind, picture in zip(("classification", "segmentation", "detection"), pictures, strict=True):
        pixels = np.asarray(picture.convert("L"))
        captions = pixels[:, shown:] if kind == "classification" else pixels[predict.DISPLAY_SIDE :]  # beside/below
        assert (captions[:, -3:] > 250).all() and (captions[-3:] > 250).all(), (kind, picture.size)  # white margins
        assert (captions < 128).any(), kind  # the text is there
    for width in (60, 200):
        assert all(predict._text_width(line, 16) <= width for line in predict._wrap(title, 16, width))
    assert "".join(predict._wrap(title, 16, 60)).replace(" ", "") == title.replace(" ", "")
