"""Datasets of the zoo: composited Fashion-MNIST scenes (classification, segmentation, detection) and real aerial
trees (detection), torchvision-style, built offline and deterministically.

Scenes: real Fashion-MNIST glyphs, cropped to their object, scaled (longest side 12..80 px, aspect jitter 0.8..1.25),
tinted with a random color (half of them also shaded by a photo texture) and pasted at random positions onto random
crops of real photos (scikit-image's CC0 / public-domain samples) of random size (each side 96..192 px). An object is
exactly the glyph pixels whose resized intensity exceeds 24 / 255; later objects occlude earlier ones; objects less
than 30 % visible (or with under 24 visible pixels, or a visible box side under 4 px) are not drawn at all; masks
and boxes are those of the visible pixels. ``SceneSegmentation`` and ``SceneDetection`` serve the same scenes (item
``i`` of a split is the same picture in both).

Classification view: one object per image of random size (each side 48..128 px), its longest side log-uniform from
max(20 px, 0.35 x the image's shorter side) to the shorter side, label in 0..9 (``CLASSES[label + 1]``).

Every item is generated on the fly from ``numpy.random.default_rng([SEED, split, view, index])``, so it is identical
on every machine and in every worker. The val and test splits draw their glyphs from Fashion-MNIST's test set, the
train split from its train set: the full 60000 when Debian's ``dataset-fashion-mnist`` is installed (or ``root``
points to the idx files), else the shipped subset (100 per class). Val and test only use shipped files.

Boxes are float XYXY in pixel-edge coordinates: an instance whose pixels span columns ``c0..c1`` (inclusive) has
``x1 = c0`` and ``x2 = c1 + 1`` (so flips and resizes of ``torchvision.transforms.v2`` keep boxes and masks aligned).

Command line: ``python -m zoo.data.datasets stats`` prints the statistics of the splits; ``... examples`` rewrites the
shipped example images; ``... export DIR --split test`` writes a split as PNG files + JSON for inspection;
``... build-assets`` rebuilds the shipped assets from the installed sources.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision import tv_tensors

from . import synth

__all__ = [
    "CLASSES",
    "SPLITS",
    "SEED",
    "SCENE_SPLIT_SIZES",
    "CLASSIFICATION_SPLIT_SIZES",
    "EXAMPLES_DIR",
    "SceneSegmentation",
    "SceneObjectSegmentation",
    "SceneDetection",
    "SceneClassification",
    "TreeDetection",
    "collate_detection",
    "masks_to_tight_boxes",
    "scene_statistics",
    "classification_statistics",
    "tree_statistics",
    "write_examples",
    "export",
]

CLASSES = (
    "background",
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
SPLITS = ("train", "val", "test")
SEED = 9
SCENE_SPLIT_SIZES = {"train": 10000, "val": 200, "test": 200}
CLASSIFICATION_SPLIT_SIZES = {"train": 20000, "val": 500, "test": 500}
SCENE_SIDES = (96, 192)
SCENE_OBJECT_SIDES = (12, 80)
SCENE_OBJECTS = (1, 6)
CLASSIFICATION_SIDES = (48, 128)
CLASSIFICATION_MIN_OBJECT = 20
CLASSIFICATION_MIN_OBJECT_FRACTION = 0.35
GLYPH_SOURCES = ("auto", "full", "subset")
EXAMPLES_DIR = synth.DATA_DIR / "examples"

_SPLIT_CODES = {"train": 0, "val": 1, "test": 2}
_VIEW_SCENES, _VIEW_CLASSIFICATION, _VIEW_OBJECTS = 0, 1, 2
#: An object-centred crop's side, as a multiple of the object's longest side (the crop stays inside its scene).
OBJECT_CROP_CONTEXT = 1.5


def _check_split(split: Any) -> str:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    return split


def _check_size(size: Any) -> int | None:
    if size is None:
        return None
    if isinstance(size, bool) or not isinstance(size, int):
        raise TypeError(f"size must be an int or None, got {type(size).__name__}")
    if size < 0:
        raise ValueError(f"size must be >= 0, got {size}")
    return size


def _to_image(array: np.ndarray) -> tv_tensors.Image:
    # transpose in numpy: torch's multi-threaded copy of a small tensor is slow on a busy CPU
    return tv_tensors.Image(torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1))))


def _tight_boxes(masks: np.ndarray) -> np.ndarray:
    boxes = np.zeros((masks.shape[0], 4), dtype=np.float32)
    for k, mask in enumerate(masks):
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        if rows.size == 0:
            raise ValueError(f"mask {k} is empty")
        boxes[k] = (cols[0], rows[0], cols[-1] + 1, rows[-1] + 1)
    return boxes


def masks_to_tight_boxes(masks: torch.Tensor) -> torch.Tensor:
    """float32 (K, 4) XYXY pixel-edge boxes of (K, H, W) non-empty masks: (min col, min row, max col + 1, max row + 1).

    (torchvision.ops.masks_to_boxes gives max col / max row instead, the pixel-center convention.)"""
    if masks.ndim != 3:
        raise ValueError(f"masks must have shape (K, H, W), got {tuple(masks.shape)}")
    return torch.from_numpy(_tight_boxes(masks.detach().cpu().bool().numpy()))


class _GlyphDataset(Dataset):
    """Common part of the Fashion-MNIST scene datasets: split, length, glyph pool, per-item random generator."""

    _VIEW: int
    _SPLIT_SIZES: dict[str, int]

    def __init__(
        self,
        split: str,
        *,
        root: str | os.PathLike | None = None,
        transforms: Callable | None = None,
        size: int | None = None,
        glyphs: str = "auto",
    ) -> None:
        self.split = _check_split(split)
        size = _check_size(size)
        self.size = self._SPLIT_SIZES[split] if size is None else size
        if transforms is not None and not callable(transforms):
            raise TypeError(f"transforms must be callable or None, got {type(transforms).__name__}")
        self.transforms = transforms
        if glyphs not in GLYPH_SOURCES:
            raise ValueError(f"unknown glyphs {glyphs!r}; expected one of {', '.join(GLYPH_SOURCES)}")
        self.root = None if root is None else os.fspath(root)
        if root is not None and not Path(root).is_dir():
            raise FileNotFoundError(f"root {self.root!r} is not a directory (the directory of Fashion-MNIST's files)")
        if glyphs == "auto" and root is not None:
            glyphs = "full"  # an explicit root asks for the files in it
        if split != "train" or glyphs == "subset" or (glyphs == "auto" and not synth.has_fashion_mnist(self.root)):
            #: where the glyphs come from: "shipped-<split>" or "fashion-mnist-train" (all 60000)
            self.glyph_source = f"shipped-{split}"
            self._glyphs, self._glyph_labels = synth.load_shipped_glyphs()[split]
        else:
            self.glyph_source = "fashion-mnist-train"
            self._glyphs, self._glyph_labels = synth.load_fashion_mnist(self.root, "train")

    def __len__(self) -> int:
        return self.size

    def _rng(self, index: int) -> tuple[int, np.random.Generator]:
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"index must be an int, got {type(index).__name__}")
        if not -self.size <= index < self.size:
            raise IndexError(f"index {index} out of range for a {self.split} split of {self.size} items")
        index = int(index) % self.size
        return index, np.random.default_rng([SEED, _SPLIT_CODES[self.split], self._VIEW, index])

    def _apply(self, image: Any, target: Any) -> tuple[Any, Any]:
        return (image, target) if self.transforms is None else self.transforms(image, target)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(split={self.split!r}, size={self.size}, glyphs={self.glyph_source!r})"


class _SceneDataset(_GlyphDataset):
    _VIEW = _VIEW_SCENES
    _SPLIT_SIZES = SCENE_SPLIT_SIZES

    def scene(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Raw scene ``index``: (uint8 (H, W, 3), bool (K, H, W) instance masks, int64 (K,) labels in 1..10)."""
        _, rng = self._rng(index)
        image, masks, labels = synth.compose_scene(
            rng,
            self._glyphs,
            self._glyph_labels,
            side_range=SCENE_SIDES,
            object_range=SCENE_OBJECT_SIDES,
            count_range=SCENE_OBJECTS,
        )
        return image, masks, labels + 1


