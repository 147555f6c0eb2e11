"""Readers of real datasets in the layouts they are downloaded in, as torchvision datasets returning v2 tv_tensors.

Segmentation items are ``(tv_tensors.Image uint8 (3, H, W), tv_tensors.Mask int64 (H, W))`` with train labels
``0..len(classes) - 1`` and :data:`IGNORE_INDEX` (255) for pixels that are not scored:

- :class:`ADE20K`: ``ADEChallengeData2016/images/{training,validation}/*.jpg`` and
  ``annotations/{training,validation}/*.png``; file labels 0..150 with 0 = void, reduced as mmsegmentation's
  ``reduce_zero_label`` does (0 -> 255, k -> k - 1): 150 classes.
- :class:`VOCSegmentation`: ``VOCdevkit/VOC2012/JPEGImages/*.jpg``, ``ImageSets/Segmentation/<split>.txt``, labels
  from ``SegmentationClass/<id>.png`` (palette PNGs, read as indices; 255 on object borders) or, for the augmented
  set, ``SegmentationClassAug/<id>.png``. torchvision's ``VOCSegmentation`` does not know the augmented set.
- :class:`CityscapesSegmentation`: ``leftImg8bit/<split>/<city>/*_leftImg8bit.png`` with
  ``gtFine/<split>/<city>/*_gtFine_labelTrainIds.png`` when present, else ``*_gtFine_labelIds.png`` mapped to the 19
  train ids with the official table (``torchvision.datasets.Cityscapes.classes``); every other id -> 255.
- :class:`SegmentationFolder`: ``images/`` + ``masks/`` (PNG of class indices, same stem as the image) + a class-names
  file ``classes.txt`` (one name per line, line k = label k); ``images/<split>/`` and ``masks/<split>/`` when the
  folder has splits, else the flat folder serves every split.

Detection items are ``(tv_tensors.Image, {"boxes": BoundingBoxes XYXY float32 (K, 4), "labels": int64 (K,) in
1..len(classes) - 1, "iscrowd": int64 (K,)})`` (label 0 = background, as the zoo's detectors count classes):
:class:`CocoDetection` (``torchvision.datasets.CocoDetection`` wrapped for v2, category ids renumbered 1..C in id
order) and :class:`VOCDetection` (``torchvision.datasets.VOCDetection`` wrapped for v2; VOC's "difficult" objects
are marked ``iscrowd`` so a COCO-style evaluation does not count them, as the VOC protocol ignores them).
Classification items are ``(tv_tensors.Image, int)``: :class:`ImageFolderClassification` over
``torchvision.datasets.ImageFolder``.

Nothing is downloaded. A wrong layout raises FileNotFoundError naming the missing file or directory; a label file
that cannot be what the layout says (a color PNG, values beyond the classes) raises ValueError naming the file.
``transforms`` is a callable ``(image, target) -> (image, target)``, e.g. a ``torchvision.transforms.v2`` preset.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision import tv_tensors

from ..classes import ADE20K_CATEGORIES, CITYSCAPES_CATEGORIES, VOC_CATEGORIES
from .transforms import IGNORE_INDEX

__all__ = [
    "IGNORE_INDEX",
    "READERS",
    "ADE20K",
    "VOCSegmentation",
    "CityscapesSegmentation",
    "SegmentationFolder",
    "CocoDetection",
    "VOCDetection",
    "ImageFolderClassification",
    "open_dataset",
    "cityscapes_train_id_table",
]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


# ----------------------------------------------------------------------------------------------- helpers
def _root(root: str | os.PathLike) -> Path:
    if root is None:
        raise ValueError("root must be the directory of the dataset, got None")
    if not isinstance(root, (str, os.PathLike)):
        raise TypeError(f"root must be a path, got {type(root).__name__}")
    path = Path(root)
    if not path.is_dir():
        raise FileNotFoundError(f"root {os.fspath(root)!r} is not a directory")
    return path


def _directory(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise FileNotFoundError(f"{what}: the directory {path} does not exist")
    return path


def _file(path: Path, what: str) -> Path:
    if not path.is_file():
        raise FileNotFoundError(f"{what}: the file {path} does not exist")
    return path


def _split(split: Any, allowed: Sequence[str] | None, what: str) -> str:
    if not isinstance(split, str) or not split:
        raise TypeError(f"split must be a non-empty str, got {split!r}")
    if allowed is not None and split not in allowed:
        raise ValueError(f"{what}: unknown split {split!r}; expected one of {', '.join(allowed)}")
    return split


def _check_transforms(transforms: Any) -> Callable | None:
    if transforms is not None and not callable(transforms):
        raise TypeError(f"transforms must be callable or None, got {type(transforms).__name__}")
    return transforms


def read_image(path: str | os.PathLike) -> tv_tensors.Image:
    """An image file as tv_tensors.Image uint8 (3, H, W), RGB (gray and palette images converted)."""
    with Image.open(path) as image:
        array = np.asarray(image.convert("RGB"))
    return tv_tensors.Image(torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1))))


def read_label_png(path: str | os.PathLike) -> np.ndarray:
    """A PNG of class indices (palette or gray) as uint8 (H, W); the palette is not applied."""
    with Image.open(path) as image:
        if image.mode not in ("P", "L"):
            raise ValueError(f"{path}: a label PNG holds class indices (mode P or L), got mode {image.mode}")
        return np.array(image, dtype=np.uint8)


def _image_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def cityscapes_train_id_table() -> np.ndarray:
    """uint8 (256,) lookup table label id -> train id (0..18, 255 for the ids not trained on), from
    ``torchvision.datasets.Cityscapes.classes`` (the official ``cityscapesscripts`` table)."""
    from torchvision.datasets import Cityscapes

    table = np.full(256, IGNORE_INDEX, dtype=np.uint8)
    for cls in Cityscapes.classes:
        if 0 <= cls.id < 256 and 0 <= cls.train_id < len(CITYSCAPES_CATEGORIES):
            table[cls.id] = cls.train_id
    return table


# ---------------------------------------------------------------------------------------- segmentation
class SegmentationFiles(Dataset):
    """Pairs of (image file, label file): item -> (tv_tensors.Image uint8 (3, H, W), tv_tensors.Mask int64 (H, W))
    with labels in ``0..len(classes) - 1`` or :data:`IGNORE_INDEX`. Subclasses find the pairs and decode labels."""

    task = "segmentation"

    def __init__(
        self, pairs: list[tuple[Path, Path]], classes: Sequence[str], transforms: Callable | None, split: str
    ) -> None:
        self.pairs = pairs
        self.classes = tuple(classes)
        self.transforms = _check_transforms(transforms)
        self.split = split

    def __len__(self) -> int:
        return len(self.pairs)

    def decode(self, labels: np.ndarray, label_file: Path) -> np.ndarray:
        """File labels (uint8 (H, W)) -> train labels; the identity here."""
        return labels

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"index must be an int, got {type(index).__name__}")
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        image_file, label_file = self.pairs[int(index)]
        image = read_image(image_file)
        labels = self.decode(read_label_png(label_file), label_file)
        if labels.shape != tuple(image.shape[-2:]):
            size = tuple(image.shape[-2:])
            raise ValueError(f"{label_file}: labels of size {labels.shape} for an image of size {size}")
        bad = (labels != IGNORE_INDEX) & (labels >= len(self.classes))
        if bad.any():
            values = sorted({int(v) for v in np.unique(labels[bad])})
            raise ValueError(
                f"{label_file}: label values {values[:8]} are outside 0..{len(self.classes) - 1} "
                f"and not the ignore index {IGNORE_INDEX}"
            )
        mask = tv_tensors.Mask(torch.from_numpy(labels.astype(np.int64)))
        return (image, mask) if self.transforms is None else self.transforms(image, mask)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(split={self.split!r}, items={len(self)}, classes={len(self.classes)})"


def _pairs_by_stem(images: list[Path], label_dirs: Sequence[Path], suffix: str = ".png") -> list[tuple[Path, Path]]:
    """Each image with ``<label dir>/<stem><suffix>`` from the first label dir holding it."""
    pairs = []
    for image in images:
        for directory in label_dirs:
            label = directory / (image.stem + suffix)
            if label.is_file():
                pairs.append((image, label))
                break
        else:
            raise FileNotFoundError(f"the label file {label_dirs[0] / (image.stem + suffix)} does not exist")
    return pairs


class ADE20K(SegmentationFiles):
    """ADE20K (MIT SceneParsing, ``ADEChallengeData2016``): 150 classes (:data:`~zoo.classes.ADE20K_CATEGORIES`).

    Args:
        root: ``ADEChallengeData2016`` or the directory holding it.
        split: "train" (``training``, 20210 images) or "val" (``validation``, 2000 images).
        transforms: ``(image, mask) -> (image, mask)``.

    File label 0 (void) becomes 255 and label k becomes k - 1, as mmsegmentation's ``reduce_zero_label``.
    """

    SPLITS = {"train": "training", "val": "validation"}

    def __init__(self, root: str | os.PathLike, split: str = "val", *, transforms: Callable | None = None) -> None:
        split = _split(split, list(self.SPLITS), "ADE20K")
        base = _root(root)
        if not (base / "images").is_dir():
            base = _directory(base / "ADEChallengeData2016", "ADE20K")
        folder = self.SPLITS[split]
        images = _directory(base / "images" / folder, "ADE20K")
        annotations = _directory(base / "annotations" / folder, "ADE20K")
        files = [p for p in _image_files(images) if p.suffix.lower() == ".jpg"]
        if not files:
            raise FileNotFoundError(f"ADE20K: no *.jpg image in {images}")
        super().__init__(_pairs_by_stem(files, [annotations]), ADE20K_CATEGORIES, transforms, split)
        self.root = base

    def decode(self, labels: np.ndarray, label_file: Path) -> np.ndarray:
        # mmseg: 0 -> 255, then minus 1, and 254 (a file 255) back to 255
        return np.where((labels == 0) | (labels == 255), IGNORE_INDEX, labels.astype(np.int64) - 1)


class VOCSegmentation(SegmentationFiles):
    """Pascal VOC 2012 segmentation: 21 classes incl. background (:data:`~zoo.classes.VOC_CATEGORIES`).

    Args:
        root: ``VOC2012``, ``VOCdevkit`` or the directory holding ``VOCdevkit``.
        split: a list of ``ImageSets/Segmentation/<split>.txt`` (train 1464, val 1449, trainval; ``aug``, the
            10582 ids of the augmented set written by mmsegmentation's ``voc_aug.py``); "trainaug" reads
            ``trainaug.txt`` when present, else train.txt followed by the aug.txt ids not in it (mmsegmentation's
            training set).
        transforms: ``(image, mask) -> (image, mask)``.

    Labels of an id come from ``SegmentationClass/<id>.png`` when it exists, else ``SegmentationClassAug/<id>.png``;
    for the "aug" and "trainaug" splits the augmented labels come first. Palette PNGs are read as indices.
    """

    def __init__(self, root: str | os.PathLike, split: str = "val", *, transforms: Callable | None = None) -> None:
        split = _split(split, None, "VOC 2012")
        base = _root(root)
        for candidate in (base, base / "VOC2012", base / "VOCdevkit" / "VOC2012"):
            if (candidate / "JPEGImages").is_dir():
                base = candidate
                break
        else:
            _directory(base / "VOCdevkit" / "VOC2012" / "JPEGImages", "VOC 2012")
        lists = _directory(base / "ImageSets" / "Segmentation", "VOC 2012")
        ids = self._ids(lists, split)
        classic, aug = base / "SegmentationClass", base / "SegmentationClassAug"
        if not classic.is_dir() and not aug.is_dir():
            raise FileNotFoundError(f"VOC 2012: the directory {classic} does not exist (nor {aug.name})")
        label_dirs = [aug, classic] if split in ("aug", "trainaug") else [classic, aug]
        images = []
        for image_id in ids:
            images.append(_file(base / "JPEGImages" / f"{image_id}.jpg", "VOC 2012"))
        super().__init__(_pairs_by_stem(images, label_dirs), VOC_CATEGORIES, transforms, split)
        self.root = base

    @staticmethod
    def _ids(lists: Path, split: str) -> list[str]:
        def read(name: str) -> list[str]:
            path = _file(lists / f"{name}.txt", "VOC 2012")
            return [line.strip() for line in path.read_text().splitlines() if line.strip()]

        if split == "trainaug" and not (lists / "trainaug.txt").is_file():
            train = read("train")
            seen = set(train)
            return train + [i for i in read("aug") if i not in seen]
        ids = read(split)
        if not ids:
            raise ValueError(f"VOC 2012: {lists / (split + '.txt')} lists no image")
        return ids


class CityscapesSegmentation(SegmentationFiles):
    """Cityscapes fine annotations: 19 classes (:data:`~zoo.classes.CITYSCAPES_CATEGORIES`).

    Args:
        root: the directory holding ``leftImg8bit`` and ``gtFine``.
        split: "train" (2975), "val" (500) or "test".
        transforms: ``(image, mask) -> (image, mask)``.

    Reads ``*_gtFine_labelTrainIds.png`` (written by cityscapesscripts' ``createTrainIdLabelImgs``) when present,
    else maps ``*_gtFine_labelIds.png`` with :func:`cityscapes_train_id_table`.
    """

    SPLITS = ("train", "val", "test")

    def __init__(self, root: str | os.PathLike, split: str = "val", *, transforms: Callable | None = None) -> None:
        split = _split(split, self.SPLITS, "Cityscapes")
        base = _root(root)
        images = _directory(base / "leftImg8bit" / split, "Cityscapes")
        labels = _directory(base / "gtFine" / split, "Cityscapes")
        pairs = []
        for city in sorted(p for p in images.iterdir() if p.is_dir()):
            for image in sorted(city.glob("*_leftImg8bit.png")):
                stem = image.name[: -len("_leftImg8bit.png")]
                train_ids = labels / city.name / f"{stem}_gtFine_labelTrainIds.png"
                label_ids = labels / city.name / f"{stem}_gtFine_labelIds.png"
                pairs.append((image, train_ids if train_ids.is_file() else _file(label_ids, "Cityscapes")))
        if not pairs:
            raise FileNotFoundError(f"Cityscapes: no <city>/*_leftImg8bit.png image in {images}")
        super().__init__(pairs, CITYSCAPES_CATEGORIES, transforms, split)
        self.root = base
        self._table = cityscapes_train_id_table()

    def decode(self, labels: np.ndarray, label_file: Path) -> np.ndarray:
        if label_file.name.endswith("_labelIds.png"):
            return self._table[labels]
        return labels


class SegmentationFolder(SegmentationFiles):
    """A user's segmentation data: ``images/<stem>.<jpg|png|...>`` + ``masks/<stem>.png`` (class indices, palette
    or gray PNG; 255 = not scored) + ``classes.txt`` (one class name per line; line k names label k).

    Args:
        root: the folder.
        split: with ``images/<split>/`` and ``masks/<split>/`` those; a folder without split directories serves
            every split with all its images.
        transforms: ``(image, mask) -> (image, mask)``.
        classes_file: the class-names file (default ``<root>/classes.txt``).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "train",
        *,
        transforms: Callable | None = None,
        classes_file: str | os.PathLike | None = None,
    ) -> None:
        split = _split(split, None, "segmentation folder")
        base = _root(root)
        names = _file(Path(classes_file) if classes_file is not None else base / "classes.txt", "segmentation folder")
        classes = [line.strip() for line in names.read_text().splitlines() if line.strip()]
        if len(classes) < 2:
            raise ValueError(f"{names}: names {len(classes)} class(es); a segmentation needs at least 2")
        if len(classes) > IGNORE_INDEX:
            raise ValueError(f"{names}: names {len(classes)} classes; at most {IGNORE_INDEX} fit below 255 (ignore)")
        images = _directory(base / "images", "segmentation folder")
        masks = _directory(base / "masks", "segmentation folder")
        if (images / split).is_dir():
            images, masks = images / split, _directory(masks / split, "segmentation folder")
        files = _image_files(images)
        if not files:
            raise FileNotFoundError(f"segmentation folder: no image ({', '.join(IMAGE_SUFFIXES)}) in {images}")
        super().__init__(_pairs_by_stem(files, [masks]), classes, transforms, split)
        self.root = base


