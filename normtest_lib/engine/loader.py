"""A device-resident data loader: whole splits as uint8 tensors, batches cut by indexing.

No ``Dataset``, no ``DataLoader``, no per-image Python: an epoch is one seeded
permutation plus one draw of augmentation parameters, and each batch is a
gather from the uint8 tensor followed by :func:`~normtest_lib.engine.augment.crop_flip`
and the input normalization. On CUDA the uint8 images live in GPU memory (a
CIFAR-sized set is 150 MB), so the GPU never waits for the host.

Order of operations for a training batch: crop and flip on uint8 pixels
(zero padding = black, as torchvision's RandomCrop did in the earlier works),
then the input normalization setting, then (optionally) the resize to the
model's input size, then the memory format.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import torch
import torch.nn.functional as F

from ..data.types import Split
from .augment import crop_flip, draw_params
from .seeding import generator

Batch = tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class InputPipeline:
    """uint8 images (B, 3, H, W) -> the float tensor the model sees.

    The resize runs after the normalization: for the channel-wise affine
    settings (finetune, pretrain, unit, none) the two orders give the same
    result, since bilinear and bicubic weights sum to one; for the per-image
    settings (instance, minmax) the statistics are those of the native-size image.
    """

    normalizer: Callable[[torch.Tensor], torch.Tensor]
    resize_to: int | None = None
    interpolation: str = "bilinear"
    memory_format: torch.memory_format = torch.contiguous_format

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        x = self.normalizer(images)
        if self.resize_to is not None and tuple(x.shape[-2:]) != (self.resize_to, self.resize_to):
            x = resize(x, self.resize_to, self.interpolation)
        return x.contiguous(memory_format=self.memory_format)


def resize(x: torch.Tensor, size: int, interpolation: str = "bilinear") -> torch.Tensor:
    """Resize a float batch to ``size`` x ``size``; antialiased when shrinking with bilinear/bicubic."""
    if interpolation in ("bilinear", "bicubic"):
        return F.interpolate(x, size=(size, size), mode=interpolation, align_corners=False, antialias=True)
    return F.interpolate(x, size=(size, size), mode=interpolation)


class TrainBatches:
    """Shuffled, augmented training batches of a device-resident split.

    Epoch ``e`` draws its permutation and augmentation from a generator seeded
    by (seed, e) alone, so a resumed run sees exactly the batches an
    uninterrupted one would. Every image is used once per epoch; the last
    batch may be smaller.
    """

    def __init__(
        self,
        split: Split,
        batch_size: int,
        seed: int,
        *,
        augment: bool = True,
        pad: int = 4,
        flip: bool = True,
    ) -> None:
        self.images = split.images
        self.labels = split.labels
        self.batch_size = batch_size
        self.seed = seed
        self.augment = augment
        self.pad = pad
        self.flip = flip

    def __len__(self) -> int:
        return -(-self.num_images // self.batch_size)

    @property
    def num_images(self) -> int:
        return int(self.images.shape[0])

    def epoch(self, epoch: int) -> Iterator[Batch]:
        """The batches of (0-based) epoch ``epoch`` as (uint8 images, labels) on the split's device."""
        gen = generator(self.seed, "epoch", epoch)
        device = self.images.device
        order = torch.randperm(self.num_images, generator=gen)
        params = draw_params(self.num_images, self.pad, self.flip, gen).to(device) if self.augment else None
        order = order.to(device)
        for start in range(0, self.num_images, self.batch_size):
            index = order[start : start + self.batch_size]
            images = self.images.index_select(0, index)  # far faster than images[index] for uint8
            if params is not None:
                images = crop_flip(images, params.take(index), self.pad)
            yield images, self.labels.index_select(0, index)


def eval_batches(split: Split, batch_size: int) -> Iterator[Batch]:
    """The split in its stored order, in batches, without augmentation."""
    for start in range(0, len(split), batch_size):
        yield split.images[start : start + batch_size], split.labels[start : start + batch_size]


def to_device(split: Split, device: torch.device) -> Split:
    """The split with its uint8 images and labels moved to ``device`` (no copy if already there)."""
    return Split(split.images.to(device), split.labels.to(device))
