"""Training of the zoo's models on :mod:`zoo.data`: ``python -m zoo train MODEL ...``.

One engine for every family (task from the model, see :mod:`zoo.engine.tasks`): AdamW with linear warmup and
cosine decay per step, a global batch of ``batch_size`` images, seeded and reproducible, checkpoints in
Hub layout (:func:`zoo.hub.save_pretrained`) after every epoch with the optimizer, scheduler, RNG and
step counters beside them (``training_state.pt``), and ``resume`` continuing a run exactly where it
stopped: a run resumed after epoch k ends with the same weights as the uninterrupted run.

Data-parallel: under ``torchrun`` (``WORLD_SIZE`` > 1) the model is wrapped in
``DistributedDataParallel`` (gloo on CPU, NCCL on GPU), a ``DistributedSampler`` shards each epoch's
permutation, every process takes ``batch_size / world_size`` images per step, and rank 0 alone logs and
writes checkpoints. Since the permutation, the augmentation (seeded per sample) and the gradient
average are those of the single-process run, N processes give the single-process weights within
rounding, for models whose per-sample computation does not depend on the rest of the batch: BatchNorm
in training mode normalizes with per-process statistics (``sync_bn`` converts it to SyncBatchNorm, CUDA
only), dropout and the detector's proposal sampling draw per-process random numbers.

SPP-net's multi-size training (He et al., Sec. 2.3): with ``multi_size=(a, b, ...)`` each step resizes
its whole batch to one size and the sizes alternate from step to step.

On CUDA the forward and loss run under bf16 autocast (``amp=True``); on the CPU in fp32 unless ``cpu_amp=True``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import shlex
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, Subset
from tqdm.auto import tqdm

from ..data import collate_detection
from ..hub.files import WEIGHTS_NAME, describe, load_safetensors, verify_recorded
from ..hub.pretrained import HUB_TASKS, save_pretrained
from ..models.presets import IMAGENET_MEAN, IMAGENET_STD
from ..models.registry import get_model, get_model_builder, load_state_dict
from . import tasks
from .evaluate import evaluate
from .finetune import build_from_weights
from .tasks import default_image_size

__all__ = ["TrainConfig", "train", "resumed_config", "TRAINING_STATE", "default_image_size"]

TRAINING_STATE = "training_state.pt"


@dataclass
class TrainConfig:
    """Everything that determines a training run (saved in the checkpoint, reused by ``resume``).

    Args:
        model: registered model name.
        kwargs: builder keyword arguments (``num_classes`` defaults to the data's class count).
        data: ``"scenes"``, ``"scene-objects"`` (segmentation only: object-centred crops of the scenes, DeconvNet's
            first stage), ``"trees"`` (detection only) or a real dataset read from ``root``
            (:data:`zoo.engine.tasks.REAL_DATASETS`: ade20k, voc2012, cityscapes, seg-folder, coco, voc-det,
            imagefolder); ``num_classes`` and the saved ``categories`` are its classes.
        root: the directory of a real dataset.
        weights: start from this weights entry of ``model`` (``"ENTRY"``, ``"Enum.ENTRY"``, ``"DEFAULT"``) or
            checkpoint directory, fine-tuning: the architecture is the weights', the classifier layers that do not
            fit the data's class count are re-initialized, every other tensor is loaded (the skipped ones are
            logged). None: from scratch (``kwargs``).
        weights_backbone: start the trunk from this backbone entry (``"Enum.ENTRY"``: a trunk classifier of
            :mod:`zoo.models.classifiers`, e.g. ``"ResNet18_Classifier_Weights.SCENES_V1"``, or what the builder's
            ``weights_backbone`` takes), the heads fresh: the papers' pretrain-then-fine-tune start. The builder
            takes the trunk's widths from the entry; the run records them in ``kwargs`` (``resume`` rebuilds them).
        epochs: total epochs of the run (the schedule's length).
        batch_size: global batch (split evenly across processes).
        lr, weight_decay, warmup: AdamW learning rate and weight decay; warmup as a fraction of the steps.
        seed: seeds the model init, the epoch permutations and the augmentation.
        image_size: square training size (classification, segmentation); None = the task's default.
        multi_size: sizes alternating from step to step (SPP-net multi-size training), or empty.
        limit: number of training items (None: the whole train split).
        val_size: val items evaluated after each epoch for the log (0: none).
        augment: the seeded horizontal flip.
        rotate: also a seeded rotation by 0, 90, 180 or 270 degrees after the flip (the eight symmetries of a square:
            overhead imagery such as ``data="trees"``, where no direction is up). Needs ``augment``.
        channels_last: train in the channels-last memory format (faster convolutions on recent CPUs and GPUs).
        log_every: also log the mean training loss of every ``log_every`` steps to ``log.jsonl`` (0: per epoch only).
        workers: DataLoader worker processes.
        amp: bf16 autocast on CUDA.
        cpu_amp: bf16 autocast on the CPU too (off by default). On a CPU with AVX-512 BF16 it made the BatchNorm
            networks' steps 1.1-1.5x faster, 1.6-1.9x with ``channels_last``, and ZF-5's slower
            (``recipes/cpu_speed.py``).
        sync_bn: convert BatchNorm to SyncBatchNorm in data-parallel CUDA runs.
        output: checkpoint directory.
        command: the command line recorded in the model card.
    """

    model: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    data: str = "scenes"
    root: str | None = None
    weights: str | None = None
    weights_backbone: str | None = None
    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup: float = 0.05
    seed: int = 0
    image_size: int | None = None
    multi_size: list[int] = field(default_factory=list)
    limit: int | None = None
    val_size: int = 0
    augment: bool = True
    rotate: bool = False
    channels_last: bool = False
    log_every: int = 0
    workers: int = 0
    amp: bool = True
    cpu_amp: bool = False
    sync_bn: bool = False
    output: str = "runs/train"
    command: str = ""

    def validate(self) -> None:
        get_model_builder(self.model)  # ValueError naming the unknown model
        task = tasks.task_of_builder(self.model)
        tasks.check_data(task, self.data, self.root)
        if self.weights is not None and (not isinstance(self.weights, str) or not self.weights):
            raise ValueError(f"weights must be an entry name or a checkpoint directory, got {self.weights!r}")
        if self.weights_backbone is not None:
            if not isinstance(self.weights_backbone, str) or not self.weights_backbone:
                raise ValueError(f"weights_backbone must be an entry name, got {self.weights_backbone!r}")
            if self.weights is not None:
                raise ValueError("weights and weights_backbone exclude each other: fine-tune from one of them")
        if self.rotate and not self.augment:
            raise ValueError("rotate is an augmentation: it contradicts augment=False (--no-augment)")
        if isinstance(self.log_every, bool) or not isinstance(self.log_every, int) or self.log_every < 0:
            raise ValueError(f"log_every must be an int >= 0, got {self.log_every!r}")
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr!r}")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"limit must be a positive int, got {self.limit!r}")
        if self.multi_size and task == "detection":
            raise ValueError("multi_size applies to classifiers and segmenters (the detector resizes itself)")
        if any(s < 1 for s in self.multi_size):
            raise ValueError(f"multi_size must hold positive sizes, got {self.multi_size!r}")


# ------------------------------------------------------------------------------------------- distributed
def _distributed() -> tuple[int, int]:
    """(rank, world size); initializes the process group under torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1
    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), dist.get_world_size()


