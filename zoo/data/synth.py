"""Data sources, shipped assets and the scene compositor behind :mod:`zoo.data`.

Everything here is numpy + Pillow, deterministic for a given ``numpy.random.Generator``: Pillow's
resampling is integer arithmetic, and the compositor does only exactly rounded float operations
(``+ - * /``) on pixels, so the same seed gives the same bytes on every machine.

Sources (read from the installed packages, never from the network):

* Fashion-MNIST glyphs: Debian's ``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``, idx gz files;
  override the directory with the ``SPP_ZOO_FASHION_MNIST`` environment variable or a dataset's ``root``),
  or the subset shipped in ``zoo/data/fashion_mnist_subset.npz``.
* background photos: downscaled copies of scikit-image's CC0 / public-domain sample images, shipped in
  ``zoo/data/backgrounds/`` (rebuilt from an installed scikit-image by :func:`build_assets`).
* deepforest's annotated aerial images: read from the installed ``deepforest`` package's ``data/`` folder
  (located with ``importlib.util.find_spec``, never imported); the held-out image ``OSBS_029`` is shipped in
  ``zoo/data/trees/``.
"""

from __future__ import annotations

import colorsys
import csv
import functools
import gzip
import importlib.util
import math
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

DATA_DIR = Path(__file__).resolve().parent
GLYPH_FILE = DATA_DIR / "fashion_mnist_subset.npz"
BACKGROUND_DIR = DATA_DIR / "backgrounds"
TREE_DIR = DATA_DIR / "trees"

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_ENV = "SPP_ZOO_FASHION_MNIST"
FASHION_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
INSTALL_FASHION_MNIST = "apt-get install dataset-fashion-mnist"
INSTALL_DEEPFOREST = "pip install --no-deps deepforest"

# scikit-image sample images used as backgrounds (all CC0 or public domain, see zoo/data/LICENSES.md)
BACKGROUND_SOURCES = (
    "astronaut.png",
    "brick.png",
    "camera.png",
    "chelsea.png",
    "coffee.png",
    "grass.png",
    "gravel.png",
    "rocket.jpg",
    "hubble_deep_field.jpg",
    "clock_motion.png",
)
BACKGROUND_MAX_SIDE = 256

# glyphs shipped per class: val and test from Fashion-MNIST's test file (disjoint), the train subset from its train file
SHIPPED_GLYPHS_PER_CLASS = {"test": 30, "val": 30, "train": 100}

GLYPH_THRESHOLD = 24  # a resized glyph pixel belongs to the object when its intensity (0..255) exceeds this
# an object whose visible (not occluded) part is under any of these is not drawn at all
MIN_VISIBLE_FRACTION = 0.3  # of its pixels
MIN_VISIBLE_PIXELS = 24
MIN_VISIBLE_BOX_SIDE = 4  # both sides of the box of its visible pixels


# ----------------------------------------------------------------------------------------------- Fashion-MNIST
def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an idx file (optionally gzip-compressed) of unsigned bytes into an array of its shape."""
    path = Path(path)
    if path.suffix == ".gz":
        with gzip.open(path) as handle:
            raw = handle.read()
    else:
        raw = path.read_bytes()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path} is not an idx file of unsigned bytes")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def fashion_mnist_dir(root: str | os.PathLike | None = None) -> Path:
    """The directory holding Fashion-MNIST's idx files: ``root``, else $SPP_ZOO_FASHION_MNIST, else Debian's."""
    if root is not None:
        return Path(root)
    return Path(os.environ.get(FASHION_MNIST_ENV) or FASHION_MNIST_DIR)


def find_idx_file(directory: Path, name: str) -> Path | None:
    """``name`` (an idx .gz file) in ``directory`` or in torchvision's ``FashionMNIST/raw`` under it, gzipped or not."""
    for folder in (directory, directory / "FashionMNIST" / "raw"):
        for candidate in (folder / name, folder / name.removesuffix(".gz")):
            if candidate.is_file():
                return candidate
    return None


def has_fashion_mnist(root: str | os.PathLike | None = None) -> bool:
    directory = fashion_mnist_dir(root)
    return all(find_idx_file(directory, name) is not None for name in FASHION_MNIST_FILES["train"])


