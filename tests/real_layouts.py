"""Tiny datasets in the real datasets' layouts, written by the tests: a few images with known labels and boxes.

Each writer returns what the reader must give back (labels after decoding, boxes, class names)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image


def _rgb(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    return rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)


def _save_png(array: np.ndarray, path: Path, palette: bool = False) -> None:
    """uint8 (H, W, 3) as RGB; uint8 (H, W) as gray (values = labels) or, with ``palette``, as a palette PNG whose
    pixel indices are the labels (colors random, as VOC's)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if array.ndim == 2:
        height, width = array.shape
        image = Image.frombytes("P" if palette else "L", (width, height), np.ascontiguousarray(array).tobytes())
        if palette:
            colors = np.random.default_rng(0).integers(0, 256, size=(256, 3), dtype=np.uint8)
            image.putpalette(colors.flatten().tolist())
    else:
        image = Image.fromarray(array)
    image.save(path)


def _save_jpg(array: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, quality=95)


def write_ade20k(root: Path) -> dict[str, np.ndarray]:
    """ADEChallengeData2016 with 2 val and 1 train image; file labels include 0 (void) and 150."""
    rng = np.random.default_rng(1)
    base = root / "ADEChallengeData2016"
    expected = {}
    for split, name, shape in [("validation", "ADE_val_00000001", (12, 17)), ("validation", "ADE_val_00000002", (9, 8)),
                               ("training", "ADE_train_00000001", (10, 10))]:  # fmt: skip
        labels = rng.integers(0, 151, size=shape, dtype=np.uint8)
        labels[0, :3] = (0, 1, 150)
        _save_jpg(_rgb(rng, *shape), base / "images" / split / f"{name}.jpg")
        _save_png(labels, base / "annotations" / split / f"{name}.png")
        reduced = labels.astype(np.int64) - 1
        reduced[labels == 0] = 255
        expected[name] = reduced
    return expected


def write_voc(root: Path) -> dict[str, np.ndarray]:
    """VOCdevkit/VOC2012: 2 val images (palette PNGs with 255 borders), 1 train, 1 aug-only image (gray PNG in
    SegmentationClassAug), lists train/val/aug."""
    rng = np.random.default_rng(2)
    base = root / "VOCdevkit" / "VOC2012"
    expected = {}
    splits = {"val": ["2007_000033", "2007_000042"], "train": ["2007_000032"], "aug": ["2007_000032", "2008_000002"]}
    for image_id in ["2007_000033", "2007_000042", "2007_000032", "2008_000002"]:
        height, width = int(rng.integers(8, 15)), int(rng.integers(8, 15))
        labels = rng.integers(0, 21, size=(height, width), dtype=np.uint8)
        labels[0, :] = 255  # object border
        labels[:, -1] = 255
        _save_jpg(_rgb(rng, height, width), base / "JPEGImages" / f"{image_id}.jpg")
        if image_id == "2008_000002":
            _save_png(labels, base / "SegmentationClassAug" / f"{image_id}.png")
        else:
            _save_png(labels, base / "SegmentationClass" / f"{image_id}.png", palette=True)
        expected[image_id] = labels.astype(np.int64)
    for split, ids in splits.items():
        path = base / "ImageSets" / "Segmentation" / f"{split}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(f"{i}\n" for i in ids))
    return expected


#: Cityscapes label id -> train id, written out from the official table for the ids the test uses.
CITYSCAPES_IDS = {0: 255, 1: 255, 7: 0, 8: 1, 9: 255, 11: 2, 24: 11, 26: 13, 31: 16, 33: 18}


def write_cityscapes(root: Path) -> dict[str, np.ndarray]:
    """leftImg8bit + gtFine, val: one city image with labelIds only, one with labelIds and labelTrainIds."""
    rng = np.random.default_rng(3)
    expected = {}
    ids = np.array(sorted(CITYSCAPES_IDS), dtype=np.uint8)
    for city, stem, with_train_ids in [("frankfurt", "frankfurt_000000_000294", False),
                                       ("lindau", "lindau_000000_000019", True)]:  # fmt: skip
        labels = ids[rng.integers(0, len(ids), size=(8, 16))]
        _save_png(_rgb(rng, 8, 16), root / "leftImg8bit" / "val" / city / f"{stem}_leftImg8bit.png")
        gt = root / "gtFine" / "val" / city
        _save_png(labels, gt / f"{stem}_gtFine_labelIds.png")
        train_ids = np.vectorize(CITYSCAPES_IDS.get)(labels).astype(np.uint8)
        if with_train_ids:  # the trainIds file wins: make it differ from the mapped labelIds
            train_ids[0, 0] = 5
            _save_png(train_ids, gt / f"{stem}_gtFine_labelTrainIds.png")
        expected[stem] = train_ids.astype(np.int64)
    return expected


SEG_FOLDER_CLASSES = ["background", "road", "tree"]


def write_seg_folder(root: Path, count: int = 4, size: int = 32, seed: int = 4) -> dict[str, np.ndarray]:
    """images/ + masks/ + classes.txt with 3 classes: a dark background, a gray band (road), a green disk (tree),
    255 on a thin frame. Learnable from color alone."""
    rng = np.random.default_rng(seed)
    (root / "classes.txt").parent.mkdir(parents=True, exist_ok=True)
    (root / "classes.txt").write_text("\n".join(SEG_FOLDER_CLASSES) + "\n")
    expected = {}
    yy, xx = np.mgrid[:size, :size]
    for k in range(count):
        labels = np.zeros((size, size), dtype=np.uint8)
        top = int(rng.integers(4, size // 2))
        labels[top : top + size // 4] = 1
        cy, cx, r = int(rng.integers(8, size - 8)), int(rng.integers(8, size - 8)), int(rng.integers(4, 8))
        labels[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = 2
        colors = np.array([[20, 20, 30], [128, 128, 128], [30, 180, 40]], dtype=np.int16)
        image = colors[labels] + rng.integers(-10, 11, size=(size, size, 3))
        labels[0, :] = 255
        stem = f"img_{k:02d}"
        _save_png(np.clip(image, 0, 255).astype(np.uint8), root / "images" / f"{stem}.png")
        _save_png(labels, root / "masks" / f"{stem}.png", palette=True)
        expected[stem] = labels.astype(np.int64)
    return expected


def write_coco(root: Path) -> dict:
    """annotations/instances_val2017.json + val2017/: categories 1 (person) and 18 (dog); image 1 has two boxes
    (one crowd), image 2 none."""
    rng = np.random.default_rng(5)
    images = [{"id": 1, "file_name": "000000000001.jpg", "height": 20, "width": 30},
              {"id": 2, "file_name": "000000000002.jpg", "height": 10, "width": 12}]  # fmt: skip
    for image in images:
        _save_jpg(_rgb(rng, image["height"], image["width"]), root / "val2017" / image["file_name"])
    annotations = [
        {"id": 1, "image_id": 1, "category_id": 18, "bbox": [2.0, 3.0, 10.0, 5.0], "area": 50.0, "iscrowd": 0},
        {"id": 2, "image_id": 1, "category_id": 1, "bbox": [15.0, 1.0, 4.5, 12.0], "area": 54.0, "iscrowd": 1},
    ]
    categories = [{"id": 18, "name": "dog", "supercategory": "animal"},
                  {"id": 1, "name": "person", "supercategory": "person"}]  # fmt: skip
    path = root / "annotations" / "instances_val2017.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    return {
        "classes": ("background", "person", "dog"),
        "boxes": [[[2.0, 3.0, 12.0, 8.0], [15.0, 1.0, 19.5, 13.0]], []],
        "labels": [[2, 1], []],
        "iscrowd": [[0, 1], []],
    }


def write_voc_detection(root: Path) -> dict:
    """VOCdevkit/VOC2007 with one val image: a dog and a difficult person."""
    rng = np.random.default_rng(6)
    base = root / "VOCdevkit" / "VOC2007"
    _save_jpg(_rgb(rng, 24, 32), base / "JPEGImages" / "000001.jpg")
    objects = [("dog", 0, (3, 4, 20, 18)), ("person", 1, (22, 2, 30, 23))]
    xml = ["<annotation><filename>000001.jpg</filename><size><width>32</width><height>24</height>"
           "<depth>3</depth></size>"]  # fmt: skip
    for name, difficult, (x1, y1, x2, y2) in objects:
        xml.append(f"<object><name>{name}</name><difficult>{difficult}</difficult><bndbox><xmin>{x1}</xmin>"
                   f"<ymin>{y1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>")  # fmt: skip
    xml.append("</annotation>")
    (base / "Annotations").mkdir(parents=True, exist_ok=True)
    (base / "Annotations" / "000001.xml").write_text("".join(xml))
    (base / "ImageSets" / "Main").mkdir(parents=True, exist_ok=True)
    (base / "ImageSets" / "Main" / "val.txt").write_text("000001\n")
    return {"boxes": [[3, 4, 20, 18], [22, 2, 30, 23]], "labels": [12, 15], "iscrowd": [0, 1]}


def write_image_folder(root: Path) -> list[str]:
    """train/<class>/<image>: 2 classes x 2 images."""
    rng = np.random.default_rng(7)
    classes = ["cat", "dog"]
    for name in classes:
        for k in range(2):
            _save_png(_rgb(rng, 10 + k, 12), root / "train" / name / f"{name}_{k}.png")
    return classes