def _semantic_mask(shape: tuple[int, int], masks: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """int64 (H, W) labels of a scene's instance masks (0 = background; a later object covers an earlier one)."""
    semantic = np.zeros(shape, dtype=np.int64)
    for mask, label in zip(masks, labels, strict=True):
        semantic[mask] = label
    return semantic


class SceneSegmentation(_SceneDataset):
    """Semantic segmentation of the scenes: item -> (tv_tensors.Image uint8 (3, H, W), tv_tensors.Mask int64 (H, W))
    with values in 0..10 (``CLASSES``; 0 = background).

    Args:
        split: "train", "val" or "test".
        root: directory of Fashion-MNIST's idx files for the train split (then they must be there); default:
            $SPP_ZOO_FASHION_MNIST or /usr/share/datasets/fashion-mnist when present. val and test ignore it.
        transforms: callable ``(image, mask) -> (image, mask)``, e.g. :class:`zoo.data.transforms.SegmentationPreset`.
        size: number of items (default ``SCENE_SPLIT_SIZES[split]``); item i does not depend on it.
        glyphs: "auto" (full Fashion-MNIST train set when available, else the shipped subset), "full" (required;
            FileNotFoundError naming the install step otherwise) or "subset" (shipped subset, same on every machine).
    """

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        image, masks, labels = self.scene(index)
        semantic = _semantic_mask(image.shape[:2], masks, labels)
        return self._apply(_to_image(image), tv_tensors.Mask(torch.from_numpy(semantic)))


class SceneObjectSegmentation(_SceneDataset):
    """Object-centred crops of the segmentation scenes, DeconvNet's first training stage (Noh et al. 2015, Sec. 4.1:
    crops centred on one object each, so that objects are large and background is not most of every picture).

    Item ``i`` -> (tv_tensors.Image uint8 (3, S, S), tv_tensors.Mask int64 (S, S)): a square crop of scene ``i`` of
    :class:`SceneSegmentation` around one of its objects (chosen by a generator seeded by the split and ``i``), of
    side ``S = round(OBJECT_CROP_CONTEXT x`` the object's longest side), at least 16 px and at most the scene's shorter
    side, centred on the object's box and shifted to stay inside the scene. The mask is the scene's semantic mask
    there (other objects in the crop keep their labels). A scene without objects (all covered by later ones) gives
    its centre square of 16 px. Arguments as :class:`SceneSegmentation`.
    """

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        image, masks, labels = self.scene(index)
        semantic = _semantic_mask(image.shape[:2], masks, labels)
        height, width = semantic.shape
        if len(labels) == 0:  # every object of the scene was covered by later ones: its centre square
            x0, y0, x1, y1 = width / 2, height / 2, width / 2, height / 2
        else:
            index = self._rng(index)[0]
            pick = np.random.default_rng([SEED, _SPLIT_CODES[self.split], _VIEW_OBJECTS, index]).integers(len(labels))
            x0, y0, x1, y1 = _tight_boxes(masks[pick : pick + 1])[0]
        side = int(min(max(16, round(OBJECT_CROP_CONTEXT * max(x1 - x0, y1 - y0))), height, width))
        left = int(min(max(0, round((x0 + x1 - side) / 2)), width - side))
        top = int(min(max(0, round((y0 + y1 - side) / 2)), height - side))
        crop = (slice(top, top + side), slice(left, left + side))
        return self._apply(_to_image(image[crop]), tv_tensors.Mask(torch.from_numpy(semantic[crop].copy())))


class SceneDetection(_SceneDataset):
    """Instance detection of the scenes: item -> (tv_tensors.Image uint8 (3, H, W), target) with target
    ``{"boxes": tv_tensors.BoundingBoxes XYXY float32 (K, 4), "labels": int64 (K,) in 1..10,
    "masks": tv_tensors.Mask uint8 (K, H, W)}``; every box is the tight pixel-edge box of its (non-empty) mask.

    Arguments as :class:`SceneSegmentation`; transforms take ``(image, target)``, e.g.
    :class:`zoo.data.transforms.DetectionPreset`.
    """

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        image, masks, labels = self.scene(index)
        height, width = image.shape[:2]
        target = {
            "boxes": tv_tensors.BoundingBoxes(
                torch.from_numpy(_tight_boxes(masks)), format="XYXY", canvas_size=(height, width)
            ),
            "labels": torch.from_numpy(labels),
            "masks": tv_tensors.Mask(torch.from_numpy(masks.astype(np.uint8))),
        }
        return self._apply(_to_image(image), target)


class SceneClassification(_GlyphDataset):
    """Classification: item -> (tv_tensors.Image uint8 (3, H, W), int label in 0..9 = ``CLASSES[label + 1]``), one
    object per image at a random scale, each side 48..128 px.

    Arguments as :class:`SceneSegmentation` (default sizes ``CLASSIFICATION_SPLIT_SIZES``); transforms take
    ``(image, label)``, e.g. :class:`zoo.data.transforms.ClassificationPreset`.
    """

    _VIEW = _VIEW_CLASSIFICATION
    _SPLIT_SIZES = CLASSIFICATION_SPLIT_SIZES

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        _, rng = self._rng(index)
        image, label = synth.compose_single(
            rng,
            self._glyphs,
            self._glyph_labels,
            side_range=CLASSIFICATION_SIDES,
            min_object=CLASSIFICATION_MIN_OBJECT,
            min_object_fraction=CLASSIFICATION_MIN_OBJECT_FRACTION,
        )
        return self._apply(_to_image(image), label)


@functools.lru_cache(maxsize=4)
def _decode_rgb(path: str) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


class TreeDetection(Dataset):
    """deepforest's annotated aerial photos of trees (NEON sites), in ``tile_size`` tiles: item ->
    (tv_tensors.Image uint8 (3, H, W), {"boxes": BoundingBoxes XYXY float32 (K, 4), "labels": int64 (K,) all 1}).

    Splits: train = the two Yellowstone crops (2299x2472 with 574 trees, 1249x1035 with 279 trees) cut into
    ``tile_size`` tiles (stride ``tile_size``, the last row/column shifted back inside the image; a box is clipped to
    its tile and kept when at least ``min_box_fraction`` of its area is inside), val = SOAP_061 (400x400, 37 trees,
    alive and dead), test = OSBS_029 (400x400, 61 trees; shipped, held out). train and val read the installed
    ``deepforest`` package's files (``pip install --no-deps deepforest``; never imported); test needs nothing.
    There are no instance masks (the annotations are boxes), so targets have no "masks" key.
    """

    CLASSES = ("background", "tree")

    def __init__(
        self,
        split: str,
        *,
        transforms: Callable | None = None,
        tile_size: int = 400,
        min_box_fraction: float = 0.5,
    ) -> None:
        self.split = _check_split(split)
        if transforms is not None and not callable(transforms):
            raise TypeError(f"transforms must be callable or None, got {type(transforms).__name__}")
        if isinstance(tile_size, bool) or not isinstance(tile_size, int) or tile_size < 32:
            raise ValueError(f"tile_size must be an int >= 32, got {tile_size!r}")
        if not 0 < min_box_fraction <= 1:
            raise ValueError(f"min_box_fraction must be in (0, 1], got {min_box_fraction!r}")
        self.transforms = transforms
        self.tile_size = tile_size
        self.min_box_fraction = min_box_fraction
        self.images = synth.tree_images(split)
        self.tiles: list[tuple[int, int, int, int, int]] = []  # (image index, x0, y0, width, height)
        for k, tree_image in enumerate(self.images):
            with Image.open(tree_image.path) as image:
                width, height = image.size
            for y0 in synth.tile_origins(height, tile_size):
                for x0 in synth.tile_origins(width, tile_size):
                    self.tiles.append((k, x0, y0, min(tile_size, width), min(tile_size, height)))

    def __len__(self) -> int:
        return len(self.tiles)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"index must be an int, got {type(index).__name__}")
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for a {self.split} split of {len(self)} tiles")
        k, x0, y0, width, height = self.tiles[int(index)]
        pixels = _decode_rgb(str(self.images[k].path))[y0 : y0 + height, x0 : x0 + width]
        boxes = synth.clip_boxes_to_tile(self.images[k].boxes, x0, y0, width, height, self.min_box_fraction)
        target = {
            "boxes": tv_tensors.BoundingBoxes(torch.from_numpy(boxes), format="XYXY", canvas_size=(height, width)),
            "labels": torch.ones(len(boxes), dtype=torch.int64),
        }
        image = _to_image(pixels)
        return (image, target) if self.transforms is None else self.transforms(image, target)

    def __repr__(self) -> str:
        return f"TreeDetection(split={self.split!r}, tiles={len(self)}, tile_size={self.tile_size})"


