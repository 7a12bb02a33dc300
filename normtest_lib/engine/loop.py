"""The training loop: one call trains a config into a run folder, resuming where it stopped.

Sequence of :func:`train`:

1. decide from the folder: new, resume, or finished (then return its summary);
2. build everything that can fail on bad input (data, statistics, model,
   optimizer, checkpoint) before writing a single file;
3. write ``params.yaml``, add this start to ``environment.json``, write
   ``noisy_labels.csv`` (with label noise), ``history.csv`` and ``probes.csv``
   (cut back to the checkpoint's epoch) and a ``running`` summary;
4. per epoch: train, evaluate on validation (and test, unless
   ``test_every_epoch`` is false), take the probes, then write the checkpoint,
   ``best.pt`` when the epoch is the best so far, ``probes.csv``, ``history.csv``
   and ``summary.json`` (each atomically, the checkpoint first: it carries the
   history and probe rows, and its weights are the epoch's, so a kill between
   two writes loses nothing; a resume rewrites a ``best.pt`` the kill missed);
5. with ``test_every_epoch`` false, evaluate ``best.pt`` on the test split once;
   end with status ``complete``; a non-finite training loss ends with
   ``diverged`` (the epoch is recorded, its evaluation skipped, its weights not
   saved); an exception ends with ``failed`` and the error, then propagates.

The best epoch is the one with the highest validation accuracy (the first to
reach it: a later epoch must be strictly better); without a validation split it
is the last epoch (``best_selected_by: "last"``), never one chosen on test
accuracy. ``best.pt`` holds its weights. With ``test_every_epoch`` false the
test split is evaluated once, with those weights: ``test_acc_at_best_val`` is
that figure, and ``final_test_acc`` is the same number when the best epoch is the
last one, else None (the last weights are not evaluated on test), unless
``test_last_epoch`` asks for one more test pass with the last weights: then
``final_test_acc`` is theirs (what memorising noisy labels costs is the gap). Either way
the best weights' test predictions give ``test_micro_f1_at_best_val`` and
``test_macro_f1_at_best_val`` (scikit-learn's, as the earlier works reported).

A run keeps one precision (``bf16`` autocast on CUDA, ``fp32`` elsewhere,
recorded in the summary and the checkpoint): resuming on a device with the
other one is refused.

Metrics: ``train_loss``/``train_acc`` are averaged over the epoch's augmented
batches in training mode (the loss includes label smoothing; with label noise both
are against the noisy labels the run trains on);
``val_*``/``test_*`` are plain cross-entropy and accuracy in evaluation mode.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ..checkpoint import load_checkpoint, save_checkpoint
from ..config import RunConfig
from ..convergence import loss_slope, verdict
from ..data import Split
from ..data.label_noise import write_noisy_labels
from ..errors import ConfigError, ModelError
from ..input_norm import centering_stats, make_normalizer
from ..metrics import classification_metrics
from ..stats.channel import ChannelStats
from .compiling import compile_model
from .environment import (
    Execution,
    environment_info,
    execution_context,
    resolve_speed,
    show_progress,
    to_memory_format,
)
from .fingerprint import Recorder, resume_recorder
from .history import best_row, write_history
from .loader import InputPipeline, TrainBatches, to_device
from .optim import bind_step_hooks, build_optimizer, run_step_hooks, set_epoch_lr
from .prepare import PreparedData, prepare_data
from .probes import ProbeContext, check_probes, run_probes, write_probes
from .rundir import RunFolder
from .seeding import capture_rng_state, derive_seed, restore_rng_state, seed_globals
from .trained import evaluate_and_predict, evaluate_split, predict_split

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
    train: Split | None = None  # the training split on the device, for probes
    # Its labels before label noise, on the device; None when they are the labels trained on.
    train_labels_original: torch.Tensor | None = None
    probe_rows: list[dict[str, Any]] = field(default_factory=list)
    # test_every_epoch false: (loss, accuracy) of best.pt on the test split, once training is over,
    # and with test_last_epoch, of the last epoch's weights.
    best_test: tuple[float, float] | None = None
    last_test: tuple[float, float] | None = None
    # Records the first steps' losses into fingerprint.json (engine/fingerprint.py); None once complete.
    fingerprint: Recorder | None = None

    @property
    def best_selected_by(self) -> str:
        """How the best epoch is chosen: validation accuracy, or the last epoch without a validation split."""
        return "val_acc" if self.val is not None else "last"

    def summary(self, status: str, **extra: Any) -> dict[str, Any]:
        good = [row for row in self.rows if _finite(row["train_loss"])]
        best = best_row(good)
        pretrain_stats = self.built.pretrain_stats
        if self.config.test_every_epoch:
            test_at_best = best["test_acc"] if best else None
            final_test = good[-1]["test_acc"] if good else None
        else:  # only best.pt was evaluated on test; it is the final weights only when the best epoch is the last
            test_at_best = self.best_test[1] if self.best_test is not None else None
            if self.last_test is not None:
                final_test = self.last_test[1]
            else:
                final_test = test_at_best if best is not None and best is good[-1] else None
        summary = {
            "status": status,
            "epochs_completed": len(good),
            "num_classes": self.data.num_classes,
            "best_epoch": best["epoch"] if best else None,
            "best_selected_by": self.best_selected_by,
            "best_val_acc": best["val_acc"] if best else None,
            "test_acc_at_best_val": test_at_best,
            "final_test_acc": final_test,
            # Set by the end of a run from best.pt's test predictions (None before, or without best.pt).
            "test_micro_f1_at_best_val": None,
            "test_macro_f1_at_best_val": None,
            "seconds": sum(row["seconds"] for row in self.rows),
            "probe_seconds": sum(row.get("probe_seconds") or 0.0 for row in self.rows),
            "precision": self.execution.precision,
            "model_source": self.built.source,
            "model_source_sha256": self.built.source_sha256,
            "pretrain_stats": pretrain_stats.to_dict() if pretrain_stats is not None else None,
            "finetune_stats": self.data.finetune_stats.to_dict(),
            "input_size": self.input_size,
            "n_train": len(self.data.train),
            "n_val": len(self.val) if self.val is not None else 0,
            "n_test": len(self.test),
            # The share of training (validation) labels that differ from the originals: the rate
            # trained with, beside the nominal label_noise of the params.
            "noise_rate_actual": self.data.noise_rate_actual,
            "noise_rate_actual_val": self.data.noise_rate_actual_val,
        }
        summary.update(extra)
        return summary

    def weights_payload(self, epochs_done: int) -> dict[str, Any]:
        """The current weights and what rebuilding and feeding the network needs (no train_state)."""
        config = self.config
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
                # This run's training-set statistics, whatever input_norm used, to rebuild its input pipeline.
                "finetune_stats": {
                    "mean": list(self.data.finetune_stats.mean),
                    "std": list(self.data.finetune_stats.std),
                },
            },
            "epoch": epochs_done,
            "precision": self.execution.precision,
        }

    def best_payload(self, epochs_done: int) -> dict[str, Any]:
        """``best.pt``: the weights of epoch ``epochs_done``, chosen as :attr:`best_selected_by` says."""
        return {**self.weights_payload(epochs_done), "selected_by": self.best_selected_by}

    def checkpoint_payload(self, epochs_done: int) -> dict[str, Any]:
        config = self.config
        best = best_row(self.rows)
        return {
            **self.weights_payload(epochs_done),
            "train_state": {
                "optimizer": self.optimizer.state_dict(),
                "scheduler": {"schedule": config.schedule, "next_epoch": epochs_done},
                "rng": capture_rng_state(self.execution.device),
                "best": {key: best[key] for key in ("epoch", "val_acc", "test_acc")} if best else None,
                "history": [dict(row) for row in self.rows],
                "probes": [dict(row) for row in self.probe_rows],
            },
        }

    def probe_context(self, epochs_done: int) -> ProbeContext:
        return ProbeContext(
            model=self.model,
            train=self.train,
            train_labels_original=self.train_labels_original,
            val=self.val,
            test=self.test,
            pipeline=self.pipeline,
            device=self.execution.device,
            epoch=epochs_done,
            eval_batch_size=self.config.eval_batch_size,
        )


def train(
    config: RunConfig,
    out_dir: str | Path,
    *,
    progress: bool | None = None,
    on_epoch_end: EpochCallback | None = None,
) -> dict[str, Any]:
    """Train ``config`` into the run folder ``out_dir`` and return its summary.

    ``progress``: show tqdm bars (None: notebook bars inside a Jupyter kernel, text bars when stderr is a terminal, none otherwise).
    ``on_epoch_end(row)`` is called with each new history row after the
    epoch's files are written (e.g. to plot live in a notebook).
    """
    folder = RunFolder(out_dir)
    state = folder.state(config)
    if state == "finished":
        return folder.read_summary()

    with execution_context(config) as execution:
        session = build_session(config, execution, folder if state == "resume" else None)
        session.fingerprint = _fingerprint_recorder(session, folder)
        folder.path.mkdir(parents=True, exist_ok=True)
        folder.write_params(config)
        folder.add_environment(environment_info(session.execution, config), from_epoch=session.start_epoch)
        _write_noisy_labels(session.data, folder)
        write_history(folder.history, session.rows)
        if config.probes:
            write_probes(folder.probes, session.probe_rows)
        _sync_best(session, folder)
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
    execution = resolve_speed(execution, config, config.epochs * len(data.train))
    seed_globals(derive_seed(config.seed, "init"))
    built = build_model(config, data.num_classes)
    model = to_memory_format(built.module.to(device), execution)
    _check_pretrain_stats(config, built)
    check_probes(config.probes, model)
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
    probe_rows: list[dict[str, Any]] = []
    start_epoch = 0
    if resume_from is not None:
        checkpoint = load_checkpoint(resume_from.checkpoint)
        _check_resumable(checkpoint, config, data.num_classes, resume_from.checkpoint)
        _check_precision(checkpoint, execution, resume_from)
        model.load_state_dict(checkpoint["state_dict"])
        optimizer.load_state_dict(checkpoint["train_state"]["optimizer"])
        rows = [dict(row) for row in checkpoint["train_state"]["history"]]
        probe_rows = [dict(row) for row in checkpoint["train_state"].get("probes", [])]
        start_epoch = int(checkpoint["epoch"])
        restore_rng_state(checkpoint["train_state"]["rng"], device)
    else:
        seed_globals(derive_seed(config.seed, "train"))

    step_model = model
    if execution.compile:
        step_model, failed = compile_model(model)
        if failed is not None:
            execution = replace(execution, compile=False, compile_reason=f"torch.compile failed, eager: {failed}")
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
        train=train_split,
        train_labels_original=(
            data.train_labels_original.to(device) if data.train_labels_original is not None else None
        ),
        probe_rows=probe_rows,
    )


def _fingerprint_recorder(session: Session, folder: RunFolder) -> Recorder | None:
    """A new fingerprint for a fresh start; a resumed run goes on with its partial one, if any."""
    if session.start_epoch == 0:
        return Recorder.start(session)
    return resume_recorder(session, folder.fingerprint)


def _write_noisy_labels(data: PreparedData, folder: RunFolder) -> None:
    """``noisy_labels.csv`` (and ``noisy_val_labels.csv`` with ``noisy_val``) when the run has label noise.

    The labels are a function of the params, so a resume rewrites the same files.
    """
    if data.train_labels_original is not None:
        write_noisy_labels(folder.noisy_labels, data.train_index, data.train_labels_original, data.train.labels)
    if data.val_labels_original is not None and data.val is not None:
        write_noisy_labels(folder.noisy_val_labels, data.val_index, data.val_labels_original, data.val.labels)


def _trained_stats(
    input_norm: str, finetune_stats: ChannelStats, pretrain_stats: ChannelStats | None
) -> dict[str, list[float] | None]:
    """The checkpoint's mean/std: the statistics its inputs were standardized with, or None.

    'finetune' used this run's training-set statistics, 'pretrain' the starting
    weights' statistics; 'center' subtracted this run's training-set mean and
    divided by nothing, so it records that mean with std 1.0 per channel: a later
    run's 'pretrain' with them computes (x - mean) / 1.0, bit for bit what this
    network saw (its training-set std would rescale the input it never had).
    Every other setting (instance, minmax, unit, none) used none, so a later run
    cannot take any as its 'pretrain' statistics.
    """
    used = {
        "finetune": finetune_stats,
        "pretrain": pretrain_stats,
        "center": centering_stats(finetune_stats),
    }.get(input_norm)
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


def _check_precision(checkpoint: dict, execution: Execution, folder: RunFolder) -> None:
    """A run computed in bf16 cannot continue in fp32 (or back): its numbers would mix two precisions."""
    recorded = checkpoint.get("precision")
    if recorded is None or recorded == execution.precision:
        return  # None: a checkpoint from before precisions were recorded
    raise ConfigError(
        f"run folder {folder.path} was trained in {recorded} so far, but device {str(execution.device)!r} "
        f"computes in {execution.precision} (bf16 autocast is used on CUDA with amp: true, fp32 elsewhere); "
        f"a run keeps one precision. Resume it on a device that computes in {recorded}, "
        "or delete the folder to start it over here"
    )


def _sync_best(session: Session, folder: RunFolder) -> None:
    """Make ``best.pt`` hold the best epoch so far before training goes on.

    A fresh start removes a stale one. On a resume, a kill between the checkpoint
    and ``best.pt`` can only have missed the checkpoint's own epoch, whose weights
    the model now holds, so that one is written again.
    """
    if session.start_epoch == 0:
        folder.best.unlink(missing_ok=True)
        return
    best = best_row(session.rows)
    if best is None or best["epoch"] != session.start_epoch:
        return
    try:
        saved_epoch = load_checkpoint(folder.best).get("epoch")
    except ModelError:  # absent
        saved_epoch = None
    if saved_epoch != session.start_epoch:
        save_checkpoint(folder.best, session.best_payload(session.start_epoch))


def _run_epochs(session: Session, folder: RunFolder, show: bool, on_epoch_end: EpochCallback | None) -> dict[str, Any]:
    config = session.config
    with tqdm(total=config.epochs, initial=session.start_epoch, desc="epochs", disable=not show) as bar:
        for epoch in range(session.start_epoch, config.epochs):
            row = _run_epoch(session, epoch, show)
            session.rows.append(row)
            if session.fingerprint is not None:  # before the checkpoint: a resume drops steps past it
                session.fingerprint.save(folder.fingerprint)
            if not _finite(row["train_loss"]):
                write_history(folder.history, session.rows)
                return _finish(session, folder, "diverged", diverged_epoch=row["epoch"])
            save_checkpoint(folder.checkpoint, session.checkpoint_payload(epoch + 1))
            best = best_row(session.rows)
            if best is not None and best["epoch"] == epoch + 1:  # strictly better than every earlier epoch
                save_checkpoint(folder.best, session.best_payload(epoch + 1))
            if config.probes:
                write_probes(folder.probes, session.probe_rows)
            write_history(folder.history, session.rows)
            folder.write_summary(session.summary("running"))
            bar.update(1)
            bar.set_postfix(_postfix(row))
            if on_epoch_end is not None:
                on_epoch_end(dict(row))
    return _finish(session, folder, "complete")


def _finish(session: Session, folder: RunFolder, status: str, **extra: Any) -> dict[str, Any]:
    """Evaluate best.pt on test (accuracy when not done per epoch, and F1); write and return the final summary."""
    extra = {**_training_fit(session, status), **extra}  # before best.pt replaces the last epoch's weights
    config = session.config
    if status == "complete" and not config.test_every_epoch and config.test_last_epoch:
        session.last_test = _evaluate(session, session.test)
    if folder.best.is_file():
        session.model.load_state_dict(load_checkpoint(folder.best)["state_dict"])
        session.model.eval()  # step_model may be a compiled wrapper; the mode lives on the module
        test = (session.step_model, session.pipeline, session.test, config.eval_batch_size, session.execution.autocast)
        if config.test_every_epoch:  # the chosen epoch's test accuracy is in the history already
            predictions = predict_split(*test)
        else:  # its accuracy and the F1's predictions from one pass over the test split
            loss, accuracy, predictions = evaluate_and_predict(*test)
            session.best_test = (loss, accuracy)
        extra = {**_test_f1(session, predictions), **extra}
    summary = session.summary(status, **extra)
    folder.write_summary(summary)
    return summary


def _run_epoch(session: Session, epoch: int, show: bool) -> dict[str, Any]:
    lr = set_epoch_lr(session.optimizer, epoch, session.config)
    start = time.perf_counter()
    train_loss, train_acc, seen = train_one_epoch(session, epoch, show)
    train_seconds = time.perf_counter() - start
    val_loss = val_acc = test_loss = test_acc = None
    probe_seconds = 0.0
    # Non-finite weights are not evaluated or probed: they would only report chance.
    if _finite(train_loss):
        if session.val is not None:
            val_loss, val_acc = _evaluate(session, session.val)
        if session.config.test_every_epoch:
            test_loss, test_acc = _evaluate(session, session.test)
        if session.config.probes:
            probe_start = time.perf_counter()
            session.probe_rows.extend(run_probes(session.config.probes, session.probe_context(epoch + 1)))
            probe_seconds = time.perf_counter() - probe_start
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
        "probe_seconds": probe_seconds,
    }


def train_one_epoch(session: Session, epoch: int, show: bool = False) -> tuple[float, float, int]:
    """One pass over the training batches of 0-based ``epoch``; returns (mean loss, accuracy, images)."""
    model, optimizer, pipeline = session.step_model, session.optimizer, session.pipeline
    device = session.execution.device
    hooks = bind_step_hooks(session.model)
    step = epoch * len(session.batches)  # optimizer steps before this epoch, also after a resume
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
    for images, labels, augment in batches:
        inputs = pipeline(images, augment)
        with session.execution.autocast():
            logits = model(inputs)
            loss = F.cross_entropy(logits, labels, label_smoothing=smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step += 1
        run_step_hooks(hooks, step)
        loss_sum += loss.detach().float() * labels.shape[0]
        correct += (logits.detach().argmax(dim=1) == labels).sum()
        seen += labels.shape[0]
        if session.fingerprint is not None and session.fingerprint.record(step, loss):
            break  # only a recomputed fingerprint stops early (engine/fingerprint.py)
    # .item() waits for the device, so the caller's clock includes all queued work.
    return loss_sum.item() / seen, correct.item() / seen, seen


def _evaluate(session: Session, split: Split) -> tuple[float, float]:
    """Mean cross-entropy and accuracy over ``split`` in evaluation mode, in the run's precision."""
    session.model.eval()  # step_model may be a compiled wrapper; the mode lives on the module
    return evaluate_split(
        session.step_model, session.pipeline, split, session.config.eval_batch_size, session.execution.autocast
    )


