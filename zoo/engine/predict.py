"""Pictures of predictions: ``python -m zoo predict [MODEL IMAGE...] [--weights ENTRY] [--output DIR]``.

Inputs are image files, directories (searched recursively) and glob patterns (``'photos/**/*.jpg'``).
Images are streamed: read, predicted, drawn and written one at a time, so memory does not grow with
their number. Outputs mirror the inputs' subfolders under the output directory (``DIR/sub/x.jpg`` ->
``OUT/sub/x_MODEL.png``); names that would still clash get ``-2``, ``-3``... before ``_MODEL``. A file
named on the command line that is not an image is an error; an unreadable file found in a directory or
by a pattern is skipped with a one-line warning (the ``zoo.predict`` logger) and counted. Images are
turned upright by their EXIF orientation; grayscale, palette, transparent (composited on white) and
16-bit images (scaled to 8 bits) are converted to 8-bit RGB.

For every image a PNG a person can look at:

- classifiers: the image with a side panel of the top-5 classes and their probabilities;
- segmenters: the image beside the predicted segmentation drawn over it
  (``torchvision.utils.draw_segmentation_masks``) with a legend of the classes found;
- detectors: the detected boxes (``torchvision.utils.draw_bounding_boxes``) with class and score.

Without a model, :func:`predict_all` runs every weights entry of the registry on the example images the
package ships (:data:`zoo.data.EXAMPLES_DIR`), fully offline.
"""

from __future__ import annotations

import dataclasses
import functools
import glob
import logging
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont, ImageOps, UnidentifiedImageError
from torch import Tensor, nn
from torchvision.utils import draw_bounding_boxes, draw_segmentation_masks

from ..data import EXAMPLES_DIR
from ..hub.files import shipped_directory
from ..models.presets import KeepRatioPreprocess, pil_to_rgb
from ..models.registry import get_model_builder, get_model_weights, get_weight, list_models
from . import tasks
from .evaluate import load_model
from .tasks import default_image_size

__all__ = ["read_image", "predict_image", "predict_files", "predict_all", "Predictions", "PALETTE"]