# ------------------------------------------------------------------------------------------- detection
def _empty_boxes(height: int, width: int) -> tv_tensors.BoundingBoxes:
    return tv_tensors.BoundingBoxes(torch.zeros((0, 4)), format="XYXY", canvas_size=(height, width))


class _WrappedDetection(Dataset):
    """A torchvision detection dataset wrapped for v2 (``self._wrapped``): images as tv_tensors.Image."""

    task = "detection"
    transforms: Callable | None
    split: str
    classes: tuple[str, ...]

    def _item(self, index: int) -> tuple[tv_tensors.Image, dict[str, Any]]:
        from torchvision.transforms.v2 import functional as F

        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"index must be an int, got {type(index).__name__}")
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        image, target = self._wrapped[int(index)]
        if not isinstance(image, torch.Tensor):
            image = F.pil_to_tensor(image.convert("RGB"))
        image = tv_tensors.Image(image)
        height, width = image.shape[-2:]
        boxes = target.get("boxes")
        boxes = _empty_boxes(height, width) if boxes is None else tv_tensors.wrap(boxes.float(), like=boxes)
        labels = torch.as_tensor(target.get("labels", []), dtype=torch.int64).reshape(-1)
        iscrowd = torch.as_tensor(target.get("iscrowd", [0] * len(labels)), dtype=torch.int64).reshape(-1)
        return image, {"boxes": boxes, "labels": labels, "iscrowd": iscrowd}

    def __len__(self) -> int:
        return len(self._wrapped)

    def _apply(self, image: Any, target: Any) -> tuple[Any, Any]:
        return (image, target) if self.transforms is None else self.transforms(image, target)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(split={self.split!r}, items={len(self)}, classes={len(self.classes)})"