def _training_fit(session: Session, status: str) -> dict[str, Any]:
    """How far the run got on its training set, for the summary: ``train_acc_final`` (the last epoch's weights on
    the training split, with the labels trained on, in evaluation mode without augmentation: the history's
    ``train_acc`` is a running average over augmented batches in training mode), ``train_loss_slope`` and the
    convergence ``verdict`` of :mod:`normtest_lib.convergence`.

    It runs after the last checkpoint is written and draws no random numbers, so the run's numbers are those
    it would have without it; a diverged run's weights are not finite, so it has no ``train_acc_final``."""
    final = _evaluate(session, session.train)[1] if status == "complete" and session.train is not None else None
    judged = verdict(session.rows, status, final)
    slope = loss_slope([row["train_loss"] for row in session.rows])
    return {
        "train_acc_final": final,
        "train_loss_slope": slope if math.isfinite(slope) else None,  # None, not NaN: summary.json stays strict JSON
        "converged": judged.converged,
        "convergence": judged.reason,
    }


def _test_f1(session: Session, predictions: torch.Tensor) -> dict[str, float]:
    """Micro- and macro-F1 of ``predictions`` (the loaded weights' on the test split: the earlier works' table columns)."""
    metrics = classification_metrics(session.test.labels.cpu(), predictions.cpu())
    return {"test_micro_f1_at_best_val": metrics["micro_f1"], "test_macro_f1_at_best_val": metrics["macro_f1"]}


def _interpolation_name(built: BuiltModel) -> str:
    """The model's resize interpolation as an F.interpolate mode; bilinear where none is recorded."""
    return built.interpolation.lower() if built.interpolation else "bilinear"


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def _postfix(row: dict[str, Any]) -> dict[str, str]:
    shown = {"loss": row["train_loss"], "val": row["val_acc"], "test": row["test_acc"]}
    return {key: f"{value:.4f}" for key, value in shown.items() if value is not None}
