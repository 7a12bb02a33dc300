"""Input normalization settings as batched, device-agnostic tensor functions.

Every setting is a per-channel affine map ``y = (x - shift) / scale`` of the
pixels ``x`` on the [0, 1] scale, applied to a uint8 batch (N, 3, H, W) and
returning float32 on the batch's device:

- ``finetune``: standardize with the fine-tuning set's own channel statistics
  (shift = its mean, scale = its std);
- ``pretrain``: standardize with the pretraining source's statistics
  (ImageNet's for torchvision checkpoints);
- ``center``: subtract the fine-tuning set's channel mean only (scale 1), the
  "mean subtraction only" of study 2;
- ``instance``: per image and channel, subtract the mean over H x W and divide
  by sqrt(var + eps);
- ``minmax``: per image and channel, map [min, max] to [0, 1] (a constant
  channel maps to 0: its shift is its value and its scale 1);
- ``unit``: pixels / 255 only (what the earlier work called "minmax");
- ``none``: raw pixel values 0..255 as floats (computed as ``float(pixels)``,
  not as x / (1/255), so the values are exact integers).

``shift`` and ``scale`` are per data set, shaped (1, 3, 1, 1) (finetune,
pretrain, center), per image, shaped (N, 3, 1, 1) (instance, minmax), or None
where the setting needs none (unit, none). :meth:`Normalizer.affine` computes
them from a batch and :meth:`Normalizer.apply` applies them, so a caller can
take the statistics from one version of the images and apply them to another:
the training pipeline (:class:`normtest_lib.engine.loader.InputPipeline`) takes
them from the un-augmented images and applies them to the randomly cropped ones,
whose zero padding (black) is thereby normalized with the same statistics as
the image's own pixels. For the per-data-set settings that is exactly
torchvision's ``RandomCrop(padding=4)`` followed by ``Normalize``; for the
per-image settings the statistics are the image's alone, never the border's.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

from .stats.channel import ChannelStats

SETTINGS = ("finetune", "pretrain", "center", "instance", "minmax", "unit", "none")
# One sentence per setting, the module docstring's, for readers of the book's tables (its glossary);
# tests/test_input_norm.py checks that its keys are SETTINGS.
DESCRIPTIONS: dict[str, str] = {
    "finetune": "Standardize with the fine-tuning set's own channel statistics (shift its mean, scale its std).",
    "pretrain": "Standardize with the pretraining source's channel statistics (ImageNet's for torchvision checkpoints).",
    "center": "Subtract the fine-tuning set's channel mean only (scale 1), the mean subtraction only of study 2.",
    "instance": "Per image and channel, subtract the mean over H x W and divide by sqrt(var + eps).",
    "minmax": "Per image and channel, map [min, max] to [0, 1] (a constant channel maps to 0).",
    "unit": "Pixels / 255 only, on [0, 1] (what the earlier work called minmax).",
    "none": "Raw pixel values 0..255 as floats.",
}
DEFAULT_EPS = 1e-5

# (shift, scale): each a float32 tensor broadcastable to the batch, or None for "not applied".
Affine = tuple[torch.Tensor | None, torch.Tensor | None]


def to_unit(images: torch.Tensor) -> torch.Tensor:
    """uint8 pixels to float32 on the [0, 1] scale; float input is taken as already scaled."""
    if images.dtype == torch.uint8:
        return images.float().div_(255.0)
    return images.float()


@functools.lru_cache(maxsize=32)
def _stat_tensors(stats: ChannelStats, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    # Once per device: building them per batch is a blocking host-to-GPU copy at every step.
    return stats.as_tensors(device)


def centering_stats(stats: ChannelStats) -> ChannelStats:
    """The statistics ``center`` standardizes with: ``stats``' mean and a std of 1.0 per channel.

    Dividing by exactly 1.0 changes no float, so standardizing with these is
    bit for bit the mean subtraction; a checkpoint trained with ``center``
    records them, and a later run's ``pretrain`` with them reproduces its input.
    """
    return ChannelStats(stats.mean, (1.0, 1.0, 1.0), stats.n_images)


def instance_affine(images: torch.Tensor, eps: float = DEFAULT_EPS) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image and channel: (mean, sqrt(biased var + eps)) over H x W, on the [0, 1] scale."""
    x = to_unit(images)
    mean = x.mean(dim=(2, 3), keepdim=True)
    # Two passes, mean((x - mean)^2): ~15x faster on CPU than Tensor.var over H x W, and as accurate in float32.
    var = (x - mean).square_().mean(dim=(2, 3), keepdim=True)
    return mean, torch.sqrt(var + eps)


def minmax_affine(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image and channel: (min, max - min) over H x W, on the [0, 1] scale.

    A constant channel has no range to stretch: its scale is 1 instead of 0, so its
    own pixels map to exactly 0 and nothing is divided by 0 (a crop's black border
    in that channel becomes -min, black shifted like the image).
    """
    # Extremes of the uint8 pixels, then scaled: the same floats as the extremes of the scaled
    # pixels (k / 255 is monotone in k), without converting the whole batch.
    low = to_unit(images.amin(dim=(2, 3), keepdim=True))
    span = to_unit(images.amax(dim=(2, 3), keepdim=True)) - low
    return low, torch.where(span > 0, span, torch.ones_like(span))


@dataclass(frozen=True)
class Normalizer:
    """One input normalization setting; call it on a uint8 batch to normalize it.

    ``stats`` are the data set's (shift, scale) = (mean, std) for finetune,
    pretrain and center; ``eps`` is instance's. ``normalizer(images)`` equals
    ``normalizer.apply(images, *normalizer.affine(images))``.
    """

    setting: str
    stats: ChannelStats | None = None
    eps: float = DEFAULT_EPS

    def affine(self, images: torch.Tensor) -> Affine:
        """(shift, scale) of ``images`` (uint8, N x 3 x H x W) on the [0, 1] scale."""
        if self.stats is not None:
            return _stat_tensors(self.stats, images.device)
        if self.setting == "instance":
            return instance_affine(images, self.eps)
        if self.setting == "minmax":
            return minmax_affine(images)
        return None, None

    def apply(self, images: torch.Tensor, shift: torch.Tensor | None, scale: torch.Tensor | None) -> torch.Tensor:
        """``(x - shift) / scale`` of uint8 ``images`` as float32; a None part is skipped.

        The batch dimension of a per-image shift/scale must match ``images``'.
        """
        x = images.float() if self.setting == "none" else to_unit(images)
        if shift is not None:
            x = x - shift
        if scale is not None:
            x = x / scale
        return x

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return self.apply(images, *self.affine(images))


def make_normalizer(
    setting: str,
    *,
    finetune_stats: ChannelStats | None = None,
    pretrain_stats: ChannelStats | None = None,
    eps: float = DEFAULT_EPS,
) -> Normalizer:
    """Return the :class:`Normalizer` for ``setting``; the statistics it needs must be given."""
    if setting in ("finetune", "center"):
        if finetune_stats is None:
            raise ValueError(f"input_norm {setting!r} needs the fine-tuning set's statistics")
        return Normalizer(setting, finetune_stats if setting == "finetune" else centering_stats(finetune_stats))
    if setting == "pretrain":
        if pretrain_stats is None:
            raise ValueError("input_norm 'pretrain' needs the pretraining source's statistics (a pretrained model)")
        return Normalizer(setting, pretrain_stats)
    if setting == "instance":
        return Normalizer(setting, eps=eps)
    if setting in ("minmax", "unit", "none"):
        return Normalizer(setting)
    raise ValueError(f"unknown input normalization {setting!r}; known: {', '.join(SETTINGS)}")
