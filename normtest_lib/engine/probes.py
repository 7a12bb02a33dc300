"""Probes: measurements of the network taken after each epoch, written to ``probes.csv``.

A probe is a function ``probe(context: ProbeContext) -> dict[str, float]`` registered
by name with ``@register_probe("name")`` (as layers and models are registered); the run
parameter ``probes`` lists the names to take, and the run schema rejects unknown ones.

The engine calls each probe after an epoch's evaluation, with the model in evaluation
mode, under ``torch.no_grad``, on the run's device, and restores training mode
afterwards. Probes compute in float32 (no bf16 autocast): they measure the weights, and
percentiles of bf16 values would carry bf16's 3 significant digits. Their time is the
``probe_seconds`` column of ``history.csv`` (``seconds`` includes it;
``images_per_second`` does not).

``probes.csv`` is long: columns ``epoch, probe, name, value``, one row per number. Its
rows travel inside the checkpoint (``train_state["probes"]``) like the history's, and the
file is rewritten from them, so a killed and resumed run has exactly the rows of an
uninterrupted one.

Shipped probes:

- ``features``: the 1st, 20th, 80th and 99th percentiles (``p01``, ``p20``, ``p80``,
  ``p99``, linear interpolation as ``torch.quantile``) of all values of the globally
  pooled features (``model.forward_features``) over the validation split, or over the
  test split when the run holds out no validation split;
- ``layer_stats``: the mean and (population) standard deviation of every normalization
  layer's output (:func:`normtest_lib.layers.is_norm_layer`) over one fixed batch, the
  first evaluation batch of the validation split (test split without one), named
  ``<module path>/mean`` and ``<module path>/std``;
- ``bin_gate``: the gate ``rho`` of every Batch-Instance Norm layer (``bin``): its mean,
  min and max over the layer's channels, named ``<module path>/mean``, ``/min``, ``/max``
  (1 is pure batch norm, 0 pure instance norm). It reads the weights only, no data.
- ``memorization``: how far the network fits the labels label noise changed. On the
  training images (un-augmented, like every probe's), split into those whose label
  was flipped and the rest: ``flipped_fit_noisy`` (the share of flipped images
  predicted as their noisy label: memorization), ``flipped_fit_true`` (the share
  predicted as their true label: the noise resisted), ``clean_acc`` (accuracy on
  the unflipped images) and the counts ``n_flipped``, ``n_clean``. At most
  :data:`MEMORIZATION_PER_GROUP` images of each group are evaluated (all of a group
  that has fewer): a subset fixed for the whole run (one constant-seeded order of the
  training split), so CIFAR-10's 45,000 training images cost the probe 10,000
  forward passes per epoch, about one test evaluation, with each share still known
  to within about 0.7 points (its binomial standard error). A run without label noise
  records ``clean_acc`` over the (subset of the) training split and ``n_flipped`` 0
  (no ``flipped_fit_*`` rows), so one probe list serves a sweep over noise levels.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch import nn

from ..data.types import Split
from ..errors import ConfigError, ModelError
from ..io import write_text
from .loader import InputPipeline, eval_batches

COLUMNS = ("epoch", "probe", "name", "value")


@dataclass(frozen=True)
class ProbeContext:
    """What a probe receives after an epoch."""

    model: nn.Module  # in evaluation mode; the uncompiled module (forward_features, hooks)
    train: Split  # with the labels the run trains on
    train_labels_original: torch.Tensor | None  # the labels before label noise; None when they are the same
    val: Split | None  # None when the run holds out no validation split
    test: Split
    pipeline: InputPipeline  # uint8 batch -> the model's input
    device: torch.device
    epoch: int  # the epoch just completed, counting from 1
    eval_batch_size: int

    @property
    def held_out(self) -> Split:
        """The split probes measure on: validation, or test when there is none (never used for selection)."""
        return self.val if self.val is not None else self.test


Probe = Callable[[ProbeContext], dict[str, float]]
ModelCheck = Callable[[nn.Module], None]


@dataclass(frozen=True)
class ProbeSpec:
    name: str
    run: Probe
    # Raises ModelError when a model cannot be probed, so a run fails before its first epoch.
    check: ModelCheck | None = None


_PROBES: dict[str, ProbeSpec] = {}


def register_probe(name: str, *, check: ModelCheck | None = None) -> Callable[[Probe], Probe]:
    """Decorator: register ``probe(context) -> {name: value}`` as probe ``name``.

    ``check(model)``, if given, raises ModelError for a model the probe cannot measure.
    """

    def decorate(probe: Probe) -> Probe:
        if name in _PROBES:
            raise ValueError(f"probe {name!r} is registered twice")
        _PROBES[name] = ProbeSpec(name, probe, check)
        return probe

    return decorate


def probe_names() -> list[str]:
    return sorted(_PROBES)


def check_probe_names(names: Sequence[str]) -> None:
    """Raise ConfigError for an unknown or repeated probe name."""
    unknown = [name for name in names if name not in _PROBES]
    if unknown:
        raise ConfigError(f"unknown probe {', '.join(map(repr, unknown))}; known: {', '.join(probe_names())}")
    repeated = sorted({name for name in names if list(names).count(name) > 1})
    if repeated:
        raise ConfigError(f"probe {', '.join(map(repr, repeated))} is listed more than once")


def check_probes(names: Sequence[str], model: nn.Module) -> None:
    """Raise ModelError if ``model`` cannot be measured by one of the probes ``names``."""
    check_probe_names(names)
    for name in names:
        spec = _PROBES[name]
        if spec.check is not None:
            spec.check(model)


def run_probes(names: Sequence[str], context: ProbeContext) -> list[dict[str, Any]]:
    """Take the probes ``names`` (in that order); return their rows for ``probes.csv``.

    Sets evaluation mode and no_grad for the probes and restores the model's mode after.
    """
    model = context.model
    was_training = model.training
    model.eval()
    rows = []
    try:
        with torch.no_grad():
            for name in names:
                values = _PROBES[name].run(context)
                for key, value in values.items():
                    rows.append({"epoch": context.epoch, "probe": name, "name": key, "value": float(value)})
    finally:
        model.train(was_training)
    return rows


# --- probes.csv ---------------------------------------------------------------------


def format_probes(rows: Sequence[dict[str, Any]]) -> str:
    """``probes.csv`` text; values with ``repr`` so they read back bit-identical."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([row["epoch"], row["probe"], row["name"], repr(float(row["value"]))])
    return buffer.getvalue()