class CocoDetection(_WrappedDetection):
    """COCO-format detection through ``torchvision.datasets.CocoDetection`` + ``wrap_dataset_for_transforms_v2``.

    Args:
        root: the dataset directory: ``annotations/instances_<split>2017.json`` (or ``instances_<split>.json``) and
            the images in ``<split>2017/`` (or ``<split>/``, or ``images/``).
        split: "train", "val"... (the name in the files above).
        transforms: ``(image, target) -> (image, target)``.
        annotation_file, image_dir: explicit paths instead of the layout above.

    Category ids are renumbered 1..C in increasing id order; ``classes[0]`` is "background" and ``classes[k]`` the
    name of the k-th category; ``category_ids[k]`` is its COCO id. Crowd annotations keep ``iscrowd`` = 1.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "val",
        *,
        transforms: Callable | None = None,
        annotation_file: str | os.PathLike | None = None,
        image_dir: str | os.PathLike | None = None,
    ) -> None:
        from torchvision import datasets

        split = _split(split, None, "COCO")
        base = _root(root)
        if annotation_file is None:
            candidates = [base / "annotations" / f"instances_{split}{y}.json" for y in ("2017", "")]
            annotation = next((p for p in candidates if p.is_file()), None)
            if annotation is None:
                raise FileNotFoundError(f"COCO: the file {candidates[0]} does not exist (nor {candidates[1].name})")
        else:
            annotation = _file(Path(annotation_file), "COCO")
        if image_dir is None:
            candidates = [base / f"{split}2017", base / split, base / "images"]
            images = next((p for p in candidates if p.is_dir()), None)
            if images is None:
                raise FileNotFoundError(f"COCO: the directory {candidates[0]} does not exist (nor {split}/, images/)")
        else:
            images = _directory(Path(image_dir), "COCO")
        try:
            coco = datasets.CocoDetection(str(images), str(annotation))
        except (ValueError, KeyError, TypeError, AssertionError) as error:  # JSONDecodeError is a ValueError
            raise ValueError(f"COCO: {annotation} is not a COCO instances file ({type(error).__name__})") from None
        categories = sorted(coco.coco.loadCats(coco.coco.getCatIds()), key=lambda c: c["id"])
        if not categories:
            raise ValueError(f"COCO: {annotation} has no category")
        self.category_ids = (0, *(c["id"] for c in categories))
        self.classes = ("background", *(c["name"] for c in categories))
        self._label_of = {cat_id: k for k, cat_id in enumerate(self.category_ids) if k}
        self._wrapped = datasets.wrap_dataset_for_transforms_v2(coco, target_keys=("boxes", "labels", "iscrowd"))
        self.transforms = _check_transforms(transforms)
        self.split = split
        self.root = base

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        image, target = self._item(index)
        target["labels"] = torch.tensor([self._label_of[int(c)] for c in target["labels"]], dtype=torch.int64)
        return self._apply(image, target)


class VOCDetection(_WrappedDetection):
    """Pascal VOC detection through ``torchvision.datasets.VOCDetection`` + ``wrap_dataset_for_transforms_v2``:
    20 classes + background (:data:`~zoo.classes.VOC_CATEGORIES`, labels 1..20).

    Args:
        root: the directory holding ``VOCdevkit`` (or ``VOCdevkit`` itself, or ``VOCdevkit/VOC<year>``).
        split: a list of ``ImageSets/Main/<split>.txt`` (train, val, trainval; test for 2007).
        transforms: ``(image, target) -> (image, target)``.
        year: "2007" ... "2012"; default: the newest ``VOC<year>`` directory present.

    Objects marked ``difficult`` get ``iscrowd`` = 1 (matched detections on them are neither true nor false
    positives in a COCO-style evaluation, as VOC's protocol ignores them).
    """

    YEARS = ("2012", "2011", "2010", "2009", "2008", "2007")

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "val",
        *,
        transforms: Callable | None = None,
        year: str | None = None,
    ) -> None:
        from torchvision import datasets

        split = _split(split, None, "VOC detection")
        base = _root(root)
        if base.name.startswith("VOC") and base.name[3:] in self.YEARS and base.parent.name == "VOCdevkit":
            year, base = year or base.name[3:], base.parent.parent
        elif base.name == "VOCdevkit":
            base = base.parent
        years = [year] if year is not None else [y for y in self.YEARS if (base / "VOCdevkit" / f"VOC{y}").is_dir()]
        if year is not None and year not in self.YEARS:
            raise ValueError(f"VOC detection: unknown year {year!r}; expected one of {', '.join(self.YEARS)}")
        if not years:
            raise FileNotFoundError(f"VOC detection: the directory {base / 'VOCdevkit' / 'VOC2012'} does not exist")
        voc = base / "VOCdevkit" / f"VOC{years[0]}"
        for sub in ("JPEGImages", "Annotations"):
            _directory(voc / sub, "VOC detection")
        _file(voc / "ImageSets" / "Main" / f"{split}.txt", "VOC detection")
        raw = datasets.VOCDetection(str(base), year=years[0], image_set=split)
        self._raw = raw
        self._wrapped = datasets.wrap_dataset_for_transforms_v2(raw, target_keys=("boxes", "labels"))
        self.classes = VOC_CATEGORIES
        self.year = years[0]
        self.transforms = _check_transforms(transforms)
        self.split = split
        self.root = voc

    def difficult(self, index: int) -> torch.Tensor:
        """bool (K,) "difficult" flags of item ``index``'s objects, in the order of its boxes."""
        from xml.etree.ElementTree import parse

        annotation = self._raw.parse_voc_xml(parse(self._raw.annotations[int(index)]).getroot())["annotation"]
        objects = annotation.get("object", [])
        objects = objects if isinstance(objects, list) else [objects]
        return torch.tensor([str(o.get("difficult", "0")).strip() == "1" for o in objects], dtype=torch.bool)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        image, target = self._item(index)
        difficult = self.difficult(index)
        if len(difficult) != len(target["labels"]):
            raise ValueError(f"{self._raw.annotations[int(index)]}: objects and boxes disagree")
        target["iscrowd"] = difficult.long()
        return self._apply(image, target)


# -------------------------------------------------------------------------------------- classification
class ImageFolderClassification(Dataset):
    """``torchvision.datasets.ImageFolder``: ``<root>/<split>/<class>/<image>`` (or ``<root>/<class>/<image>``
    for every split when there is no ``<split>`` directory); item -> (tv_tensors.Image uint8 (3, H, W), label),
    classes sorted by name as ImageFolder sorts them."""

    task = "classification"

    def __init__(self, root: str | os.PathLike, split: str = "train", *, transforms: Callable | None = None) -> None:
        from torchvision.datasets import ImageFolder

        split = _split(split, None, "image folder")
        base = _root(root)
        directory = base / split if (base / split).is_dir() else base
        try:
            self._folder = ImageFolder(str(directory))
        except FileNotFoundError as error:  # "Couldn't find any class folder in ..." / "Found no valid file ..."
            raise FileNotFoundError(f"image folder: {str(error).splitlines()[0]}") from None
        self.classes = tuple(self._folder.classes)
        self.transforms = _check_transforms(transforms)
        self.split = split
        self.root = directory

    def __len__(self) -> int:
        return len(self._folder)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        path, label = self._folder.samples[index]
        image = read_image(path)
        return (image, label) if self.transforms is None else self.transforms(image, label)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(split={self.split!r}, items={len(self)}, classes={len(self.classes)})"


# ------------------------------------------------------------------------------------------- registry
#: ``--data`` name -> reader class (each has ``task`` and, once built, ``classes``).
READERS: dict[str, type] = {
    "ade20k": ADE20K,
    "voc2012": VOCSegmentation,
    "cityscapes": CityscapesSegmentation,
    "seg-folder": SegmentationFolder,
    "coco": CocoDetection,
    "voc-det": VOCDetection,
    "imagefolder": ImageFolderClassification,
}


def open_dataset(name: str, root: str | os.PathLike, split: str, *, transforms: Callable | None = None) -> Dataset:
    """The reader ``READERS[name]`` on ``root``'s ``split``."""
    if name not in READERS:
        raise ValueError(f"unknown dataset {name!r}; expected one of {', '.join(READERS)}")
    return READERS[name](root, split, transforms=transforms)
