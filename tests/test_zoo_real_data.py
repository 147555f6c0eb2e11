"""Evaluation and fine-tuning on the real datasets' layouts (tiny stand-ins written by the tests), through the
engine and the command line: the published protocol is applied, the per-class table names the dataset's classes,
fine-tuning onto 3 classes lowers the loss and saves a model that reloads, bad layouts give one line and exit 2."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import real_layouts
import torch

import zoo
from zoo.classes import ADE20K_CATEGORIES
from zoo.cli import main
from zoo.data import readers
from zoo.engine import protocol as P
from zoo.engine.evaluate import evaluate
from zoo.engine.train import TrainConfig, train

ROOT = Path(__file__).resolve().parents[1]
SCENES_PSPNET = "PSPNet_ResNet18_Weights.SCENES_V3"  # shipped: 11 scene classes, width 0.375


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)


def _zoo(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env.update(PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""), OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    return subprocess.run([sys.executable, "-m", "zoo", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)  # fmt: skip


@pytest.fixture(scope="module")
def ade20k_checkpoint(tmp_path_factory) -> tuple[Path, Path]:
    """A tiny ADE20K layout and a tiny 150-class PSPNet saved in Hub layout."""
    directory = tmp_path_factory.mktemp("ade")
    real_layouts.write_ade20k(directory / "data")
    torch.manual_seed(0)
    model = zoo.get_model("pspnet_resnet18", num_classes=150, width=0.125)
    zoo.hub.save_pretrained(model, directory / "ckpt", metadata={"dataset": "ade20k", "categories": ADE20K_CATEGORIES})
    return directory / "data", directory / "ckpt"


def test_eval_command_applies_the_mmseg_protocol_on_ade20k(ade20k_checkpoint):
    data, checkpoint = ade20k_checkpoint
    result = _zoo("eval", "pspnet_resnet18", "--weights", str(checkpoint), "--root", str(data), "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads(result.stdout)
    assert list(metrics["per_class"]) == list(ADE20K_CATEGORIES)
    assert metrics["protocol"] == {"kind": "mmseg", "mode": "whole", "scale": [2048, 512], "align_corners": False,
                                   "ratios": [1.0], "flip": False}  # fmt: skip
    assert (metrics["data"], metrics["split"], metrics["images"]) == ("ade20k", "val", 2)
    # the same numbers as the protocol's pieces applied by hand to the reader's items
    model = zoo.hub.from_pretrained(checkpoint).eval()
    dataset = readers.ADE20K(data, "val")
    protocol = P.protocol_for({}, "ade20k", align_corners=False)
    confusion = P.ConfusionMatrix(150)
    for image, mask in (dataset[i] for i in range(len(dataset))):
        (scores,) = P.predict_scores(model, [image], protocol)
        assert scores.shape[-2:] == mask.shape  # back at the original size, labels never resized
        confusion.update(scores.argmax(0), mask)
    expected = confusion.compute(average="nanmean", class_names=ADE20K_CATEGORIES)
    # equal up to a pixel whose argmax another thread count rounds differently (the command runs 1 thread)
    for key in ("mIoU", "mAcc", "aAcc"):
        assert metrics[key] == pytest.approx(expected[key], abs=0.5)
    for name, row in expected["per_class"].items():
        assert (metrics["per_class"][name]["IoU"] is None) == (row["IoU"] is None), name


def test_semseg_protocol_and_tta_on_ade20k(ade20k_checkpoint):
    data, checkpoint = ade20k_checkpoint
    model = zoo.hub.from_pretrained(checkpoint).eval()
    semseg = evaluate(model, data="ade20k", root=data, protocol="semseg", batch_size=4, limit=1)
    assert semseg["protocol"]["crop"] == [473, 473] and semseg["protocol"]["flip"] is True
    # semseg averages over all 150 classes (absent ones count 0): its mIoU is a plain mean of the table
    ious = [row["IoU"] or 0.0 for row in semseg["per_class"].values()]
    assert semseg["mIoU"] == pytest.approx(sum(ious) / 150, abs=0.01)
    flip = evaluate(model, data="ade20k", root=data, tta="flip", limit=1)
    assert flip["protocol"]["flip"] is True and flip["images"] == 1


def test_eval_of_detectors_and_classifiers_on_real_layouts(tmp_path):
    real_layouts.write_voc_detection(tmp_path / "voc")
    real_layouts.write_coco(tmp_path / "coco")
    for data, num_classes in (("voc-det", 21), ("coco", 3)):  # background included
        torch.manual_seed(0)
        detector = zoo.get_model("spp_detector_zf5", num_classes=num_classes, trunk_width=0.125,
                                 representation_size=32, min_size=64, max_size=96).eval()  # fmt: skip
        metrics = evaluate(detector, data=data, root=tmp_path / data.replace("-det", ""))
        assert set(metrics) == {"mAP", "mAP@0.5"} and all(-1 <= v <= 100 for v in metrics.values())
    with pytest.raises(ValueError, match="the model predicts 3 classes and data='voc-det' has 21"):
        evaluate(detector, data="voc-det", root=tmp_path / "voc")
    classes = real_layouts.write_image_folder(tmp_path / "folder")
    classifier = zoo.get_model("sppnet_zf5", num_classes=len(classes), width=0.125, representation_size=32).eval()
    metrics = evaluate(classifier, data="imagefolder", root=tmp_path / "folder", split="train", image_size=32)
    assert metrics["acc@5"] == 100.0 and 0.0 <= metrics["acc@1"] <= 100.0  # top-2 of 2 classes is always right


def test_fine_tuning_onto_three_classes_lowers_the_loss_and_reloads(tmp_path):
    real_layouts.write_seg_folder(tmp_path / "data", count=4)
    output = tmp_path / "run"
    args = ["train", "pspnet_resnet18", "--data", "seg-folder", "--root", str(tmp_path / "data"), "--weights",
            SCENES_PSPNET, "--epochs", "8", "--batch-size", "4", "--image-size", "32", "--lr", "3e-3",
            "--no-augment", "--output", str(output)]  # fmt: skip
    result = _zoo(*args)
    assert result.returncode == 0, result.stderr[-3000:]
    (summary,) = [line for line in result.stderr.splitlines() if line.startswith("weights=")]
    assert f"weights={SCENES_PSPNET}: loaded" in summary
    for key in ("classifier.2.weight", "classifier.2.bias", "aux_classifier.2.weight", "aux_classifier.2.bias"):
        assert key in summary  # the class-count layers: 11 scene classes -> 3
    losses = [json.loads(line)["loss"] for line in (output / "log.jsonl").read_text().splitlines()]
    assert len(losses) == 8
    assert sum(losses[-3:]) / 3 < 0.8 * sum(losses[:3]) / 3, losses  # one tiny overfit set: a wide margin
    config = json.loads((output / "config.json").read_text())
    assert config["categories"] == real_layouts.SEG_FOLDER_CLASSES and config["dataset"] == "seg-folder"
    assert config["kwargs"]["width"] == 0.375  # the entry's architecture, not the builder's default
    assert "- categories (3): background, road, tree" in (output / "README.md").read_text()
    model = zoo.hub.from_pretrained(output).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 40, 40))["out"].shape == (1, 3, 40, 40)
    scored = _zoo("eval", "pspnet_resnet18", "--weights", str(output), "--root", str(tmp_path / "data"), "--json")
    assert scored.returncode == 0, scored.stderr[-2000:]
    assert list(json.loads(scored.stdout)["per_class"]) == real_layouts.SEG_FOLDER_CLASSES


def test_a_resumed_fine_tuning_run_gives_the_uninterrupted_weights(tmp_path):
    real_layouts.write_seg_folder(tmp_path / "data", count=2, size=24)
    settings = dict(model="pspnet_resnet18", data="seg-folder", root=str(tmp_path / "data"), weights=SCENES_PSPNET,
                    epochs=2, batch_size=2, image_size=24, lr=1e-3)  # fmt: skip
    straight = train(TrainConfig(**settings, output=str(tmp_path / "straight")))
    part = train(TrainConfig(**settings, output=str(tmp_path / "part")), stop_after=1)
    resumed = train(TrainConfig(model="pspnet_resnet18"), resume=part)  # continues in part, with its settings
    assert resumed == part
    from safetensors.torch import load_file

    a, b = load_file(str(straight / "model.safetensors")), load_file(str(resumed / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# --------------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "args, message",
    [
        (["eval", "pspnet_resnet18", "--weights", "{ckpt}", "--data", "ade20k", "--root", "{empty}"],
         "ADEChallengeData2016"),
        (["eval", "pspnet_resnet18", "--weights", "{ckpt}", "--data", "cityscapes", "--root", "{ade}"],
         "leftImg8bit/val does not exist"),
        (["eval", "pspnet_resnet18", "--weights", "{ckpt}", "--data", "ade20k"], "needs root"),
        (["eval", "pspnet_resnet18", "--weights", SCENES_PSPNET, "--data", "ade20k", "--root", "{ade}"],
         "the model predicts 11 classes and data='ade20k' has 150"),
        (["eval", "pspnet_resnet18", "--weights", SCENES_PSPNET, "--tta", "flip"], "real dataset"),
        (["eval", "pspnet_resnet18", "--weights", "{ckpt}", "--root", "{ade}", "--split", "test"],
         "unknown split 'test'"),
        (["train", "sppnet_zf5", "--data", "ade20k", "--root", "{ade}"], "is a segmentation dataset"),
        (["train", "pspnet_resnet18", "--data", "seg-folder", "--root", "{empty}"], "classes.txt does not exist"),
        (["train", "pspnet_resnet18", "--data", "scenes", "--root", "{empty}"], "root applies to the real datasets"),
    ],
)  # fmt: skip
def test_bad_layouts_give_one_line_and_exit_code_2(ade20k_checkpoint, tmp_path, capsys, args, message):
    data, checkpoint = ade20k_checkpoint
    (tmp_path / "empty").mkdir()
    names = {"{ckpt}": str(checkpoint), "{ade}": str(data), "{empty}": str(tmp_path / "empty")}
    args = [names.get(a, a) for a in args]
    if args[0] == "train":
        args += ["--output", str(tmp_path / "out")]
    assert main(args) == 2  # what `python -m zoo` exits with
    stderr = capsys.readouterr().err
    lines = [line for line in stderr.strip().splitlines() if not line.startswith("spp-zoo:")]  # notices
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    assert lines[0].startswith(f"zoo {args[0]}: error:") and message in lines[0], lines[0]
