"""What training, evaluation and prediction need to know per task: data, preprocessing, loss and metrics.

Three tasks cover the zoo's families: ``"classification"`` (:class:`~zoo.models.sppnet.SPPNet`),
``"detection"`` (:class:`~zoo.models.detection.SPPNetDetector`) and ``"segmentation"``
(:class:`~zoo.models.pspnet.PSPNet`, :class:`~zoo.models.deconvnet.DeconvNet`); each model class says
which in its ``task`` attribute. Data comes from :mod:`zoo.data` (``data="scenes"``: the composited
Fashion-MNIST scenes; ``data="scene-objects"``: crops of them centred on one object each, segmentation only,
DeconvNet's first training stage; ``data="trees"``: deepforest's aerial trees, detection only).

Preprocessing is the weights entries' (:mod:`zoo.models.presets`): images are resized to a fixed square
``image_size`` (classifiers and segmenters; the detector resizes itself), scaled to [0, 1] and
normalized with the ImageNet mean and standard deviation. The training augmentation, a horizontal flip
(and with ``rotate`` a rotation by a multiple of 90 degrees after it: together the eight symmetries of a
square, for overhead imagery), is drawn from a generator seeded by ``(seed, epoch, index)``, so a sample's
augmentation does not depend on the number of processes, the data loader workers or what ran before
(resume and data-parallel runs see exactly the same samples).

Metrics are torchmetrics': top-1/top-5 accuracy (``MulticlassAccuracy``), mIoU
(``MulticlassJaccardIndex``, macro), mean accuracy (``MulticlassAccuracy``, macro) and pixel accuracy
(``MulticlassAccuracy``, micro) over the pixels at each image's original size, and COCO mAP@[.5:.95] and
mAP@.5 (``MeanAveragePrecision``, pycocotools backend). Values are reported in percent, rounded to 2
decimals.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import data as datasets
from ..data import readers
from ..data.transforms import IGNORE_INDEX
from ..models import registry
from ..models.presets import WarpCropPreprocess, normalize, resize_image
from ..models.pspnet import pspnet_loss

TASKS = ("classification", "detection", "segmentation")
#: The real datasets' readers (:mod:`zoo.data.readers`), read from a ``root`` directory.
REAL_DATASETS = tuple(readers.READERS)
DATASETS = ("scenes", "scene-objects", "trees", *REAL_DATASETS)
METRIC_DIGITS = 2
_DEFAULT_IMAGE_SIZE = {"classification": 64, "segmentation": 128, "detection": None}


def names_a_folder(weights: str) -> bool:
    """Whether a ``--weights`` value names a local folder (written as a path, or an existing directory) rather
    than a weights entry (``"ENTRY"``, ``"Enum.ENTRY"``, ``"DEFAULT"``)."""
    return os.sep in weights or weights.startswith(".") or os.path.isdir(weights)


def default_image_size(task: str) -> int | None:
    """The square training/eval size of a task (None: the detector resizes by its own ``min_size``)."""
    return _DEFAULT_IMAGE_SIZE[task]


def task_of(model: nn.Module) -> str:
    """The task of a zoo model (its class's ``task``)."""
    model = getattr(model, "module", model)  # DistributedDataParallel
    task = getattr(model, "task", None)
    if task not in TASKS:
        raise TypeError(f"no task is known for a {type(model).__name__}; expected a zoo SPP-net, detector or segmenter")
    return task


def task_of_builder(name: str) -> str:
    """The task of a registered model name (without building the model)."""
    return registry.get_model_task(name)


def check_data(task: str, data: str, root: str | os.PathLike | None = None) -> None:
    """ValueError unless ``data`` serves ``task`` (and a real dataset has a ``root``)."""
    if data not in DATASETS:
        raise ValueError(f"unknown data {data!r}; expected one of {', '.join(DATASETS)}")
    if data in REAL_DATASETS:
        served = readers.READERS[data].task
        if served != task:
            raise ValueError(f"data={data!r} is a {served} dataset; the model is a {task} model")
        if root is None:
            raise ValueError(f"data={data!r} needs root, the dataset's directory (--root DIR)")
    elif root is not None:
        raise ValueError(f"root applies to the real datasets ({', '.join(REAL_DATASETS)}), not to data={data!r}")
    elif data == "trees" and task != "detection":
        raise ValueError(f"data='trees' serves detection only, not {task}")
    elif data == "scene-objects" and task != "segmentation":
        raise ValueError(f"data='scene-objects' serves segmentation only, not {task}")


def categories(task: str, data: str, dataset: Any = None) -> list[str]:
    """Class names, index = label, as the model of ``task`` trained on ``data`` predicts them (a real dataset's
    names come from its reader: pass the ``dataset``)."""
    if data in REAL_DATASETS:
        if dataset is None:
            raise ValueError(f"the classes of data={data!r} come from its reader: pass the dataset")
        return list(dataset.classes)
    check_data(task, data)
    if data == "trees":
        return list(datasets.TreeDetection.CLASSES)
    if task == "classification":
        return list(datasets.CLASSES[1:])  # labels 0..9, no background
    return list(datasets.CLASSES)


def build_dataset(task: str, data: str, split: str, size: int | None = None, root: str | os.PathLike | None = None):
    """The raw dataset (uint8 images, untransformed targets) of ``task`` on ``data``, split ``split``; a real
    dataset (:data:`REAL_DATASETS`) is read from ``root``."""
    check_data(task, data, root)
    if data in REAL_DATASETS:
        return readers.open_dataset(data, root, split)
    if split not in ("train", "val", "test"):
        raise ValueError(f"split must be 'train', 'val' or 'test', got {split!r}")
    if data == "trees":
        return datasets.TreeDetection(split)
    if data == "scene-objects":
        return datasets.SceneObjectSegmentation(split, size=size)
    cls = {
        "classification": datasets.SceneClassification,
        "detection": datasets.SceneDetection,
        "segmentation": datasets.SceneSegmentation,
    }[task]
    return cls(split, size=size)


# ------------------------------------------------------------------------------------------ preprocessing
def resize_mask(mask: Tensor, size: int | Sequence[int]) -> Tensor:
    hw = [size, size] if isinstance(size, int) else list(size)
    if list(mask.shape[-2:]) == hw:
        return mask.long()
    return F.interpolate(mask[None, None].float(), size=hw, mode="nearest")[0, 0].long()


def _flip_generator(seed: int, epoch: int, index: int) -> torch.Generator:
    return torch.Generator().manual_seed((seed * 1_000_003 + epoch * 10_007 + index) % (2**63))


class TrainSamples(torch.utils.data.Dataset):
    """A raw dataset with the deterministic augmentation of epoch :meth:`set_epoch` (see module doc): a
    horizontal flip and, with ``rotate``, then ``k`` counter-clockwise quarter turns (k uniform in 0..3).

    Items are (image uint8 (3, H, W), target) with the target transformed along: a label, a mask, or a
    detection target dict."""

    def __init__(self, dataset, task: str, seed: int, augment: bool = True, rotate: bool = False):
        self.dataset, self.task, self.seed, self.augment = dataset, task, int(seed), augment
        self.rotate = bool(rotate) and augment
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        image, target = self.dataset[index]
        image = torch.as_tensor(image)
        if not self.augment:
            return image, target
        generator = _flip_generator(self.seed, self.epoch, index)
        flip = bool(torch.rand((), generator=generator) < 0.5)
        turns = int(torch.randint(4, (), generator=generator)) if self.rotate else 0
        if flip:
            image, target = image.flip(-1), _flip_target(self.task, target, image.shape[-1])
        if turns:
            image, target = _rotate(self.task, image, target, turns)
        return image, target


def _flip_target(task: str, target, width: int):
    if task == "segmentation":
        return torch.as_tensor(target).flip(-1)
    if task != "detection":
        return target
    boxes = torch.as_tensor(target["boxes"]).clone()
    boxes[:, [0, 2]] = width - boxes[:, [2, 0]]
    return _with_boxes(target, boxes)


def _with_boxes(target: dict, boxes: Tensor) -> dict:
    out = {"boxes": boxes, "labels": target["labels"]}  # (instance masks are not trained on)
    if "iscrowd" in target:
        out["iscrowd"] = target["iscrowd"]
    return out


def _rotate(task: str, image: Tensor, target, turns: int):
    """``turns`` counter-clockwise quarter turns of an image (3, H, W) and its target."""
    rotated = torch.rot90(image, turns, dims=(-2, -1))
    if task == "segmentation":
        return rotated, torch.rot90(torch.as_tensor(target), turns, dims=(-2, -1))
    if task != "detection":
        return rotated, target
    boxes = torch.as_tensor(target["boxes"]).clone().float().reshape(-1, 4)
    height, width = image.shape[-2:]
    for _ in range(turns):  # (x, y) -> (y, width - x); the new width is the old height
        x1, y1, x2, y2 = boxes.unbind(-1)
        boxes = torch.stack([y1, width - x2, y2, width - x1], dim=-1)
        height, width = width, height
    return rotated, _with_boxes(target, boxes)


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
    y = []
    for t in targets:
        keep = torch.as_tensor(t.get("iscrowd", torch.zeros(len(t["labels"])))) == 0  # crowds are not trained on
        boxes = torch.as_tensor(t["boxes"]).float().reshape(-1, 4)[keep]
        y.append({"boxes": boxes.to(device), "labels": torch.as_tensor(t["labels"]).long()[keep].to(device)})
    return x, y


def compute_loss(task: str, model: nn.Module, x, y) -> Tensor:
    """The training loss of one batch (the model in training mode)."""
    if task == "classification":
        return F.cross_entropy(model(x), y)
    if task == "segmentation":
        out = model(x)
        if isinstance(out, dict):
            return pspnet_loss(out, y, ignore_index=IGNORE_INDEX)
        return F.cross_entropy(out, y, ignore_index=IGNORE_INDEX)  # unlabelled pixels (ADE20K void, VOC borders)
    losses = model(x, y)
    return sum(losses.values())


# ------------------------------------------------------------------------------------------------ metrics
class TaskMetrics:
    """torchmetrics objects of a task; :meth:`update` with raw items and model outputs, :meth:`compute`
    returns ``{name: percent rounded to 2 decimals}``."""

    def __init__(self, task: str, num_classes: int):
        # torchmetrics is imported when metrics are made: it adds seconds to every `python -m zoo` start
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
            gts = []
            for t in targets:
                gt = {
                    "boxes": torch.as_tensor(t["boxes"]).float().reshape(-1, 4),
                    "labels": torch.as_tensor(t["labels"]).long(),
                }
                if "iscrowd" in t:  # VOC "difficult" and COCO crowds: matched detections are not counted
                    gt["iscrowd"] = torch.as_tensor(t["iscrowd"]).long()
                gts.append(gt)
            self.metrics["mAP"].update(preds, gts)

    def compute(self) -> dict[str, float]:
        if self.task == "detection":
            result = self.metrics["mAP"].compute()
            values = {"mAP": float(result["map"]), "mAP@0.5": float(result["map_50"])}
        else:
            values = {name: float(metric.compute()) for name, metric in self.metrics.items()}
        return {name: round(100 * value, METRIC_DIGITS) for name, value in values.items()}


def entry_preprocess(task: str, meta: dict[str, Any] | None, image_size: int | None) -> WarpCropPreprocess | None:
    """The preprocessing a classifier's weights were evaluated with when it is not a plain square resize: a warp to
    ``meta["resize_size"]`` then a center crop of ``image_size`` (MindSpore's ImageNet SPP-net: 256 -> 224)."""
    if task != "classification" or not meta or not meta.get("resize_size") or not image_size:
        return None
    mean, std = meta.get("mean"), meta.get("std")
    options = {"mean": mean, "std": std} if mean and std else {}
    return WarpCropPreprocess(crop_size=int(image_size), resize_size=tuple(meta["resize_size"]), **options)


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
