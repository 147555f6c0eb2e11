"""Pictures of predictions: ``python -m zoo predict [MODEL IMAGE...] [--weights ENTRY] [--output DIR]``.

For every image a PNG a person can look at:

- classifiers: the image with a side panel of the top-5 classes and their probabilities;
- segmenters: the image beside the predicted segmentation drawn over it
  (``torchvision.utils.draw_segmentation_masks``) with a legend of the classes found;
- detectors: the detected boxes (``torchvision.utils.draw_bounding_boxes``) with class and score.

Without a model, :func:`predict_all` runs every weights entry of the registry on the example images the
package ships (:data:`zoo.data.EXAMPLES_DIR`), fully offline.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont, UnidentifiedImageError
from torch import Tensor, nn
from torchvision.utils import draw_bounding_boxes, draw_segmentation_masks

from ..data import EXAMPLES_DIR
from ..models.presets import KeepRatioPreprocess
from ..models.registry import get_model_weights, list_models
from . import tasks
from .evaluate import load_model
from .tasks import default_image_size

__all__ = ["read_image", "predict_image", "predict_files", "predict_all", "PALETTE"]

#: Class colors (index = label), background first.
PALETTE = [
    (0, 0, 0), (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
    (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212),
]  # fmt: skip
DISPLAY_SIDE = 384
DETECTION_SCORE = 0.5
FALLBACK_DETECTIONS = 3
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def read_image(path: str | os.PathLike) -> Tensor:
    """A file as a (3, H, W) uint8 RGB tensor; FileNotFoundError / ValueError (naming the file) otherwise."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"image {str(path)!r} does not exist")
    if path.is_dir():
        raise ValueError(f"{str(path)!r} is a directory, not an image file")
    try:
        with Image.open(path) as image:
            rgb = image.convert("RGB")
    except (UnidentifiedImageError, OSError) as error:
        raise ValueError(f"{str(path)!r} is not an image file PIL can read ({error.__class__.__name__})") from None
    return torch.from_numpy(np.asarray(rgb).copy()).permute(2, 0, 1).contiguous()


@functools.lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _display(image: Tensor) -> Tensor:
    """``image`` (uint8) scaled so its longer side is :data:`DISPLAY_SIDE` (small images enlarged)."""
    h, w = image.shape[-2:]
    scale = DISPLAY_SIDE / max(h, w)
    size = [max(1, round(h * scale)), max(1, round(w * scale))]
    out = F.interpolate(image[None].float(), size=size, mode="bilinear", antialias=True, align_corners=False)
    return out[0].round().clamp(0, 255).to(torch.uint8)


def _to_pil(image: Tensor) -> Image.Image:
    return Image.fromarray(image.permute(1, 2, 0).contiguous().numpy())


def _classification_picture(image: Tensor, logits: Tensor, categories: list[str], title: str) -> Image.Image:
    probabilities = logits.float().softmax(-1)
    top = probabilities.topk(min(5, probabilities.numel()))
    shown = _to_pil(_display(image))
    measure = ImageDraw.Draw(shown)
    panel_width = max(300, int(measure.textlength(title, font=_font(16))) + 32)
    line = 44
    canvas = Image.new("RGB", (shown.width + panel_width, max(shown.height, 90 + 5 * line)), "white")
    canvas.paste(shown, (0, 0))
    draw = ImageDraw.Draw(canvas)
    x = shown.width + 16
    draw.text((x, 12), title, fill="black", font=_font(16))
    draw.text((x, 36), "top-5 classes", fill=(90, 90, 90), font=_font(14))
    for rank, (p, index) in enumerate(zip(top.values.tolist(), top.indices.tolist(), strict=True)):
        y = 70 + rank * line
        draw.rectangle((x, y + 22, x + int((panel_width - 40) * p), y + 32), fill=PALETTE[1 + index % 10])
        draw.text((x, y), f"{rank + 1}. {categories[index]}  {100 * p:.1f}%", fill="black", font=_font(16))
    return canvas


