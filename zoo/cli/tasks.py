"""The ``train``, ``eval`` and ``predict`` commands of ``python -m zoo`` (added by :func:`add_commands`).

Each command's ``func(args) -> int`` raises ValueError / TypeError / FileNotFoundError with a one-line
message on bad input; ``python -m zoo`` prints it as ``zoo <command>: error: <message>`` and exits 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..engine.evaluate import evaluate, evaluation_settings, load_model
from ..engine.predict import predict_all, predict_files
from ..engine.protocol import PROTOCOLS, TTA_MODES
from ..engine.tasks import DATASETS, REAL_DATASETS
from ..engine.train import TrainConfig, config_command, train

__all__ = ["add_commands", "run_train", "run_eval", "run_predict"]


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated sizes like '48,64,80', got {text!r}") from None
    if not sizes or any(s < 1 for s in sizes):
        raise argparse.ArgumentTypeError(f"expected positive sizes, got {text!r}")
    return sizes


def _kwarg(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` with VALUE in JSON: numbers, true/false/null, lists, and strings in double quotes."""
    key, sep, value = text.partition("=")
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"-k {text}: expected KEY=VALUE with VALUE in JSON, e.g. -k width=0.25")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        raise argparse.ArgumentTypeError(
            f"-k {text}: expected a JSON value (a number, true/false, a list, or a string in double quotes: "
            f"-k '{key}=\"{value}\"')"
        ) from None


#: train's options that are TrainConfig fields under another name or sense.
_NEGATED = {"no_augment": "augment", "no_amp": "amp"}


def run_train(args: argparse.Namespace) -> int:
    # The train parser adds only the options given on the command line (argument_default=SUPPRESS):
    # TrainConfig holds the defaults, and a resumed run checks exactly what was asked for.
    given: dict[str, Any] = {}
    for name, value in vars(args).items():
        if name == "kwarg":
            given["kwargs"] = dict(value)
        elif name in _NEGATED:
            given[_NEGATED[name]] = not value
        elif name not in ("func", "command", "resume", "stop_after"):
            given[name] = value
    config = TrainConfig(**given, command=config_command())
    output = train(config, resume=getattr(args, "resume", None), stop_after=getattr(args, "stop_after", None),
                   given=set(given))  # fmt: skip
    print(output)
    return 0


def run_eval(args: argparse.Namespace) -> int:
    model, meta = load_model(args.model, args.weights, device=args.device)
    settings = evaluation_settings(meta)
    data = args.data or settings["data"]
    split = args.split or ("val" if data in REAL_DATASETS else "test")
    metrics = evaluate(
        model,
        data=data,
        split=split,
        image_size=args.image_size or settings["image_size"],
        limit=args.limit,
        batch_size=args.batch_size,
        device=args.device,
        progress=not args.json,
        root=args.root,
        meta=meta,
        protocol=args.protocol,
        tta=args.tta,
        workers=args.workers,
    )
    if args.json:
        print(json.dumps(metrics))
        return 0
    registered = meta.get("_metrics", meta.get("metrics", {})).get(f"{data}-{split}")
    for name, value in metrics.items():
        if isinstance(value, float) or value is None:
            note = f"  (registered: {registered[name]})" if registered and name in registered else ""
            print(f"{name:>8}: {_number(value)}{note}")
    if "per_class" in metrics:
        width = max(len(name) for name in metrics["per_class"])
        print(f"\n{'class':<{width}}  {'IoU':>6}  {'Acc':>6}")
        for name, values in metrics["per_class"].items():
            print(f"{name:<{width}}  {_number(values['IoU'])}  {_number(values['Acc'])}")
        print(f"\n{metrics['images']} images of {data} {split}; protocol {json.dumps(metrics['protocol'])}")
    return 0


def _number(value: float | None) -> str:
    return f"{value:6.2f}" if value is not None else f"{'-':>6}"


