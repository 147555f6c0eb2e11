"""The segmentation test protocols of mmsegmentation and hszhao/semseg, as pure functions of a model callable
and tensors (no data loading, no model building: :mod:`zoo.engine.evaluate` drives them).

A *model* here is any callable taking a normalized float batch (N, 3, h, w) and returning logits (N, K, h', w')
or a dict with them under ``"out"`` (a zoo segmenter in eval mode). Images are uint8 (or 0..255 float) (3, H, W).

**mmsegmentation** (``--protocol mmseg``, the default; the numbers of mmsegmentation's PSPNet table):

1. keep-ratio resize to the test scale with mmcv's rule: ``s = min(max(scale) / max(h, w), min(scale) / min(h, w))``,
   new size ``int(w * s + 0.5) x int(h * s + 0.5)``, bilinear, rounded to uint8 as cv2 returns it
   (:func:`keep_ratio_size`);
2. normalize with the weights' mean / std (mmseg's ``(x - 123.675) / 58.395``... on RGB 0..255);
3. whole-image inference, or sliding windows (:func:`slide_windows`): ``grid = max(H - crop + stride - 1, 0) //
   stride + 1`` per axis, each window clamped to end at the image border, no padding of crops, logits summed and
   divided by the count of windows covering each pixel (:func:`slide_inference`);
4. logits resized back to the original image size, bilinear with the model's ``align_corners``; prediction =
   argmax. Test-time augmentation (``flip``: plus the horizontally flipped image; ``ms-flip``: test scale times
   0.5, 0.75, 1.0, 1.25, 1.5, 1.75, each plain and flipped, as mmsegmentation 0.x's ``MultiScaleFlipAug``, which
   measured the published "ms" numbers) averages the softmax probabilities of all views;
5. metrics from the confusion matrix summed over the split, ignore index 255: per-class IoU = intersection / union,
   Acc = intersection / ground truth; mIoU and mAcc = mean over classes with nonzero denominator (mmseg's nanmean),
   aAcc = all correct / all labelled (:func:`segmentation_scores`).

**hszhao/semseg** (``--protocol semseg``, its ``tool/test.py``): long side ``round(scale * base_size)`` (other side
``round``-ed in proportion; bilinear, float), padded centered with the mean to at least the crop (473 for ADE20K /
VOC, 713 for Cityscapes), windows of stride ``ceil(crop * 2 / 3)``, ``grid = ceil((new - crop) / stride) + 1``,
clamped to the border; each crop and its mirror through the model, logits resized to the crop with
``align_corners=True``, softmax, the two averaged; windows averaged, padding removed, probabilities resized to the
original size (bilinear, cv2's half-pixel convention = ``align_corners=False``) and averaged over scales (1.0; or
0.5..1.75 with ``ms-flip``). Flip is always on. mIoU and mAcc are plain means: a class absent from prediction and
ground truth counts 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ..data.transforms import IGNORE_INDEX
from ..models.presets import IMAGENET_MEAN, IMAGENET_STD, keep_ratio_size

__all__ = [
    "IGNORE_INDEX",
    "TTA_RATIOS",
    "PROTOCOLS",
    "TTA_MODES",
    "TestProtocol",
    "protocol_for",
    "keep_ratio_size",
    "semseg_size",
    "slide_windows",
    "semseg_windows",
    "whole_inference",
    "slide_inference",
    "predict_scores",
    "confusion_matrix",
    "segmentation_scores",
    "ConfusionMatrix",
    "with_tta",
]

#: mmsegmentation's (and semseg's) multi-scale test ratios.
TTA_RATIOS = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)
PROTOCOLS = ("mmseg", "semseg")
TTA_MODES = ("flip", "ms-flip")

#: mmsegmentation's test settings of the datasets' base configs (``configs/_base_/datasets/*.py``): keep-ratio
#: scale, whole-image inference. Entries whose meta records ``test_protocol`` override them (e.g. Cityscapes
#: 769x769: scale (2049, 1025), slide, crop (769, 769), stride (513, 513)).
MMSEG_DATASET_SETTINGS: dict[str, dict[str, Any]] = {
    "ade20k": {"scale": (2048, 512), "mode": "whole"},
    "voc2012": {"scale": (2048, 512), "mode": "whole"},
    "cityscapes": {"scale": (2048, 1024), "mode": "whole"},
}
#: hszhao/semseg's test settings (``config/<data>/*.yaml``): base size and crop.
SEMSEG_DATASET_SETTINGS: dict[str, dict[str, Any]] = {
    "ade20k": {"base_size": 512, "crop": (473, 473)},
    "voc2012": {"base_size": 512, "crop": (473, 473)},
    "cityscapes": {"base_size": 2048, "crop": (713, 713)},
}

Model = Callable[[Tensor], Any]


# ------------------------------------------------------------------------------------------ settings
def _pair(name: str, value: Any) -> tuple[int, int]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value, value)
    if (
        not isinstance(value, (tuple, list))
        or len(value) != 2
        or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in value)
    ):
        raise ValueError(f"{name} must be two positive ints, got {value!r}")
    return int(value[0]), int(value[1])


@dataclass(frozen=True)
class TestProtocol:
    """How a segmenter is tested (see the module doc).

    Args:
        kind: "mmseg" or "semseg".
        mode: "whole" or "slide" (mmseg; semseg always slides).
        scale: mmseg keep-ratio test scale (long, short), any order; None = the images' own size.
        crop, stride: (h, w) sliding-window crop and stride (mmseg slide; semseg crop, stride default
            ``ceil(crop * 2 / 3)``).
        base_size: semseg's long side at scale 1.0.
        align_corners: the model's bilinear convention (mmseg resizes logits back with it; semseg uses True inside).
        ratios: test scales relative to ``scale`` / ``base_size`` (several = multi-scale test).
        flip: also the horizontally mirrored image (probabilities averaged).
        mean, std: normalization of [0, 1] RGB (applied as ``(x - 255 mean) / (255 std)`` to 0..255 pixels).
    """

    kind: str = "mmseg"
    mode: str = "whole"
    scale: tuple[int, int] | None = None
    crop: tuple[int, int] | None = None
    stride: tuple[int, int] | None = None
    base_size: int | None = None
    align_corners: bool = False
    ratios: tuple[float, ...] = (1.0,)
    flip: bool = False
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    ignore_index: int = IGNORE_INDEX

    def __post_init__(self) -> None:
        if self.kind not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}, got {self.kind!r}")
        if self.mode not in ("whole", "slide"):
            raise ValueError(f"mode must be 'whole' or 'slide', got {self.mode!r}")
        if self.scale is not None:
            object.__setattr__(self, "scale", _pair("scale", self.scale))
        for name in ("crop", "stride"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, _pair(name, getattr(self, name)))
        if self.kind == "mmseg" and self.mode == "slide" and (self.crop is None or self.stride is None):
            raise ValueError("mode 'slide' needs crop and stride")
        if self.kind == "semseg":
            if self.crop is None or self.base_size is None:
                raise ValueError("the semseg protocol needs crop and base_size")
            if self.stride is None:
                stride = tuple(int(math.ceil(c * 2 / 3)) for c in self.crop)
                object.__setattr__(self, "stride", stride)
        if not self.ratios or any(not r > 0 for r in self.ratios):
            raise ValueError(f"ratios must be positive, got {self.ratios!r}")
        object.__setattr__(self, "ratios", tuple(float(r) for r in self.ratios))
        if not isinstance(self.align_corners, bool):
            raise TypeError(f"align_corners must be a bool, got {type(self.align_corners).__name__}")

    @property
    def average(self) -> str:
        """How mIoU / mAcc average classes: "nanmean" (mmseg) or "mean" (semseg)."""
        return "nanmean" if self.kind == "mmseg" else "mean"

    def describe(self) -> dict[str, Any]:
        """JSON-able summary (for ``--json`` output and logs)."""
        keys = ("kind", "mode", "scale", "crop", "stride", "base_size", "align_corners", "ratios", "flip")
        out = {k: getattr(self, k) for k in keys}
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items() if v is not None}


def protocol_for(
    meta: Mapping[str, Any],
    data: str,
    *,
    kind: str = "mmseg",
    tta: str | None = None,
    align_corners: bool | None = None,
) -> TestProtocol:
    """The test protocol of a weights entry on ``data``.

    mmseg: ``meta["test_protocol"]`` (``{"scale": [2048, 512], "mode": "whole" | "slide", "crop_size": [h, w],
    "stride": [h, w]}``, see :data:`TEST_PROTOCOL_KEYS`) when the entry records one, else mmsegmentation's base
    config of ``data`` (:data:`MMSEG_DATASET_SETTINGS`), else the images' own size, whole.
    semseg: :data:`SEMSEG_DATASET_SETTINGS`.
    ``align_corners``: the model's (default ``meta["align_corners"]``, else False); ``mean`` / ``std`` from the meta.
    ``tta``: None, "flip" or "ms-flip".
    """
    if kind not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}, got {kind!r}")
    if tta is not None and tta not in TTA_MODES:
        raise ValueError(f"tta must be one of {', '.join(TTA_MODES)} or None, got {tta!r}")
    if align_corners is None:
        align_corners = bool(meta.get("align_corners", False))
    common: dict[str, Any] = {
        "align_corners": align_corners,
        "mean": tuple(float(v) for v in meta.get("mean", IMAGENET_MEAN)),
        "std": tuple(float(v) for v in meta.get("std", IMAGENET_STD)),
    }
    if kind == "semseg":
        if data not in SEMSEG_DATASET_SETTINGS:
            known = ", ".join(SEMSEG_DATASET_SETTINGS)
            raise ValueError(f"the semseg protocol is defined for {known}, not for {data!r}")
        return with_tta(TestProtocol(kind="semseg", mode="slide", **SEMSEG_DATASET_SETTINGS[data], **common), tta)
    recorded = meta.get("test_protocol")
    if recorded is not None:
        settings = _recorded_settings(recorded)
    else:
        settings = dict(MMSEG_DATASET_SETTINGS.get(data, {"scale": None, "mode": "whole"}))
    return with_tta(TestProtocol(kind="mmseg", **settings, **common), tta)


#: Keys of ``meta["test_protocol"]``: the official-weights entries write ``crop_size`` (mmsegmentation's name),
#: ``keep_ratio`` (always True), ``reduce_zero_label`` (the dataset reader applies it) and ``ignore_index``.
TEST_PROTOCOL_KEYS = ("scale", "mode", "crop", "crop_size", "stride", "keep_ratio", "reduce_zero_label", "ignore_index")


def _recorded_settings(recorded: Any) -> dict[str, Any]:
    if not isinstance(recorded, Mapping):
        raise ValueError(f"meta['test_protocol'] must be a mapping, got {type(recorded).__name__}")
    unknown = set(recorded) - set(TEST_PROTOCOL_KEYS)
    if unknown:
        raise ValueError(f"meta['test_protocol'] has unknown keys {sorted(unknown)}")
    if recorded.get("keep_ratio", True) is not True:
        raise ValueError("meta['test_protocol']: only keep_ratio=True (mmcv's keep-ratio resize) is supported")
    settings = {k: recorded[k] for k in ("scale", "mode", "stride") if recorded.get(k) is not None}
    crop = recorded.get("crop", recorded.get("crop_size"))
    if crop is not None:
        settings["crop"] = crop
    if "ignore_index" in recorded:
        settings["ignore_index"] = int(recorded["ignore_index"])
    return settings


# -------------------------------------------------------------------------------------------- geometry
def semseg_size(height: int, width: int, long_side: int) -> tuple[int, int]:
    """semseg's test size: the long side becomes ``long_side``, the other ``round``-ed in proportion."""
    if height > width:
        return long_side, round(long_side / float(height) * width)
    return round(long_side / float(width) * height), long_side


