"""Training, evaluation and prediction: loss goes down for every family, resume and torchrun (gloo, 2
processes) give the uninterrupted single-process weights, shipped weights reproduce their registered
metrics, predict writes pictures, bad input gives a one-line error and exit code 2."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import zoo
from zoo.engine import tasks
from zoo.engine.train import TrainConfig, train

ROOT = Path(__file__).resolve().parents[1]
TINY_CLASSIFIER = {"width": 0.125, "representation_size": 32}


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    """Shipped weights without asking the Hub (no network in CI)."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)


def _env() -> dict[str, str]:
    """Subprocess environment: the worktree's zoo, the models' PyTorch path (no Triton interpreter)."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = "1"
    env["HF_HUB_OFFLINE"] = "1"
    return env


def _zoo(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "zoo", *args], cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=timeout
    )


# ----------------------------------------------------------------------------------- pspnet_resnet18
def test_pspnet_resnet18_any_size_and_output_stride_8():
    torch.manual_seed(0)
    model = zoo.pspnet_resnet18(num_classes=5, width=0.25, aux_loss=True)
    assert model.align_corners is False and model.backbone.out_channels == 128
    model.eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 37, 50))["out"].shape == (1, 5, 37, 50)
        c3, c4 = model.backbone(torch.randn(1, 3, 64, 64))
    assert c3.shape == (1, 64, 8, 8) and c4.shape == (1, 128, 8, 8)
    dilations = [m.dilation for m in model.backbone.layer4.modules() if isinstance(m, torch.nn.Conv2d)]
    assert dilations[:2] == [(2, 2), (2, 2)] and (4, 4) in dilations  # contract_dilation: first block halved


def test_pspnet_resnet18_backbone_takes_torchvision_resnet18_parameters():
    """With the 7x7 stem and width 1.0 the dilated backbone has torchvision resnet18's parameters (bar fc),
    so ImageNet weights load (``weights_backbone=ResNet18_Weights...``)."""
    from torchvision.models import resnet18

    from zoo.models.backbones import DilatedBasicResNet

    ours = DilatedBasicResNet(18, 1.0, stem_widths=None).state_dict()
    theirs = {k: v for k, v in resnet18().state_dict().items() if not k.startswith("fc.")}
    stem = {"conv1.": "stem.0.", "bn1.": "stem.1."}
    renamed = {}
    for key, value in theirs.items():
        prefix = next((p for p in stem if key.startswith(p)), None)
        renamed[stem[prefix] + key[len(prefix) :] if prefix else key] = value.shape
    assert {k: v.shape for k, v in ours.items()} == renamed
    with pytest.raises(ValueError, match="width"):
        DilatedBasicResNet(18, 1.5)


# ------------------------------------------------------------------------------------- loss goes down
FAMILIES = {  # builder kwargs, image size, images, steps, lr
    "sppnet_zf5": ({"num_classes": 10, **TINY_CLASSIFIER, "dropout": 0.0}, 40, 4, 6, 2e-3),
    "pspnet_resnet18": ({"num_classes": 11, "width": 0.25, "aux_loss": True, "dropout": 0.0}, 48, 4, 6, 2e-3),
    "deconvnet_vgg16": ({"num_classes": 11, "width": 0.0625, "fc_channels": 512}, 224, 2, 16, 5e-3),
    "spp_detector_zf5": ({"num_classes": 11, "trunk_width": 0.125, "representation_size": 32, "min_size": 128,
                          "max_size": 160, "rpn_batch_size_per_image": 64, "box_batch_size_per_image": 32},
                         None, 2, 24, 1e-3),
}  # fmt: skip


# The bound: the mean loss of the last quarter of the steps below 0.9x the first loss. A model whose gradients
# do not reach its weights keeps the loss of its first step (the batch and the dropout masks are fixed), so 0.9
# separates learning from not learning; steps and learning rates are chosen so that the measured ratio stays
# well below it on other seeds and releases too. DeconvNet's tiny decoder learns slowly: at 6 steps and lr 2e-3
# its ratio was 0.93 with torch 2.14 (0.87-0.91 at 2.11); at 16 steps and lr 5e-3 it is 0.79, 0.70 and 0.84 for
# seeds 0-2 (torch 2.14.1). The detector's loss jumps from step to step (its proposals change as the RPN
# learns): over 24 steps the mean of the last 6 is 0.70 and 0.70 of the first (seeds 0, 1) with torch 2.11 and
# 0.67 and 0.73 with torch 2.14, while its last single loss ranged 0.77-0.91.
@pytest.mark.parametrize("name", list(FAMILIES))
def test_a_few_training_steps_lower_the_loss(name):
    kwargs, size, count, steps, lr = FAMILIES[name]
    task = tasks.task_of_builder(name)
    torch.manual_seed(0)
    model = zoo.get_model(name, **kwargs).train()
    dataset = tasks.build_dataset(task, "scenes", "train", size=count)
    images, targets = zip(*[dataset[i] for i in range(count)], strict=True)
    x, y = tasks.prepare_batch(task, list(images), list(targets), size, torch.device("cpu"))
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        torch.manual_seed(1)  # the same dropout masks and proposal samples at every step
        loss = tasks.compute_loss(task, model, x, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    tail = losses[-max(1, steps // 4) :]
    assert sum(tail) / len(tail) < 0.9 * losses[0], losses


# ------------------------------------------------------------------------------------------ augmentation
class _OneObject(torch.utils.data.Dataset):
    """A 30x50 image with one off-centre rectangle, as a classification, segmentation or detection item."""

    def __init__(self, task: str):
        self.task = task

    def __len__(self) -> int:
        return 64

    def __getitem__(self, index):
        image = torch.zeros(3, 30, 50, dtype=torch.uint8)
        image[0, 5:12, 20:41] = 255
        image[1, 5, 20] = 255  # marks a corner: the eight symmetries give eight different images
        if self.task == "detection":
            return image, {"boxes": torch.tensor([[20.0, 5.0, 41.0, 12.0]]), "labels": torch.tensor([1])}
        if self.task == "segmentation":
            return image, (image[0] > 0).long()
        return image, 3


def _extent(mask: torch.Tensor) -> list[int]:
    rows, cols = mask.any(1).nonzero().flatten(), mask.any(0).nonzero().flatten()
    return [int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1]


@pytest.mark.parametrize("task", ["classification", "segmentation", "detection"])
def test_rotate_draws_all_eight_symmetries_and_moves_targets_along(task):
    samples = tasks.TrainSamples(_OneObject(task), task, seed=0, augment=True, rotate=True)
    seen = set()
    for epoch in range(2):
        samples.set_epoch(epoch)
        for index in range(len(samples)):
            image, target = samples[index]
            seen.add((tuple(image.shape), tuple(image[1].nonzero().flatten().tolist())))
            if task == "detection":
                assert target["boxes"][0].tolist() == _extent(image[0] > 0)
                assert target["labels"].tolist() == [1]
            elif task == "segmentation":
                assert torch.equal(target, (image[0] > 0).long())
            else:
                assert target == 3
    assert len(seen) == 8
    again = tasks.TrainSamples(_OneObject(task), task, seed=0, augment=True, rotate=True)
    again.set_epoch(1)
    assert all(torch.equal(again[i][0], samples[i][0]) for i in range(8))  # seeded per (seed, epoch, index)


def test_rotate_keeps_the_flips_of_a_run_without_it():
    """Adding rotate to a seed's run keeps its flip draws: an item is mirrored iff the run without rotate flips it."""
    base = _OneObject("classification")[0][0]
    plain = tasks.TrainSamples(_OneObject("detection"), "detection", seed=3)
    rotated = tasks.TrainSamples(_OneObject("detection"), "detection", seed=3, rotate=True)
    flips = [not torch.equal(plain[index][0], base) for index in range(32)]
    assert 0 < sum(flips) < 32
    assert flips == [_is_mirrored(rotated[index][0]) for index in range(32)]


