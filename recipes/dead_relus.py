"""Dead ReLU channels of a trunk: channels that are zero on every pixel of every image of a val batch.

    python recipes/dead_relus.py MODEL WEIGHTS [--images 64] [--size 96] [--width W]

MODEL is a registered name, WEIGHTS an entry ("Enum.ENTRY") or a checkpoint directory. Runs the val images of the
classification view (``--size`` x ``--size``) through the model in eval mode (a detector: through its trunk) and
prints, per ``nn.ReLU`` module of 4-D output, how many channels never fire, as JSON. With WEIGHTS ``none`` the
model is freshly initialized (seed 0, at ``--width``) for comparison. The README's account of the ZF-5 trunk
quotes this.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from zoo.data import SceneClassification  # noqa: E402
from zoo.engine import tasks  # noqa: E402
from zoo.engine.evaluate import load_model  # noqa: E402
from zoo.models.registry import get_model  # noqa: E402


def dead_channels(model: torch.nn.Module, images: torch.Tensor) -> dict[str, str]:
    """``{relu module name: "dead/channels"}`` over ``images`` (N, 3, H, W), normalized."""
    outputs: dict[str, torch.Tensor] = {}
    hooks = [
        module.register_forward_hook(lambda mod, args, out, name=name: outputs.__setitem__(name, out.detach()))
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.ReLU)
    ]
    trunk = getattr(model, "backbone", None) if tasks.task_of(model) == "detection" else None
    with torch.no_grad():
        (trunk or model)(images)
    for hook in hooks:
        hook.remove()
    return {
        name: f"{int(((out > 0).flatten(2).any(-1).any(0) == 0).sum())}/{out.shape[1]}"
        for name, out in outputs.items()
        if out.dim() == 4
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("weights", help='an entry, a checkpoint directory, or "none" (fresh, seed 0)')
    parser.add_argument("--images", type=int, default=64, help="val images of the classification view")
    parser.add_argument("--size", type=int, default=96, help="their square size")
    parser.add_argument("--width", type=float, default=None, help="the fresh model's width (with WEIGHTS none)")
    args = parser.parse_args(argv)
    if args.weights == "none":
        torch.manual_seed(0)
        model = get_model(args.model, **({} if args.width is None else {"width": args.width})).eval()
    else:
        model = load_model(args.model, args.weights)[0].eval()
    dataset = SceneClassification("val", size=args.images)
    images, labels = zip(*[dataset[i] for i in range(len(dataset))], strict=True)
    x, _ = tasks.prepare_batch("classification", list(images), list(labels), args.size, torch.device("cpu"))
    print(json.dumps({"model": args.model, "weights": args.weights, "dead": dead_channels(model, x)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
