"""Learning curves of the shipped runs: pretrained start vs random initialization, from their ``log.jsonl``.

    python recipes/curves.py [--runs runs] [--out recipes/results/curves.png]

For each family, the run that made the shipped entry (``--weights-backbone``) and its from-scratch twin (the same
command without it, ``*_scratch``; recipes/train_shipped.sh): prints a Markdown table of the val metric after each
epoch and draws the training loss against the step (mean of every ``--log-every`` steps) into one PNG, a panel per
family. A missing run is left out and named.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

#: family -> (panel title, val metric, pretrained run, scratch run), relative to --runs
FAMILIES = {
    "sppnet_zf5": ("SPP-net ZF-5 classifier", "val_acc@1", "sppnet_ms/multi_s0", "ft/sppnet_zf5_scratch"),
    "spp_detector_zf5": ("SPP-net detector (scenes)", "val_mAP@0.5", "ft/spp_detector_zf5",
                         "ft/spp_detector_zf5_scratch"),
    "pspnet_resnet18": ("PSPNet ResNet-18", "val_mIoU", "ft/pspnet_resnet18_e12", "ft/pspnet_resnet18_scratch"),
    "deconvnet_vgg16": ("DeconvNet VGG-16-BN (two stages: crops, then scenes)", "val_mIoU",
                        "ft/deconvnet_vgg16_w25_scenes", "ft/deconvnet_vgg16_scratch"),
}  # fmt: skip
COLORS = {"pretrained": (31, 119, 180), "scratch": (214, 39, 40)}


def read_log(directory: Path) -> tuple[list[dict], list[dict]]:
    """(step records, epoch records) of a run's log.jsonl."""
    records = [json.loads(line) for line in (directory / "log.jsonl").read_text().splitlines() if line.strip()]
    return [r for r in records if "train_loss" in r], [r for r in records if "epoch" in r]


def table(runs: Path) -> str:
    lines = []
    for title, metric, *dirs in FAMILIES.values():
        found = {label: d for label, d in zip(COLORS, dirs, strict=True) if (runs / d / "log.jsonl").is_file()}
        if not found:
            lines.append(f"{title}: no runs under {runs}")
            continue
        logs = {label: read_log(runs / d)[1] for label, d in found.items()}
        epochs = max(len(v) for v in logs.values())
        if not epochs:
            lines.append(f"{title}: no epoch finished yet")
            continue
        lines += [f"**{title}** ({metric[4:]} on val after each epoch)", "",
                  "| start | " + " | ".join(f"epoch {e + 1}" for e in range(epochs)) + " |",
                  "|---|" + "---|" * epochs]  # fmt: skip
        for label, records in logs.items():
            cells = [f"{r.get(metric, float('nan')):.1f}" for r in records] + [""] * (epochs - len(records))
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def plot(runs: Path, out: Path) -> None:
    width, height, pad = 520, 300, 44
    canvas = Image.new("RGB", (2 * width, 2 * height), "white")
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    for k, (title, _, *dirs) in enumerate(FAMILIES.values()):
        x0, y0 = (k % 2) * width, (k // 2) * height
        curves = {label: read_log(runs / d)[0] for label, d in zip(COLORS, dirs, strict=True)
                  if (runs / d / "log.jsonl").is_file()}  # fmt: skip
        curves = {label: c for label, c in curves.items() if c}
        draw.text((x0 + pad, y0 + 8), f"{title}: training loss vs step", fill="black", font=font)
        if not curves:
            continue
        max_step = max(r["step"] for c in curves.values() for r in c)
        max_loss = max(r["train_loss"] for c in curves.values() for r in c)
        box = (x0 + pad, y0 + 28, x0 + width - 16, y0 + height - pad + 8)
        draw.rectangle(box, outline=(160, 160, 160))

        def point(step: float, loss: float, box=box, max_step=max_step, max_loss=max_loss) -> tuple[float, float]:
            return (box[0] + (box[2] - box[0]) * step / max_step, box[3] - (box[3] - box[1]) * loss / max_loss)

        for label, records in curves.items():
            draw.line([point(r["step"], r["train_loss"]) for r in records], fill=COLORS[label], width=2)
        draw.text((box[0], box[3] + 4), "0", fill="black", font=font)
        draw.text((box[2] - 40, box[3] + 4), f"{max_step} steps", fill="black", font=font)
        draw.text((x0 + 4, box[1]), f"{max_loss:.2f}", fill="black", font=font)
        draw.text((x0 + 4, box[3] - 10), "0", fill="black", font=font)
        for j, label in enumerate(curves):
            draw.text((box[2] - 150, box[1] + 6 + 14 * j), f"-- {label} start", fill=COLORS[label], font=font)
    out.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", default="runs", help="directory holding the runs")
    parser.add_argument("--out", default="recipes/results/curves.png", help="the PNG to write")
    args = parser.parse_args(argv)
    print(table(Path(args.runs)))
    plot(Path(args.runs), Path(args.out))
    print(f"curves: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