def _is_mirrored(image: torch.Tensor) -> bool:
    """Whether ``image`` is a mirror image of _OneObject's (a rotation of its horizontal flip)."""
    base = _OneObject("classification")[0][0]
    return not any(torch.equal(torch.rot90(base, k, dims=(-2, -1)), image) for k in range(4))


def test_rotate_needs_augment(tmp_path):
    with pytest.raises(ValueError, match="rotate"):
        train(_classifier_config(tmp_path, rotate=True, augment=False))


# ---------------------------------------------------------------------------------- resume, torchrun
def _classifier_config(output: Path, **overrides) -> TrainConfig:
    settings = dict(model="sppnet_zf5", kwargs=dict(TINY_CLASSIFIER), epochs=2, batch_size=8, limit=32,
                    image_size=32, lr=3e-3, output=str(output))  # fmt: skip
    settings.update(overrides)
    return TrainConfig(**settings)


def _weights(directory: Path) -> dict[str, torch.Tensor]:
    return load_file(str(directory / "model.safetensors"))


def test_resume_gives_the_uninterrupted_weights(tmp_path):
    config = dict(multi_size=[32, 40])  # with dropout, augmentation and alternating sizes
    straight = train(_classifier_config(tmp_path / "straight", **config))
    interrupted = train(_classifier_config(tmp_path / "part", **config), stop_after=1)
    assert json.loads((interrupted / "config.json").read_text())["training"]["epochs"] == 1
    first = _weights(interrupted)
    resumed = train(_classifier_config(interrupted, **config), resume=interrupted)
    assert resumed == interrupted  # the run continues in its own directory
    a, b = _weights(straight), _weights(resumed)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert not torch.equal(first["classifier.weight"], a["classifier.weight"])  # the second epoch did train
    log = [json.loads(line) for line in (resumed / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2]


def test_logged_val_metrics_are_those_of_the_checkpoint(tmp_path):
    """``--val-size N``: each epoch logs the metrics ``zoo.evaluate`` gives on the first N val items."""
    from zoo.engine.evaluate import evaluate

    output = train(_classifier_config(tmp_path / "run", epochs=1, val_size=12))
    (record,) = [json.loads(line) for line in (output / "log.jsonl").read_text().splitlines()]
    model = zoo.hub.from_pretrained(output)
    expected = evaluate(model, data="scenes", split="val", image_size=32, limit=12)
    assert {k: record[f"val_{k}"] for k in expected} == expected


def test_resume_from_a_missing_checkpoint_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="training_state.pt"):
        train(_classifier_config(tmp_path / "out"), resume=tmp_path / "nothing")