@functools.lru_cache(maxsize=4)
def load_fashion_mnist(root: str | None, part: str) -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST's ``part`` ("train": 60000 or "test": 10000) as (uint8 (N, 28, 28), int64 (N,) in 0..9).

    ``root`` holds the idx files (gzipped or not; Debian's layout) or is a torchvision ``FashionMNIST`` root."""
    directory = fashion_mnist_dir(root)
    image_name, label_name = FASHION_MNIST_FILES[part]
    image_path, label_path = find_idx_file(directory, image_name), find_idx_file(directory, label_name)
    if image_path is None or label_path is None:
        raise FileNotFoundError(
            f"Fashion-MNIST not found in {directory} (needs {image_name}, {label_name}); "
            f"install it with `{INSTALL_FASHION_MNIST}` or pass root=<directory with the idx files>"
        )
    images = read_idx(image_path)
    labels = read_idx(label_path).astype(np.int64)
    if images.shape != (len(labels), 28, 28):
        raise ValueError(f"unexpected Fashion-MNIST shapes in {directory}: {images.shape}, {labels.shape}")
    return images, labels


@functools.lru_cache(maxsize=1)
def load_shipped_glyphs() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The shipped glyph subset: {"train" | "val" | "test": (uint8 (N, 28, 28), int64 (N,))}."""
    with np.load(GLYPH_FILE) as archive:
        return {
            part: (archive[f"{part}_images"], archive[f"{part}_labels"].astype(np.int64))
            for part in SHIPPED_GLYPHS_PER_CLASS
        }


def first_per_class(labels: np.ndarray, start: int, count: int) -> np.ndarray:
    """Indices of the ``start``-th to ``start + count``-th occurrence of every class, class by class."""
    return np.concatenate([np.flatnonzero(labels == c)[start : start + count] for c in range(10)])


# ----------------------------------------------------------------------------------------------- backgrounds
@functools.lru_cache(maxsize=1)
def load_backgrounds() -> tuple[np.ndarray, ...]:
    """The shipped background photos as uint8 (H, W, 3) arrays, in BACKGROUND_SOURCES order."""
    photos = []
    for name in BACKGROUND_SOURCES:
        with Image.open(BACKGROUND_DIR / (Path(name).stem + ".png")) as image:
            photos.append(np.asarray(image.convert("RGB")))
    return tuple(photos)


# ----------------------------------------------------------------------------------------------- deepforest
@dataclass(frozen=True)
class TreeImage:
    """One annotated aerial image: its file and its boxes (float32 (K, 4) XYXY pixels)."""

    path: Path
    boxes: np.ndarray


def deepforest_data_dir() -> Path:
    """``deepforest/data`` of the installed package (found without importing deepforest)."""
    spec = importlib.util.find_spec("deepforest")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"the deepforest package is not installed; its annotated aerial images are read from its files: "
            f"`{INSTALL_DEEPFOREST}` (it is not imported, so its dependencies are not needed)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def read_voc_boxes(xml_path: str | os.PathLike) -> tuple[str, np.ndarray]:
    """(image file name, float32 (K, 4) XYXY boxes) of a Pascal VOC annotation file; every object is kept."""
    root = ET.parse(xml_path).getroot()
    boxes = []
    for obj in root.iter("object"):
        box = obj.find("bndbox")
        boxes.append([float(box.findtext(key)) for key in ("xmin", "ymin", "xmax", "ymax")])
    return root.findtext("filename"), np.asarray(boxes, dtype=np.float32).reshape(-1, 4)


def read_csv_boxes(csv_path: str | os.PathLike) -> np.ndarray:
    """float32 (K, 4) XYXY boxes of a deepforest-style CSV (image_path,xmin,ymin,xmax,ymax,label)."""
    with open(csv_path, newline="") as handle:
        rows = [[float(row[key]) for key in ("xmin", "ymin", "xmax", "ymax")] for row in csv.DictReader(handle)]
    return np.asarray(rows, dtype=np.float32).reshape(-1, 4)


def tree_images(split: str) -> list[TreeImage]:
    """The aerial images of a split: train = deepforest's two YELL crops, val = SOAP_061, test = OSBS_029 (shipped)."""
    if split == "test":
        return [TreeImage(TREE_DIR / "OSBS_029.png", read_csv_boxes(TREE_DIR / "OSBS_029.csv"))]
    directory = deepforest_data_dir()
    stems = {
        "train": ("2019_YELL_2_528000_4978000_image_crop2", "2019_YELL_2_541000_4977000_image_crop"),
        "val": ("SOAP_061",),
    }[split]
    images = []
    for stem in stems:
        _, boxes = read_voc_boxes(directory / f"{stem}.xml")
        images.append(TreeImage(directory / f"{stem}.png", boxes))
    return images


def tile_origins(length: int, tile: int) -> list[int]:
    """Tile starts covering ``range(length)`` with stride ``tile``; the last tile is shifted back to end at length."""
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile + 1, tile))
    if starts[-1] + tile < length:
        starts.append(length - tile)
    return starts