def _device(rank: int) -> torch.device:
    if torch.cuda.is_available():
        local = int(os.environ.get("LOCAL_RANK", rank))
        torch.cuda.set_device(local)
        return torch.device("cuda", local)
    return torch.device("cpu")


def _hardware(device: torch.device, world: int) -> str:
    if device.type == "cuda":
        return f"{world} x {torch.cuda.get_device_name(device)}"
    cpu = platform.processor() or platform.machine()
    return f"CPU ({cpu}), {os.cpu_count()} cores, {torch.get_num_threads()} torch threads x {world} process(es)"


# ---------------------------------------------------------------------------------------------- schedule
def _lr_lambda(total_steps: int, warmup: float):
    warmup_steps = max(1, int(round(warmup * total_steps)))

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor


def _build_model(config: TrainConfig, task: str, categories: list[str], rank: int = 0,
                 fresh: bool = True) -> tuple[nn.Module, TrainConfig]:  # fmt: skip
    """The model to train and the config with the kwargs it was built with. ``fresh``: a new run, whose trunk
    starts from ``config.weights_backbone`` (a resumed run loads its checkpoint instead)."""
    kwargs = dict(config.kwargs)
    kwargs.setdefault("num_classes", len(categories))
    if config.model.startswith("pspnet_"):
        kwargs.setdefault("aux_loss", True)
    if config.weights_backbone is None or not fresh:
        return get_model(config.model, **kwargs), config
    model = get_model(config.model, weights_backbone=config.weights_backbone, **kwargs)
    _log(rank, None, {"weights_backbone": config.weights_backbone, "trunk": "loaded strictly"})
    built = {k: v for k, v in model.zoo_config["kwargs"].items() if k != "num_classes"}
    return model, dataclasses.replace(config, kwargs=built)  # the trunk's widths, for resume