def slide_windows(
    height: int, width: int, crop: Sequence[int], stride: Sequence[int]
) -> list[tuple[int, int, int, int]]:
    """mmsegmentation's sliding windows ``(y1, y2, x1, x2)``, row by row: ``grid = max(H - crop + stride - 1, 0)
    // stride + 1`` per axis, each window clamped to end inside the image (never padded; smaller than the crop
    only when the image is)."""
    (h_crop, w_crop), (h_stride, w_stride) = crop, stride
    h_grids = max(height - h_crop + h_stride - 1, 0) // h_stride + 1
    w_grids = max(width - w_crop + w_stride - 1, 0) // w_stride + 1
    windows = []
    for h_idx in range(h_grids):
        for w_idx in range(w_grids):
            y2 = min(h_idx * h_stride + h_crop, height)
            x2 = min(w_idx * w_stride + w_crop, width)
            windows.append((max(y2 - h_crop, 0), y2, max(x2 - w_crop, 0), x2))
    return windows


def semseg_windows(
    height: int, width: int, crop: Sequence[int], stride: Sequence[int]
) -> list[tuple[int, int, int, int]]:
    """semseg's windows ``(y1, y2, x1, x2)`` over an image already padded to at least the crop: ``grid =
    ceil((new - crop) / stride) + 1``, each window clamped to end at the border."""
    (h_crop, w_crop), (h_stride, w_stride) = crop, stride
    if height < h_crop or width < w_crop:
        raise ValueError(f"semseg windows need an image padded to the crop {tuple(crop)}, got {height}x{width}")
    h_grids = int(math.ceil((height - h_crop) / h_stride)) + 1
    w_grids = int(math.ceil((width - w_crop) / w_stride)) + 1
    windows = []
    for h_idx in range(h_grids):
        for w_idx in range(w_grids):
            y2 = min(h_idx * h_stride + h_crop, height)
            x2 = min(w_idx * w_stride + w_crop, width)
            windows.append((y2 - h_crop, y2, x2 - w_crop, x2))
    return windows


