"""The training loop: one call trains a config into a run folder, resuming where it stopped.

Sequence of :func:`train`:

1. decide from the folder: new, resume, or finished (then return its summary);
2. build everything that can fail on bad input (data, statistics, model,
   optimizer, checkpoint) before writing a single file;
3. write ``params.yaml``, ``environment.json``, ``history.csv`` (cut back to
   the checkpoint's epoch) and a ``running`` summary;
4. per epoch: train, evaluate on validation and test, then write the
   checkpoint, ``history.csv`` and ``summary.json`` (each atomically, the
   checkpoint first: it carries the history rows, so a kill between two
   writes loses nothing);
5. end with status ``complete``; a non-finite training loss ends with
   ``diverged`` (the epoch is recorded, its evaluation skipped, its weights not
   saved); an exception ends with ``failed`` and the error, then propagates.

Metrics: ``train_loss``/``train_acc`` are averaged over the epoch's augmented
batches in training mode (the loss includes label smoothing);
``val_*``/``test_*`` are plain cross-entropy and accuracy in evaluation mode.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from ..checkpoint import load_checkpoint, save_checkpoint
from ..config import RunConfig
from ..data import Split
from ..errors import ConfigError, ModelError
from ..input_norm import make_normalizer
from ..stats.channel import ChannelStats
from .environment import Execution, environment_info, execution_context, show_progress
from .history import best_row, write_history
from .loader import InputPipeline, TrainBatches, eval_batches, to_device
from .optim import build_optimizer, run_step_hooks, set_epoch_lr, step_hooks
from .prepare import PreparedData, prepare_data
from .rundir import RunFolder
from .seeding import capture_rng_state, derive_seed, restore_rng_state, seed_globals

if TYPE_CHECKING:
    from ..models import BuiltModel

EpochCallback = Callable[[dict[str, Any]], None]


def build_model(config: RunConfig, num_classes: int) -> BuiltModel:
    """The model factory's network for ``config`` (a ``BuiltModel``)."""
    from ..models import create_model

    return create_model(
        config.model,
        num_classes,
        pretrained=config.pretrained,
        norm_layer=config.norm_layer,
        conv_layer=config.conv_layer,
        depth_n=config.depth_n,
        allow_download=config.download,
    )


def resolve_input_size(requested: int | str | None, pretrained_size: int | None) -> int | None:
    """The size to resize inputs to: None keeps the native size (the default).

    ``"pretrained"`` asks for the pretrained model's own input size (224 for the
    torchvision ImageNet weights, the source run's size for a normtest
    checkpoint); it is never applied implicitly.
    """
    if requested is None:
        return None
    if requested == "pretrained":
        if pretrained_size is None:
            raise ConfigError("input_size: 'pretrained' needs a pretrained model that records its input size")
        return int(pretrained_size)
    return int(requested)


