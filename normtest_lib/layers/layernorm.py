"""Layer normalization for convolutional features, written from scratch: ``ln``.

Each sample is normalized over all of (C, H, W) with its own mean and biased variance, then
a per-channel affine (ones, zeros); eps 1e-5. That is group normalization with one group
(torch's ``GroupNorm(1, C)``), the form the earlier work published, not
torch's ``LayerNorm([C, H, W])`` (whose affine is per element and fixes the image size).
"""

from __future__ import annotations

from torch import nn

from .groupnorm import GroupNorm
from .registry import no_argument, register_norm


class LayerNorm(GroupNorm):
    """Group normalization with a single group."""

    def __init__(self, num_channels: int, eps: float = 1e-5) -> None:
        super().__init__(1, num_channels, eps)

    def extra_repr(self) -> str:
        return f"{self.num_channels}, eps={self.eps}"


@register_norm("ln")
def build_ln(num_channels: int, arg: str | None) -> nn.Module:
    """From-scratch layer norm over (C, H, W) with a per-channel affine."""
    no_argument(arg)
    return LayerNorm(num_channels)
