"""Weights entries of mmsegmentation's published PSPNet checkpoints (Apache-2.0), converted exactly on first use.

mmsegmentation (open-mmlab/mmsegmentation, ``configs/pspnet``) publishes PSPNet R-18/50/101-D8 checkpoints
trained on ADE20K, Pascal VOC 2012 + aug and Cityscapes at
``https://download.openmmlab.com/mmsegmentation/v0.5/pspnet/<config>/<config>_<date>-<hash8>.pth``, where
``<hash8>`` is the first 8 hex digits of the file's sha256 (their ``publish_model.py`` hashes, then renames).
:func:`mmseg_pspnet` turns one line of that table into a :class:`~zoo.models.registry.Weights` entry: the
URL exactly as published, its hash prefix, the ``"mmseg"`` converter (:func:`zoo.convert.from_mmseg`,
output-equal to mmsegmentation's own model code), the Hub repository a maintainer publishes the converted
folder to, and the ``meta`` below.

``meta`` (schema: :mod:`zoo.models.registry`):

- ``categories`` / ``palette``: the dataset's classes and colors as mmsegmentation lists them
  (:mod:`zoo.models._meta`): 150 (ADE20K), 21 (VOC, background first), 19 (Cityscapes train ids).
- ``mean`` / ``std``: mmsegmentation's ``(123.675, 116.28, 103.53)`` / ``(58.395, 57.12, 57.375)`` on RGB
  0..255, stored on [0, 1] as the zoo's schema does: ``(0.485, 0.456, 0.406)`` / ``(0.229, 0.224, 0.225)``.
- ``align_corners``: True for the 769x769 Cityscapes models (both heads), False otherwise.
- ``test_protocol``: how mmsegmentation measured the published numbers: keep-ratio resize to ``scale``
  (mmcv's rule), ``mode`` ``"whole"`` or ``"slide"`` (``crop_size``, ``stride``), ``reduce_zero_label``
  (ADE20K), ``ignore_index`` 255.
- ``published_metrics``: ``{"<Dataset>-val (mmsegmentation)": {"mIoU": single scale, "mIoU(ms+flip)": ...}}``,
  mmsegmentation's figures, not re-measured here; ``_metrics`` (our own measurements) is empty.
- ``license`` Apache-2.0, ``source`` (the config's page), ``recipe`` (the config file), ``num_params``.
"""

from __future__ import annotations

import re
from functools import partial
from typing import Any

from ._meta import (
    ADE20K_CATEGORIES,
    ADE20K_PALETTE,
    CITYSCAPES_CATEGORIES,
    CITYSCAPES_PALETTE,
    VOC_CATEGORIES,
    VOC_PALETTE,
)
from .presets import IMAGENET_MEAN, IMAGENET_STD, KeepRatioPreprocess
from .registry import Weights

__all__ = ["MMSEG_DOWNLOAD_ROOT", "MMSEG_DATASETS", "mmseg_pspnet"]

#: Where mmsegmentation publishes its v0.5 PSPNet checkpoints.
MMSEG_DOWNLOAD_ROOT = "https://download.openmmlab.com/mmsegmentation/v0.5/pspnet"
_CONFIGS = "https://github.com/open-mmlab/mmsegmentation/blob/v0.30.0/configs/pspnet"
_CONFIG = re.compile(r"^pspnet_r(?P<depth>18|50|101)-d8_(?P<crop>\d+x\d+)_(?P<iters>\d+)k_(?P<dataset>[a-z0-9]+)$")
_STAMP = re.compile(r"^\d{8}_\d{6}-(?P<hash8>[0-9a-f]{8})$")

