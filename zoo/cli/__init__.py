"""``python -m zoo``: the zoo's command line.

Commands: ``list``, ``info``, ``download``, ``publish``, ``convert``, ``export`` (and the training
commands ``train``, ``eval``, ``predict`` of :mod:`zoo.cli.tasks`). ``--help`` works on each.

Error convention: every failure prints ONE line on stderr, ``zoo <command>: error: <message>``, that names
the argument, file or key at fault and what would be right, never a traceback. Exit codes:

- 2: bad usage or bad input: an unknown option or model name (with the closest names), a path that does
  not exist (``runs/nothere: no such directory``), a file that is not what the command expects (a damaged
  ``model.safetensors``, a file that is not a checkpoint), a malformed value (``-k width=abc``), weights
  that do not fit the model (the keys named), a setting that contradicts a resumed run
  (ValueError, TypeError, FileNotFoundError, NotADirectoryError, IsADirectoryError and their subclasses,
  such as ``zoo.hub.HashMismatchError``);
- 1: the environment failed: no connection to the Hub (``zoo.hub.HubUnavailableError``), the Hub refused
  an upload, a disk error (other OSError and RuntimeError);
- 130: interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from .. import convert, export, hub
from ..models.registry import get_model_builder, get_model_weights, get_weight, list_models, suggest
from . import tasks as task_commands

__all__ = ["main", "build_parser"]

#: Errors that mean "bad usage or bad input": one line, exit code 2.
USAGE_ERRORS = (ValueError, TypeError, FileNotFoundError, NotADirectoryError, IsADirectoryError)


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (``prog: error: message``) and exit code 2."""

    def error(self, message: str) -> NoReturn:
        prog = self.prog.replace("python -m zoo", "zoo", 1)
        self.exit(2, f"{prog}: error: {message} (see --help)\n")


# ---------------------------------------------------------------------------------------------- helpers
def _weights_entries(model: str) -> list:
    enum = get_model_weights(model)
    return [enum[name] for name in enum.__members__ if name != "DEFAULT"]


def _metric_text(metrics: dict[str, dict[str, float]] | None) -> str:
    """``{"scenes-test": {"mIoU": 15.34}}`` as ``mIoU 15.34 (scenes-test)``."""
    return "; ".join(
        f"{', '.join(f'{k} {v:g}' for k, v in values.items())} ({split})" for split, values in (metrics or {}).items()
    )


def _published_text(published: dict[str, dict[str, float]] | None) -> str:
    """``{"ADE20K-val (mmsegmentation)": {"mIoU": 42.48}}`` as ``mIoU 42.48 (ADE20K-val; published by
    mmsegmentation, not re-measured here)``."""
    parts = []
    for key, values in (published or {}).items():
        split, publisher = hub.published_split(key)
        numbers = ", ".join(f"{k} {v:g}" for k, v in values.items())
        parts.append(f"{numbers} ({split}; published by {publisher}, not re-measured here)")
    return "; ".join(parts)


def _source(entry) -> dict[str, Any]:
    """Where an entry's file comes from: the copy shipped in the package, its pinned Hub copy, or an upstream file."""
    weights = entry.value
    hub_copy = None
    if weights.has_hub_copy:
        hub_copy = {"repo_id": hub.repo_id(entry.repo), "revision": entry.revision, "sha256": entry.sha256}
    shipped = hub.shipped_directory(entry.repo)
    if shipped is not None:
        text = f"shipped with the package ({shipped}); Hub copy {hub.repo_id(entry.repo)}@{entry.revision}"
    elif hub_copy is not None:
        text = f"Hub {hub.repo_id(entry.repo)}@{entry.revision}" + (
            f" (else the upstream file {weights.url})" if weights.has_upstream_file else ""
        )
    else:
        text = (
            f"upstream file {weights.url} (sha256 prefix {weights.sha256_prefix}), converted by the "
            f"'{weights.converter}' converter on first use; no Hub copy pinned yet (publish: python -m zoo download "
            f"{type(entry).__name__}.{entry.name}, then python -m zoo publish FOLDER {hub.repo_id(entry.repo)})"
        )
    return {"text": text, "hub_copy": hub_copy, "shipped": str(shipped or "")}


def _short_source(entry) -> str:
    if hub.shipped_directory(entry.repo) is not None:
        return "shipped"
    if entry.value.has_hub_copy:
        return f"Hub `{hub.repo_id(entry.repo)}`"
    return f"[{entry.value.url.split('/')[2]}]({entry.value.url}), converted on first use"


def _is_model_name(name: str) -> bool:
    """Whether ``name`` is written as a model name (no ``.`` of ``Enum.ENTRY``, no ``/`` of a path or repo id)."""
    return "." not in name and "/" not in name and os.sep not in name


def _resolve_entry(name: str):
    """A weights entry from ``"Enum.ENTRY"``, or from a model name (its DEFAULT entry)."""
    if _is_model_name(name):
        get_model_builder(name)  # unknown model: the closest names
        enum = get_model_weights(name)
        if "DEFAULT" not in enum.__members__:
            raise ValueError(f"model {name!r} has no published weights yet")
        return enum["DEFAULT"]
    return get_weight(name)