def write_probes(path: str | Path, rows: Sequence[dict[str, Any]]) -> None:
    """Rewrite ``probes.csv`` atomically with all rows so far."""
    write_text(path, format_probes(rows))


def read_probes(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a ``probes.csv`` (epoch int, value float)."""
    with open(path, newline="") as handle:
        return [
            {"epoch": int(raw["epoch"]), "probe": raw["probe"], "name": raw["name"], "value": float(raw["value"])}
            for raw in csv.DictReader(handle)
        ]


# --- the shipped probes ----------------------------------------------------------------

FEATURE_PERCENTILES = {"p01": 0.01, "p20": 0.20, "p80": 0.80, "p99": 0.99}


def _has_forward_features(model: nn.Module) -> None:
    if not callable(getattr(model, "forward_features", None)):
        raise ModelError(
            f"probe 'features' needs the model's forward_features (the pooled features before the head); "
            f"{type(model).__name__} has none"
        )


def quantiles(values: torch.Tensor, qs: Sequence[float]) -> list[float]:
    """``torch.quantile(values, q)`` (linear interpolation) for each q, for any number of values.

    torch.quantile refuses inputs above 2**24 values (a ResNet50's 2048 features over a
    10,000-image test split are more), so the sort and interpolation are done here, in float64.
    """
    ordered = values.detach().reshape(-1).to(torch.float64).sort().values
    n = ordered.numel()
    if n == 0:
        raise ValueError("quantiles of no values")
    result = []
    for q in qs:
        position = q * (n - 1)
        low = math.floor(position)
        high = min(low + 1, n - 1)
        fraction = position - low
        result.append(float(ordered[low] + (ordered[high] - ordered[low]) * fraction))
    return result


@register_probe("features", check=_has_forward_features)
def features_probe(context: ProbeContext) -> dict[str, float]:
    """Percentiles of all pooled feature values over the validation split (test without one)."""
    model, pipeline = context.model, context.pipeline
    chunks = [
        model.forward_features(pipeline(images)).float()
        for images, _ in eval_batches(context.held_out, context.eval_batch_size)
    ]
    values = quantiles(torch.cat(chunks), list(FEATURE_PERCENTILES.values()))
    return dict(zip(FEATURE_PERCENTILES, values))


def norm_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(module path, module)`` of every normalization layer of ``model``, in module order."""
    from ..layers import is_norm_layer

    return [(path, module) for path, module in model.named_modules() if path and is_norm_layer(module)]


def _has_norm_layers(model: nn.Module) -> None:
    if not norm_layers(model):
        raise ModelError(f"probe 'layer_stats' found no normalization layer in {type(model).__name__}")


@register_probe("layer_stats", check=_has_norm_layers)
def layer_stats_probe(context: ProbeContext) -> dict[str, float]:
    """Mean and standard deviation of each normalization layer's output on the first held-out batch."""
    images, _ = next(iter(eval_batches(context.held_out, context.eval_batch_size)))
    stats: dict[str, float] = {}

    def record(path: str) -> Callable[[nn.Module, Any, torch.Tensor], None]:
        def hook(module: nn.Module, inputs: Any, output: torch.Tensor) -> None:
            values = output.detach().to(torch.float64)
            stats[f"{path}/mean"] = float(values.mean())
            stats[f"{path}/std"] = float(values.std(correction=0))

        return hook

    handles = [module.register_forward_hook(record(path)) for path, module in norm_layers(context.model)]
    try:
        context.model(context.pipeline(images))
    finally:
        for handle in handles:
            handle.remove()
    return stats


def bin_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(module path, module)`` of every Batch-Instance Norm layer of ``model``, in module order."""
    from ..layers.batchinstancenorm import BatchInstanceNorm

    return [(path, module) for path, module in model.named_modules() if isinstance(module, BatchInstanceNorm)]


def _has_bin_layers(model: nn.Module) -> None:
    if not bin_layers(model):
        raise ModelError(
            f"probe 'bin_gate' found no Batch-Instance Norm layer in {type(model).__name__}; "
            "it measures runs with norm_layer 'bin'"
        )


@register_probe("bin_gate", check=_has_bin_layers)
def bin_gate_probe(context: ProbeContext) -> dict[str, float]:
    """Mean, min and max over channels of each BIN layer's gate ``rho``."""
    gates: dict[str, float] = {}
    for path, module in bin_layers(context.model):
        rho = module.rho.detach().to(torch.float64)
        gates.update({f"{path}/mean": float(rho.mean()), f"{path}/min": float(rho.min()), f"{path}/max": float(rho.max())})
    return gates


MEMORIZATION_PER_GROUP = 5000
MEMORIZATION_SEED = 20_231_201  # a constant: the subset must not change from epoch to epoch


def memorization_subset(flipped: torch.Tensor, per_group: int = MEMORIZATION_PER_GROUP) -> torch.Tensor:
    """Positions (ascending) of at most ``per_group`` flipped and ``per_group`` unflipped images.

    The same ``flipped`` mask always gives the same positions: the first of each
    group in one permutation drawn from :data:`MEMORIZATION_SEED`.
    """
    flipped = flipped.to(torch.bool).cpu()
    order = torch.randperm(flipped.numel(), generator=torch.Generator().manual_seed(MEMORIZATION_SEED))
    picks = [order[flipped[order] == group][:per_group] for group in (True, False)]
    return torch.sort(torch.cat(picks)).values


def _predict_train(context: ProbeContext, positions: torch.Tensor) -> torch.Tensor:
    """Predicted classes of the training images at ``positions``, un-augmented, in batches."""
    chunks = [
        context.model(context.pipeline(context.train.images[chunk])).argmax(dim=1)
        for chunk in positions.split(context.eval_batch_size)
    ]
    return torch.cat(chunks) if chunks else torch.zeros(0, dtype=torch.int64, device=positions.device)


@register_probe("memorization")
def memorization_probe(context: ProbeContext) -> dict[str, float]:
    """Fit of the flipped training labels (noisy vs true) and accuracy on the unflipped ones."""
    noisy = context.train.labels
    original = context.train_labels_original if context.train_labels_original is not None else noisy
    original = original.to(noisy.device)
    positions = memorization_subset(original != noisy).to(noisy.device)
    predictions = _predict_train(context, positions)
    noisy, original = noisy[positions], original[positions]
    flipped = original != noisy
    n_flipped, n_clean = int(flipped.sum()), int((~flipped).sum())
    values: dict[str, float] = {}
    if n_flipped:
        values["flipped_fit_noisy"] = float((predictions[flipped] == noisy[flipped]).double().mean())
        values["flipped_fit_true"] = float((predictions[flipped] == original[flipped]).double().mean())
    if n_clean:
        values["clean_acc"] = float((predictions[~flipped] == noisy[~flipped]).double().mean())
    values["n_flipped"] = float(n_flipped)
    values["n_clean"] = float(n_clean)
    return values
