"""Input normalization settings as batched, device-agnostic tensor functions.

Every setting maps a uint8 batch (N, 3, H, W) to float32 on the batch's device:

- ``finetune``: standardize with the fine-tuning set's own channel statistics;
- ``pretrain``: standardize with the pretraining source's statistics
  (ImageNet's for torchvision checkpoints);
- ``instance``: per image and channel, subtract the mean over H x W and divide
  by sqrt(var + eps);
- ``minmax``: per image and channel, map [min, max] to [0, 1] (a constant
  channel maps to 0);
- ``unit``: pixels / 255 only (what the earlier work called "minmax");
- ``none``: raw pixel values 0..255 as floats.
"""

from __future__ import annotations

import functools
from typing import Callable

import torch

from .stats.channel import ChannelStats

SETTINGS = ("finetune", "pretrain", "instance", "minmax", "unit", "none")
DEFAULT_EPS = 1e-5

Normalizer = Callable[[torch.Tensor], torch.Tensor]


def to_unit(images: torch.Tensor) -> torch.Tensor:
    """uint8 pixels to float32 on the [0, 1] scale; float input is taken as already scaled."""
    if images.dtype == torch.uint8:
        return images.float().div_(255.0)
    return images.float()


def standardize(images: torch.Tensor, stats: ChannelStats) -> torch.Tensor:
    mean, std = _stat_tensors(stats, images.device)
    return (to_unit(images) - mean) / std


@functools.lru_cache(maxsize=32)
def _stat_tensors(stats: ChannelStats, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    # Once per device: building them per batch is a blocking host-to-GPU copy at every step.
    return stats.as_tensors(device)


def instance_standardize(images: torch.Tensor, eps: float = DEFAULT_EPS) -> torch.Tensor:
    x = to_unit(images)
    mean = x.mean(dim=(2, 3), keepdim=True)
    var = x.var(dim=(2, 3), keepdim=True, unbiased=False)
    return (x - mean) / torch.sqrt(var + eps)


def minmax_scale(images: torch.Tensor) -> torch.Tensor:
    x = to_unit(images)
    low = x.amin(dim=(2, 3), keepdim=True)
    high = x.amax(dim=(2, 3), keepdim=True)
    span = high - low
    # A constant channel has no range to stretch; map it to 0 rather than divide by 0.
    return torch.where(span > 0, (x - low) / span.clamp_min(1e-12), torch.zeros_like(x))


def make_normalizer(
    setting: str,
    *,
    finetune_stats: ChannelStats | None = None,
    pretrain_stats: ChannelStats | None = None,
    eps: float = DEFAULT_EPS,
) -> Normalizer:
    """Return the batched function for ``setting``; the statistics it needs must be given."""
    if setting == "finetune":
        if finetune_stats is None:
            raise ValueError("input_norm 'finetune' needs the fine-tuning set's statistics")
        return lambda images: standardize(images, finetune_stats)
    if setting == "pretrain":
        if pretrain_stats is None:
            raise ValueError("input_norm 'pretrain' needs the pretraining source's statistics (a pretrained model)")
        return lambda images: standardize(images, pretrain_stats)
    if setting == "instance":
        return lambda images: instance_standardize(images, eps)
    if setting == "minmax":
        return minmax_scale
    if setting == "unit":
        return to_unit
    if setting == "none":
        return lambda images: images.float()
    raise ValueError(f"unknown input normalization {setting!r}; known: {', '.join(SETTINGS)}")