def _fine_tune_model(config: TrainConfig, categories: list[str], rank: int) -> tuple[nn.Module, TrainConfig]:
    """The model of ``config.weights`` for ``categories``, and the config with the architecture it was built with
    (so that ``resume`` rebuilds it without the weights)."""
    overrides = {k: v for k, v in config.kwargs.items() if k != "num_classes"}
    if config.model.startswith("pspnet_"):
        overrides.setdefault("aux_loss", True)
    model, report, label = build_from_weights(config.model, config.weights, len(categories), overrides)
    _log(rank, None, {"weights": report.summary(label)})
    kwargs = {k: v for k, v in model.zoo_config["kwargs"].items() if k not in ("num_classes", "weights")}
    return model, dataclasses.replace(config, kwargs=kwargs)


def _metadata(config: TrainConfig, task: str, categories: list[str], model: nn.Module, extra: dict) -> dict:
    size = config.image_size or default_image_size(task)
    meta: dict[str, Any] = {
        "categories": categories,
        "mean": list(IMAGENET_MEAN),
        "std": list(IMAGENET_STD),
        "task": HUB_TASKS[task],
        "dataset": config.data,
        "source": "trained with spp-zoo's `python -m zoo train` (zoo/engine/train.py)",
        "license": "MIT",
        "description": f"{config.model} trained from scratch on spp-zoo's {config.data} data",
    }
    if config.weights is not None:
        weights = _portable_name(config.weights)
        meta["source"] = f"fine-tuned from {weights} with spp-zoo's `python -m zoo train` (zoo/engine/train.py)"
        meta["description"] = (
            f"{config.model} fine-tuned from {weights} on {config.data} ({_portable_name(config.root)})"
        )
    elif config.weights_backbone is not None:
        meta["source"] = (
            f"fine-tuned from the backbone {config.weights_backbone} with spp-zoo's `python -m zoo train` "
            "(zoo/engine/train.py)"
        )
        meta["description"] = f"{config.model} fine-tuned on {config.data} from the backbone {config.weights_backbone}"
    elif config.data in tasks.REAL_DATASETS:
        meta["description"] = f"{config.model} trained from scratch on {config.data} ({_portable_name(config.root)})"
    if size is not None:
        meta["input_size"] = [size, size]
    if hasattr(model, "align_corners"):
        meta["align_corners"] = bool(model.align_corners)
    meta.update(extra)
    return meta