def _segmentation_picture(
    image: Tensor, logits: Tensor, categories: list[str], title: str, palette: list | None = None
) -> Image.Image:
    """Image beside its segmentation. ``palette``: the dataset's colors (index = label), else :data:`PALETTE`.
    Label 0 counts as background (not drawn) only when the first category is named "background"."""
    shown = _display(image)
    h, w = shown.shape[-2:]
    labels = F.interpolate(logits[None].float(), size=[h, w], mode="bilinear").argmax(1)[0]
    background = {0} if categories and categories[0].strip().lower() == "background" else set()
    present = [c for c in labels.unique().tolist() if c not in background]
    # by share of pixels, largest first (datasets such as ADE20K have many classes per picture)
    present.sort(key=lambda c: -int((labels == c).sum()))

    def color(c: int) -> tuple[int, int, int]:
        return tuple(int(v) for v in palette[c]) if palette else PALETTE[c % len(PALETTE)]

    overlay = shown
    if present:
        masks = torch.stack([labels == c for c in present])
        overlay = draw_segmentation_masks(shown, masks, alpha=0.55, colors=[color(c) for c in present])
    columns = max(1, (2 * w + 8) // 250)
    legend_height = 40 + 24 * ((len(present) + columns - 1) // columns)
    canvas = Image.new("RGB", (2 * w + 8, h + legend_height), "white")
    canvas.paste(_to_pil(shown), (0, 0))
    canvas.paste(_to_pil(overlay), (w + 8, 0))
    draw = ImageDraw.Draw(canvas)
    draw.text((8, h + 8), title, fill="black", font=_font(16))
    for i, c in enumerate(present):
        x, y = 8 + (i % columns) * 250, h + 34 + (i // columns) * 24
        draw.rectangle((x, y + 2, x + 16, y + 18), fill=color(c))
        share = 100 * float((labels == c).float().mean())
        draw.text((x + 22, y), f"{categories[c].strip()} ({share:.1f}% of pixels)", fill="black", font=_font(14))
    if not present:
        draw.text((8, h + 32), "no object found (all background)", fill="black", font=_font(14))
    return canvas


def _detection_picture(image: Tensor, detection: dict, categories: list[str], title: str) -> Image.Image:
    shown = _display(image)
    scale = shown.shape[-1] / image.shape[-1]
    keep = detection["scores"] >= DETECTION_SCORE
    note = f"{int(keep.sum())} detection(s) with score >= {DETECTION_SCORE}"
    if not keep.any():  # show the best few, said so in the footer
        keep = torch.arange(len(detection["scores"])) < FALLBACK_DETECTIONS
        note = f"no detection with score >= {DETECTION_SCORE}; the {int(keep.sum())} best shown"
    boxes = detection["boxes"][keep].float() * scale
    labels = detection["labels"][keep].tolist()
    scores = detection["scores"][keep].tolist()
    colors = [PALETTE[c % len(PALETTE)] for c in labels]
    drawn = draw_bounding_boxes(shown, boxes, colors=colors, width=3) if len(labels) else shown
    picture = _to_pil(drawn)
    font = _font(16)
    probe = ImageDraw.Draw(picture)
    width = max(picture.width, 16 + max(probe.textlength(line, font=font) for line in (title, note)))
    canvas = Image.new("RGB", (int(width), picture.height + 56), "white")
    canvas.paste(picture, (0, 0))
    draw = ImageDraw.Draw(canvas)
    for box, label, score, color in zip(boxes.tolist(), labels, scores, colors, strict=True):
        text = f"{categories[label]} {score:.2f}"
        x = min(box[0], picture.width - draw.textlength(text, font=_font(14)) - 4)
        y = max(0, box[1] - 18)
        left, top, right, bottom = draw.textbbox((x, y), text, font=_font(14))
        draw.rectangle((left - 2, top - 2, right + 2, bottom + 2), fill=color)
        draw.text((x, y), text, fill="black" if sum(color) > 380 else "white", font=_font(14))
    draw.text((8, picture.height + 6), title, fill="black", font=font)
    draw.text((8, picture.height + 30), note, fill="black", font=font)
    return canvas


@torch.no_grad()
def predict_image(model: nn.Module, image: Tensor, meta: dict, title: str) -> Image.Image:
    """The picture of ``model``'s prediction on one (3, H, W) uint8 image (``meta``: its weights' meta).

    Segmenters whose weights record a keep-ratio ``test_protocol`` (mmsegmentation's entries) see the image
    resized as that protocol says (whole image, no sliding window) and are drawn with the ``palette`` and
    class names of ``meta``; the others see a square ``input_size`` image.
    """
    task = tasks.task_of(model)
    categories = list(meta["categories"])
    protocol = meta.get("test_protocol") or {}
    if task == "segmentation" and protocol.get("keep_ratio"):
        x = KeepRatioPreprocess(protocol["scale"])(image)[None]
        logits = model.eval()(x)["out"][0]
        return _segmentation_picture(image, logits, categories, title, meta.get("palette"))
    size = meta.get("input_size")
    size = int(size[0]) if size else default_image_size(task)
    preprocess = tasks.entry_preprocess(task, meta, size)  # e.g. ImageNet's warp to 256 then crop 224
    if preprocess is not None:
        output = model.eval()(preprocess(image)[None])
    else:
        output = tasks.predict_batch(task, model.eval(), [image], size, torch.device("cpu"))
    if task == "classification":
        return _classification_picture(image, output[0], categories, title)
    if task == "segmentation":
        return _segmentation_picture(image, output[0], categories, title, meta.get("palette"))
    return _detection_picture(image, output[0], categories, title)


def _image_files(paths: list[str]) -> list[Path]:
    files: list[Path] = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise FileNotFoundError(f"the directory {name!r} holds no image file")
            files.extend(found)
        elif not path.exists():
            raise FileNotFoundError(f"{name!r} does not exist")
        else:
            files.append(path)
    return files


def predict_files(model_name: str, weights: str, paths: list[str], output: str | os.PathLike) -> list[Path]:
    """Predict every image of ``paths`` (files or directories) with ``model_name`` and ``weights``;
    write one PNG per image into ``output``; return the written paths."""
    files = _image_files(paths)
    images = [read_image(f) for f in files]  # every file is checked before any work
    model, meta = load_model(model_name, weights)
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    written = []
    for file, image in zip(files, images, strict=True):
        picture = predict_image(model, image, meta, f"{model_name} ({weights})")
        written.append(output / f"{file.stem}_{model_name}.png")
        picture.save(written[-1])
    return written


def shipped_entries() -> list[tuple[str, str]]:
    """(model name, ``"Enum.ENTRY"``) of every weights entry shipped with the package (usable offline), DEFAULT
    aliases once; entries sourced from the Hub or an upstream file only are left out (they need a download)."""
    from ..hub.files import shipped_directory

    entries = []
    for name in list_models():
        enum = get_model_weights(name)
        for member in enum:  # aliases (DEFAULT) are not iterated
            if shipped_directory(member.repo) is not None:
                entries.append((name, f"{enum.__name__}.{member.name}"))
    return entries


def predict_all(output: str | os.PathLike, examples: str | os.PathLike | None = None) -> list[Path]:
    """Every shipped weights entry on the shipped example images (classifiers on the
    ``classification_*`` pictures, the others on the ``scene_*`` ones); returns the written PNGs."""
    examples = Path(examples) if examples is not None else EXAMPLES_DIR
    if not examples.is_dir():
        raise FileNotFoundError(f"the examples directory {str(examples)!r} does not exist")
    written = []
    for name, entry in shipped_entries():
        prefix = "classification_" if tasks.task_of_builder(name) == "classification" else "scene_"
        files = sorted(str(p) for p in examples.glob(f"{prefix}*.png"))
        if files:
            written += predict_files(name, entry, files, Path(output) / name)
    return written