def run_predict(args: argparse.Namespace) -> int:
    if args.all or args.model is None:
        if args.images:
            raise ValueError("images need a MODEL (without one, predict runs every weights entry on the examples)")
        result = predict_all(args.output)
    else:
        if not args.images:
            raise ValueError(f"no image given for {args.model} (pass image files, directories or glob patterns)")
        result = predict_files(args.model, args.weights, args.images, args.output)
    for path in result.written:
        print(path)
    skipped = f"; {len(result.skipped)} unreadable file(s) skipped" if result.skipped else ""
    print(f"{len(result.written)} picture(s) written to {args.output}{skipped}", file=sys.stderr)
    return 0


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add ``train``, ``eval`` and ``predict`` to ``subparsers`` (each with ``func=<callable(args) -> int>``)."""
    p = subparsers.add_parser(
        "train",
        help="train a model on the zoo's data (torchrun for data-parallel)",
        description="Train MODEL; checkpoints in Hub layout after every epoch. Data-parallel: "
        "torchrun --nproc-per-node N -m zoo train MODEL ... (the global batch is split across processes). "
        "--resume DIR continues the run in DIR with its saved settings; other options must agree with them.",
        argument_default=argparse.SUPPRESS,  # only the options given (TrainConfig holds the defaults)
    )
    p.add_argument("model", help="registered model name (python -m zoo list)")
    p.add_argument("--data", choices=DATASETS,
                   help="scenes (default), scene-objects (segmentation: object-centred crops), trees (detection) "
                   "or a real dataset read from --root")  # fmt: skip
    p.add_argument("--root", metavar="DIR", help="directory of a real dataset (README: Real datasets)")
    p.add_argument("--weights", metavar="ENTRY_OR_DIR",
                   help="fine-tune from this weights entry or checkpoint (classifier layers that do not fit the "
                   "data's classes are re-initialized; the skipped tensors are printed)")  # fmt: skip
    p.add_argument("--weights-backbone", metavar="ENTRY",
                   help="start the trunk from this backbone entry, heads fresh (e.g. "
                   "ResNet18_Classifier_Weights.SCENES_V1; python -m zoo list *_classifier)")  # fmt: skip
    p.add_argument("--epochs", type=int, help="epochs of the whole run (default 10)")
    p.add_argument("--batch-size", type=int, help="global batch size (default 32)")
    p.add_argument("--lr", type=float, help="AdamW peak learning rate (default 1e-3)")
    p.add_argument("--weight-decay", type=float, help="AdamW weight decay (default 1e-4)")
    p.add_argument("--seed", type=int, help="seed of init, order and augmentation (default 0)")
    p.add_argument("--image-size", type=int, help="square training size (task default if omitted)")
    p.add_argument("--multi-size", type=_sizes, metavar="A,B,...",
                   help="SPP-net multi-size training: each batch one size, alternating")  # fmt: skip
    p.add_argument("--limit", type=int, help="use the first N training items")
    p.add_argument("--val-size", type=int, help="val items evaluated after each epoch (default 0)")
    p.add_argument("--kwarg", "-k", type=_kwarg, action="append", metavar="KEY=VALUE",
                   help="builder keyword argument, VALUE in JSON (repeatable), e.g. -k width=0.25, "
                   "-k 'levels=[4,2,1]'; strings in double quotes: -k 'norm=\"bn\"'")  # fmt: skip
    p.add_argument("--output", "-o", help="checkpoint directory (default runs/train)")
    p.add_argument("--resume", metavar="DIR", help="continue the run checkpointed in DIR (writes to DIR)")
    p.add_argument("--stop-after", type=int, metavar="EPOCHS",
                   help="stop after this many epochs in total (as if interrupted; resume later)")  # fmt: skip
    p.add_argument("--workers", type=int, help="DataLoader workers (default 0)")
    p.add_argument("--channels-last", action="store_true", help="channels-last memory format (faster convs)")
    p.add_argument("--cpu-amp", action="store_true", help="bf16 autocast on the CPU too (faster on AVX-512 BF16)")
    p.add_argument("--log-every", type=int, metavar="STEPS",
                   help="also log the mean training loss every STEPS steps to log.jsonl (learning curves)")  # fmt: skip
    p.add_argument("--no-augment", action="store_true", help="no horizontal flips")
    p.add_argument("--rotate", action="store_true", help="also random quarter turns (overhead imagery: --data trees)")
    p.add_argument("--no-amp", action="store_true", help="no bf16 autocast on GPU")
    p.add_argument("--sync-bn", action="store_true", help="SyncBatchNorm in data-parallel CUDA runs")
    p.set_defaults(func=run_train)

    p = subparsers.add_parser(
        "eval",
        help="evaluate weights on a test split",
        description="Metrics of MODEL with WEIGHTS on the zoo's data (torchmetrics) or on a real dataset; segmenters "
        "on a real dataset follow the published test protocol (mmsegmentation's, or hszhao/semseg's).",
    )
    p.add_argument("model", help="registered model name")
    p.add_argument("--weights", required=True, help="weights entry (ENTRY, Enum.ENTRY, DEFAULT) or a checkpoint dir")
    p.add_argument("--data", default=None, choices=DATASETS, help="dataset (default: the weights')")
    p.add_argument("--root", default=None, metavar="DIR", help="directory of a real dataset (README: Real datasets)")
    p.add_argument("--split", default=None, help="split (default: val for a real dataset, test for the zoo's)")
    p.add_argument("--protocol", default="mmseg", choices=PROTOCOLS,
                   help="segmentation test protocol on a real dataset (default mmseg)")  # fmt: skip
    p.add_argument("--tta", default=None, choices=TTA_MODES,
                   help="test-time augmentation: flip, or ms-flip (scales 0.5..1.75 and flip)")  # fmt: skip
    p.add_argument("--image-size", type=int, default=None, help="square input size (default: the weights')")
    p.add_argument("--limit", type=int, default=None, help="evaluate the first N items only")
    p.add_argument("--batch-size", type=int, default=8, help="images (or crops) per forward pass (default 8)")
    p.add_argument("--workers", type=int, default=0, help="DataLoader workers (default 0)")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cuda (default cpu)")
    p.add_argument("--json", action="store_true", help="print one JSON object of metrics")
    p.set_defaults(func=run_eval)

    p = subparsers.add_parser(
        "predict",
        help="draw predictions on images",
        description="Write one PNG per image: top-5 classes, segmentation overlay or detections. "
        "Without MODEL (or with --all): every shipped weights entry on the shipped example images.",
    )
    p.add_argument("model", nargs="?", default=None, help="registered model name (omit for --all)")
    p.add_argument("images", nargs="*", help="image files, directories (recursive) or quoted glob patterns")
    p.add_argument("--weights", default="DEFAULT", help="weights entry or checkpoint dir (default DEFAULT)")
    p.add_argument("--output", "-o", default="predictions", help="output directory (default predictions)")
    p.add_argument("--all", action="store_true", help="every shipped weights entry on the shipped examples")
    p.set_defaults(func=run_predict)
