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

import inspect
import math
from typing import Any, Callable, Iterable

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


StepHook = Callable[[int], None]


def step_hooks(model: nn.Module) -> list[nn.Module]:
    """The modules that define ``after_optimizer_step`` (a layer that clips a parameter after each step, or one that counts steps)."""
    return [module for module in model.modules() if callable(getattr(module, "after_optimizer_step", None))]


def bind_step_hooks(model: nn.Module) -> list[StepHook]:
    """Each module's ``after_optimizer_step`` as a function of the global step count.

    A hook that takes an argument, ``after_optimizer_step(step)``, receives the number of
    optimizer steps done so far in the run (1 after the first step, counting across epochs
    and resumes): ConvNorm's running preconditioner decays with it. A hook without one,
    ``after_optimizer_step()``, is called as before. Signatures are read here, once, not per step.
    """
    hooks = []
    for module in step_hooks(model):
        method = module.after_optimizer_step
        hooks.append(method if _takes_step(method, module) else _ignoring_step(method))
    return hooks


def _takes_step(method: Callable[..., Any], module: nn.Module) -> bool:
    try:
        parameters = list(inspect.signature(method).parameters.values())
    except (TypeError, ValueError):  # a builtin without a signature: call it as before
        return False
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p for p in positional if p.default is p.empty]
    if len(required) > 1 or any(p.kind == p.KEYWORD_ONLY and p.default is p.empty for p in parameters):
        raise ModelError(
            f"{type(module).__name__}.after_optimizer_step must take no argument or one (the global step count)"
        )
    return bool(positional) or any(p.kind == p.VAR_POSITIONAL for p in parameters)


def _ignoring_step(method: Callable[[], Any]) -> StepHook:
    def hook(step: int) -> None:
        method()

    return hook


def run_step_hooks(hooks: Iterable[StepHook], step: int) -> None:
    """Call every hook with the global step count ``step`` (1 after the first optimizer step)."""
    with torch.no_grad():
        for hook in hooks:
            hook(step)