def _resize(x: Tensor, size: Sequence[int], align_corners: bool) -> Tensor:
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=align_corners)


def _resize_pixels(image: Tensor, size: Sequence[int], *, to_uint8: bool) -> Tensor:
    """A 0..255 (3, H, W) image bilinearly resized (cv2's INTER_LINEAR: half-pixel, no antialias) as float."""
    out = _resize(image[None].float(), size, align_corners=False)[0]
    return out.round_().clamp_(0, 255) if to_uint8 and tuple(size) != tuple(image.shape[-2:]) else out


def _normalize(images: Tensor, protocol: TestProtocol) -> Tensor:
    mean = torch.tensor(protocol.mean, dtype=torch.float32, device=images.device).view(-1, 3, 1, 1) * 255
    std = torch.tensor(protocol.std, dtype=torch.float32, device=images.device).view(-1, 3, 1, 1) * 255
    return (images.float() - mean) / std


# ------------------------------------------------------------------------------------------- inference
def _logits(model: Model, x: Tensor, align_corners: bool) -> Tensor:
    out = model(x)
    if isinstance(out, Mapping):
        out = out["out"]
    if not isinstance(out, Tensor) or out.dim() != 4 or out.shape[0] != x.shape[0]:
        raise TypeError(f"the model must return logits (N, K, h, w) for a batch of {x.shape[0]}, got {out!r:.80}")
    return _resize(out.float(), x.shape[-2:], align_corners)