@dataclass
class Session:
    """Everything a run needs in memory, built before any file is written."""

    config: RunConfig
    execution: Execution
    data: PreparedData
    built: BuiltModel
    model: nn.Module
    step_model: nn.Module
    optimizer: torch.optim.Optimizer
    pipeline: InputPipeline
    batches: TrainBatches
    val: Split | None
    test: Split
    input_size: int
    rows: list[dict[str, Any]]
    start_epoch: int

    def summary(self, status: str, **extra: Any) -> dict[str, Any]:
        good = [row for row in self.rows if _finite(row["train_loss"])]
        best = best_row(good)
        pretrain_stats = self.built.pretrain_stats
        summary = {
            "status": status,
            "epochs_completed": len(good),
            "num_classes": self.data.num_classes,
            "best_epoch": best["epoch"] if best else None,
            "best_val_acc": best["val_acc"] if best else None,
            "test_acc_at_best_val": best["test_acc"] if best else None,
            "final_test_acc": good[-1]["test_acc"] if good else None,
            "seconds": sum(row["seconds"] for row in self.rows),
            "model_source": self.built.source,
            "pretrain_stats": pretrain_stats.to_dict() if pretrain_stats is not None else None,
            "finetune_stats": self.data.finetune_stats.to_dict(),
            "input_size": self.input_size,
            "n_train": len(self.data.train),
            "n_val": len(self.val) if self.val is not None else 0,
            "n_test": len(self.test),
        }
        summary.update(extra)
        return summary

    def checkpoint_payload(self, epochs_done: int) -> dict[str, Any]:
        config = self.config
        best = best_row(self.rows)
        return {
            "model": {
                "name": config.model,
                "num_classes": self.data.num_classes,
                "norm_layer": config.norm_layer,
                "conv_layer": config.conv_layer,
                "depth_n": config.depth_n,
            },
            "state_dict": {key: value.detach().cpu() for key, value in self.model.state_dict().items()},
            "source": {
                "dataset": config.dataset,
                # What the network was trained with, for a later run's input_norm 'pretrain'.
                **_trained_stats(config.input_norm, self.data.finetune_stats, self.built.pretrain_stats),
                "input_size": self.input_size,
                "input_norm": config.input_norm,
                # How inputs were resized to input_size; None when they kept their native size.
                "interpolation": self.pipeline.interpolation if self.pipeline.resize_to is not None else None,
            },
            "epoch": epochs_done,
            "train_state": {
                "optimizer": self.optimizer.state_dict(),
                "scheduler": {"schedule": config.schedule, "next_epoch": epochs_done},
                "rng": capture_rng_state(),
                "best": {key: best[key] for key in ("epoch", "val_acc", "test_acc")} if best else None,
                "history": [dict(row) for row in self.rows],
            },
        }


def train(
    config: RunConfig,
    out_dir: str | Path,
    *,
    progress: bool | None = None,
    on_epoch_end: EpochCallback | None = None,
) -> dict[str, Any]:
    """Train ``config`` into the run folder ``out_dir`` and return its summary.

    ``progress``: show tqdm bars (None: only when stderr is a terminal).
    ``on_epoch_end(row)`` is called with each new history row after the
    epoch's files are written (e.g. to plot live in a notebook).
    """
    folder = RunFolder(out_dir)
    state = folder.state(config)
    if state == "finished":
        return folder.read_summary()

    with execution_context(config) as execution:
        session = build_session(config, execution, folder if state == "resume" else None)
        folder.path.mkdir(parents=True, exist_ok=True)
        folder.write_params(config)
        folder.write_environment(environment_info(execution, config))
        write_history(folder.history, session.rows)
        folder.write_summary(session.summary("running"))
        try:
            return _run_epochs(session, folder, show_progress(progress), on_epoch_end)
        except BaseException as exc:
            folder.write_summary(session.summary("failed", error=f"{type(exc).__name__}: {exc}"))
            raise


