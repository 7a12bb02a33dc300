"""Building blocks shared by our own networks, with norm and conv chosen by name."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ..layers import create_conv, create_norm, has_learned_shift
from .registry import ArchOptions


class ConvNorm(nn.Module):
    """Convolution then normalization (no activation: blocks place their ReLUs themselves).

    The convolution gets a bias only if ``bias`` is forced (study 2's stem) or the norm has no
    learnable shift of its own (``none``): before BN/GN a bias is cancelled by the mean
    subtraction and only wastes parameters, but without normalization it is the layer's
    only shift, so dropping it would make the ``none`` baseline weaker than a plain CNN.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        options: ArchOptions,
        stride: int = 1,
        force_bias: bool = False,
    ) -> None:
        super().__init__()
        norm = create_norm(options.norm_layer, out_channels)
        bias = force_bias or not has_learned_shift(norm)
        padding = kernel_size // 2
        self.conv = create_conv(
            options.conv_layer, in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=bias
        )
        self.norm = norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv(x))


class BasicBlock(nn.Module):
    """conv3x3-norm-ReLU-conv3x3-norm, plus the shortcut, then ReLU (He et al., 2016).

    The shortcut is the identity when the shape is unchanged, else a strided 1x1
    convolution + norm (the "projection" shortcut, option B).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, options: ArchOptions) -> None:
        super().__init__()
        self.conv_norm1 = ConvNorm(in_channels, out_channels, 3, options, stride=stride)
        self.conv_norm2 = ConvNorm(out_channels, out_channels, 3, options)
        if stride != 1 or in_channels != out_channels:
            self.shortcut: nn.Module = ConvNorm(in_channels, out_channels, 1, options, stride=stride)
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Not in-place: a from-scratch norm may keep its output for its backward pass.
        out = F.relu(self.conv_norm1(x))
        out = self.conv_norm2(out)
        return F.relu(out + self.shortcut(x))