def _chunks(model: Model, crops: list[Tensor], batch_size: int, align_corners: bool) -> Iterator[Tensor]:
    """Logits of equally sized crops (3, h, w), ``batch_size`` per forward pass, in order. A crop given as
    ``(crop, True)`` goes through mirrored (its logits are those of the mirror, not flipped back)."""
    for start in range(0, len(crops), batch_size):
        batch = [c[0].flip(-1) if isinstance(c, tuple) else c for c in crops[start : start + batch_size]]
        yield from _logits(model, torch.stack(batch), align_corners)


def whole_inference(model: Model, images: Tensor, *, align_corners: bool = False) -> Tensor:
    """Logits (N, K, H, W) of normalized images (N, 3, H, W) in one pass (resized to the input size if the model
    returns another size)."""
    return _logits(model, images, align_corners)


def slide_inference(
    model: Model,
    images: Tensor,
    *,
    crop: Sequence[int],
    stride: Sequence[int],
    align_corners: bool = False,
    batch_size: int = 8,
) -> Tensor:
    """mmsegmentation's sliding-window logits (N, K, H, W) of normalized images (N, 3, H, W): windows of
    :func:`slide_windows`, ``batch_size`` crops per forward pass, logits summed and divided by the count map."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    count, height, width = images.shape[0], images.shape[-2], images.shape[-1]
    windows = slide_windows(height, width, _pair("crop", crop), _pair("stride", stride))
    crops = [images[n, :, y1:y2, x1:x2] for (y1, y2, x1, x2) in windows for n in range(count)]
    total: Tensor | None = None
    hits = images.new_zeros((1, 1, height, width), dtype=torch.float32)
    for k, logits in enumerate(_chunks(model, crops, batch_size, align_corners)):
        y1, y2, x1, x2 = windows[k // count]
        if total is None:
            total = logits.new_zeros((count, logits.shape[0], height, width))
        total[k % count, :, y1:y2, x1:x2] += logits
        if k % count == 0:
            hits[..., y1:y2, x1:x2] += 1
    return total / hits


def _mmseg_scores(model: Model, images: list[Tensor], protocol: TestProtocol, batch_size: int) -> list[Tensor]:
    views = [(ratio, flip) for ratio in protocol.ratios for flip in ((False, True) if protocol.flip else (False,))]
    scores: list[Tensor | None] = [None] * len(images)
    for ratio, flip in views:
        if protocol.scale is None:
            sizes = [tuple(int(round(s * ratio)) for s in image.shape[-2:]) for image in images]
        else:
            scale = (int(protocol.scale[0] * ratio), int(protocol.scale[1] * ratio))  # mmseg 0.x MultiScaleFlipAug
            sizes = [keep_ratio_size(image.shape[-2], image.shape[-1], scale) for image in images]
        groups: dict[tuple[int, int], list[int]] = {}
        for index, size in enumerate(sizes):
            groups.setdefault(size, []).append(index)
        for size, members in groups.items():
            for start in range(0, len(members), batch_size):
                chunk = members[start : start + batch_size]
                x = torch.stack([_resize_pixels(images[i], size, to_uint8=True) for i in chunk])
                x = _normalize(x, protocol)
                if flip:
                    x = x.flip(-1)
                if protocol.mode == "slide":
                    logits = slide_inference(
                        model, x, crop=protocol.crop, stride=protocol.stride,
                        align_corners=protocol.align_corners, batch_size=batch_size,
                    )  # fmt: skip
                else:
                    logits = whole_inference(model, x, align_corners=protocol.align_corners)
                if flip:
                    logits = logits.flip(-1)
                for i, view in zip(chunk, logits, strict=True):
                    view = _resize(view[None], images[i].shape[-2:], protocol.align_corners)[0]
                    if len(views) > 1:
                        view = view.softmax(0) / len(views)
                    scores[i] = view if scores[i] is None else scores[i] + view
    return scores  # type: ignore[return-value]


def _semseg_scores(model: Model, images: list[Tensor], protocol: TestProtocol, batch_size: int) -> list[Tensor]:
    crop, stride = protocol.crop, protocol.stride
    scores: list[Tensor | None] = [None] * len(images)
    for ratio in protocol.ratios:
        long_side = round(ratio * protocol.base_size)
        # every crop of every image at this scale, each followed by its mirror
        padded, tiles, plan = [], [], []
        for index, image in enumerate(images):
            size = semseg_size(image.shape[-2], image.shape[-1], long_side)
            x = _normalize(_resize_pixels(image, size, to_uint8=False)[None], protocol)[0]
            pad_h, pad_w = max(crop[0] - size[0], 0), max(crop[1] - size[1], 0)
            top, left = pad_h // 2, pad_w // 2
            x = F.pad(x, (left, pad_w - left, top, pad_h - top))  # the mean, normalized, is 0
            windows = semseg_windows(x.shape[-2], x.shape[-1], crop, stride)
            padded.append((x.shape[-2:], top, left, size))
            for window in windows:
                y1, y2, x1, x2 = window
                tiles += [x[:, y1:y2, x1:x2], (x[:, y1:y2, x1:x2], True)]
                plan.append((index, window))
        sums = [None] * len(images)
        hits = [None] * len(images)
        outputs = _chunks(model, tiles, 2 * max(1, batch_size // 2), True)
        for index, (y1, y2, x1, x2) in plan:
            plain, mirrored = next(outputs), next(outputs)
            probs = (plain.softmax(0) + mirrored.softmax(0).flip(-1)) / 2
            if sums[index] is None:
                (height, width), *_ = padded[index]
                sums[index] = probs.new_zeros((probs.shape[0], height, width))
                hits[index] = probs.new_zeros((1, height, width))
            sums[index][:, y1:y2, x1:x2] += probs
            hits[index][:, y1:y2, x1:x2] += 1
        for index, image in enumerate(images):
            _, top, left, (height, width) = padded[index]
            probs = (sums[index] / hits[index])[:, top : top + height, left : left + width]
            probs = _resize(probs[None], image.shape[-2:], align_corners=False)[0] / len(protocol.ratios)
            scores[index] = probs if scores[index] is None else scores[index] + probs
    return scores  # type: ignore[return-value]


@torch.no_grad()
def predict_scores(model: Model, images: Sequence[Tensor], protocol: TestProtocol, *, batch_size: int = 8) -> list:
    """Per-image class scores (K, H, W) at each image's original size under ``protocol``: logits (mmseg, one
    view) or averaged probabilities (mmseg with TTA, semseg). ``images``: uint8 or 0..255 float (3, H, W), on the
    model's device; images of equal resized size share forward passes (``batch_size`` images or crops per pass)."""
    images = list(images)
    for image in images:
        if not isinstance(image, Tensor) or image.dim() != 3 or image.shape[0] != 3:
            raise ValueError(f"images must be (3, H, W) tensors, got {getattr(image, 'shape', type(image))}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if not images:
        return []
    run = _semseg_scores if protocol.kind == "semseg" else _mmseg_scores
    return run(model, images, protocol, batch_size)


# --------------------------------------------------------------------------------------------- metrics
def confusion_matrix(pred: Tensor, target: Tensor, num_classes: int, ignore_index: int = IGNORE_INDEX) -> Tensor:
    """int64 (K, K) counts, row = ground-truth class, column = predicted class, over the pixels whose target is not
    ``ignore_index``. Target values outside ``0..K-1`` (other than the ignore index) are a ValueError."""
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} must have the same shape")
    target = target.long()
    valid = target != ignore_index
    t, p = target[valid], pred.long()[valid]
    if t.numel() and (int(t.min()) < 0 or int(t.max()) >= num_classes):
        raise ValueError(
            f"target values must be in 0..{num_classes - 1} or {ignore_index}, got {t.unique().tolist()[:8]}"
        )
    if p.numel() and (int(p.min()) < 0 or int(p.max()) >= num_classes):
        raise ValueError(f"pred values must be in 0..{num_classes - 1}")
    return torch.bincount(t * num_classes + p, minlength=num_classes * num_classes).view(num_classes, num_classes)


