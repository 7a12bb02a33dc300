"""The group count of group normalization, given as a layer-name argument.

``<name>``       -> the default: 32 groups, or the largest divisor of C below 32 when C has
                    fewer channels or 32 does not divide it (the usual "32 groups" setting of
                    Wu and He, 2018, made to work for every width of a network);
``<name>:<int>`` -> that many groups (C must be divisible by it), or one channel per group in
                    a layer with fewer channels than that (so ``gn:32``, the GroupNorm paper's
                    count, works in a CIFAR ResNet whose first stage has 16 channels);
``<name>:c/<k>`` -> C/k groups, i.e. k channels per group (``c/4`` is study 2's setting).

Shared by every group-norm family (``torch_gn`` and the from-scratch ``gn``), so they read
their argument identically; only the default differs: plain ``gn`` is C/4 groups, the
earlier work's setting (see ``groupnorm.py``).
"""

from __future__ import annotations

import re

from ..errors import ModelError
from .registry import ArgumentForm

DEFAULT_GROUPS = 32

# The argument forms every group-norm family registers (``register_norm(name, GROUP_ARGUMENTS)``):
# what the glossary says ``gn:32`` and ``gn:c/4`` mean, beside the code that reads them.
GROUP_ARGUMENTS = (
    ArgumentForm(
        "<k>", "32",
        "k groups in every layer, C/k channels each (C must be divisible by k; a layer with fewer than k "
        "channels gets one channel per group): `gn:32` is the GroupNorm paper's 32 groups",
    ),
    ArgumentForm(
        "c/<k>", "c/4",
        "C/k groups in a layer of C channels, i.e. k channels per group: `gn:c/4` is C/4 groups "
        "(4 channels per group), study 2's setting",
    ),
)  # fmt: skip

_FRACTION = re.compile(r"^[cC]/(\d+)$")


def resolve_num_groups(arg: str | None, num_channels: int) -> int:
    """The number of groups that ``arg`` asks for, for a layer with ``num_channels`` channels."""
    if arg is None:
        return max(g for g in range(1, min(DEFAULT_GROUPS, num_channels) + 1) if num_channels % g == 0)
    fraction = _FRACTION.match(arg)
    if fraction:
        per_group = int(fraction.group(1))
        if per_group < 1 or num_channels % per_group:
            raise ModelError(
                f"group argument {arg!r} needs the channel count {num_channels} to be divisible by {per_group}"
            )
        return num_channels // per_group
    if arg.isdigit():
        groups = int(arg)
        if 1 <= num_channels < groups:
            return num_channels
        if groups < 1 or num_channels % groups:
            raise ModelError(
                f"{groups} groups do not divide {num_channels} channels; use a divisor of every layer's "
                "width, 'c/<k>' for k channels per group, or no argument for the default (32, capped)"
            )
        return groups
    raise ModelError(f"group argument {arg!r} is neither a group count like '8' nor a fraction like 'c/4'")
