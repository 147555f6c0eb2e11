"""What training, evaluation and prediction need to know per task: data, preprocessing, loss and metrics.

Three tasks cover the zoo's families: ``"classification"`` (:class:`~zoo.sppnet.SPPNet`),
``"detection"`` (:class:`~zoo.detection.SPPNetDetector`) and ``"segmentation"``
(:class:`~zoo.pspnet.PSPNet`, :class:`~zoo.deconvnet.DeconvNet`). Data comes from :mod:`zoo.datasets`
(``data="scenes"``: the composited Fashion-MNIST scenes; ``data="trees"``: deepforest's aerial trees,
detection only).

Preprocessing is deterministic: images are resized to a fixed square ``image_size`` (classifiers and
segmenters; the detector resizes itself), scaled to [0, 1] and normalized with
:data:`zoo.transforms.MEAN` / :data:`zoo.transforms.STD`. The only training augmentation, a horizontal
flip, is drawn from a generator seeded by ``(seed, epoch, index)``, so a sample's augmentation does not
depend on the number of processes, the data loader workers or what ran before (resume and
data-parallel runs see exactly the same samples).

Metrics are torchmetrics': top-1/top-5 accuracy (``MulticlassAccuracy``), mIoU
(``MulticlassJaccardIndex``, macro), mean accuracy (``MulticlassAccuracy``, macro) and pixel accuracy
(``MulticlassAccuracy``, micro) over the pixels at each image's original size, and COCO mAP@[.5:.95] and
mAP@.5 (``MeanAveragePrecision``, pycocotools backend). Values are reported in percent, rounded to 2
decimals.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

TASKS = ("classification", "detection", "segmentation")
DATASETS = ("scenes", "trees")
#: Task names of the Hub model card / config.json.
HUB_TASKS = {
    "classification": "image-classification",
    "detection": "object-detection",
    "segmentation": "image-segmentation",
}
METRIC_DIGITS = 2


def task_of(model: nn.Module) -> str:
    """The task of a zoo model, from its class."""
    from .deconvnet import DeconvNet
    from .detection import SPPNetDetector
    from .pspnet import PSPNet
    from .sppnet import SPPNet

    model = getattr(model, "module", model)  # DistributedDataParallel
    if isinstance(model, SPPNet):
        return "classification"
    if isinstance(model, SPPNetDetector):
        return "detection"
    if isinstance(model, (PSPNet, DeconvNet)):
        return "segmentation"
    raise TypeError(f"no task is known for a {type(model).__name__}; expected a zoo SPP-net, detector or segmenter")


def task_of_builder(name: str) -> str:
    """The task of a registered model name (without building the full-size model)."""
    if name.startswith("sppnet_"):
        return "classification"
    if name.startswith("spp_detector_"):
        return "detection"
    if name.startswith(("pspnet_", "deconvnet_")):
        return "segmentation"
    raise ValueError(f"no task is known for the model {name!r}")


def categories(task: str, data: str) -> list[str]:
    """Class names, index = label, as the model of ``task`` trained on ``data`` predicts them."""
    from . import datasets

    if data == "trees":
        if task != "detection":
            raise ValueError(f"data='trees' serves detection only, not {task}")
        return list(datasets.TreeDetection.CLASSES)
    if data != "scenes":
        raise ValueError(f"data must be one of {DATASETS}, got {data!r}")
    if task == "classification":
        return list(datasets.CLASSES[1:])  # labels 0..9, no background
    return list(datasets.CLASSES)


def build_dataset(task: str, data: str, split: str, size: int | None = None):
    """The raw dataset (uint8 images, untransformed targets) of ``task`` on ``data``, split ``split``."""
    from . import datasets

    categories(task, data)  # validates the pair
    if split not in ("train", "val", "test"):
        raise ValueError(f"split must be 'train', 'val' or 'test', got {split!r}")
    if data == "trees":
        return datasets.TreeDetection(split)
    cls = {
        "classification": datasets.SceneClassification,
        "detection": datasets.SceneDetection,
        "segmentation": datasets.SceneSegmentation,
    }[task]
    return cls(split, size=size)


# ------------------------------------------------------------------------------------------ preprocessing
def normalize(images: Tensor) -> Tensor:
    """uint8 (or [0, 1] float) (N, 3, H, W) -> float normalized with zoo.transforms' MEAN/STD."""
    from .transforms import MEAN, STD

    if images.dtype == torch.uint8:
        images = images.float().div_(255)
    mean = torch.tensor(MEAN, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(STD, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    return (images - mean) / std


def resize_image(image: Tensor, size: int | Sequence[int]) -> Tensor:
    """A (3, H, W) uint8/float image as float [0, 1] of size ``size`` (bilinear, antialiased)."""
    hw = [size, size] if isinstance(size, int) else list(size)
    image = image.float() / 255 if image.dtype == torch.uint8 else image.float()
    if list(image.shape[-2:]) == hw:
        return image
    return F.interpolate(image[None], size=hw, mode="bilinear", antialias=True, align_corners=False)[0].clamp_(0, 1)


def resize_mask(mask: Tensor, size: int | Sequence[int]) -> Tensor:
    hw = [size, size] if isinstance(size, int) else list(size)
    if list(mask.shape[-2:]) == hw:
        return mask.long()
    return F.interpolate(mask[None, None].float(), size=hw, mode="nearest")[0, 0].long()


class ImagePreprocess:
    """Inference preprocessing of the classifiers and segmenters: resize to ``size`` x ``size``, [0, 1],
    normalize. ``__call__`` takes a (3, H, W) uint8 or [0, 1] float image, or a batch (N, 3, H, W).
    This is the ``transforms`` of their weights entries."""

    def __init__(self, size: int):
        self.size = int(size)

    def __call__(self, image: Tensor) -> Tensor:
        if image.dim() == 4:
            return torch.stack([self(i) for i in image])
        return normalize(resize_image(image, self.size)[None])[0]

    def __repr__(self) -> str:
        return f"ImagePreprocess(size={self.size})"


class DetectionPreprocess:
    """Inference preprocessing of the detector: a (3, H, W) uint8 image as float [0, 1] (the model
    resizes and normalizes itself). The ``transforms`` of the detector's weights entries."""

    def __call__(self, image: Tensor) -> Tensor:
        return image.float() / 255 if image.dtype == torch.uint8 else image.float()

    def __repr__(self) -> str:
        return "DetectionPreprocess()"


def _flip_generator(seed: int, epoch: int, index: int) -> torch.Generator:
    return torch.Generator().manual_seed((seed * 1_000_003 + epoch * 10_007 + index) % (2**63))


class TrainSamples(torch.utils.data.Dataset):
    """A raw dataset with the deterministic flip augmentation of epoch :meth:`set_epoch` (see module doc).

    Items are (image uint8 (3, H, W), target) with the target flipped along: a label, a mask, or a
    detection target dict."""

    def __init__(self, dataset, task: str, seed: int, augment: bool = True):
        self.dataset, self.task, self.seed, self.augment = dataset, task, int(seed), augment
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        image, target = self.dataset[index]
        image = torch.as_tensor(image)
        flip = self.augment and bool(torch.rand((), generator=_flip_generator(self.seed, self.epoch, index)) < 0.5)
        if not flip:
            return image, target
        image = image.flip(-1)
        if self.task == "segmentation":
            target = torch.as_tensor(target).flip(-1)
        elif self.task == "detection":
            width = image.shape[-1]
            boxes = torch.as_tensor(target["boxes"]).clone()
            boxes[:, [0, 2]] = width - boxes[:, [2, 0]]
            target = {"boxes": boxes, "labels": target["labels"]}
        return image, target


def prepare_batch(task: str, images: list[Tensor], targets: list[Any], image_size: int | None, device: torch.device):
    """Model inputs and loss targets of a batch of raw items (``image_size``: the batch's square size)."""
    if task == "classification":
        x = normalize(torch.stack([resize_image(i, image_size) for i in images]))
        y = torch.as_tensor([int(t) for t in targets], dtype=torch.int64)
        return x.to(device), y.to(device)
    if task == "segmentation":
        x = normalize(torch.stack([resize_image(i, image_size) for i in images]))
        y = torch.stack([resize_mask(torch.as_tensor(t), image_size) for t in targets])
        return x.to(device), y.to(device)
    x = [resize_image(i, i.shape[-2:]).to(device) for i in images]
    y = [
        {"boxes": torch.as_tensor(t["boxes"]).float().to(device), "labels": torch.as_tensor(t["labels"]).to(device)}
        for t in targets
    ]
    return x, y


def compute_loss(task: str, model: nn.Module, x, y) -> Tensor:
    """The training loss of one batch (the model in training mode)."""
    if task == "classification":
        return F.cross_entropy(model(x), y)
    if task == "segmentation":
        out = model(x)
        if isinstance(out, dict):
            from .pspnet import pspnet_loss

            return pspnet_loss(out, y)
        return F.cross_entropy(out, y)
    losses = model(x, y)
    return sum(losses.values())


# ------------------------------------------------------------------------------------------------ metrics
class TaskMetrics:
    """torchmetrics objects of a task; :meth:`update` with raw items and model outputs, :meth:`compute`
    returns ``{name: percent rounded to 2 decimals}``."""

    def __init__(self, task: str, num_classes: int):
        from torchmetrics.classification import MulticlassAccuracy, MulticlassJaccardIndex

        self.task = task
        if task == "classification":
            self.metrics = {
                "acc@1": MulticlassAccuracy(num_classes, top_k=1, average="micro"),
                "acc@5": MulticlassAccuracy(num_classes, top_k=min(5, num_classes), average="micro"),
            }
        elif task == "segmentation":
            self.metrics = {
                "mIoU": MulticlassJaccardIndex(num_classes, average="macro"),
                "mAcc": MulticlassAccuracy(num_classes, average="macro"),
                "aAcc": MulticlassAccuracy(num_classes, average="micro"),
            }
        else:
            from torchmetrics.detection import MeanAveragePrecision

            self.metrics = {"mAP": MeanAveragePrecision(box_format="xyxy", iou_type="bbox", backend="pycocotools")}

    def update(self, outputs, targets: list[Any]) -> None:
        if self.task == "classification":
            labels = torch.as_tensor([int(t) for t in targets])
            for metric in self.metrics.values():
                metric.update(outputs.float().cpu(), labels)
        elif self.task == "segmentation":
            for logits, mask in zip(outputs, targets, strict=True):
                mask = torch.as_tensor(mask).long()
                pred = F.interpolate(logits[None].float().cpu(), size=mask.shape[-2:], mode="bilinear")[0].argmax(0)
                for metric in self.metrics.values():
                    metric.update(pred[None], mask[None])
        else:
            preds = [{k: v.detach().float().cpu() if k != "labels" else v.cpu() for k, v in o.items()} for o in outputs]
            gts = [
                {"boxes": torch.as_tensor(t["boxes"]).float(), "labels": torch.as_tensor(t["labels"]).long()}
                for t in targets
            ]
            self.metrics["mAP"].update(preds, gts)

    def compute(self) -> dict[str, float]:
        if self.task == "detection":
            result = self.metrics["mAP"].compute()
            values = {"mAP": float(result["map"]), "mAP@0.5": float(result["map_50"])}
        else:
            values = {name: float(metric.compute()) for name, metric in self.metrics.items()}
        return {name: round(100 * value, METRIC_DIGITS) for name, value in values.items()}


@torch.no_grad()
def predict_batch(task: str, model: nn.Module, images: list[Tensor], image_size: int | None, device: torch.device):
    """Eval-mode outputs of a batch of raw images: class logits (N, K), a list of per-image segmentation
    logits (K, S, S), or the detector's list of ``{"boxes", "labels", "scores"}`` in original pixels."""
    if task == "detection":
        return model([resize_image(i, i.shape[-2:]).to(device) for i in images])
    x = normalize(torch.stack([resize_image(i, image_size) for i in images])).to(device)
    out = model(x)
    if isinstance(out, dict):
        out = out["out"]
    return out if task == "classification" else list(out)


# ------------------------------------------------------------------------------------ weights entries
#: Class names of the scene data (index = label; the classifiers predict ``SCENE_CLASSES[1:]``). Equal to
#: :data:`zoo.datasets.CLASSES`, written out so that the model modules need not import the data code.
SCENE_CLASSES = ("background", "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                 "Bag", "Ankle boot")  # fmt: skip
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
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
    """``meta`` of a weights entry trained by ``python -m zoo train`` on the scenes data (schema: :mod:`zoo._api`)."""
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
        "source": "trained from scratch by spp-zoo (python -m zoo train) on zoo.datasets' scenes",
        "_docs": f"Trained on the CPU ({time_s / 60:.0f} min, 2 cores) by `{command}`. Test-split metrics, "
        "reproduced by `python -m zoo eval`.",
        **extra,
    }
    if input_size is not None:
        meta["input_size"] = input_size
    return meta
