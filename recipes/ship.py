"""Turn a ``python -m zoo train`` checkpoint into weights the package ships.

    python recipes/ship.py CHECKPOINT_DIR REPO [--dtype float16]

Evaluates the checkpoint on the full test split of its data (``zoo.evaluate.evaluate``), writes the
Hub-layout folder ``zoo/weights/REPO/`` with :func:`zoo.hub.save_pretrained` (the test metrics in its
``config.json`` and model card), evaluates that shipped copy again (its metrics must be the same) and
prints the facts of its weights-enum entry as JSON: sha256, file size, parameter count, metrics.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shlex
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from zoo import hub  # noqa: E402
from zoo.engine import tasks  # noqa: E402
from zoo.engine.evaluate import evaluate  # noqa: E402

_METADATA = ("categories", "mean", "std", "input_size", "align_corners", "dataset", "source", "license",
             "description", "training", "task")  # fmt: skip


def args_kwargs(config: dict) -> dict:
    """The builder kwargs the training command set (``-k``) and the widths, as recorded in the checkpoint."""
    command = config.get("training", {}).get("command", "")
    words = shlex.split(command)
    given = {words[i + 1].split("=", 1)[0] for i, w in enumerate(words[:-1]) if w in ("-k", "--kwarg")}
    given |= {"width", "trunk_width"}  # set by -k or taken from the backbone entry
    return {k: v for k, v in config["kwargs"].items() if k in given}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("repo", help="repository name {model}.{tag}, e.g. sppnet_zf5.scenes")
    parser.add_argument("--dtype", default=None, choices=["float16", "bfloat16"], help="storage dtype")
    parser.add_argument("--recipe", default="recipes/train_shipped.sh", help="the recipe named in the model card")
    parser.add_argument("--eval-size", type=int, default=None,
                        help="square size the entry is evaluated at (default: the training size)")  # fmt: skip
    args = parser.parse_args(argv)
    checkpoint = Path(args.checkpoint)
    config = hub.load_config(checkpoint)
    model = hub.from_pretrained(checkpoint)  # strict keys, eval mode
    metadata = {k: config[k] for k in _METADATA if k in config}
    training = config.get("training", {})
    kwargs = ", ".join(f"{k}={v}" for k, v in sorted(args_kwargs(config).items()))
    start = (
        f"fine-tuned from the backbone `{training['weights_backbone']}`" if training.get("weights_backbone")
        else f"fine-tuned from `{training['weights']}`" if training.get("weights")
        else "trained from random initialization"
    )  # fmt: skip
    data_name = {"scenes": "spp-zoo's scenes (Fashion-MNIST objects composited onto scikit-image photos, "
                 "`zoo.datasets`)", "trees": "deepforest's annotated aerial photos of trees (NEON)"}  # fmt: skip
    metadata["description"] = (
        f"{config['architecture']} ({kwargs}) {start} with `python -m zoo train` on "
        f"{data_name.get(config.get('dataset', 'scenes'), config.get('dataset'))}; commands in {args.recipe}"
    )
    data = metadata.get("dataset", "scenes")
    if args.eval_size is not None:
        metadata["input_size"] = [args.eval_size, args.eval_size]
    size = metadata["input_size"][0] if "input_size" in metadata else None
    dtype = getattr(torch, args.dtype) if args.dtype else None
    full = evaluate(model, data=data, split="test", image_size=size) if dtype is not None else None
    if dtype is not None:  # measure what is shipped: the weights rounded to the storage dtype
        model.load_state_dict({k: v.to(dtype).to(v.dtype) for k, v in model.state_dict().items()})
    metrics = evaluate(model, data=data, split="test", image_size=size, progress=True)
    metadata["metrics"] = {f"{data}-test": metrics}
    metadata["repo_id"] = hub.repo_id(args.repo)
    target = ROOT / "zoo" / "weights" / args.repo
    hub.save_pretrained(model, target, metadata=metadata, dtype=dtype)
    shipped = hub.from_pretrained(str(target))
    again = evaluate(shipped, data=data, split="test", image_size=size)
    if again != metrics:
        raise SystemExit(f"the shipped copy measures {again}, the checkpoint {metrics}")
    weights_file = target / "model.safetensors"
    facts = {
        "repo": args.repo,
        "sha256": hashlib.sha256(weights_file.read_bytes()).hexdigest(),
        "file_size_mb": round(weights_file.stat().st_size / 1e6, 3),
        "num_params": sum(p.numel() for p in model.parameters()),
        "metrics": metadata["metrics"],
        "metrics_fp32": full,
        "task": tasks.task_of(model),
        "training": metadata.get("training"),
    }
    print(json.dumps(facts, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
