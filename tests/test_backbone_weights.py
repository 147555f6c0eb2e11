"""The pretrain-then-fine-tune start (issue: weights that work): trunk classifiers (zoo.models.classifiers) and
their entries, taken by every family through ``weights_backbone=``, strictly, and by ``python -m zoo train
--weights-backbone``."""

from __future__ import annotations

import json

import pytest
import torch

import zoo
from zoo.engine.train import TrainConfig, train
from zoo.models import classifiers

#: (family, backbone entry, the family's trunk, builder kwargs that keep the test small)
FAMILIES = {
    "sppnet_zf5": ("ZF5_Classifier_Weights.SCENES_V1", lambda m: m.features, {"representation_size": 16}),
    "spp_detector_zf5": ("SPPNet_ZF5_Weights.SCENES_V2", lambda m: m.backbone,
                         {"representation_size": 16, "min_size": 96, "max_size": 128}),
    "pspnet_resnet18": ("ResNet18_Classifier_Weights.SCENES_V1", lambda m: m.backbone, {}),
    "deconvnet_vgg16": ("VGG16BN_Classifier_Weights.SCENES_V1", lambda m: m.encoder, {"fc_channels": 64}),
}  # fmt: skip

#: Each trunk classifier entry and the width it was trained at (the shipped families' widths).
BACKBONES = {
    "ZF5_Classifier_Weights.SCENES_V1": ("zf5_classifier", {"width": 0.25}),
    "ResNet18_Classifier_Weights.SCENES_V1": ("resnet18_classifier", {"width": 0.375}),
    "VGG16BN_Classifier_Weights.SCENES_V1": ("vgg16_bn_classifier", {"width": 0.125}),
    "VGG16BN_Classifier_Weights.SCENES_W25_V1": ("vgg16_bn_classifier", {"width": 0.25}),
}


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # the shipped copies, no network


def _trunk_of_entry(entry) -> dict[str, torch.Tensor]:
    prefix = classifiers.TRUNK_PREFIX
    return {k[len(prefix) :]: v for k, v in entry.get_state_dict().items() if k.startswith(prefix)}


def _one_step(family: str, model: torch.nn.Module) -> torch.Tensor:
    """One training step on a scene item (or random pixels); returns the loss."""
    from zoo.data import SceneDetection
    from zoo.engine import tasks

    torch.manual_seed(0)
    model.train()
    task = tasks.task_of(model)
    if task == "detection":
        image, target = SceneDetection("val", size=1)[0]
        x, y = [image.float() / 255], [{"boxes": target["boxes"].as_subclass(torch.Tensor), "labels": target["labels"]}]
    elif task == "classification":
        x, y = torch.rand(4, 3, 48, 48), torch.randint(0, 11, (4,))
    else:
        x, y = torch.rand(2, 3, 224, 224), torch.randint(0, 11, (2, 224, 224))
    loss = tasks.compute_loss(task, model, x, y)
    loss.backward()
    return loss


@pytest.mark.parametrize("family", list(FAMILIES))
def test_a_builder_given_a_backbone_entry_loads_every_trunk_key_and_trains(family):
    name, trunk_of, kwargs = FAMILIES[family]
    entry = zoo.get_weight(name)
    model = zoo.get_model(family, weights_backbone=entry, num_classes=11, **kwargs)
    trunk = trunk_of(model).state_dict()
    source = _trunk_of_entry(entry)
    assert set(trunk) == set(source) and len(source) >= 10  # every trunk key, nothing else
    for key, value in trunk.items():
        torch.testing.assert_close(value, source[key].to(value.dtype), rtol=0, atol=0, msg=key)  # fp16 file
    # the widths come from the entry and are recorded, so that config.json rebuilds the same network
    recorded = entry.get_config()["kwargs"]
    width_key = "trunk_width" if family == "spp_detector_zf5" else "width"
    assert model.zoo_config["kwargs"][width_key] == recorded["width"]
    loss = _one_step(family, model)
    assert torch.isfinite(loss)
    grads = [p.grad for p in trunk_of(model).parameters()]
    assert all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads)


def test_the_same_entry_by_its_name_and_the_detector_from_the_trunk_classifier():
    by_name = zoo.pspnet_resnet18(weights_backbone="ResNet18_Classifier_Weights.SCENES_V1", num_classes=3)
    entry = zoo.get_weight("ResNet18_Classifier_Weights.SCENES_V1")
    by_member = zoo.pspnet_resnet18(weights_backbone=entry, num_classes=3)
    for (k, a), b in zip(by_name.backbone.state_dict().items(), by_member.backbone.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=k)
    detector = zoo.spp_detector_zf5(weights_backbone="ZF5_Classifier_Weights.SCENES_V1", num_classes=3,
                                    representation_size=8)  # fmt: skip
    for key, value in _trunk_of_entry(zoo.get_weight("ZF5_Classifier_Weights.SCENES_V1")).items():
        torch.testing.assert_close(detector.backbone.state_dict()[key], value.float(), rtol=0, atol=0)