def collate_detection(batch: list[tuple[Any, Any]]) -> tuple[list[Any], list[Any]]:
    """Collate items into (list of images, list of targets): images differ in size, so nothing is stacked."""
    images, targets = zip(*batch, strict=True)
    return list(images), list(targets)


# ------------------------------------------------------------------------------------------------- statistics
def _summary(values: list[float] | np.ndarray) -> dict[str, float]:
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return {"min": 0.0, "mean": 0.0, "max": 0.0}
    return {"min": float(values.min()), "mean": round(float(values.mean()), 3), "max": float(values.max())}


def scene_statistics(split: str, *, size: int | None = None, root=None, glyphs: str = "auto") -> dict[str, Any]:
    """Statistics of a scene split: image sizes, objects per image, instances and pixel share per class."""
    dataset = SceneDetection(split, size=size, root=root, glyphs=glyphs)
    heights, widths, counts, sides, short_sides = [], [], [], [], []
    instances = np.zeros(len(CLASSES), dtype=np.int64)
    pixels = np.zeros(len(CLASSES), dtype=np.int64)
    for index in range(len(dataset)):
        image, masks, labels = dataset.scene(index)
        heights.append(image.shape[0])
        widths.append(image.shape[1])
        counts.append(len(labels))
        instances += np.bincount(labels, minlength=len(CLASSES))
        for mask, label in zip(masks, labels, strict=True):
            pixels[label] += int(mask.sum())
            rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
            sides.append(max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1)
            short_sides.append(min(rows[-1] - rows[0], cols[-1] - cols[0]) + 1)
        pixels[0] += image.shape[0] * image.shape[1] - int(masks.sum())
    return {
        "split": split,
        "images": len(dataset),
        "glyphs": dataset.glyph_source,
        "height": _summary(heights),
        "width": _summary(widths),
        "objects_per_image": _summary(counts),
        "box_longest_side": _summary(sides),
        "box_shortest_side": _summary(short_sides),
        "instances_per_class": {CLASSES[c]: int(instances[c]) for c in range(1, len(CLASSES))},
        "pixel_share_per_class": {CLASSES[c]: round(float(pixels[c] / pixels.sum()), 4) for c in range(len(CLASSES))},
    }


