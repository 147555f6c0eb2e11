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
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as TF

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "SCENE_CLASSES",
    "DetectionPreprocess",
    "ImagePreprocess",
    "KeepRatioPreprocess",
    "WarpCropPreprocess",
    "as_image_tensor",
    "keep_ratio_size",
    "normalize",
    "pil_to_rgb",
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


def pil_to_rgb(image: PIL.Image.Image) -> np.ndarray:
    """(H, W, 3) uint8 RGB of any PIL image: 16-bit and 32-bit integer images divided down to 8 bits (65535 ->
    255), float images in [0, 1] scaled, grayscale and palette images expanded, transparency put on white."""
    if image.mode.startswith("I") or image.mode == "F":
        values = np.asarray(image).astype(np.float64)
        if image.mode == "F":
            values = values * 255 if values.size and values.max() <= 1.0 else values
        elif image.mode.startswith("I;16") or (values.size and values.max() > 255):
            values = values / 257  # 16 bits: 65535 -> 255
        gray = np.clip(np.round(values), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=-1)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = PIL.Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = PIL.Image.alpha_composite(white, rgba)
    return np.asarray(image.convert("RGB")).copy()


def as_image_tensor(image: Any) -> Tensor:
    """What torchvision's presets accept, as a (..., 3, H, W) tensor: a PIL image (any mode: grayscale,
    palette, RGBA, 16-bit are converted to RGB) or a uint8 / [0, 1] float tensor (a 1-channel one is
    repeated to 3); PIL images as :func:`pil_to_rgb` decodes them. Anything else is a TypeError naming what it
    got."""
    if isinstance(image, PIL.Image.Image):
        return torch.from_numpy(pil_to_rgb(image)).permute(2, 0, 1).contiguous()
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


def keep_ratio_size(height: int, width: int, scale: Sequence[int]) -> tuple[int, int]:
    """The (H, W) mmcv's keep-ratio resize gives an image of (``height``, ``width``) for ``scale`` (long, short):
    ``s = min(max(scale) / max(h, w), min(scale) / min(h, w))``, new size ``int(h * s + 0.5), int(w * s + 0.5)``."""
    if len(scale) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in scale):
        raise ValueError(f"scale must be two positive ints (long side, short side), got {scale!r}")
    if height < 1 or width < 1:
        raise ValueError(f"image size must be positive, got {height}x{width}")
    factor = min(max(scale) / max(height, width), min(scale) / min(height, width))
    return int(height * factor + 0.5), int(width * factor + 0.5)


class KeepRatioPreprocess:
    """Inference preprocessing of mmsegmentation-trained segmenters: keep-ratio resize to ``scale`` (long side,
    short side; mmcv's rule, :func:`keep_ratio_size`), bilinear without antialiasing as mmcv, [0, 1], normalize
    (mmsegmentation's mean/std on 0..255 are ImageNet's on [0, 1]). Takes what torchvision's presets take (a
    PIL image, a (3, H, W) uint8 or [0, 1] float tensor); the ``transforms`` of the official PSPNet entries."""

    def __init__(self, scale: Sequence[int]):
        self.scale = tuple(int(v) for v in scale)
        keep_ratio_size(1, 1, self.scale)  # validates

    def __call__(self, image: Any) -> Tensor:
        image = as_image_tensor(image)
        if image.dim() != 3 or image.shape[0] != 3:
            raise ValueError(f"image must be (3, H, W), got shape {tuple(image.shape)}")
        size = keep_ratio_size(image.shape[-2], image.shape[-1], self.scale)
        image = image.float() / 255 if image.dtype == torch.uint8 else image.float()
        if list(image.shape[-2:]) != list(size):
            image = F.interpolate(image[None], size=size, mode="bilinear", align_corners=False)[0]
        return normalize(image[None])[0]

    def __repr__(self) -> str:
        return f"KeepRatioPreprocess(scale={self.scale})"


class DetectionPreprocess:
    """Inference preprocessing of the detector: an image (a PIL image, a (3, H, W) uint8 or [0, 1] float
    tensor) as float [0, 1] (the model resizes and normalizes itself). The ``transforms`` of the
    detector's weights entries."""

    def __call__(self, image: Any) -> Tensor:
        image = as_image_tensor(image)
        return image.float() / 255 if image.dtype == torch.uint8 else image.float()

    def __repr__(self) -> str:
        return "DetectionPreprocess()"


class WarpCropPreprocess(torch.nn.Module):
    """ImageNet-style evaluation preprocessing with a warp: resize to ``resize_size`` (H, W) ignoring the aspect
    ratio, center crop ``crop_size``, scale to [0, 1], normalize with ``mean`` / ``std``.

    This is MindSpore's SPP-net evaluation (``Resize((256, 256))``, ``CenterCrop(224)``, ImageNet mean/std),
    whose resize is OpenCV's bilinear on uint8 pixels without antialiasing: hence ``antialias=False``, and a
    uint8 image stays uint8 through the resize (rounded, as OpenCV stores it) and is scaled only after the
    crop. Like torchvision's presets it takes a ``PIL.Image`` (converted to a uint8 tensor first, so a PIL
    image and its tensor give the same values), a (C, H, W) or a batched (N, C, H, W) uint8 or [0, 1] float
    tensor (:func:`as_image_tensor`), and returns float (3, crop, crop) or (N, 3, crop, crop).
    """

    def __init__(
        self,
        *,
        crop_size: int = 224,
        resize_size: Sequence[int] = (256, 256),
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        antialias: bool = False,
    ):
        super().__init__()
        if isinstance(crop_size, bool) or not isinstance(crop_size, int) or crop_size < 1:
            raise ValueError(f"crop_size must be a positive int, got {crop_size!r}")
        if len(resize_size) != 2 or any(int(r) < crop_size for r in resize_size):
            raise ValueError(f"resize_size must be (H, W), each at least crop_size={crop_size}, got {resize_size!r}")
        self.crop_size = [crop_size, crop_size]
        self.resize_size = [int(r) for r in resize_size]
        self.mean, self.std = list(mean), list(std)
        self.antialias = bool(antialias)

    def forward(self, image) -> Tensor:
        image = as_image_tensor(image)
        image = image.as_subclass(Tensor)  # a tv_tensors.Image too
        image = TF.resize(image, self.resize_size, InterpolationMode.BILINEAR, antialias=self.antialias)
        image = TF.center_crop(image, self.crop_size)
        image = TF.convert_image_dtype(image, torch.float)
        return TF.normalize(image, self.mean, self.std)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(crop_size={self.crop_size}, resize_size={self.resize_size}, mean={self.mean}, "
            f"std={self.std}, interpolation=bilinear, antialias={self.antialias})"
        )

    def describe(self) -> str:
        return (
            "Accepts ``PIL.Image``, batched ``(B, C, H, W)`` and single ``(C, H, W)`` image ``torch.Tensor`` objects. "
            f"The images are resized (warped) to ``resize_size={self.resize_size}`` (bilinear, "
            f"antialias={self.antialias}), followed by a central crop of ``crop_size={self.crop_size}``. Finally the "
            f"values are rescaled to ``[0.0, 1.0]`` and normalized using ``mean={self.mean}`` and ``std={self.std}``."
        )


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
