"""ResNets for 32x32 images, as the reference works of studies 2 and 3 used them.

- ``cifar_resnet``: 6n+2 layers (He et al., 2016, section 4.2): 3x3 stem with bias, 16
  channels; three stages of n basic blocks with 16/32/64 channels, stride 2 at the start of
  stages 2 and 3; global average pool; linear head. n = ``depth_n`` (n=2: 14 layers, study 2).
- ``cifar_resnet18``: the common CIFAR adaptation of ResNet18 (study 3): 3x3 stem without
  max-pool, stages of [2, 2, 2, 2] basic blocks with 64/128/256/512 channels.

Both take PyTorch's default initialisation, as both reference implementations did.
Pooling is adaptive, so any input of at least 8 px (32 px and up in practice) works.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from .blocks import BasicBlock, ConvNorm
from .registry import ArchOptions, register_model


class CifarResNet(nn.Module):
    """Stem, stages of basic blocks, global average pool, linear head ``fc``."""

    def __init__(
        self,
        blocks_per_stage: Sequence[int],
        widths: Sequence[int],
        num_classes: int,
        options: ArchOptions,
        stem_bias: bool,
    ) -> None:
        super().__init__()
        if len(blocks_per_stage) != len(widths):
            raise ValueError("one width per stage is needed")
        self.stem = ConvNorm(3, widths[0], 3, options, force_bias=stem_bias)
        stages = []
        in_channels = widths[0]
        for index, (blocks, width) in enumerate(zip(blocks_per_stage, widths)):
            first_stride = 1 if index == 0 else 2
            stage = [BasicBlock(in_channels, width, first_stride, options)]
            stage += [BasicBlock(width, width, 1, options) for _ in range(blocks - 1)]
            stages.append(nn.Sequential(*stage))
            in_channels = width
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_channels, num_classes)
        self.num_features = in_channels

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The globally pooled features (N, num_features) that the head classifies."""
        x = F.relu(self.stem(x))
        x = self.stages(x)
        return torch.flatten(self.pool(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.forward_features(x))


@register_model(
    "cifar_resnet",
    description="CIFAR ResNet with 6n+2 layers (n = depth_n), 16/32/64 channels (study 2)",
    uses_depth_n=True,
)
def cifar_resnet(num_classes: int, options: ArchOptions) -> nn.Module:
    n = options.depth_n
    return CifarResNet([n, n, n], [16, 32, 64], num_classes, options, stem_bias=True)


@register_model("cifar_resnet18", description="ResNet18 for 32 px inputs: 3x3 stem, no max-pool (study 3)")
def cifar_resnet18(num_classes: int, options: ArchOptions) -> nn.Module:
    return CifarResNet([2, 2, 2, 2], [64, 128, 256, 512], num_classes, options, stem_bias=False)