def _portable_name(value: str | None) -> str | None:
    """A weights entry or dataset as a saved card may show it: an entry name as is, a local path by its last
    component only (a model card never carries an absolute local path)."""
    if value is None or not tasks.names_a_folder(value):
        return value
    return Path(value).name or value


def _save_checkpoint(model: nn.Module, output: Path, metadata: dict, state: dict) -> None:
    output.mkdir(parents=True, exist_ok=True)
    save_pretrained(model, output, metadata=metadata)
    tmp = output / (TRAINING_STATE + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, output / TRAINING_STATE)


def load_training_state(directory: str | os.PathLike) -> dict:
    """The ``training_state.pt`` of a checkpoint directory (FileNotFoundError naming it when absent)."""
    path = Path(directory) / TRAINING_STATE
    if not Path(directory).is_dir():
        raise FileNotFoundError(f"{directory}: no such directory (--resume takes a directory holding {TRAINING_STATE})")
    if not path.is_file():
        raise FileNotFoundError(f"{directory}: no {TRAINING_STATE} (not a checkpoint directory of `zoo train`)")
    return torch.load(path, map_location="cpu", weights_only=True)


def _log(rank: int, output: Path | None, record: dict) -> None:
    if rank != 0:
        return
    print(" ".join(f"{k}={v}" for k, v in record.items()), file=sys.stderr, flush=True)
    if output is not None:
        output.mkdir(parents=True, exist_ok=True)
        with open(output / "log.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")


def _log_step(rank: int, output: Path, record: dict) -> None:
    """A step record of the learning curve: ``log.jsonl`` only (the bar shows the loss already)."""
    if rank == 0:
        output.mkdir(parents=True, exist_ok=True)
        with open(output / "log.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")


def _validate(task, model, config, device) -> dict[str, float]:
    """``zoo.engine.evaluate`` on the first ``config.val_size`` val items; the model goes back to training mode."""
    size = config.image_size or default_image_size(task)
    metrics = evaluate(model, data=config.data, split="val", image_size=size, limit=config.val_size, device=device,
                       root=config.root)  # fmt: skip
    model.train()
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float))}  # not the per-class table


#: Settings a resumed run may change: they do not change what it computes.
_FREE_ON_RESUME = ("command", "workers")
#: Command-line spelling of the settings (for messages).
_FLAGS = {"kwargs": "-k", "augment": "--no-augment", "amp": "--no-amp", "model": "MODEL"}


def _flag(name: str) -> str:
    return _FLAGS.get(name, "--" + name.replace("_", "-"))


def _same(a: Any, b: Any) -> bool:
    """Equal as the JSON of a saved config (tuples and lists alike, 1e-3 == 0.001)."""
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


def resumed_config(
    resume: str | os.PathLike, config: TrainConfig, given: Iterable[str] | None = None
) -> tuple[TrainConfig, dict]:
    """The configuration and training state to continue the run checkpointed in ``resume``.

    The run continues in ``resume`` (its ``output``) with its saved settings. ``given``: the settings
    the caller asked for (default: those of ``config`` that differ from TrainConfig's defaults, and
    ``model``); each must equal the saved one (except ``workers`` and ``command``), ``output`` must be
    ``resume`` itself, and ``model`` the saved architecture: otherwise a ValueError names the setting and
    both values.
    """
    state = load_training_state(resume)
    saved = TrainConfig(**state["config"])
    if given is None:
        defaults = TrainConfig(model=config.model)
        given = {
            f.name for f in dataclasses.fields(TrainConfig) if getattr(config, f.name) != getattr(defaults, f.name)
        }
        given.add("model")
    given = set(given) - set(_FREE_ON_RESUME)
    where = f"--resume {resume}"
    if "model" in given and config.model.lower() != saved.model:
        raise ValueError(f"{where} holds a {saved.model} run, not {config.model} (another architecture)")
    if "output" in given and Path(config.output).resolve() != Path(resume).resolve():
        raise ValueError(f"{where}: --output {config.output} contradicts it (a resumed run continues in {resume})")
    if "kwargs" in given:
        for key, value in config.kwargs.items():
            if key not in saved.kwargs or not _same(value, saved.kwargs[key]):
                was = (
                    f"run's {key}={json.dumps(saved.kwargs[key])}"
                    if key in saved.kwargs
                    else f"run, which left {key} at the builder's default"
                )
                raise ValueError(f"{where}: -k {key}={json.dumps(value)} contradicts the {was}")
    for name in sorted(given - {"model", "output", "kwargs"}):
        mine, theirs = getattr(config, name), getattr(saved, name)
        if not _same(mine, theirs):
            if name in ("augment", "amp", "rotate"):
                raise ValueError(f"{where}: {_flag(name)} contradicts the run, which had {name}={theirs}")
            raise ValueError(f"{where}: {_flag(name)} {mine} contradicts the run's {_flag(name)} {theirs}")
    free = {name: getattr(config, name) for name in _FREE_ON_RESUME}
    free["command"] = free["command"] or saved.command
    return dataclasses.replace(saved, output=str(resume), **free), state


