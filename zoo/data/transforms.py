"""Preprocessing presets for the zoo's datasets, built from ``torchvision.transforms.v2`` (tv_tensors-aware: boxes
and masks follow every geometric transform of the image).

Each preset is a :class:`torchvision.transforms.v2.Compose` taking what a dataset item is, ``(image, target)``,
and returning the same structure: the image becomes float32 in [0, 1] (normalized with MEAN / STD unless said
otherwise); targets keep their types. Train variants add random geometry; eval variants only convert (and, if a
size is given, resize).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

__all__ = ["MEAN", "STD", "IGNORE_INDEX", "ClassificationPreset", "SegmentationPreset", "DetectionPreset"]

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
IGNORE_INDEX = 255  # label of the padding SegmentationPreset adds around crops larger than the image
_MEAN_UINT8 = tuple(round(255 * m) for m in MEAN)


def _check_size(name: str, size: int | None) -> None:
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
        raise ValueError(f"{name} must be a positive int or None, got {size!r}")


def _check_probability(name: str, p: float) -> None:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {p!r}")


def _to_float(mean: Sequence[float] | None, std: Sequence[float] | None) -> list[v2.Transform]:
    steps: list[v2.Transform] = [v2.ToDtype(torch.float32, scale=True)]  # images only; masks and boxes unchanged
    if mean is not None:
        steps.append(v2.Normalize(mean=list(mean), std=list(std)))
    return steps


class ClassificationPreset(v2.Compose):
    """``(image, label) -> (float image, label)``.

    train: ``RandomResizedCrop(size, scale)`` when ``size`` is given, horizontal flip with ``hflip_prob``, to float,
    normalize. eval: ``Resize((size, size))`` when ``size`` is given (whole image, no crop), to float, normalize.
    Without ``size`` the image keeps its size (SPP-net takes any size).
    """

    def __init__(
        self,
        *,
        train: bool,
        size: int | None = None,
        scale: tuple[float, float] = (0.5, 1.0),
        hflip_prob: float = 0.5,
        mean: Sequence[float] = MEAN,
        std: Sequence[float] = STD,
    ) -> None:
        _check_size("size", size)
        _check_probability("hflip_prob", hflip_prob)
        steps: list[v2.Transform] = []
        if train:
            if size is not None:
                steps.append(v2.RandomResizedCrop(size, scale=scale, antialias=True))
            steps.append(v2.RandomHorizontalFlip(hflip_prob))
        elif size is not None:
            steps.append(v2.Resize((size, size), antialias=True))
        super().__init__(steps + _to_float(mean, std))
        self.train = train


class SegmentationPreset(v2.Compose):
    """``(image, mask) -> (float image, mask)``; the mask stays a tv_tensors.Mask int64.

    train (torchvision's segmentation reference recipe): resize the shorter side to a random size in
    ``[0.5 * base_size, 2 * base_size)``, horizontal flip, random ``crop_size`` crop (images smaller than the crop are
    padded: image with 0, mask with IGNORE_INDEX), to float, normalize. eval: to float, normalize.
    """

    def __init__(
        self,
        *,
        train: bool,
        base_size: int = 144,
        crop_size: int | None = 128,
        hflip_prob: float = 0.5,
        mean: Sequence[float] = MEAN,
        std: Sequence[float] = STD,
    ) -> None:
        _check_size("base_size", base_size)
        _check_size("crop_size", crop_size)
        _check_probability("hflip_prob", hflip_prob)
        steps: list[v2.Transform] = []
        if train:
            steps += [
                v2.RandomResize(max(1, base_size // 2), 2 * base_size, antialias=True),
                v2.RandomHorizontalFlip(hflip_prob),
            ]
            if crop_size is not None:
                fill = {tv_tensors.Image: 0, tv_tensors.Mask: IGNORE_INDEX, "others": 0}
                steps.append(v2.RandomCrop(crop_size, pad_if_needed=True, fill=fill))
        super().__init__(steps + _to_float(mean, std))
        self.train = train


class DetectionPreset(v2.Compose):
    """``(image, target) -> (float image, target)`` for targets with "boxes" (tv_tensors.BoundingBoxes), "labels" and
    optionally "masks" (tv_tensors.Mask (K, H, W)).

    train: random zoom-out with probability ``zoom_out_prob`` (the image is placed at a random spot of a canvas up to
    ``max_zoom_out`` times larger, filled with the mean color, so objects get smaller; boxes and masks stay exact),
    horizontal flip, to float, then ``SanitizeBoundingBoxes`` (drops degenerate boxes with their labels and masks).
    eval: to float.

    No normalization by default: the zoo's detectors (torchvision's ``GeneralizedRCNN``) normalize inside the model
    with their ``image_mean`` / ``image_std``; pass ``normalize=True`` to normalize with ``mean`` / ``std`` here.
    """

    def __init__(
        self,
        *,
        train: bool,
        hflip_prob: float = 0.5,
        zoom_out_prob: float = 0.3,
        max_zoom_out: float = 2.0,
        normalize: bool = False,
        mean: Sequence[float] = MEAN,
        std: Sequence[float] = STD,
    ) -> None:
        _check_probability("hflip_prob", hflip_prob)
        _check_probability("zoom_out_prob", zoom_out_prob)
        if not max_zoom_out >= 1.0:
            raise ValueError(f"max_zoom_out must be >= 1, got {max_zoom_out!r}")
        steps: list[v2.Transform] = []
        if train:
            if zoom_out_prob > 0 and max_zoom_out > 1.0:
                fill = {tv_tensors.Image: _MEAN_UINT8, "others": 0}
                steps.append(v2.RandomZoomOut(fill=fill, side_range=(1.0, max_zoom_out), p=zoom_out_prob))
            steps.append(v2.RandomHorizontalFlip(hflip_prob))
        steps += _to_float(mean, std) if normalize else _to_float(None, None)
        if train:
            steps.append(v2.SanitizeBoundingBoxes())
        super().__init__(steps)
        self.train = train