# --------------------------------------------------------------------------------------------- commands
def _cmd_list(args: argparse.Namespace) -> int:
    rows = []
    if args.include and not list_models(args.include):
        raise ValueError(f"--include {args.include!r} matches no model; {suggest(args.include, list_models())}")
    for model in list_models(args.include or None):
        entries = _weights_entries(model)
        if not entries:
            rows.append({"model": model, "weights": None})
        for entry in entries:
            rows.append(
                {
                    "model": model,
                    "weights": f"{type(entry).__name__}.{entry.name}",
                    "dataset": entry.meta.get("dataset"),
                    "source": _short_source(entry),
                    "metrics": entry.meta.get("_metrics"),
                    "published_metrics": entry.meta.get("published_metrics"),
                    "params": entry.meta.get("num_params"),
                    "file_size_mb": entry.meta.get("_file_size"),
                }
            )
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if args.markdown:
        print(markdown_table(rows))
        return 0
    print(f"{'model':<24} {'weights':<50} {'params':>10} {'MB':>6}  metrics")
    for row in rows:
        if row["weights"] is None:
            doc = (get_model_builder(row["model"]).__doc__ or "").strip().splitlines()[0]
            print(f"{row['model']:<24} {'-':<50} {'':>10} {'':>6}  ({doc[:60]})")
            continue
        params = f"{row['params'] / 1e6:.2f}M" if row["params"] else ""
        size = f"{row['file_size_mb']:.2f}" if row["file_size_mb"] else ""
        metrics = "; ".join(t for t in (_metric_text(row["metrics"]), _published_text(row["published_metrics"])) if t)
        print(f"{row['model']:<24} {row['weights']:<50} {params:>10} {size:>6}  {metrics}")
    return 0


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """The README's model table: one row per weights entry (or per model without weights)."""
    lines = ["| model | weights | source | dataset | metrics | params | file size |", "|---|---|---|---|---|---|---|"]
    for row in rows:
        if row["weights"] is None:
            lines.append(f"| `{row['model']}` | none yet | | | | | |")
            continue
        metrics = "; ".join(t for t in (_metric_text(row["metrics"]), _published_text(row["published_metrics"])) if t)
        params = f"{row['params'] / 1e6:.2f} M" if row["params"] else ""
        size = f"{row['file_size_mb']:.2f} MB" if row["file_size_mb"] else ""
        dataset = row["dataset"] or ""
        cells = [f"`{row['model']}`", f"`{row['weights']}`", row["source"], dataset, metrics, params, size]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _cmd_info(args: argparse.Namespace) -> int:
    name = args.name
    if _is_model_name(name):
        builder = get_model_builder(name)
        info: dict[str, Any] = {
            "model": name,
            "doc": (builder.__doc__ or "").strip().split("\n\n")[0],
            "weights": [f"{type(e).__name__}.{e.name}" for e in _weights_entries(name)],
        }
    else:
        entry = _resolve_entry(name)
        source = _source(entry)
        info = {
            "weights": f"{type(entry).__name__}.{entry.name}",
            "source": source["text"],
            "url": entry.url,
            "sha256_prefix": entry.value.sha256_prefix,
            "converter": entry.value.converter,
            "hub_copy": source["hub_copy"],
            "repo_id": hub.repo_id(entry.repo),
            "revision": entry.revision,
            "sha256": entry.sha256,
            "shipped": source["shipped"],
            "meta": {k: v for k, v in entry.meta.items() if k != "categories"},
            "categories": entry.meta.get("categories"),
        }
    print(json.dumps(info, indent=2, default=str))
    return 0


def _cmd_download(args: argparse.Namespace) -> int:
    source = _resolve_entry(args.weights) if _is_model_name(args.weights) else args.weights
    kwargs = {"keep_upstream": True} if args.keep_upstream else {}
    folder = hub.download(source, revision=args.revision, sha256=args.sha256, progress=not args.quiet, **kwargs)
    print(folder)
    return 0


def _cmd_publish(args: argparse.Namespace) -> int:
    commit = hub.push_to_hub(
        Path(args.directory), args.repo_id, revision=args.revision, token=args.token, private=args.private,
        commit_message=args.message,
    )  # fmt: skip
    print(f"{commit.oid} {commit.commit_url}")
    return 0


