"""The framework's own normalization layers, and no normalization at all.

These are the baselines every from-scratch layer is tested against. All use
torch's defaults: eps 1e-5, biased variance for normalizing, learnable
per-channel affine (weight 1, bias 0 at the start).
"""

from __future__ import annotations

from torch import nn

from .groups import GROUP_ARGUMENTS, resolve_num_groups
from .registry import no_argument, register_norm


@register_norm("torch_bn")
def torch_batch_norm(num_channels: int, arg: str | None) -> nn.Module:
    """torch.nn.BatchNorm2d (running statistics with momentum 0.1)."""
    no_argument(arg)
    return nn.BatchNorm2d(num_channels)


@register_norm("torch_gn", GROUP_ARGUMENTS)
def torch_group_norm(num_channels: int, arg: str | None) -> nn.Module:
    """torch.nn.GroupNorm; 32 groups (C's largest divisor below 32 where 32 does not divide C) unless the argument
    names them (see ``groups.py``)."""
    return nn.GroupNorm(resolve_num_groups(arg, num_channels), num_channels)


@register_norm("none")
def no_norm(num_channels: int, arg: str | None) -> nn.Module:
    """Identity: the network without normalization."""
    no_argument(arg)
    return nn.Identity()
