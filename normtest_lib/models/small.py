"""A small, fast CNN for smoke runs and tests on the CPU.

Four conv3x3-norm-ReLU layers with 16/32/64/128 channels; the last three have stride 2
(32 -> 16 -> 8 -> 4 px at 32 px input), then global average pool and a linear head.
About 0.1M parameters and ~4M multiply-adds per 32x32 image. Strided convolutions
rather than max-pooling: same resolution schedule, and on the CPU max-pooling cost a
fifth of the training step.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .blocks import ConvNorm
from .registry import ArchOptions, register_model

WIDTHS = (16, 32, 64, 128)


class SmallNet(nn.Module):
    def __init__(self, num_classes: int, options: ArchOptions) -> None:
        super().__init__()
        layers = []
        in_channels = 3
        for index, width in enumerate(WIDTHS):
            layers.append(ConvNorm(in_channels, width, 3, options, stride=1 if index == 0 else 2))
            in_channels = width
        self.layers = nn.ModuleList(layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_channels, num_classes)
        self.num_features = in_channels

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The globally pooled features (N, 128) that the head classifies."""
        for layer in self.layers:
            x = F.relu(layer(x))
        return torch.flatten(self.pool(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.forward_features(x))


@register_model("small", description="4-layer CNN (~0.1M parameters) for fast CPU smoke runs")
def small(num_classes: int, options: ArchOptions) -> nn.Module:
    return SmallNet(num_classes, options)