def classification_statistics(split: str, *, size: int | None = None, root=None, glyphs: str = "auto") -> dict:
    """Statistics of a classification split: image sizes and images per class."""
    dataset = SceneClassification(split, size=size, root=root, glyphs=glyphs)
    heights, widths, labels = [], [], []
    for index in range(len(dataset)):
        image, label = dataset[index]
        heights.append(image.shape[1])
        widths.append(image.shape[2])
        labels.append(label)
    per_class = np.bincount(np.asarray(labels, dtype=np.int64), minlength=10)
    return {
        "split": split,
        "images": len(dataset),
        "glyphs": dataset.glyph_source,
        "height": _summary(heights),
        "width": _summary(widths),
        "images_per_class": {CLASSES[c + 1]: int(per_class[c]) for c in range(10)},
    }


def tree_statistics(split: str) -> dict[str, Any]:
    """Statistics of a TreeDetection split: tiles, trees per tile, box sides."""
    dataset = TreeDetection(split)
    counts, sides = [], []
    for index in range(len(dataset)):
        _, target = dataset[index]
        boxes = target["boxes"]
        counts.append(len(boxes))
        sides.extend((boxes[:, 2:] - boxes[:, :2]).max(dim=1).values.tolist())
    return {
        "split": split,
        "source_images": [tree_image.path.name for tree_image in dataset.images],
        "tiles": len(dataset),
        "trees_per_tile": _summary(counts),
        "trees": int(sum(counts)),
        "box_longest_side": _summary(sides),
    }