def _percent(value: float) -> float | None:
    return None if math.isnan(value) else round(100 * value, 2)


def segmentation_scores(
    confusion: Tensor, *, average: str = "nanmean", class_names: Sequence[str] | None = None
) -> dict[str, Any]:
    """mIoU, mAcc, aAcc (percent, 2 decimals) and the per-class IoU / Acc table of a split's summed confusion matrix.

    ``average="nanmean"`` (mmsegmentation): classes with zero union (IoU) or no ground truth (Acc) are skipped;
    ``"mean"`` (semseg): they count 0. Per-class values of skipped classes are None.
    """
    if average not in ("nanmean", "mean"):
        raise ValueError(f"average must be 'nanmean' or 'mean', got {average!r}")
    confusion = confusion.double().cpu()
    num_classes = confusion.shape[0]
    names = list(class_names) if class_names is not None else [str(k) for k in range(num_classes)]
    if len(names) != num_classes:
        raise ValueError(f"class_names has {len(names)} names for {num_classes} classes")
    intersection = confusion.diag()
    truth, predicted = confusion.sum(1), confusion.sum(0)
    union = truth + predicted - intersection
    iou = intersection / union  # nan where union == 0
    acc = intersection / truth
    if average == "nanmean":
        miou, macc = iou.nanmean().item(), acc.nanmean().item()
    else:
        miou, macc = iou.nan_to_num(0.0).mean().item(), acc.nan_to_num(0.0).mean().item()
    aacc = (intersection.sum() / truth.sum()).item() if truth.sum() > 0 else float("nan")
    return {
        "mIoU": _percent(miou),
        "mAcc": _percent(macc),
        "aAcc": _percent(aacc),
        "per_class": {
            name: {"IoU": _percent(iou[k].item()), "Acc": _percent(acc[k].item())} for k, name in enumerate(names)
        },
    }


