"""What a weights entry carries beside its tensors: the inference preprocessing of each family (as
torchvision keeps its presets beside its models) and the ``meta`` of the entries trained by the zoo.

Preprocessing is deterministic: images are resized to a fixed square size (classifiers and
segmenters; the detector resizes itself), scaled to [0, 1] and normalized with the ImageNet mean and
standard deviation (:data:`IMAGENET_MEAN`, :data:`IMAGENET_STD`), which every weights entry of the
zoo expects.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import PIL.Image
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "SCENE_CLASSES",
    "DetectionPreprocess",
    "ImagePreprocess",
    "as_image_tensor",
    "normalize",
    "resize_image",
    "scene_weights_meta",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def normalize(images: Tensor) -> Tensor:
    """uint8 (or [0, 1] float) (N, 3, H, W) -> float normalized with :data:`IMAGENET_MEAN` / :data:`IMAGENET_STD`."""
    if images.dtype == torch.uint8:
        images = images.float().div_(255)
    mean = torch.tensor(IMAGENET_MEAN, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    return (images - mean) / std


def resize_image(image: Tensor, size: int | Sequence[int]) -> Tensor:
    """A (3, H, W) uint8/float image as float [0, 1] of size ``size`` (bilinear, antialiased)."""
    hw = [size, size] if isinstance(size, int) else list(size)
    image = image.float() / 255 if image.dtype == torch.uint8 else image.float()
    if list(image.shape[-2:]) == hw:
        return image
    return F.interpolate(image[None], size=hw, mode="bilinear", antialias=True, align_corners=False)[0].clamp_(0, 1)


def as_image_tensor(image: Any) -> Tensor:
    """What torchvision's presets accept, as a (..., 3, H, W) tensor: a PIL image (any mode: grayscale,
    palette, RGBA, 16-bit are converted to RGB) or a uint8 / [0, 1] float tensor (a 1-channel one is
    repeated to 3). Anything else is a TypeError naming what it got."""
    if isinstance(image, PIL.Image.Image):
        if image.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16/32-bit grayscale: scale to 8 bits, keep contrast
            array = np.asarray(image, dtype=np.float64)
            image = PIL.Image.fromarray((array * (255.0 / max(float(array.max()), 1.0))).astype(np.uint8))
        return torch.from_numpy(np.array(image.convert("RGB"))).permute(2, 0, 1).contiguous()
    if not isinstance(image, Tensor):
        raise TypeError(f"image must be a PIL image or a (3, H, W) tensor, got {type(image).__name__}")
    if image.dim() not in (3, 4) or image.shape[-3] not in (1, 3):
        raise ValueError(f"image must be (3, H, W) or (N, 3, H, W) (or 1-channel), got shape {list(image.shape)}")
    if image.dtype != torch.uint8 and not image.is_floating_point():
        raise TypeError(f"image must be uint8 or floating point in [0, 1], got {image.dtype}")
    if image.shape[-3] == 1:
        image = image.expand(*image.shape[:-3], 3, *image.shape[-2:])
    return image


class ImagePreprocess:
    """Inference preprocessing of the classifiers and segmenters: resize to ``size`` x ``size``, [0, 1],
    normalize. ``__call__`` takes what torchvision's presets take: a PIL image, a (3, H, W) uint8 or
    [0, 1] float tensor, or a batch (N, 3, H, W). This is the ``transforms`` of their weights entries."""

    def __init__(self, size: int):
        self.size = int(size)

    def __call__(self, image: Any) -> Tensor:
        image = as_image_tensor(image)
        if image.dim() == 4:
            return torch.stack([self(i) for i in image])
        return normalize(resize_image(image, self.size)[None])[0]

    def __repr__(self) -> str:
        return f"ImagePreprocess(size={self.size})"


class DetectionPreprocess:
    """Inference preprocessing of the detector: an image (a PIL image, a (3, H, W) uint8 or [0, 1] float
    tensor) as float [0, 1] (the model resizes and normalizes itself). The ``transforms`` of the
    detector's weights entries."""

    def __call__(self, image: Any) -> Tensor:
        image = as_image_tensor(image)
        return image.float() / 255 if image.dtype == torch.uint8 else image.float()

    def __repr__(self) -> str:
        return "DetectionPreprocess()"


# ------------------------------------------------------------------------------------ weights entries
#: Class names of the scene data (index = label; the classifiers predict ``SCENE_CLASSES[1:]``). Equal to
#: :data:`zoo.data.CLASSES` (the models know nothing of the data code).
SCENE_CLASSES = ("background", "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                 "Bag", "Ankle boot")  # fmt: skip
RECIPE = "recipes/train_shipped.sh"


def scene_weights_meta(
    *,
    task: str,
    num_params: int,
    file_size: float,
    metrics: dict[str, float],
    min_size: tuple[int, int],
    input_size: tuple[int, int] | None,
    command: str,
    time_s: float,
    **extra: Any,
) -> dict[str, Any]:
    """``meta`` of a weights entry trained by ``python -m zoo train`` on the scenes data
    (schema: :mod:`zoo.models.registry`)."""
    meta: dict[str, Any] = {
        "categories": list(SCENE_CLASSES[1:] if task == "classification" else SCENE_CLASSES),
        "num_params": num_params,
        "min_size": min_size,
        "mean": IMAGENET_MEAN,
        "std": IMAGENET_STD,
        "dataset": "scenes",
        "_metrics": {"scenes-test": metrics},
        "_file_size": file_size,
        "license": "MIT",
        "recipe": RECIPE,
        "source": "trained from scratch by spp-zoo (python -m zoo train) on zoo.data' scenes",
        "_docs": f"Trained on the CPU ({time_s / 60:.0f} min, 2 cores) by `{command}`. Test-split metrics, "
        "reproduced by `python -m zoo eval`.",
        **extra,
    }
    if input_size is not None:
        meta["input_size"] = input_size
    return meta
