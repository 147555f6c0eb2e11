"""Which CPU settings make the training step faster: the measurement behind the flags of the CPU recipes.

    python recipes/cpu_speed.py [--threads 2] [--steps 6] [--compile]

Times the training step (forward, loss, backward, AdamW step) of each family at the recipes' shapes under:
fp32 (the default), channels-last (``--channels-last``), bf16 autocast on the CPU, and both; with ``--compile``
also ``torch.compile`` of the model (its compile time printed apart). Prints the device, versions, the median
step time and the ratio to fp32 measured in the same run. bf16 autocast is not a flag of ``zoo train`` (the engine
autocasts on CUDA only): it is measured here to say whether it would pay on this CPU.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import zoo  # noqa: E402
from zoo.engine import tasks  # noqa: E402

#: (family, builder kwargs, batch, image size): the shapes of recipes/train_shipped.sh.
CASES = [
    ("resnet18_classifier", {"width": 0.375}, 64, 64),
    ("zf5_classifier", {"width": 0.25}, 64, 64),
    ("vgg16_bn_classifier", {"width": 0.125}, 64, 64),
    ("sppnet_zf5", {"width": 0.25, "representation_size": 256}, 64, 64),
    ("pspnet_resnet18", {"width": 0.375, "aux_loss": True}, 8, 128),
    ("deconvnet_vgg16", {"width": 0.125, "fc_channels": 1024}, 8, 224),
]
SETTINGS = {"fp32": (False, False), "channels-last": (True, False), "bf16 autocast": (False, True),
            "channels-last + bf16": (True, True)}  # fmt: skip


def cpu_name() -> str:
    """The CPU's model name (Linux), else what platform knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def time_steps(model, x, y, task, steps, channels_last, bf16) -> float:
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    times = []
    for _ in range(steps + 2):
        started = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else nullcontext():
            loss = tasks.compute_loss(task, model, x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - started)
    return statistics.median(times[2:])  # the first two warm up


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--compile", action="store_true", help="also time torch.compile(model)")
    parser.add_argument("--models", default=None, help="comma-separated subset of the models")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"device: {cpu_name()}, {args.threads} threads; torch {torch.__version__}")
    print("| model | batch x size | " + " | ".join(SETTINGS) + (" | torch.compile |" if args.compile else " |"))
    print("|---|---|" + "---|" * (len(SETTINGS) + args.compile))
    for name, kwargs, batch, size in CASES:
        if args.models and name not in args.models.split(","):
            continue
        task = tasks.task_of_builder(name)
        classes = 10 if task == "classification" else 11
        torch.manual_seed(0)
        x = torch.rand(batch, 3, size, size)
        y = torch.randint(0, classes, (batch,) if task == "classification" else (batch, size, size))
        cells, base = [], None
        for channels_last, bf16 in SETTINGS.values():
            torch.manual_seed(0)
            model = zoo.get_model(name, num_classes=classes, **kwargs).train()
            seconds = time_steps(model, x, y, task, args.steps, channels_last, bf16)
            base = base or seconds
            cells.append(f"{seconds * 1000:.0f} ms ({base / seconds:.2f}x)")
        if args.compile:
            torch.manual_seed(0)
            model = zoo.get_model(name, num_classes=classes, **kwargs).train()
            started = time.perf_counter()
            compiled = torch.compile(model)
            seconds = time_steps(compiled, x, y, task, args.steps, False, False)
            cells.append(
                f"{seconds * 1000:.0f} ms ({base / seconds:.2f}x; {time.perf_counter() - started:.0f} s in all)"
            )
        print(f"| `{name}` | {batch} x {size} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