class ConfusionMatrix:
    """Running confusion matrix of a split: :meth:`update` with predictions and targets, :meth:`compute` the
    scores (:func:`segmentation_scores`)."""

    def __init__(self, num_classes: int, ignore_index: int = IGNORE_INDEX) -> None:
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
        self.num_classes, self.ignore_index = num_classes, ignore_index
        self.matrix = torch.zeros((num_classes, num_classes), dtype=torch.int64)

    def update(self, pred: Tensor, target: Tensor) -> None:
        """Add a prediction (H, W) class indices (or scores (K, H, W), argmax taken) against its target (H, W)."""
        if pred.dim() == target.dim() + 1:
            pred = pred.argmax(0)
        matrix = confusion_matrix(pred, target.to(pred.device), self.num_classes, self.ignore_index)
        self.matrix += matrix.cpu()

    def compute(self, *, average: str = "nanmean", class_names: Sequence[str] | None = None) -> dict[str, Any]:
        return segmentation_scores(self.matrix, average=average, class_names=class_names)


def with_tta(protocol: TestProtocol, tta: str | None) -> TestProtocol:
    """``protocol`` with the test-time augmentation ``tta`` (None, "flip" or "ms-flip")."""
    if tta is not None and tta not in TTA_MODES:
        raise ValueError(f"tta must be one of {', '.join(TTA_MODES)} or None, got {tta!r}")
    ratios = TTA_RATIOS if tta == "ms-flip" else (1.0,)
    return replace(protocol, ratios=ratios, flip=protocol.kind == "semseg" or tta is not None)
