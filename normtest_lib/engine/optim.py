"""Optimizers, learning-rate schedules and the layer hooks around the optimizer step.

Weight decay applies to every parameter, norm weights and biases included, as
in the earlier works; a parameter opts out or changes its learning rate only
through its own ``optim_overrides = {"lr_scale": float, "weight_decay": float}``
attribute (both keys optional), which puts it in a parameter group of its own.

The learning rate is set once per epoch (the schedules of both reference
works were stepped per epoch), so the ``lr`` column of ``history.csv`` is the
rate used for every step of that epoch. With 0-based epoch ``e``, ``E``
epochs and ``W`` warm-up epochs the rate is ``lr * warmup(e) * main(e)``:

- ``warmup(e) = (e + 1) / W`` for ``e < W``, else 1 (linear ramp ending at full rate);
- cosine: ``main(e) = (1 + cos(pi * (e - W) / (E - W))) / 2`` for ``e >= W`` (1 during
  warm-up): ``CosineAnnealingLR(T_max=E - W)`` stepped once per epoch after the warm-up;
- multistep: ``main(e) = gamma ** #{m in milestones : m <= e}``: ``MultiStepLR``
  stepped per epoch (milestone 75 means the 76th epoch runs at the lower rate);
- constant: ``main(e) = 1``.
"""

from __future__ import annotations

import math
from typing import Iterable

import torch
from torch import nn

from ..config import RunConfig
from ..errors import ConfigError, ModelError

OVERRIDE_KEYS = ("lr_scale", "weight_decay")


def lr_factor(epoch: int, config: RunConfig) -> float:
    """The multiple of ``config.lr`` used during 0-based epoch ``epoch``."""
    warmup = config.warmup_epochs
    factor = (epoch + 1) / warmup if epoch < warmup else 1.0
    if config.schedule == "cosine":
        if epoch >= warmup:
            factor *= (1 + math.cos(math.pi * (epoch - warmup) / (config.epochs - warmup))) / 2
    elif config.schedule == "multistep":
        factor *= config.gamma ** sum(1 for milestone in config.milestones if milestone <= epoch)
    return factor


def set_epoch_lr(optimizer: torch.optim.Optimizer, epoch: int, config: RunConfig) -> float:
    """Set every group's rate for ``epoch`` (its ``base_lr`` times the schedule); return the main rate."""
    factor = lr_factor(epoch, config)
    for group in optimizer.param_groups:
        group["lr"] = group["base_lr"] * factor
    return config.lr * factor


def parameter_groups(model: nn.Module, lr: float, weight_decay: float) -> list[dict]:
    """One group for the ordinary parameters and one per distinct ``optim_overrides``.

    Groups are ordered by the first appearance of one of their parameters in
    ``model.named_parameters()``, so a rebuilt optimizer matches a checkpoint's state.
    """
    groups: dict[tuple, dict] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        overrides = getattr(param, "optim_overrides", None) or {}
        unknown = set(overrides) - set(OVERRIDE_KEYS)
        if unknown:
            raise ModelError(
                f"parameter {name!r} has unknown optim_overrides {sorted(unknown)}; allowed: {', '.join(OVERRIDE_KEYS)}"
            )
        lr_scale = float(overrides.get("lr_scale", 1.0))
        decay = float(overrides.get("weight_decay", weight_decay))
        key = (lr_scale, decay)
        if key not in groups:
            groups[key] = {"params": [], "base_lr": lr * lr_scale, "lr": lr * lr_scale, "weight_decay": decay}
        groups[key]["params"].append(param)
    if not groups:
        raise ModelError("the model has no trainable parameters")
    return list(groups.values())


def build_optimizer(model: nn.Module, config: RunConfig) -> torch.optim.Optimizer:
    """SGD (momentum, nesterov), Adam (L2 weight decay) or AdamW (decoupled) over :func:`parameter_groups`."""
    groups = parameter_groups(model, config.lr, config.weight_decay)
    if config.optimizer == "sgd":
        if config.nesterov and config.momentum == 0:
            raise ConfigError("nesterov: Nesterov momentum needs momentum > 0")
        return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum, nesterov=config.nesterov)
    if config.optimizer == "adam":
        return torch.optim.Adam(groups, lr=config.lr)
    return torch.optim.AdamW(groups, lr=config.lr)


def step_hooks(model: nn.Module) -> list[nn.Module]:
    """The modules that define ``after_optimizer_step()`` (e.g. BIN clipping its gate)."""
    return [module for module in model.modules() if callable(getattr(module, "after_optimizer_step", None))]


def run_step_hooks(modules: Iterable[nn.Module]) -> None:
    with torch.no_grad():
        for module in modules:
            module.after_optimizer_step()
