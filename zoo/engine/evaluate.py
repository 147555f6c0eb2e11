"""Evaluation of a model with weights on a test split: ``python -m zoo eval MODEL --weights ENTRY [--json]``.

The metrics (see :mod:`zoo.engine.tasks`) are computed in eval mode, deterministically on the CPU, over the
whole split (or its first ``limit`` items), in the order of the dataset. For a shipped weights entry
this reproduces the ``meta["_metrics"]`` registered with it exactly.

Segmenters on a real dataset (``data`` one of :data:`zoo.engine.tasks.REAL_DATASETS`, read from ``root``) are
evaluated with the published test protocol (:mod:`zoo.engine.protocol`): mmsegmentation's (the entry's
``meta["test_protocol"]``, else the dataset's config) or hszhao/semseg's, with optional test-time augmentation;
the result adds the per-class IoU / Acc table and the protocol used.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from ..data import collate_detection
from ..hub.pretrained import from_pretrained, load_config
from ..models.registry import get_model, get_model_builder, get_model_weights, verify_weights
from . import protocol as test_protocol
from . import tasks
from .tasks import default_image_size

__all__ = ["evaluate", "load_model", "evaluation_settings"]


def load_model(name: str, weights: str, device: torch.device | str = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Build ``name`` with ``weights`` and return it (eval mode) with the weights' metadata.

    ``weights``: an entry of the model's enum (``"ENTRY"``, ``"Enum.ENTRY"``, ``"DEFAULT"``), or a
    directory in Hub layout (e.g. a ``zoo train`` checkpoint) holding a ``name`` model.
    """
    builder = get_model_builder(name)
    if tasks.names_a_folder(weights):
        directory = Path(weights)
        if not directory.is_dir():
            raise FileNotFoundError(f"{weights}: no such directory (--weights takes an entry name or a saved folder)")
        config = load_config(directory)
        if config.get("architecture") != name:
            raise ValueError(f"--weights {weights!r} holds a {config.get('architecture')!r} model, not {name!r}")
        model = from_pretrained(str(directory))
        meta = dict(config.get("metadata", config))
    else:
        enum = get_model_weights(builder)
        entry = verify_weights(weights, enum, name)
        model = get_model(name, weights=entry)
        meta = dict(entry.meta)
    return model.to(device).eval(), meta


#: ``meta["dataset"]`` names of weights entries -> the ``data`` reader that reads that dataset.
DATASET_ALIASES = {"voc12aug": "voc2012", "voc12": "voc2012", "ade": "ade20k", "imagenet-1k": "imagefolder"}


def evaluation_settings(meta: dict[str, Any]) -> dict[str, Any]:
    """Dataset name and square input size an entry's metrics were measured with."""
    size = meta.get("input_size")
    data = meta.get("dataset", "scenes")
    return {"data": DATASET_ALIASES.get(data, data), "image_size": int(size[0]) if size else None}


def _check_limit(limit: Any) -> None:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be a positive int, got {limit!r}")


def _check_outputs(num_outputs: int, classes: list[str], data: str) -> None:
    if num_outputs != len(classes):
        raise ValueError(
            f"the model predicts {num_outputs} classes and data={data!r} has {len(classes)}; "
            "evaluate weights trained on this dataset (or fine-tune: python -m zoo train ... --weights)"
        )


@torch.no_grad()
def evaluate(
    model: nn.Module,
    *,
    data: str = "scenes",
    split: str | None = None,
    image_size: int | None = None,
    limit: int | None = None,
    batch_size: int = 8,
    device: torch.device | str = "cpu",
    progress: bool = False,
    root: str | os.PathLike | None = None,
    meta: dict[str, Any] | None = None,
    protocol: str = "mmseg",
    tta: str | None = None,
    workers: int = 0,
) -> dict[str, Any]:
    """Metrics of ``model`` (a zoo classifier, detector or segmenter) on ``data``'s ``split`` (default: "val" of a
    real dataset, else "test").

    ``image_size``: the square input size of classifiers and segmenters on the scenes (when None: ``meta``'s
    ``input_size``, else the task default); a classifier whose ``meta`` has a ``resize_size`` sees its images
    warped to that size and center-cropped to ``image_size`` (ImageNet's 256 -> 224). ``limit``: evaluate the
    first ``limit`` items only. ``root``: the directory of a real dataset.
    Segmenters on a real dataset: ``meta`` (the weights' metadata: ``test_protocol``, ``mean``, ``std``),
    ``protocol`` ("mmseg" or "semseg") and ``tta`` (None, "flip", "ms-flip") select the test protocol; the
    result holds ``mIoU``, ``mAcc``, ``aAcc``, ``per_class`` and ``protocol``. ``workers``: DataLoader workers.
    """
    task = tasks.task_of(model)
    split = split or ("val" if data in tasks.REAL_DATASETS else "test")
    _check_limit(limit)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    protocol_used = task == "segmentation" and data in tasks.REAL_DATASETS
    if not protocol_used and (tta is not None or protocol != "mmseg"):
        raise ValueError("tta and protocol apply to segmenters on a real dataset (ade20k, voc2012, cityscapes, ...)")
    dataset = tasks.build_dataset(task, data, split, root=root)
    classes = tasks.categories(task, data, dataset)
    if limit is not None:
        dataset = torch.utils.data.Subset(dataset, range(min(limit, len(dataset))))
    declared = getattr(model, "zoo_config", {}).get("kwargs", {}).get("num_classes")
    if declared is not None:  # before a first batch, when the model says its class count (detectors: incl. background)
        _check_outputs(int(declared), classes, data)
    device = torch.device(device)
    model.eval()
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=False, num_workers=workers, collate_fn=collate_detection
    )
    bar = tqdm(total=len(dataset), desc=f"eval {data} {split}", unit="img", disable=not progress, leave=False)
    if protocol_used:
        settings = test_protocol.protocol_for(
            meta or {}, data, kind=protocol, tta=tta, align_corners=getattr(model, "align_corners", None)
        )
        confusion = test_protocol.ConfusionMatrix(len(classes), settings.ignore_index)
        for images, masks in loader:
            images = [torch.as_tensor(image).to(device) for image in images]
            scores = test_protocol.predict_scores(model, images, settings, batch_size=batch_size)
            _check_outputs(scores[0].shape[0], classes, data)
            for score, mask in zip(scores, masks, strict=True):
                confusion.update(score.argmax(0), torch.as_tensor(mask))
            bar.update(len(images))
        bar.close()
        result = confusion.compute(average=settings.average, class_names=classes)
        return {**result, "protocol": settings.describe(), "data": data, "split": split, "images": len(dataset)}
    size = image_size or evaluation_settings(meta or {})["image_size"] or default_image_size(task)
    preprocess = tasks.entry_preprocess(task, meta, size)  # e.g. ImageNet's warp to 256 then crop 224
    metrics = tasks.TaskMetrics(task, len(classes))
    for images, targets in loader:
        images = [torch.as_tensor(image) for image in images]
        if preprocess is not None:
            outputs = model(torch.stack([preprocess(image) for image in images]).to(device))
        else:
            outputs = tasks.predict_batch(task, model, images, size, device)
        if task != "detection":
            _check_outputs(outputs[0].shape[0] if task == "segmentation" else outputs.shape[1], classes, data)
        metrics.update(outputs, list(targets))
        bar.update(len(images))
    bar.close()
    return metrics.compute()