def clip_boxes_to_tile(
    boxes: np.ndarray, x0: int, y0: int, width: int, height: int, min_kept_fraction: float
) -> np.ndarray:
    """Boxes shifted into a tile's frame and clipped to it; boxes keeping less than the fraction of their area go."""
    shifted = boxes - np.asarray([x0, y0, x0, y0], dtype=np.float32)
    clipped = shifted.copy()
    clipped[:, 0::2] = clipped[:, 0::2].clip(0, width)
    clipped[:, 1::2] = clipped[:, 1::2].clip(0, height)
    area = (shifted[:, 2] - shifted[:, 0]) * (shifted[:, 3] - shifted[:, 1])
    kept_area = (clipped[:, 2] - clipped[:, 0]) * (clipped[:, 3] - clipped[:, 1])
    keep = (kept_area > 0) & (kept_area >= min_kept_fraction * area)
    return clipped[keep]


# ----------------------------------------------------------------------------------------------- compositing
def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return math.exp(rng.uniform(math.log(low), math.log(high)))


def _random_color(rng: np.random.Generator) -> np.ndarray:
    hue, saturation, value = rng.uniform(0, 1), rng.uniform(0.35, 1.0), rng.uniform(0.55, 1.0)
    return np.asarray(colorsys.hsv_to_rgb(hue, saturation, value), dtype=np.float32) * 255