def build_session(config: RunConfig, execution: Execution, resume_from: RunFolder | None = None) -> Session:
    """Data, statistics, model, optimizer and (when resuming) the checkpoint's state; writes nothing."""
    device = execution.device
    data = prepare_data(config)
    seed_globals(derive_seed(config.seed, "init"))
    built = build_model(config, data.num_classes)
    model = built.module.to(device)
    if execution.channels_last:
        model = model.to(memory_format=torch.channels_last)
    _check_pretrain_stats(config, built)
    try:
        normalizer = make_normalizer(
            config.input_norm, finetune_stats=data.finetune_stats, pretrain_stats=built.pretrain_stats
        )
    except ValueError as exc:
        raise ModelError(f"input_norm {config.input_norm!r} with model {config.model!r}: {exc}") from None
    resize_to = resolve_input_size(config.input_size, built.input_size)
    pipeline = InputPipeline(normalizer, resize_to, _interpolation_name(built), execution.memory_format)
    optimizer = build_optimizer(model, config)

    rows: list[dict[str, Any]] = []
    start_epoch = 0
    if resume_from is not None:
        checkpoint = load_checkpoint(resume_from.checkpoint)
        _check_resumable(checkpoint, config, data.num_classes, resume_from.checkpoint)
        model.load_state_dict(checkpoint["state_dict"])
        optimizer.load_state_dict(checkpoint["train_state"]["optimizer"])
        rows = [dict(row) for row in checkpoint["train_state"]["history"]]
        start_epoch = int(checkpoint["epoch"])
        restore_rng_state(checkpoint["train_state"]["rng"])
    else:
        seed_globals(derive_seed(config.seed, "train"))

    step_model = torch.compile(model) if config.compile else model
    train_split = to_device(data.train, device)
    augment = dict(augment=config.augment, pad=config.pad, flip=config.flip)
    return Session(
        config=config,
        execution=execution,
        data=data,
        built=built,
        model=model,
        step_model=step_model,
        optimizer=optimizer,
        pipeline=pipeline,
        batches=TrainBatches(train_split, config.batch_size, config.seed, **augment),
        val=to_device(data.val, device) if data.val is not None else None,
        test=to_device(data.test, device),
        input_size=resize_to if resize_to is not None else int(data.native_size[0]),
        rows=rows,
        start_epoch=start_epoch,
    )


def _trained_stats(
    input_norm: str, finetune_stats: ChannelStats, pretrain_stats: ChannelStats | None
) -> dict[str, list[float] | None]:
    """The checkpoint's mean/std: the statistics its inputs were standardized with, or None.

    'finetune' used this run's training-set statistics, 'pretrain' the starting
    weights' statistics; every other setting (instance, minmax, unit, none) used
    none, so a later run cannot take any as its 'pretrain' statistics.
    """
    used = {"finetune": finetune_stats, "pretrain": pretrain_stats}.get(input_norm)
    if used is None:
        return {"mean": None, "std": None}
    return {"mean": list(used.mean), "std": list(used.std)}


def _check_pretrain_stats(config: RunConfig, built: BuiltModel) -> None:
    """input_norm 'pretrain' needs statistics from the start; say why a checkpoint has none."""
    if config.input_norm != "pretrain" or built.pretrain_stats is not None:
        return
    if built.source.startswith("checkpoint:"):
        trained = built.trained_input_norm
        if trained in (None, "finetune", "pretrain"):
            expects = "use input_norm 'finetune'"
        else:
            expects = f"use input_norm {trained!r} (what that network expects) or 'finetune'"
        raise ModelError(
            f"pretrained: checkpoint {config.pretrained} was trained with input_norm {trained!r} and records no "
            f"statistics, so input_norm 'pretrain' has none to use; {expects} instead"
        )
    raise ModelError(
        f"input_norm 'pretrain' with model {config.model!r}: the start {built.source!r} records no pretraining "
        "statistics; use input_norm 'finetune' (or another setting) instead"
    )


def _check_resumable(checkpoint: dict, config: RunConfig, num_classes: int, path: Path) -> None:
    expected = {"name": config.model, "num_classes": num_classes}
    recorded = checkpoint.get("model", {})
    if "train_state" not in checkpoint or any(recorded.get(k) != v for k, v in expected.items()):
        raise ModelError(f"{path} is not a resumable checkpoint of this run; delete it to start the run over")
    if not 0 <= int(checkpoint["epoch"]) <= config.epochs:
        raise ModelError(f"{path} records {checkpoint['epoch']} epochs, but the run has {config.epochs}")