#: Class colors (index = label), background first.
PALETTE = [
    (0, 0, 0), (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
    (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212),
]  # fmt: skip
DISPLAY_SIDE = 384
#: Widest side panel of a classification picture (px); longer captions wrap.
MAX_PANEL = 640
#: Narrowest detection picture (px): a footer under a narrow (portrait) image wraps no narrower.
MIN_FOOTER = DISPLAY_SIDE
DETECTION_SCORE = 0.5
FALLBACK_DETECTIONS = 3
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


_log = logging.getLogger("zoo.predict")


def read_image(path: str | os.PathLike) -> Tensor:
    """A file as an upright (3, H, W) uint8 RGB tensor; FileNotFoundError / ValueError (naming the file) otherwise.

    The EXIF orientation is applied; grayscale, palette and transparent images (composited on white) become
    RGB; 16-bit and 32-bit integer images are scaled to 8 bits (65535 -> 255), float images in [0, 1] too.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if path.is_dir():
        raise ValueError(f"{path}: is a directory, not an image file")
    try:
        with Image.open(path) as image:
            rgb = pil_to_rgb(ImageOps.exif_transpose(image))
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f"{path}: not an image file PIL can read ({reason:.100})") from None
    return torch.from_numpy(rgb).permute(2, 0, 1).contiguous()


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


_MEASURE = ImageDraw.Draw(Image.new("RGB", (1, 1)))


def _text_width(text: str, size: int) -> int:
    return int(np.ceil(_MEASURE.textlength(text, font=_font(size))))


def _wrap(text: str, size: int, width: int) -> list[str]:
    """``text`` in lines no wider than ``width`` pixels at font ``size``: broken at spaces, and inside
    words (a long path) where one word alone is too wide. Never clipped."""
    lines: list[str] = []
    line = ""
    for word in text.split(" "):
        candidate = f"{line} {word}" if line else word
        if _text_width(candidate, size) <= width:
            line = candidate
            continue
        if line:
            lines.append(line)
        line = ""
        for char in word:  # a word wider than the line: cut it where it must be
            if line and _text_width(line + char, size) > width:
                lines.append(line)
                line = ""
            line += char
    lines.append(line)
    return lines


def _line_height(size: int) -> int:
    return size + size // 2


def _classification_picture(image: Tensor, logits: Tensor, categories: list[str], title: str) -> Image.Image:
    probabilities = logits.float().softmax(-1)
    top = probabilities.topk(min(5, probabilities.numel()))
    shown = _to_pil(_display(image))
    rows = [
        f"{rank + 1}. {categories[index]}  {100 * p:.1f}%"
        for rank, (p, index) in enumerate(zip(top.values.tolist(), top.indices.tolist(), strict=True))
    ]
    # The panel grows to the widest caption, up to MAX_PANEL; wider ones wrap.
    panel_width = min(MAX_PANEL, max(300, 32 + max(_text_width(t, 16) for t in [title, *rows])))
    title_lines = _wrap(title, 16, panel_width - 32)
    row_lines = [_wrap(row, 16, panel_width - 32) for row in rows]
    top_y = 12 + len(title_lines) * _line_height(16) + 28
    bar = 12  # the probability bar under each row
    height = top_y + sum(len(lines) * _line_height(16) + bar + 12 for lines in row_lines) + 12
    canvas = Image.new("RGB", (shown.width + panel_width, max(shown.height, height)), "white")
    canvas.paste(shown, (0, 0))
    draw = ImageDraw.Draw(canvas)
    x = shown.width + 16
    for i, line in enumerate(title_lines):
        draw.text((x, 12 + i * _line_height(16)), line, fill="black", font=_font(16))
    draw.text((x, top_y - 24), "top-5 classes", fill=(90, 90, 90), font=_font(14))
    y = top_y
    for p, index, lines in zip(top.values.tolist(), top.indices.tolist(), row_lines, strict=True):
        for line in lines:
            draw.text((x, y), line, fill="black", font=_font(16))
            y += _line_height(16)
        draw.rectangle((x, y, x + int((panel_width - 40) * p), y + bar - 2), fill=PALETTE[1 + index % 10])
        y += bar + 12
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
    width = 2 * w + 8
    entries = [f"{categories[c].strip()} ({100 * float((labels == c).float().mean()):.1f}% of pixels)" for c in present]
    if not entries:
        entries_lines = [_wrap("no object found (all background)", 14, width - 16)]
        column = width - 16
    else:  # legend columns as wide as the widest entry (one column, wrapped, if even that does not fit)
        column = min(width - 16, 22 + max(_text_width(e, 14) for e in entries) + 16)
        entries_lines = [_wrap(e, 14, column - 38) for e in entries]
    columns = max(1, (width - 16) // column)
    title_lines = _wrap(title, 16, width - 16)
    rows = [entries_lines[i : i + columns] for i in range(0, len(entries_lines), columns)]
    row_heights = [max(len(lines) for lines in row) * _line_height(14) + 6 for row in rows]
    legend_top = h + 8 + len(title_lines) * _line_height(16) + 4
    canvas = Image.new("RGB", (width, legend_top + sum(row_heights) + 8), "white")
    canvas.paste(_to_pil(shown), (0, 0))
    canvas.paste(_to_pil(overlay), (w + 8, 0))
    draw = ImageDraw.Draw(canvas)
    for i, line in enumerate(title_lines):
        draw.text((8, h + 8 + i * _line_height(16)), line, fill="black", font=_font(16))
    y = legend_top
    for r, row in enumerate(rows):
        for j, lines in enumerate(row):
            x = 8 + j * column
            if present:
                c = present[r * columns + j]
                draw.rectangle((x, y + 2, x + 16, y + 18), fill=color(c))
                x += 22
            for k, line in enumerate(lines):
                draw.text((x, y + k * _line_height(14)), line, fill="black", font=_font(14))
        y += row_heights[r]
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
    box_texts = [f"{categories[label]} {score:.2f}" for label, score in zip(labels, scores, strict=True)]
    # the canvas is at least as wide as the widest box label; the footer wraps to it
    width = max(picture.width, MIN_FOOTER, 8 + max((_text_width(t, 14) + 8 for t in box_texts), default=0))
    footer = [line for text in (title, note) for line in _wrap(text, 16, width - 16)]
    canvas = Image.new("RGB", (width, picture.height + 8 + len(footer) * _line_height(16) + 8), "white")
    canvas.paste(picture, (0, 0))
    draw = ImageDraw.Draw(canvas)
    for box, text, color in zip(boxes.tolist(), box_texts, colors, strict=True):
        x = max(2, min(box[0], width - _text_width(text, 14) - 4))
        y = max(2, box[1] - 18)
        left, top, right, bottom = draw.textbbox((x, y), text, font=_font(14))
        draw.rectangle((left - 2, top - 2, right + 2, bottom + 2), fill=color)
        draw.text((x, y), text, fill="black" if sum(color) > 380 else "white", font=_font(14))
    for i, line in enumerate(footer):
        draw.text((8, picture.height + 8 + i * _line_height(16)), line, fill="black", font=_font(16))
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


@dataclasses.dataclass
class Predictions:
    """What :func:`predict_files` did: the pictures written (in input order) and the files skipped with why."""

    written: list[Path] = dataclasses.field(default_factory=list)
    skipped: list[tuple[Path, str]] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class _Input:
    path: Path
    relative: Path  # where its picture goes under the output directory (before the name is made unique)
    named: bool  # named on the command line (unreadable: an error) rather than found (unreadable: skipped)


_GLOB_CHARS = ("*", "?", "[")


def _inputs(paths: list[str | os.PathLike], output: Path) -> list[_Input]:
    """Image files of ``paths`` (files, directories searched recursively, glob patterns), in order, each
    with its relative output location. Files under ``output`` (pictures of an earlier run) are left out."""
    found: list[_Input] = []
    output = output.resolve()
    for name in paths:
        path = Path(name)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            files = [p for p in files if output not in p.resolve().parents]
            if not files:
                raise FileNotFoundError(f"{name}: the directory holds no image file ({', '.join(IMAGE_SUFFIXES)})")
            found += [_Input(p, p.relative_to(path), named=False) for p in files]
        elif path.is_file():
            found.append(_Input(path, Path(path.name), named=True))
        elif any(c in str(name) for c in _GLOB_CHARS):
            base = _glob_base(str(name))
            matches = sorted(Path(m) for m in glob.glob(str(name), recursive=True) if os.path.isfile(m))
            if not matches:
                raise FileNotFoundError(f"{name}: no file matches this pattern")
            found += [_Input(p, p.relative_to(base), named=False) for p in matches]
        else:
            raise FileNotFoundError(f"{name}: no such file or directory")
    return found


def _glob_base(pattern: str) -> Path:
    """The directory a glob pattern starts from: its leading parts without wildcards."""
    parts = []
    for part in Path(pattern).parts[:-1]:
        if any(c in part for c in _GLOB_CHARS):
            break
        parts.append(part)
    return Path(*parts) if parts else Path(".")


def _unique(directory: Path, stem: str, model_name: str, taken: set[Path]) -> Path:
    """``directory/stem_MODEL.png``, or ``stem-2_MODEL.png``, ``stem-3``... if an earlier input took it."""
    for n in range(1, len(taken) + 2):
        candidate = directory / f"{stem if n == 1 else f'{stem}-{n}'}_{model_name}.png"
        if candidate not in taken:
            return candidate
    raise AssertionError("unreachable: len(taken) + 1 candidates cannot all be taken")


def predict_files(
    model_name: str, weights: str, paths: list[str | os.PathLike], output: str | os.PathLike
) -> Predictions:
    """Predict every image of ``paths`` (files, directories searched recursively, glob patterns) with
    ``model_name`` and ``weights``; write one PNG per image under ``output``, mirroring the inputs'
    subfolders (see the module's docstring). Images are streamed one at a time.

    Errors before any work: an unknown model, a path that does not exist, a pattern that matches
    nothing, a file named in ``paths`` that is not an image. Unreadable files found in directories or by
    patterns are skipped with a warning and listed in the result."""
    get_model_builder(model_name)  # unknown model: the closest names, before looking at any file
    output = Path(output)
    inputs = _inputs(paths, output)
    for item in inputs:
        if item.named:
            read_image(item.path)  # decoded and dropped: a named file that is not an image is an error
    model, meta = load_model(model_name, weights)
    result = Predictions()
    taken: set[Path] = set()
    for item in inputs:
        try:
            image = read_image(item.path)
        except ValueError as error:
            result.skipped.append((item.path, str(error)))
            _log.warning("spp-zoo: skipped %s", error)
            continue
        picture = predict_image(model, image, meta, f"{model_name} ({weights})")
        target = _unique(output / item.relative.parent, item.relative.stem, model_name, taken)
        taken.add(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        picture.save(target)
        result.written.append(target)
    return result


def shipped_entries() -> list[tuple[str, str]]:
    """(model name, ``"Enum.ENTRY"``) of every weights entry shipped with the package (usable offline), DEFAULT
    aliases once; entries sourced from the Hub or an upstream file only are left out (they need a download)."""

    entries = []
    for name in list_models():
        enum = get_model_weights(name)
        for member in enum:  # aliases (DEFAULT) are not iterated
            if shipped_directory(member.repo) is not None:
                entries.append((name, f"{enum.__name__}.{member.name}"))
    return entries


def predict_all(output: str | os.PathLike, examples: str | os.PathLike | None = None) -> Predictions:
    """Every shipped weights entry on the shipped example images (classifiers on the
    ``classification_*`` pictures, the others on the ``scene_*`` ones), into ``output/MODEL/`` for a model's
    ``DEFAULT`` entry and ``output/MODEL/ENTRY/`` for its other shipped entries."""
    examples = Path(examples) if examples is not None else EXAMPLES_DIR
    if not examples.is_dir():
        raise FileNotFoundError(f"the examples directory {str(examples)!r} does not exist")
    result = Predictions()
    for name, entry in shipped_entries():
        prefix = "classification_" if tasks.task_of_builder(name) == "classification" else "scene_"
        files = sorted(str(p) for p in examples.glob(f"{prefix}*.png"))
        member = get_weight(entry)
        directory = Path(output) / name
        if member is not getattr(get_model_weights(name), "DEFAULT", member):
            directory = directory / member.name
        if files:
            done = predict_files(name, entry, files, directory)
            result.written += done.written
            result.skipped += done.skipped
    return result