def test_backbone_arguments_that_contradict_the_entry_are_named():
    with pytest.raises(ValueError, match=r"width=1\.0 conflicts with weights_backbone=ResNet18_Classifier_Weights"):
        zoo.pspnet_resnet18(weights_backbone="ResNet18_Classifier_Weights.SCENES_V1", width=1.0)
    with pytest.raises(ValueError, match="layout='mindspore' conflicts"):
        zoo.sppnet_zf5(weights_backbone="ZF5_Classifier_Weights.SCENES_V1", layout="mindspore")
    with pytest.raises(TypeError, match="weights_backbone"):
        zoo.deconvnet_vgg16(weights_backbone=zoo.get_weight("ResNet18_Classifier_Weights.SCENES_V1"))
    with pytest.raises(ValueError, match="not an entry of ZF5_Classifier_Weights"):
        zoo.sppnet_zf5(weights_backbone="NO_SUCH_ENTRY")
    # a width the entry agrees with is accepted
    zoo.deconvnet_vgg16(weights_backbone="VGG16BN_Classifier_Weights.SCENES_V1", width=0.125, fc_channels=16)


@pytest.mark.parametrize("name", list(BACKBONES))
def test_trunk_classifier_entries_rebuild_from_their_config(name):
    entry = zoo.get_weight(name)
    builder, kwargs = BACKBONES[name]
    model = zoo.get_model(builder, weights=entry).eval()
    assert {k: model.zoo_config["kwargs"][k] for k in kwargs} == kwargs
    assert entry.meta["categories"] == list(zoo.data.CLASSES[1:])
    with torch.no_grad():
        assert model(torch.rand(2, 3, 64, 64)).shape == (2, 10)
    assert entry in list(zoo.get_model_weights(builder))


def test_trunk_classifier_builders_take_any_size_and_reject_too_small_inputs():
    for builder, smallest in (("zf5_classifier", 23), ("resnet18_classifier", 1), ("vgg16_bn_classifier", 32)):
        model = zoo.get_model(builder, width=0.125, num_classes=4).eval()
        for size in (max(smallest, 33), 47, 80):
            with torch.no_grad():
                assert model(torch.rand(1, 3, size, size + 5)).shape == (1, 4)
    with pytest.raises(ValueError, match="at least 32x32"):
        zoo.vgg16_bn_classifier(width=0.125)(torch.rand(1, 3, 31, 40))
    # the ResNet trunk of the classifier is PSPNet's at output stride 32: same parameter names and shapes
    classifier = zoo.resnet18_classifier(width=0.375)
    pspnet = zoo.pspnet_resnet18(width=0.375)
    assert {k: v.shape for k, v in classifier.features.state_dict().items()} == {
        k: v.shape for k, v in pspnet.backbone.state_dict().items()
    }


def test_train_from_a_backbone_entry_records_it_and_resumes(tmp_path):
    config = TrainConfig(
        model="pspnet_resnet18",
        weights_backbone="ResNet18_Classifier_Weights.SCENES_V1",
        epochs=2,
        batch_size=2,
        limit=4,
        image_size=64,
        log_every=1,
        output=str(tmp_path / "run"),
    )
    train(config, stop_after=1)
    saved = zoo.hub.load_config(tmp_path / "run")
    assert saved["training"]["weights_backbone"] == "ResNet18_Classifier_Weights.SCENES_V1"
    assert saved["kwargs"]["width"] == 0.375  # from the entry, so that the checkpoint rebuilds
    assert "backbone ResNet18_Classifier_Weights.SCENES_V1" in saved["description"]
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "train_loss" in r] == [1, 2]
    assert records[-1]["epoch"] == 1
    # resumed: the run's kwargs rebuild the network, the checkpoint (not the entry) gives the weights
    train(TrainConfig(model="pspnet_resnet18"), resume=tmp_path / "run", given={"model"})
    assert zoo.hub.load_config(tmp_path / "run")["training"]["epochs"] == 2
    with pytest.raises(ValueError, match="exclude each other"):
        train(TrainConfig(model="sppnet_zf5", weights="DEFAULT", weights_backbone="ZF5_Classifier_Weights.SCENES_V1"))