def train(
    config: TrainConfig,
    *,
    resume: str | os.PathLike | None = None,
    stop_after: int | None = None,
    given: Iterable[str] | None = None,
) -> Path:
    """Train (or resume) and return the checkpoint directory ``config.output``.

    ``resume``: a checkpoint directory of an earlier run; training continues there, after its last finished
    epoch, with its saved settings (:func:`resumed_config`: settings of ``config`` named in ``given``
    must agree with them). A run that is already complete prints one line and returns its directory.
    ``stop_after``: stop once this many epochs (in total) are done, as if interrupted there.
    """
    state = None
    if resume is not None:
        config, state = resumed_config(resume, config, given)
        stop = config.epochs if stop_after is None else min(config.epochs, stop_after)
        if state["epoch"] >= stop:
            if int(os.environ.get("RANK", "0")) == 0:
                done = "complete" if state["epoch"] >= config.epochs else f"at epoch {state['epoch']} (--stop-after)"
                print(f"{resume}: the run is already {done}: {state['epoch']} of {config.epochs} epochs trained; "
                      "nothing to do", file=sys.stderr)  # fmt: skip
            return Path(resume)
    config.validate()
    rank, world = _distributed()
    if config.batch_size % world:
        raise ValueError(f"batch_size={config.batch_size} must be divisible by the {world} processes")
    device = _device(rank)
    output = Path(config.output)
    task = tasks.task_of_builder(config.model)
    raw = tasks.build_dataset(task, config.data, "train", size=config.limit, root=config.root)
    categories = tasks.categories(task, config.data, raw)

    torch.manual_seed(config.seed)  # same init on every rank
    if config.weights is not None and state is None:
        model, config = _fine_tune_model(config, categories, rank)
    else:
        model, config = _build_model(config, task, categories, rank, fresh=state is None)
    if state is not None:
        checkpoint = Path(resume) / WEIGHTS_NAME
        verify_recorded(Path(resume), cached=False)
        load_state_dict(model, load_safetensors(checkpoint), describe(checkpoint))
    model.to(device)
    if config.channels_last:
        model.to(memory_format=torch.channels_last)
    if world > 1 and config.sync_bn and device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    module = model
    if world > 1:
        model = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    if config.limit is not None and len(raw) > config.limit:
        raw = Subset(raw, range(config.limit))
    samples = tasks.TrainSamples(raw, task, config.seed, config.augment, config.rotate)
    sampler = DistributedSampler(samples, num_replicas=world, rank=rank, shuffle=True, seed=config.seed)
    loader = DataLoader(
        samples,
        batch_size=config.batch_size // world,
        sampler=sampler,
        collate_fn=collate_detection,
        drop_last=True,
        num_workers=config.workers,
    )
    if len(loader) == 0:
        raise ValueError(f"batch_size={config.batch_size} exceeds the {len(samples)} training items")
    optimizer = torch.optim.AdamW(module.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(config.epochs * len(loader), config.warmup))
    start_epoch, step, elapsed = 0, 0, 0.0
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start_epoch, step, elapsed = state["epoch"], state["step"], state["time_s"]
        torch.set_rng_state(state["rng"][rank] if rank < len(state["rng"]) else state["rng"][0])
    else:
        torch.manual_seed(config.seed + rank)  # dropout / proposal sampling differ per rank
    size = config.image_size or default_image_size(task)
    sizes = list(config.multi_size) or [size]
    autocast = (device.type == "cuda" and config.amp) or (device.type == "cpu" and config.cpu_amp)
    stop = config.epochs if stop_after is None else min(config.epochs, stop_after)
    _log(rank, None, {"model": config.model, "task": task, "items": len(samples), "steps_per_epoch": len(loader),
                      "world_size": world, "device": str(device)})  # fmt: skip

    for epoch in range(start_epoch, stop):
        started = time.perf_counter()
        sampler.set_epoch(epoch)
        samples.set_epoch(epoch)
        model.train()
        total = torch.zeros(2, dtype=torch.float64, device=device)
        window = torch.zeros(2, dtype=torch.float64, device=device)
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{config.epochs}", disable=rank != 0, leave=False)
        for images, targets in bar:
            x, y = tasks.prepare_batch(task, images, targets, sizes[step % len(sizes)], device)
            if config.channels_last and isinstance(x, torch.Tensor):
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
                loss = tasks.compute_loss(task, model, x, y)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"the loss became {loss.item()} at step {step}; lower the lr")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            step += 1
            point = torch.stack([loss.detach().double(), torch.ones((), dtype=torch.float64, device=device)])
            total += point
            window += point
            bar.set_postfix(loss=f"{loss.item():.4f}")
            if config.log_every and step % config.log_every == 0:
                if world > 1:
                    dist.all_reduce(window)
                _log_step(rank, output, {"step": step, "train_loss": round(float(window[0] / window[1]), 5),
                                         "lr": f"{scheduler.get_last_lr()[0]:.3g}"})  # fmt: skip
                window.zero_()
        if world > 1:
            dist.all_reduce(total)
        elapsed += time.perf_counter() - started
        record = {"epoch": epoch + 1, "step": step, "loss": round(float(total[0] / total[1]), 5),
                  "lr": f"{scheduler.get_last_lr()[0]:.3g}", "time_s": round(elapsed, 1)}  # fmt: skip
        rng = [torch.get_rng_state()]
        if world > 1:
            gathered = [None] * world
            dist.all_gather_object(gathered, rng[0])
            rng = gathered
        if rank == 0:
            if config.val_size:
                record.update({f"val_{k}": v for k, v in _validate(task, module, config, device).items()})
            _log(rank, output, record)
            training = {
                "command": config.command,
                "hardware": _hardware(device, world),
                "time_s": round(elapsed, 1),
                "epochs": epoch + 1,
                "total_epochs": config.epochs,
                "batch_size": config.batch_size,
                "lr": config.lr,
                "seed": config.seed,
                "image_size": size,
                "multi_size": list(config.multi_size),
                "train_items": len(samples),
                "data": config.data,
            }
            if config.weights is not None:
                training["weights"] = _portable_name(config.weights)
            if config.weights_backbone is not None:
                training["weights_backbone"] = config.weights_backbone
            meta = _metadata(config, task, categories, module, {"training": training})
            train_state = {
                "config": dataclasses.asdict(config),
                "epoch": epoch + 1,
                "step": step,
                "time_s": elapsed,
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "rng": rng,
            }
            _save_checkpoint(module, output, meta, train_state)
        if world > 1:
            dist.barrier()
    return output


def config_command() -> str:
    """The current command line, for the model card."""
    return "python -m zoo " + " ".join(shlex.quote(a) for a in sys.argv[1:])
