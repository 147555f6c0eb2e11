"""Evaluation of a model with weights on a test split: ``python -m zoo eval MODEL --weights ENTRY [--json]``.

The metrics (see :mod:`zoo.engine.tasks`) are computed in eval mode, deterministically on the CPU, over the
whole split (or its first ``limit`` items), in the order of the dataset. For a shipped weights entry
this reproduces the ``meta["_metrics"]`` registered with it exactly.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from ..hub.pretrained import from_pretrained, load_config
from ..models.registry import get_model, get_model_builder, get_model_weights, verify_weights
from . import tasks
from .tasks import default_image_size

__all__ = ["evaluate", "load_model", "evaluation_settings"]


def load_model(name: str, weights: str, device: torch.device | str = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Build ``name`` with ``weights`` and return it (eval mode) with the weights' metadata.

    ``weights``: an entry of the model's enum (``"ENTRY"``, ``"Enum.ENTRY"``, ``"DEFAULT"``), or a
    directory in Hub layout (e.g. a ``zoo train`` checkpoint) holding a ``name`` model.
    """
    builder = get_model_builder(name)
    if os.sep in weights or weights.startswith(".") or Path(weights).is_dir():
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


def evaluation_settings(meta: dict[str, Any]) -> dict[str, Any]:
    """Dataset name and square input size an entry's metrics were measured with."""
    size = meta.get("input_size")
    return {"data": meta.get("dataset", "scenes"), "image_size": int(size[0]) if size else None}


@torch.no_grad()
def evaluate(
    model: nn.Module,
    *,
    data: str = "scenes",
    split: str = "test",
    image_size: int | None = None,
    limit: int | None = None,
    batch_size: int = 8,
    device: torch.device | str = "cpu",
    progress: bool = False,
) -> dict[str, float]:
    """Metrics of ``model`` (a zoo classifier, detector or segmenter) on ``data``'s ``split``.

    ``image_size``: the square input size of classifiers and segmenters (the task default when None).
    ``limit``: evaluate the first ``limit`` items only.
    """
    task = tasks.task_of(model)
    dataset = tasks.build_dataset(task, data, split)
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"limit must be a positive int, got {limit!r}")
        dataset = torch.utils.data.Subset(dataset, range(min(limit, len(dataset))))
    size = image_size or default_image_size(task)
    num_classes = len(tasks.categories(task, data))
    metrics = tasks.TaskMetrics(task, num_classes)
    model.eval()
    starts = range(0, len(dataset), batch_size)
    for start in tqdm(starts, desc=f"eval {split}", disable=not progress, leave=False):
        items = [dataset[i] for i in range(start, min(start + batch_size, len(dataset)))]
        images = [torch.as_tensor(image) for image, _ in items]
        outputs = tasks.predict_batch(task, model, images, size, torch.device(device))
        metrics.update(outputs, [target for _, target in items])
    return metrics.compute()