def sample_background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A random crop of a random background photo, resized to (height, width), flipped and color-cast at random."""
    photos = load_backgrounds()
    photo = photos[rng.integers(len(photos))]
    photo_h, photo_w = photo.shape[:2]
    # the crop has the target's aspect ratio and covers 35..100 % of the photo's largest such crop
    fit = min(photo_h / height, photo_w / width)
    zoom = rng.uniform(0.35, 1.0)
    crop_h = max(8, min(photo_h, round(height * fit * zoom)))
    crop_w = max(8, min(photo_w, round(width * fit * zoom)))
    top = int(rng.integers(photo_h - crop_h + 1))
    left = int(rng.integers(photo_w - crop_w + 1))
    crop = Image.fromarray(photo[top : top + crop_h, left : left + crop_w])
    image = np.asarray(crop.resize((width, height), Image.BILINEAR), dtype=np.float32)
    if rng.random() < 0.5:
        image = image[:, ::-1]
    gain = rng.uniform(0.7, 1.15, size=3).astype(np.float32)
    return np.clip(image * gain, 0, 255)


def render_glyph(
    rng: np.random.Generator, glyph: np.ndarray, longest_side: int, max_side: int, textures: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """A Fashion-MNIST glyph cropped to its object, resized so its longest side is ``longest_side`` (with a random
    aspect jitter; grown up to ``max_side`` until the object has 2 * MIN_VISIBLE_PIXELS pixels) and tinted with a
    random color (half of the time also shaded by a photo texture).

    Returns (float32 (h, w, 3) colors, bool (h, w) mask), the mask being the resized pixels above GLYPH_THRESHOLD.
    """
    rows = np.flatnonzero((glyph > GLYPH_THRESHOLD).any(axis=1))
    cols = np.flatnonzero((glyph > GLYPH_THRESHOLD).any(axis=0))
    crop = glyph[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    aspect = _log_uniform(rng, 0.8, 1.25) * crop.shape[1] / crop.shape[0]  # width / height
    while True:
        if aspect >= 1:
            width, height = longest_side, max(2, round(longest_side / aspect))
        else:
            width, height = max(2, round(longest_side * aspect)), longest_side
        intensity = np.asarray(Image.fromarray(crop).resize((width, height), Image.BILINEAR), dtype=np.float32)
        mask = intensity > GLYPH_THRESHOLD
        if mask.sum() >= 2 * MIN_VISIBLE_PIXELS or longest_side >= max_side:
            break
        longest_side += 2
    shade = 0.3 + 0.7 * (intensity / 255)
    if textures and rng.random() < 0.5:
        texture = sample_background(rng, height, width).mean(axis=2) / 255
        shade = shade * (0.55 + 0.45 * texture)
    colors = shade[:, :, None] * _random_color(rng)
    return colors, mask


def _visible_owners(placed: list[tuple[int, int, np.ndarray]], height: int, width: int) -> np.ndarray:
    """int (H, W) map of the topmost placed object at each pixel (-1 = background); later objects are on top."""
    owner = np.full((height, width), -1, dtype=np.int64)
    for k, (top, left, mask) in enumerate(placed):
        region = owner[top : top + mask.shape[0], left : left + mask.shape[1]]
        region[mask] = k
    return owner


def _visible_enough(visible: np.ndarray, pixels: int) -> bool:
    count = int(visible.sum())
    if count < MIN_VISIBLE_PIXELS or count < MIN_VISIBLE_FRACTION * pixels:
        return False
    rows, cols = np.flatnonzero(visible.any(axis=1)), np.flatnonzero(visible.any(axis=0))
    return rows[-1] - rows[0] + 1 >= MIN_VISIBLE_BOX_SIDE and cols[-1] - cols[0] + 1 >= MIN_VISIBLE_BOX_SIDE


def compose_scene(
    rng: np.random.Generator,
    glyphs: np.ndarray,
    glyph_labels: np.ndarray,
    *,
    side_range: tuple[int, int],
    object_range: tuple[int, int],
    count_range: tuple[int, int],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A scene: random-size background photo with ``count_range`` glyph objects pasted at random scales/positions.

    Objects whose visible part (after occlusion by later objects) is under MIN_VISIBLE_FRACTION of their pixels,
    MIN_VISIBLE_PIXELS pixels or MIN_VISIBLE_BOX_SIDE box side are not drawn.

    Returns (uint8 (H, W, 3) image, bool (K, H, W) visible instance masks, int64 (K,) labels in 0..9), instances in
    drawing order (later ones occlude earlier ones).
    """
    height = int(rng.integers(side_range[0], side_range[1] + 1))
    width = int(rng.integers(side_range[0], side_range[1] + 1))
    image = sample_background(rng, height, width)
    count = int(rng.integers(count_range[0], count_range[1] + 1))
    largest = min(object_range[1], height, width)
    objects = []  # (top, left, colors, mask, label)
    for _ in range(count):
        index = int(rng.integers(len(glyphs)))
        side = round(_log_uniform(rng, object_range[0], max(object_range[0], largest)))
        colors, mask = render_glyph(rng, glyphs[index], side, largest)
        top = int(rng.integers(height - mask.shape[0] + 1))
        left = int(rng.integers(width - mask.shape[1] + 1))
        objects.append((top, left, colors, mask, int(glyph_labels[index])))
    # drop objects that end up (almost) hidden, until every remaining one is visible enough: removing an object
    # only uncovers the ones below it, so this terminates with every kept object above the thresholds
    while True:
        owner = _visible_owners([(t, lft, m) for t, lft, _, m, _ in objects], height, width)
        keep = [
            k
            for k, (top, left, _, mask, _) in enumerate(objects)
            if _visible_enough(owner[top : top + mask.shape[0], left : left + mask.shape[1]] == k, int(mask.sum()))
        ]
        if len(keep) == len(objects):
            break
        objects = [objects[k] for k in keep]
    for top, left, colors, mask, _ in objects:
        region = image[top : top + mask.shape[0], left : left + mask.shape[1]]
        region[mask] = colors[mask]
    instance_masks = np.stack([owner == k for k in range(len(objects))]) if objects else np.zeros((0, height, width))
    labels = np.asarray([label for *_, label in objects], dtype=np.int64)
    return np.round(image).astype(np.uint8), instance_masks.astype(bool), labels


