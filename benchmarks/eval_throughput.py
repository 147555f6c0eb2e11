"""Images per second of the segmentation test protocols (zoo.engine.protocol) at 512x512.

    python -m benchmarks.eval_throughput [--model pspnet_resnet18] [--images 4] [--device cpu]

A randomly initialized model with 150 classes (ADE20K's count; the weights do not change the speed) predicts
``--images`` random 512x512 images under: mmseg whole-image inference at scale (2048, 512) with 1 image per forward
pass (the baseline) and with 4; mmseg sliding windows (crop 384, stride 256: 2 x 2 windows) with 4 crops per pass;
mmseg whole + flip; semseg (crop 473, stride 316, flip: 2 x 2 windows x 2). Prints the device, versions, shapes,
images/s and the ratio to the baseline measured in the same run (after one warm-up batch each).
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

import zoo
from zoo.engine import protocol as P


def _rate(model, images, protocol, batch_size: int) -> float:
    P.predict_scores(model, images[:batch_size], protocol, batch_size=batch_size)  # warm-up
    if images[0].device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    for start in range(0, len(images), batch_size):
        P.predict_scores(model, images[start : start + batch_size], protocol, batch_size=batch_size)
    if images[0].device.type == "cuda":
        torch.cuda.synchronize()
    return len(images) / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.eval_throughput", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="pspnet_resnet18")
    parser.add_argument("--width", type=float, default=None, help="builder width (default: the model's)")
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    kwargs = {"num_classes": 150}
    if args.width is not None:
        kwargs["width"] = args.width
    torch.manual_seed(0)
    model = zoo.get_model(args.model, **kwargs).eval().to(device)
    generator = torch.Generator().manual_seed(0)
    images = [torch.randint(0, 256, (3, 512, 512), dtype=torch.uint8, generator=generator).to(device)
              for _ in range(args.images)]  # fmt: skip
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU {platform.machine()}"
    print(f"device: {name}, {torch.get_num_threads()} torch threads; torch {torch.__version__}")
    params = sum(p.numel() for p in model.parameters()) / 1e6
    print(f"model: {args.model} {kwargs} ({params:.2f} M parameters); {args.images} images of 3x512x512 uint8")
    cases = [
        ("mmseg whole, scale (2048, 512), 1 image/pass", P.TestProtocol(scale=(2048, 512)), 1),
        ("mmseg whole, scale (2048, 512), 4 images/pass", P.TestProtocol(scale=(2048, 512)), 4),
        ("mmseg slide, crop 384, stride 256 (4 windows), 4 crops/pass",
         P.TestProtocol(scale=(2048, 512), mode="slide", crop=(384, 384), stride=(256, 256)), 4),
        ("mmseg whole + flip, 4 images/pass", P.with_tta(P.TestProtocol(scale=(2048, 512)), "flip"), 4),
        ("semseg crop 473, stride 316, flip (8 crops/image), 4 crops/pass",
         P.TestProtocol(kind="semseg", mode="slide", base_size=512, crop=(473, 473)), 4),
    ]  # fmt: skip
    baseline = None
    for label, protocol, batch in cases:
        rate = _rate(model, images, protocol, min(batch, args.images))
        baseline = baseline or rate
        print(f"{label:<66} {rate:8.2f} images/s  ({rate / baseline:.2f}x the 1-image whole baseline)")


if __name__ == "__main__":
    main()