def _cmd_convert(args: argparse.Namespace) -> int:
    name = os.path.basename(args.input)
    if args.align_corners is not None and args.source != "mmseg":
        raise ValueError(f"--align-corners applies to mmseg checkpoints, not {args.source} ones")
    if args.source == "mindspore":
        model = convert.from_mindspore(args.input)
        source = f"converted from the MindSpore checkpoint {name} by zoo.convert"
        metadata = convert.mindspore.hub_metadata(model, source)
    else:
        if args.source == "semseg":
            model = convert.from_semseg(args.input)
        else:
            kwargs = {} if args.align_corners is None else {"align_corners": args.align_corners == "true"}
            model = convert.from_mmseg(args.input, **kwargs)
        origin = {"semseg": "hszhao/semseg", "mmseg": "open-mmlab/mmsegmentation"}[args.source]
        metadata = {"source": f"converted from the {origin} checkpoint {name} by zoo.convert"}
    folder = hub.save_pretrained(model, args.output_dir, metadata=metadata)
    print(folder)
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    kwargs = None
    if args.kwargs:
        try:
            kwargs = json.loads(args.kwargs)
        except json.JSONDecodeError:
            kwargs = None
        if not isinstance(kwargs, dict):
            raise ValueError(f"--kwargs {args.kwargs}: expected a JSON object, e.g. '{{\"num_classes\": 5}}'")
    written = export.export_model(
        args.model, args.format, args.output, weights=args.weights, kwargs=kwargs, size=args.size
    )
    for path in written:
        print(path)
    if len(written) > 1:
        extra = ", ".join(str(p) for p in written[1:])
        print(f"{written[0]} keeps its weights in {extra}: copy them together", file=sys.stderr)
    return 0


# ----------------------------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m zoo", description="spp-zoo: models, pretrained weights, Hub, export.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser, metavar="COMMAND")

    p = commands.add_parser("list", help="models, their weights, metrics and sizes")
    p.add_argument("--include", help="fnmatch pattern of model names, e.g. 'pspnet_*'")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--markdown", action="store_true", help="print the README's model table")
    p.set_defaults(func=_cmd_list)

    p = commands.add_parser("info", help="a model's builder and weights, or a weights entry's pins and meta")
    p.add_argument("name", metavar="MODEL_OR_WEIGHTS", help="a model name or 'Enum.ENTRY'")
    p.set_defaults(func=_cmd_info)

    p = commands.add_parser("download", help="download and verify weights into the caches (for offline use)")
    p.add_argument("weights", metavar="WEIGHTS", help="'Enum.ENTRY', a model name (its DEFAULT) or a Hub repo id")
    p.add_argument("--revision", help="branch, tag or commit (repo ids only)")
    p.add_argument("--sha256", help="expected sha256 of model.safetensors (repo ids only)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--keep-upstream", action="store_true",
                   help="entries converted from an upstream file: keep that file in the cache too")  # fmt: skip
    p.set_defaults(func=_cmd_download)

    p = commands.add_parser("publish", help="upload a folder written by save_pretrained to a Hub repository")
    p.add_argument("directory", metavar="DIRECTORY")
    p.add_argument("repo_id", metavar="REPO_ID", help="'org/name'")
    p.add_argument("--revision", help="branch to commit to (created if needed; default main)")
    p.add_argument("--token", help="Hub token (default: HF_TOKEN or the saved login)")
    p.add_argument("--private", action="store_true", help="create the repository private")
    p.add_argument("--message", help="commit message")
    p.set_defaults(func=_cmd_publish)

    p = commands.add_parser("convert", help="convert an official checkpoint into a Hub-layout folder")
    p.add_argument(
        "source",
        choices=["semseg", "mmseg", "mindspore"],
        help="hszhao/semseg or mmsegmentation PSPNet (.pth), or MindSpore's SppNet (.ckpt, e.g. sppnet_mult)",
    )
    p.add_argument("input", metavar="IN", help="the checkpoint file")
    p.add_argument("output_dir", metavar="OUT_DIR", help="folder to write (model.safetensors, config.json, card)")
    p.add_argument("--align-corners", choices=["true", "false"],
                   help="mmseg: the heads' align_corners (default: read from the checkpoint's config, else false; "
                   "true for the 769x769 Cityscapes models)")  # fmt: skip
    p.set_defaults(func=_cmd_convert)

    p = commands.add_parser("export", help="export a model to TorchScript, torch.export or ONNX")
    p.add_argument("model", metavar="MODEL", help="a registered model name or a folder written by save_pretrained")
    p.add_argument("--format", required=True, choices=export.FORMATS,
                   help="torchscript: any input; export: dynamic batch, H and W; onnx: dynamic batch")  # fmt: skip
    p.add_argument("--output", "-o", required=True, help="file to write")
    p.add_argument("--weights", help="weights entry of MODEL ('Enum.ENTRY', 'DEFAULT')")
    p.add_argument("--kwargs", help="builder keyword arguments as a JSON object, e.g. '{\"num_classes\": 5}'")
    p.add_argument("--size", type=int, nargs=2, default=None, metavar=("H", "W"),
                   help="example input size (default: the weights' input_size, else 224 224)")  # fmt: skip
    p.set_defaults(func=_cmd_export)

    task_commands.add_commands(commands)
    return parser


def _one_line(error: BaseException) -> str:
    text = str(error).strip()
    if isinstance(error, KeyError) and text.startswith("'"):
        text = text.strip("'")
    return text.splitlines()[0] if text else type(error).__name__


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    prog = f"zoo {args.command}"
    try:
        return int(args.func(args) or 0)
    except USAGE_ERRORS as error:
        print(f"{prog}: error: {_one_line(error)}", file=sys.stderr)
        return 2
    except (OSError, RuntimeError) as error:
        print(f"{prog}: error: {_one_line(error)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
