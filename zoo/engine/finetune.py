"""Starting a training run from a weights entry or a checkpoint with another number of classes.

:func:`build_from_weights` builds the architecture the weights were trained with (their published builder kwargs
and ``align_corners``) for ``num_classes`` classes and loads every tensor whose name and shape match; the tensors
that do not fit (the classifier layers, whose first dimension is the class count) keep their fresh initialization
and are reported, as torchvision's fine-tuning recipes replace a model's head.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..hub.files import WEIGHTS_NAME, load_safetensors, verify_recorded
from ..hub.pretrained import load_config
from ..models.registry import get_model, get_model_builder, get_model_weights, verify_weights
from . import tasks

__all__ = ["LoadReport", "load_matching", "weights_source", "build_from_weights"]


@dataclass
class LoadReport:
    """What :func:`load_matching` did: loaded tensor names, and the skipped ones with the reason."""

    loaded: list[str]
    skipped: dict[str, str]  # name -> "shape (150, 512, 1, 1) -> (3, 512, 1, 1)" or "not in the model"
    missing: list[str]  # the model's tensors the weights do not have (kept as initialized)

    def summary(self, source: str) -> str:
        """One line for the log."""
        text = f"{source}: loaded {len(self.loaded)} tensors"
        if self.skipped:
            text += f"; skipped {len(self.skipped)}: " + ", ".join(f"{k} ({v})" for k, v in self.skipped.items())
        if self.missing:
            text += f"; not in the weights (initialized): {', '.join(self.missing)}"
        return text


def load_matching(model: nn.Module, state_dict: dict[str, torch.Tensor]) -> LoadReport:
    """Load the tensors of ``state_dict`` whose name and shape match ``model``'s; report the rest."""
    own = model.state_dict()
    loadable, skipped = {}, {}
    for name, tensor in state_dict.items():
        if name not in own:
            skipped[name] = "not in the model"
        elif tuple(own[name].shape) != tuple(tensor.shape):
            skipped[name] = f"shape {tuple(tensor.shape)} -> {tuple(own[name].shape)}"
        else:
            loadable[name] = tensor
    result = model.load_state_dict(loadable, strict=False)
    missing = [name for name in result.missing_keys if name not in skipped]
    return LoadReport(loaded=list(loadable), skipped=skipped, missing=missing)


def weights_source(model_name: str, weights: str) -> tuple[dict[str, Any], dict[str, torch.Tensor], str]:
    """``(builder kwargs, state dict, label)`` of ``weights``: an entry of ``model_name``'s enum (``"ENTRY"``,
    ``"Enum.ENTRY"``, ``"DEFAULT"``; verified download) or a Hub-layout directory holding a ``model_name``."""
    builder = get_model_builder(model_name)  # ValueError naming an unknown model
    if tasks.names_a_folder(weights):
        directory = Path(weights)
        if not (directory / "model.safetensors").is_file():
            raise FileNotFoundError(f"--weights: {directory / 'model.safetensors'} does not exist")
        config = load_config(directory)
        if config.get("architecture") != model_name:
            raise ValueError(f"--weights {weights!r} holds a {config.get('architecture')!r} model, not {model_name!r}")
        kwargs = dict(config.get("kwargs", {}))
        metadata = config.get("metadata", config)
        if "align_corners" in metadata:
            kwargs.setdefault("align_corners", bool(metadata["align_corners"]))
        verify_recorded(directory, cached=False)  # the sha256 its config.json records, as from_pretrained checks
        return kwargs, load_safetensors(directory / WEIGHTS_NAME), str(directory)
    entry = verify_weights(weights, get_model_weights(builder), model_name)
    published = entry.get_config()
    if published.get("architecture", model_name) != model_name:
        raise ValueError(f"{entry!r} was published for {published.get('architecture')!r}, not {model_name!r}")
    kwargs = dict(published.get("kwargs", {}))
    if "align_corners" in entry.meta:
        kwargs.setdefault("align_corners", bool(entry.meta["align_corners"]))
    return kwargs, entry.get_state_dict(), f"{type(entry).__name__}.{entry.name}"


def build_from_weights(
    model_name: str, weights: str, num_classes: int, overrides: dict[str, Any] | None = None
) -> tuple[nn.Module, LoadReport, str]:
    """``model_name`` with the architecture of ``weights`` (``overrides`` take precedence), ``num_classes``
    classes, and every fitting tensor of ``weights`` loaded. Returns (model, report, weights label)."""
    kwargs, state_dict, label = weights_source(model_name, weights)
    kwargs.update(overrides or {})
    kwargs["num_classes"] = num_classes
    model = get_model(model_name, **kwargs)
    return model, load_matching(model, state_dict), label
