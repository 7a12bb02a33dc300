"""Group normalization (Wu and He, 2018), written from scratch: ``gn``, ``gn:<k>``, ``gn:c/<k>``.

The C channels are split into G groups of C/G consecutive channels; each sample's group is
normalized over (C/G, H, W) with its own mean and biased variance; then a per-channel affine
(ones, zeros); eps 1e-5: the semantics of torch's ``GroupNorm``.

The group argument is read by :func:`~normtest_lib.layers.groups.resolve_num_groups`, as
for ``torch_gn``: ``gn:8`` is 8 groups, ``gn:c/4`` is C/4 groups (4 channels per group).
The defaults differ: plain ``gn`` is **C/4 groups** (``gn:c/4``), the setting the earlier
work published for this layer, while plain ``torch_gn`` is 32 groups (capped at a divisor
of C). A channel count the groups do not divide is a ModelError naming both.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import ModelError
from ._moments import affine_parameters, check_input, compute_dtype, moments, normalize_affine
from .groups import GROUP_ARGUMENTS, resolve_num_groups
from .registry import register_norm

# Plain "gn": C/4 groups, i.e. 4 channels per group.
DEFAULT_CHANNELS_PER_GROUP = 4


class GroupNorm(nn.Module):
    """Group normalization with a per-channel affine."""

    is_norm_layer = True

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        if num_groups < 1 or num_channels % num_groups:
            raise ModelError(f"{num_groups} groups do not divide {num_channels} channels")
        self.num_groups = num_groups
        self.num_channels = num_channels
        self.eps = eps
        self.weight, self.bias = affine_parameters(num_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(self, x, self.num_channels)
        xc = x.to(compute_dtype(x))
        # (N, C, ...) as (N, G, C/G, ...): splitting the channel dimension is a view in both memory
        # formats (channels_last's channel stride is 1), so neither the moments nor the output copy
        # the activation (the earlier flatten-and-repeat_interleave form copied channels_last inputs and
        # gathered the moments back per channel).
        groups = xc.unflatten(1, (self.num_groups, self.num_channels // self.num_groups))
        if xc.is_contiguous():
            # Each sample's group is then one run of C/G x H x W values: reduced as one dimension (a view),
            # as torch's own kernel does. One measurement on the 2-core AMD EPYC (benchmarks/layers.py's
            # step, cifar_resnet gn:c/4, one process, the host busy): compiled 313 -> 368 images/s, eager
            # 246 -> 306, against reducing (C/G, H, W).
            var, mean = torch.var_mean(groups.flatten(2), dim=2, correction=0)
            shape = (*mean.shape, *(1,) * (groups.ndim - 2))
            mean, var = mean.view(shape), var.view(shape)
        else:
            mean, var = moments(groups, tuple(range(2, groups.ndim)))
        weight, bias = (p.reshape(self.num_groups, -1) for p in (self.weight, self.bias))
        out = normalize_affine(groups, mean, var, weight, bias, self.eps)
        return out.flatten(1, 2).to(x.dtype)

    def extra_repr(self) -> str:
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}"


def default_num_groups(num_channels: int) -> int:
    """Plain ``gn``'s group count: C/4 (4 channels per group)."""
    if num_channels % DEFAULT_CHANNELS_PER_GROUP:
        raise ModelError(
            f"plain 'gn' uses C/{DEFAULT_CHANNELS_PER_GROUP} groups ({DEFAULT_CHANNELS_PER_GROUP} channels per "
            f"group), which needs the channel count {num_channels} to be divisible by {DEFAULT_CHANNELS_PER_GROUP}; "
            "name the groups instead, 'gn:<groups>' or 'gn:c/<channels per group>'"
        )
    return num_channels // DEFAULT_CHANNELS_PER_GROUP


@register_norm("gn", GROUP_ARGUMENTS)
def build_gn(num_channels: int, arg: str | None) -> nn.Module:
    """From-scratch group norm; C/4 groups unless the argument names them (see ``groups.py``)."""
    groups = default_num_groups(num_channels) if arg is None else resolve_num_groups(arg, num_channels)
    return GroupNorm(groups, num_channels)