# ------------------------------------------------------------------------------------------------- examples
def write_examples(directory: str | os.PathLike = EXAMPLES_DIR, *, scenes: int = 4, classification: int = 2) -> list:
    """Write example PNGs from the test splits: the first ``scenes`` test scenes with at least 3 objects and both
    sides >= 128 px (``scene_test_<index>.png``) and the first ``classification`` test classification images with
    both sides >= 96 px (``classification_test_<index>.png``). Returns the written paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    scene_set = SceneDetection("test")
    for index in range(len(scene_set)):
        if len(written) == scenes:
            break
        image, masks, _ = scene_set.scene(index)
        if len(masks) >= 3 and min(image.shape[:2]) >= 128:
            written.append(directory / f"scene_test_{index:04d}.png")
            Image.fromarray(image).save(written[-1], optimize=True)
    classification_set = SceneClassification("test")
    found = 0
    for index in range(len(classification_set)):
        if found == classification:
            break
        image, _ = classification_set[index]
        if min(image.shape[1:]) >= 96:
            found += 1
            written.append(directory / f"classification_test_{index:04d}.png")
            Image.fromarray(image.permute(1, 2, 0).numpy()).save(written[-1], optimize=True)
    return written


def _palette() -> list[int]:
    rng = np.random.default_rng(0)
    colors = rng.integers(64, 256, size=(256, 3))
    colors[0] = 0
    return colors.astype(np.uint8).flatten().tolist()


def export(
    split: str, directory: str | os.PathLike, *, view: str = "scenes", size: int | None = None, glyphs: str = "auto"
) -> Path:
    """Write a split to ``directory`` for inspection or other tools; returns the written index file.

    view "scenes": ``images/<i>.png``, ``masks/<i>.png`` (palette PNG, pixel value = class 0..10),
    ``instances/<i>.png`` (pixel value = instance number 1..K, 0 = background, in the order of the boxes) and
    ``annotations.json`` ({"classes", "images": [{"file", "height", "width", "boxes" (XYXY), "labels"}]}).
    view "classification": ``images/<i>.png`` and ``labels.csv`` (file,label,class).
    """
    if view not in ("scenes", "classification"):
        raise ValueError(f"unknown view {view!r}; expected scenes or classification")
    directory = Path(directory)
    (directory / "images").mkdir(parents=True, exist_ok=True)
    if view == "classification":
        dataset = SceneClassification(split, size=size, glyphs=glyphs)
        rows = ["file,label,class"]
        for index in range(len(dataset)):
            image, label = dataset[index]
            name = f"images/{index:05d}.png"
            Image.fromarray(image.permute(1, 2, 0).numpy()).save(directory / name)
            rows.append(f"{name},{label},{CLASSES[label + 1]}")
        (directory / "labels.csv").write_text("\n".join(rows) + "\n")
        return directory / "labels.csv"
    dataset = SceneDetection(split, size=size, glyphs=glyphs)
    for folder in ("masks", "instances"):
        (directory / folder).mkdir(exist_ok=True)
    records = []
    for index in range(len(dataset)):
        image, masks, labels = dataset.scene(index)
        name = f"{index:05d}.png"
        Image.fromarray(image).save(directory / "images" / name)
        semantic = np.zeros(image.shape[:2], dtype=np.uint8)
        instances = np.zeros(image.shape[:2], dtype=np.uint8)
        for k, (mask, label) in enumerate(zip(masks, labels, strict=True)):
            semantic[mask], instances[mask] = label, k + 1
        semantic_png = Image.fromarray(semantic, mode="P")
        semantic_png.putpalette(_palette())
        semantic_png.save(directory / "masks" / name)
        Image.fromarray(instances).save(directory / "instances" / name)
        boxes = _tight_boxes(masks).tolist()
        records.append(
            {
                "file": f"images/{name}",
                "height": image.shape[0],
                "width": image.shape[1],
                "boxes": boxes,
                "labels": labels.tolist(),
            }
        )
    index_file = directory / "annotations.json"
    index_file.write_text(json.dumps({"classes": list(CLASSES), "images": records}))
    return index_file


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m zoo.data.datasets", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    stats = commands.add_parser("stats", help="print dataset statistics as JSON")
    stats.add_argument("--split", choices=SPLITS, action="append", help="split(s) (default: val and test)")
    stats.add_argument("--size", type=int, default=None, help="number of scene/classification items per split")
    stats.add_argument("--glyphs", choices=GLYPH_SOURCES, default="auto", help="glyph source of the train split")
    stats.add_argument("--trees", action="store_true", help="also TreeDetection (train/val need deepforest)")
    examples = commands.add_parser("examples", help="write the example images")
    examples.add_argument("directory", nargs="?", default=str(EXAMPLES_DIR))
    dump = commands.add_parser("export", help="write a split as PNG files + annotations for inspection")
    dump.add_argument("directory")
    dump.add_argument("--split", choices=SPLITS, default="test")
    dump.add_argument("--view", choices=("scenes", "classification"), default="scenes")
    dump.add_argument("--size", type=int, default=None)
    dump.add_argument("--glyphs", choices=GLYPH_SOURCES, default="auto")
    assets = commands.add_parser("build-assets", help="rebuild the shipped assets from the installed sources")
    assets.add_argument("directory", nargs="?", default=str(synth.DATA_DIR))
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except (ValueError, TypeError, FileNotFoundError) as error:
        print(f"{parser.prog} {args.command}: error: {error}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    if args.command == "stats":
        report = {}
        for split in args.split or ["val", "test"]:
            report[split] = {
                "scenes": scene_statistics(split, size=args.size, glyphs=args.glyphs),
                "classification": classification_statistics(split, size=args.size, glyphs=args.glyphs),
            }
            if args.trees:
                report[split]["trees"] = tree_statistics(split)
        json.dump(report, sys.stdout, indent=1)
        print()
    elif args.command == "export":
        print(export(args.split, args.directory, view=args.view, size=args.size, glyphs=args.glyphs))
    elif args.command == "examples":
        for path in write_examples(args.directory):
            print(path)
    else:
        synth.build_assets(args.directory)
        print(f"assets written to {args.directory}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