def compose_single(
    rng: np.random.Generator,
    glyphs: np.ndarray,
    glyph_labels: np.ndarray,
    *,
    side_range: tuple[int, int],
    min_object: int,
    min_object_fraction: float,
) -> tuple[np.ndarray, int]:
    """A classification image: one glyph object at a random scale and position on a random-size background; the
    object's longest side is log-uniform from max(min_object, min_object_fraction * shorter side) to the shorter side.

    Returns (uint8 (H, W, 3) image, label in 0..9).
    """
    height = int(rng.integers(side_range[0], side_range[1] + 1))
    width = int(rng.integers(side_range[0], side_range[1] + 1))
    image = sample_background(rng, height, width)
    index = int(rng.integers(len(glyphs)))
    shorter = min(height, width)
    side = round(_log_uniform(rng, max(min_object, min_object_fraction * shorter), shorter))
    colors, mask = render_glyph(rng, glyphs[index], side, min(height, width))
    top = int(rng.integers(height - mask.shape[0] + 1))
    left = int(rng.integers(width - mask.shape[1] + 1))
    region = image[top : top + mask.shape[0], left : left + mask.shape[1]]
    region[mask] = colors[mask]
    return np.round(image).astype(np.uint8), int(glyph_labels[index])


# ----------------------------------------------------------------------------------------------- asset building
def build_assets(out_dir: str | os.PathLike = DATA_DIR, fashion_mnist_root: str | os.PathLike | None = None) -> None:
    """Rebuild the shipped assets from the installed sources (Debian's Fashion-MNIST, scikit-image, deepforest).

    Writes ``fashion_mnist_subset.npz`` (glyphs + their indices in the original files), ``backgrounds/*.png``
    (longest side BACKGROUND_MAX_SIDE, Lanczos) and ``trees/OSBS_029.{png,csv}``.
    """
    out_dir = Path(out_dir)
    test_images, test_labels = load_fashion_mnist(
        None if fashion_mnist_root is None else str(fashion_mnist_root), "test"
    )
    train_images, train_labels = load_fashion_mnist(
        None if fashion_mnist_root is None else str(fashion_mnist_root), "train"
    )
    per_class = SHIPPED_GLYPHS_PER_CLASS
    picks = {
        "test": (test_images, test_labels, first_per_class(test_labels, 0, per_class["test"])),
        "val": (test_images, test_labels, first_per_class(test_labels, per_class["test"], per_class["val"])),
        "train": (train_images, train_labels, first_per_class(train_labels, 0, per_class["train"])),
    }
    arrays = {}
    for part, (images, labels, index) in picks.items():
        arrays[f"{part}_images"] = images[index]
        arrays[f"{part}_labels"] = labels[index].astype(np.uint8)
        arrays[f"{part}_source_index"] = index.astype(np.int32)
    out_dir.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out_dir / GLYPH_FILE.name, **arrays)

    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("scikit-image is not installed (`pip install scikit-image`): backgrounds come from it")
    skimage_data = Path(next(iter(spec.submodule_search_locations))) / "data"
    (out_dir / BACKGROUND_DIR.name).mkdir(exist_ok=True)
    for name in BACKGROUND_SOURCES:
        with Image.open(skimage_data / name) as photo:
            photo = photo.convert("L" if photo.mode in ("L", "I", "I;16") else "RGB")
            scale = BACKGROUND_MAX_SIDE / max(photo.size)
            size = (round(photo.width * scale), round(photo.height * scale))
            photo.resize(size, Image.LANCZOS).save(
                out_dir / BACKGROUND_DIR.name / (Path(name).stem + ".png"), optimize=True
            )

    source = deepforest_data_dir()
    (out_dir / TREE_DIR.name).mkdir(exist_ok=True)
    with Image.open(source / "OSBS_029.png") as photo:
        photo.convert("RGB").save(out_dir / TREE_DIR.name / "OSBS_029.png", optimize=True)
    _, boxes = read_voc_boxes(source / "OSBS_029.xml")
    with open(out_dir / TREE_DIR.name / "OSBS_029.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image_path", "xmin", "ymin", "xmax", "ymax", "label"])
        for box in boxes:
            writer.writerow(["OSBS_029.png", *(int(v) if float(v).is_integer() else float(v) for v in box), "Tree"])