def _free_port() -> int:
    """A loopback port nothing listens on now (a fixed one collides with another run on the machine)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_torchrun_two_processes_give_the_single_process_weights(tmp_path):
    """gloo, 2 processes x 4 images = the 1-process run with a batch of 8. The model has no BatchNorm
    (ZF-5) and no dropout here, so per-sample computations do not depend on the process layout."""
    common = ["sppnet_zf5", "-k", "width=0.125", "-k", "representation_size=32", "-k", "dropout=0.0",
              "--epochs", "2", "--batch-size", "8", "--limit", "32", "--image-size", "32", "--lr", "3e-3",
              "--multi-size", "32,40"]  # fmt: skip
    single = _zoo("train", *common, "--output", str(tmp_path / "one"))
    assert single.returncode == 0, single.stderr[-2000:]
    run = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", str(_free_port()),
         "-m", "zoo", "train", *common, "--output", str(tmp_path / "two")],
        cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert "world_size=2" in run.stderr
    one, two = _weights(tmp_path / "one"), _weights(tmp_path / "two")
    torch.manual_seed(0)  # the initialization both runs started from (seed 0)
    init = zoo.sppnet_zf5(num_classes=10, dropout=0.0, **TINY_CLASSIFIER).state_dict()
    assert one.keys() == two.keys() == init.keys()
    for key in one:
        # Same samples, same averaged gradients: the runs differ by float rounding only, which Adam's
        # normalization amplifies for near-zero gradients (max 3e-5 here), far below what training moved.
        moved = (one[key] - init[key]).norm()
        assert moved > 0, key
        assert (two[key] - one[key]).norm() <= 1e-2 * moved, key
        torch.testing.assert_close(two[key], one[key], rtol=1e-3, atol=2e-4, msg=key)


def test_train_rejects_bad_settings(tmp_path):
    with pytest.raises(ValueError, match="unknown model"):
        train(_classifier_config(tmp_path, model="no_such_model"))
    with pytest.raises(ValueError, match="batch_size"):
        train(_classifier_config(tmp_path, batch_size=0))
    with pytest.raises(ValueError, match="multi_size"):
        train(_classifier_config(tmp_path, model="spp_detector_zf5", multi_size=[64]))
    with pytest.raises(ValueError, match="trees"):
        train(_classifier_config(tmp_path, data="trees"))
    with pytest.raises(ValueError, match="scene-objects"):
        train(_classifier_config(tmp_path, data="scene-objects"))


# --------------------------------------------------------------------------------- shipped weights
#: entry -> (model, image subset size): each entry's metrics on the first items of its test split, measured with
#: `python -m zoo eval MODEL --weights ENTRY --limit N --json` when the entry was registered.
SHIPPED = {
    "SPPNet_ZF5_Weights.SCENES_V2": ("sppnet_zf5", 64),
    "SPPDetector_ZF5_Weights.SCENES_V3": ("spp_detector_zf5", 12),
    "PSPNet_ResNet18_Weights.SCENES_V3": ("pspnet_resnet18", 16),
    "DeconvNet_VGG16_Weights.SCENES_V2": ("deconvnet_vgg16", 8),
    "ZF5_Classifier_Weights.SCENES_V1": ("zf5_classifier", 64),
    "ResNet18_Classifier_Weights.SCENES_V1": ("resnet18_classifier", 64),
    "VGG16BN_Classifier_Weights.SCENES_V1": ("vgg16_bn_classifier", 64),
    "VGG16BN_Classifier_Weights.SCENES_W25_V1": ("vgg16_bn_classifier", 64),
}
#: The torch release that measured SUBSET_METRICS and the registered metrics. On another release, CPU kernels
#: round differently and flip the argmax of a few pixels or boxes: measured at the floor (torch 2.11), the
#: segmenters' subset metrics move by 0.01-0.02 points. There the check allows 0.1 points; here it is exact.
MEASURED_WITH_TORCH = "2.14."
SUBSET_METRICS = {
    "SPPNet_ZF5_Weights.SCENES_V2": {"acc@1": 56.25, "acc@5": 98.44},
    "SPPDetector_ZF5_Weights.SCENES_V3": {"mAP": 14.03, "mAP@0.5": 29.2},
    "PSPNet_ResNet18_Weights.SCENES_V3": {"mIoU": 60.11, "mAcc": 72.84, "aAcc": 95.27},
    "DeconvNet_VGG16_Weights.SCENES_V2": {"mIoU": 11.64, "mAcc": 16.51, "aAcc": 92.15},
    "ZF5_Classifier_Weights.SCENES_V1": {"acc@1": 54.69, "acc@5": 98.44},
    "ResNet18_Classifier_Weights.SCENES_V1": {"acc@1": 71.88, "acc@5": 100.0},
    "VGG16BN_Classifier_Weights.SCENES_V1": {"acc@1": 73.44, "acc@5": 100.0},
    "VGG16BN_Classifier_Weights.SCENES_W25_V1": {"acc@1": 78.12, "acc@5": 100.0},
}


def test_every_family_ships_a_weights_entry():
    from zoo.engine.predict import shipped_entries

    assert {entry for _, entry in shipped_entries()} == set(SHIPPED)
    total = 0
    for entry, (name, _) in SHIPPED.items():
        weights = zoo.get_weight(entry)
        if not name.endswith("_classifier"):
            assert zoo.get_model_weights(name).DEFAULT is weights
        folder = Path(zoo.__file__).parent / "weights" / weights.repo
        assert (folder / "model.safetensors").is_file() and (folder / "README.md").is_file()
        config = json.loads((folder / "config.json").read_text())
        assert config["architecture"] == name and config["metrics"] == weights.meta["_metrics"]
        total += (folder / "model.safetensors").stat().st_size
    assert total < 25 * 2**20


@pytest.mark.parametrize("entry", list(SHIPPED))
def test_eval_of_a_shipped_entry_reproduces_its_metrics_on_a_subset(entry):
    from zoo.engine.evaluate import evaluate, evaluation_settings, load_model

    name, limit = SHIPPED[entry]
    model, meta = load_model(name, entry)
    settings = evaluation_settings(meta)
    metrics = evaluate(model, data=settings["data"], image_size=settings["image_size"], limit=limit)
    if torch.__version__.startswith(MEASURED_WITH_TORCH):
        assert metrics == SUBSET_METRICS[entry]
    else:
        assert metrics == pytest.approx(SUBSET_METRICS[entry], abs=0.1)


def test_eval_command_reproduces_the_registered_metric_of_the_classifier():
    """The whole test split through `python -m zoo eval --json`: exactly the registered numbers."""
    entry = "SPPNet_ZF5_Weights.SCENES_V2"
    result = _zoo("eval", "sppnet_zf5", "--weights", entry, "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0]) == zoo.get_weight(entry).meta["_metrics"]["scenes-test"]


def test_predict_all_writes_a_picture_per_entry_and_example(tmp_path):
    from PIL import Image

    from zoo.data import EXAMPLES_DIR
    from zoo.engine.predict import predict_all, shipped_entries

    written = predict_all(tmp_path).written
    scenes = len(list(EXAMPLES_DIR.glob("scene_*.png")))
    classification = len(list(EXAMPLES_DIR.glob("classification_*.png")))
    expected = sum(classification if zoo.models.get_model_task(name) == "classification" else scenes
                   for name, _ in shipped_entries())  # fmt: skip
    assert len(written) == expected and len(set(written)) == expected  # no entry overwrites another's picture
    assert sum(Path(p).parent.name == "SCENES_W25_V1" for p in written) == classification  # a non-DEFAULT entry
    for path in written:
        with Image.open(path) as picture:
            assert picture.format == "PNG" and picture.width >= 384
            assert len(np.unique(np.asarray(picture.convert("L")))) > 32  # a picture, not a blank canvas


def test_predict_command_on_an_image_file(tmp_path):
    from zoo.data import EXAMPLES_DIR

    image = sorted(EXAMPLES_DIR.glob("scene_*.png"))[0]
    result = _zoo("predict", "pspnet_resnet18", str(image), "--output", str(tmp_path))
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / f"{image.stem}_pspnet_resnet18.png").is_file()


# --------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "args, message",
    [
        (["eval", "no_such_model", "--weights", "DEFAULT"], "unknown model"),
        (["eval", "pspnet_resnet18", "--weights", "SPPNet_ZF5_Weights.SCENES_V2"], "not an entry"),
        (["predict", "sppnet_zf5", "{not_an_image}"], "not an image"),
        (["predict", "sppnet_zf5", "/no/such/directory/"], "/no/such/directory/: no such file or directory"),
        (["train", "sppnet_zf5", "--resume", "/no/such/directory"], "/no/such/directory: no such directory"),
    ],
)
def test_bad_input_gives_one_line_and_exit_code_2(tmp_path, args, message):
    text = tmp_path / "notes.png"
    text.write_text("this is text, not a picture")
    args = [a.replace("{not_an_image}", str(text)) for a in args]
    result = _zoo(*args, "--output", str(tmp_path / "out")) if args[0] != "eval" else _zoo(*args)
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith(f"zoo {args[0]}: error:") and message in lines[0], lines[0]
