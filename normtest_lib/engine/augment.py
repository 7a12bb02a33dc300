"""Random crop with zero padding and horizontal flip, for a whole batch in a few tensor ops.

The same augmentation as torchvision's ``RandomCrop(size, padding=pad)``
(constant padding with 0, i.e. black pixels, as the earlier works used) followed
by ``RandomHorizontalFlip()``, but drawn for all images at once and applied with
two gathers: no Python loop over images.

The training pipeline crops the uint8 pixels *after* it has taken the input
normalization's statistics from the un-augmented image, then normalizes the
crop with them (see :class:`normtest_lib.engine.loader.InputPipeline`): the
padded border is black (0 on the [0, 1] scale) normalized like the image's own
pixels, and never enters a per-image statistic.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class AugmentParams:
    """Per-image crop offsets into the image padded by ``pad`` (0..2*pad) and flip flags."""

    dx: torch.Tensor  # int64 (N,), column offset
    dy: torch.Tensor  # int64 (N,), row offset
    flip: torch.Tensor  # bool (N,)
    pad: int  # zero padding on each side; the offsets mean nothing without it

    def take(self, index: torch.Tensor) -> "AugmentParams":
        return AugmentParams(self.dx[index], self.dy[index], self.flip[index], self.pad)

    def to(self, device: torch.device) -> "AugmentParams":
        return AugmentParams(self.dx.to(device), self.dy.to(device), self.flip.to(device), self.pad)


def draw_params(n: int, pad: int, flip: bool, gen: torch.Generator) -> AugmentParams:
    """Draw crop offsets and flips for ``n`` images from ``gen`` (always in this order)."""
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
    flips = torch.rand(n, generator=gen) < 0.5 if flip else torch.zeros(n, dtype=torch.bool)
    return AugmentParams(dx, dy, flips, pad)


def crop_flip(images: torch.Tensor, params: AugmentParams) -> torch.Tensor:
    """Apply zero-padded crops and flips to ``images`` (B, C, H, W), any dtype.

    Output pixel (b, c, i, j) is padded[b, c, dy_b + i, dx_b + j], or, when
    image b is flipped, padded[b, c, dy_b + i, dx_b + W - 1 - j] (the crop,
    then mirrored), where ``padded`` is ``images`` with ``params.pad`` zeros on
    each side. Two ``torch.gather`` calls pick the rows, then the columns; the
    result is a new contiguous tensor of the input's shape and dtype.
    """
    batch, channels, height, width = images.shape
    device, pad = images.device, params.pad
    padded = F.pad(images, (pad, pad, pad, pad)) if pad > 0 else images
    rows = params.dy.view(batch, 1) + torch.arange(height, device=device)  # (B, H)
    rows = rows.view(batch, 1, height, 1).expand(batch, channels, height, padded.shape[3])
    columns = torch.arange(width, device=device).expand(batch, width)
    columns = torch.where(params.flip.view(batch, 1), width - 1 - columns, columns) + params.dx.view(batch, 1)
    columns = columns.view(batch, 1, 1, width).expand(batch, channels, height, width)
    return torch.gather(torch.gather(padded, 2, rows), 3, columns)