def _run_epochs(session: Session, folder: RunFolder, show: bool, on_epoch_end: EpochCallback | None) -> dict[str, Any]:
    config = session.config
    with tqdm(total=config.epochs, initial=session.start_epoch, desc="epochs", disable=not show) as bar:
        for epoch in range(session.start_epoch, config.epochs):
            row = _run_epoch(session, epoch, show)
            session.rows.append(row)
            if not _finite(row["train_loss"]):
                write_history(folder.history, session.rows)
                summary = session.summary("diverged", diverged_epoch=row["epoch"])
                folder.write_summary(summary)
                return summary
            save_checkpoint(folder.checkpoint, session.checkpoint_payload(epoch + 1))
            write_history(folder.history, session.rows)
            folder.write_summary(session.summary("running"))
            bar.update(1)
            bar.set_postfix(_postfix(row))
            if on_epoch_end is not None:
                on_epoch_end(dict(row))
    summary = session.summary("complete")
    folder.write_summary(summary)
    return summary


def _run_epoch(session: Session, epoch: int, show: bool) -> dict[str, Any]:
    lr = set_epoch_lr(session.optimizer, epoch, session.config)
    start = time.perf_counter()
    train_loss, train_acc, seen = train_one_epoch(session, epoch, show)
    train_seconds = time.perf_counter() - start
    if _finite(train_loss):
        val_loss, val_acc = _evaluate(session, session.val) if session.val is not None else (None, None)
        test_loss, test_acc = _evaluate(session, session.test)
    else:  # the weights are no longer numbers; evaluating them would only report chance
        val_loss = val_acc = test_loss = test_acc = None
    return {
        "epoch": epoch + 1,
        "train_loss": train_loss,
        "train_acc": train_acc,
        "val_loss": val_loss,
        "val_acc": val_acc,
        "test_loss": test_loss,
        "test_acc": test_acc,
        "lr": lr,
        "seconds": time.perf_counter() - start,
        "images_per_second": seen / train_seconds if train_seconds > 0 else None,
    }


def train_one_epoch(session: Session, epoch: int, show: bool = False) -> tuple[float, float, int]:
    """One pass over the training batches of 0-based ``epoch``; returns (mean loss, accuracy, images)."""
    model, optimizer, pipeline = session.step_model, session.optimizer, session.pipeline
    device = session.execution.device
    hooks = step_hooks(session.model)
    smoothing = session.config.label_smoothing
    loss_sum = torch.zeros((), dtype=torch.float32, device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    seen = 0
    session.model.train()
    batches = tqdm(
        session.batches.epoch(epoch),
        total=len(session.batches),
        desc=f"epoch {epoch + 1}/{session.config.epochs}",
        leave=False,
        disable=not show,
    )
    for images, labels in batches:
        inputs = pipeline(images)
        with session.execution.autocast():
            logits = model(inputs)
            loss = F.cross_entropy(logits, labels, label_smoothing=smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        run_step_hooks(hooks)
        loss_sum += loss.detach().float() * labels.shape[0]
        correct += (logits.detach().argmax(dim=1) == labels).sum()
        seen += labels.shape[0]
    # .item() waits for the device, so the caller's clock includes all queued work.
    return loss_sum.item() / seen, correct.item() / seen, seen


def _evaluate(session: Session, split: Split) -> tuple[float, float]:
    """Mean cross-entropy and accuracy over ``split`` in evaluation mode."""
    model, pipeline = session.step_model, session.pipeline
    device = session.execution.device
    loss_sum = torch.zeros((), dtype=torch.float32, device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    session.model.eval()
    with torch.no_grad():
        for images, labels in eval_batches(split, session.config.eval_batch_size):
            with session.execution.autocast():
                logits = model(pipeline(images))
            loss_sum += F.cross_entropy(logits.float(), labels, reduction="sum")
            correct += (logits.argmax(dim=1) == labels).sum()
    return loss_sum.item() / len(split), correct.item() / len(split)


def _interpolation_name(built: BuiltModel) -> str:
    """The model's resize interpolation as an F.interpolate mode; bilinear where none is recorded."""
    return built.interpolation.lower() if built.interpolation else "bilinear"


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def _postfix(row: dict[str, Any]) -> dict[str, str]:
    shown = {"loss": row["train_loss"], "val": row["val_acc"], "test": row["test_acc"]}
    return {key: f"{value:.4f}" for key, value in shown.items() if value is not None}