#: The datasets of the published checkpoints: classes, palette, metric split label, test scale and labels.
MMSEG_DATASETS: dict[str, dict[str, Any]] = {
    "ade20k": {"title": "ADE20K", "categories": ADE20K_CATEGORIES, "palette": ADE20K_PALETTE, "split": "ADE20K-val",
               "scale": (2048, 512), "reduce_zero_label": True},
    "voc12aug": {"title": "Pascal VOC 2012 + aug", "categories": VOC_CATEGORIES, "palette": VOC_PALETTE,
                 "split": "VOC2012-val", "scale": (2048, 512), "reduce_zero_label": False},
    "cityscapes": {"title": "Cityscapes", "categories": CITYSCAPES_CATEGORIES, "palette": CITYSCAPES_PALETTE,
                   "split": "Cityscapes-val", "scale": (2048, 1024), "reduce_zero_label": False},
}  # fmt: skip
#: mmsegmentation's 769x769 Cityscapes models: sliding-window test at a larger scale, ``align_corners=True``.
_SLIDE = {"scale": (2049, 1025), "crop_size": (769, 769), "stride": (513, 513)}


def mmseg_pspnet(config: str, stamp: str, *, miou: float, miou_ms: float, num_params: int) -> Weights:
    """The entry of mmsegmentation's checkpoint ``<config>/<config>_<stamp>.pth``.

    ``config`` like ``"pspnet_r50-d8_512x512_160k_ade20k"``, ``stamp`` like ``"20200615_184358-1890b0bd"``;
    ``miou`` / ``miou_ms``: the published single-scale and multi-scale + flip mIoU; ``num_params``: the
    converted model's parameter count (auxiliary head included).
    """
    match, stamped = _CONFIG.match(config), _STAMP.match(stamp)
    if match is None or match["dataset"] not in MMSEG_DATASETS:
        raise ValueError(f"config {config!r} is not an mmsegmentation PSPNet-D8 config name of a known dataset")
    if stamped is None:
        raise ValueError(f"stamp must look like '20200615_184358-1890b0bd', got {stamp!r}")
    depth, dataset, iters = int(match["depth"]), match["dataset"], match["iters"]
    data = MMSEG_DATASETS[dataset]
    crop = tuple(int(v) for v in match["crop"].split("x"))
    slide = crop == (769, 769)
    protocol: dict[str, Any] = {"scale": data["scale"], "keep_ratio": True, "mode": "whole"}
    if slide:
        protocol.update(_SLIDE, mode="slide")
    protocol.update(reduce_zero_label=data["reduce_zero_label"], ignore_index=255)
    tag = f"{dataset}{'_769' if slide else ''}_mmseg_{iters}k"
    meta: dict[str, Any] = {
        "categories": list(data["categories"]),
        "palette": [list(color) for color in data["palette"]],
        "num_params": num_params,
        "min_size": (1, 1),
        "mean": IMAGENET_MEAN,
        "std": IMAGENET_STD,
        "align_corners": slide,
        "dataset": dataset,
        "test_protocol": protocol,
        "_metrics": {},
        "published_metrics": {f"{data['split']} (mmsegmentation)": {"mIoU": miou, "mIoU(ms+flip)": miou_ms}},
        "license": "Apache-2.0",
        "source": f"mmsegmentation's PSPNet R-{depth}-D8, {data['title']}, crop {match['crop']}, {iters}k iterations: "
        f"{MMSEG_DOWNLOAD_ROOT}/{config}/{config}_{stamp}.pth, converted exactly by zoo.convert.from_mmseg",
        "recipe": f"{_CONFIGS}/{config}.py",
        "_docs": f"mmsegmentation's checkpoint (Apache-2.0), downloaded, verified and converted on first use. "
        f"mIoU {miou} (single scale) / {miou_ms} (multi-scale + flip) on {data['split']} as published by "
        "mmsegmentation; not re-measured here.",
    }
    return Weights(
        url=f"{MMSEG_DOWNLOAD_ROOT}/{config}/{config}_{stamp}.pth",
        sha256_prefix=stamped["hash8"],
        converter="mmseg",
        repo=f"pspnet_resnet{depth}.{tag}",
        transforms=partial(KeepRatioPreprocess, protocol["scale"]),
        meta=meta,
    )
