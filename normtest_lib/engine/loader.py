"""A device-resident data loader: whole splits as uint8 tensors, batches cut by indexing.

No ``Dataset``, no ``DataLoader``, no per-image Python: an epoch is one seeded
permutation plus one draw of augmentation parameters, and each batch is a
gather from the uint8 tensor; :class:`InputPipeline` then crops, flips and
normalizes it in a few batched tensor ops. On CUDA the uint8 images live in GPU
memory (a CIFAR-sized set is 150 MB), so the GPU never waits for the host.

Order of operations for a training batch:

1. the input normalization's (shift, scale) from the un-augmented, native-size
   images (per data set, or per image for instance/minmax);
2. crop and flip of the uint8 pixels (:func:`~normtest_lib.engine.augment.crop_flip`,
   zero padding = black, as torchvision's RandomCrop did in the earlier works);
3. ``(x - shift) / scale`` of the crop, x on the [0, 1] scale: the padded border
   becomes black normalized with the image's statistics, ``(0 - shift) / scale``
   (for the per-data-set settings exactly RandomCrop then Normalize, as before;
   for instance/minmax the statistics are the image's alone, not the border's);
4. (optionally) the resize to the model's input size, then the memory format.

Evaluation batches are only normalized (steps 1, 3, 4).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import torch
import torch.nn.functional as F

from ..data.types import Split
from ..input_norm import Normalizer
from .augment import AugmentParams, crop_flip, draw_params
from .seeding import generator

Batch = tuple[torch.Tensor, torch.Tensor]
# uint8 images (un-augmented), labels, and the crop/flip the pipeline applies (None: no augmentation).
TrainBatch = tuple[torch.Tensor, torch.Tensor, AugmentParams | None]


@dataclass(frozen=True)
class InputPipeline:
    """uint8 images (B, 3, H, W) [+ their crop/flip] -> the float tensor the model sees.

    The normalization's statistics are always taken from the images as given
    (un-augmented); ``augment`` crops and flips them afterwards, and the crop is
    normalized with those statistics, its zero padding included (black,
    normalized like any black pixel of that image).

    The resize runs after the normalization: for the channel-wise affine
    settings (finetune, pretrain, center, unit, none) the two orders give the
    same result, since bilinear and bicubic weights sum to one; for the
    per-image settings (instance, minmax) the statistics are those of the
    native-size image.
    """

    normalizer: Normalizer
    resize_to: int | None = None
    interpolation: str = "bilinear"
    memory_format: torch.memory_format = torch.contiguous_format
    # The image size the network was trained at (None: not recorded); without a resize,
    # images of another size would be classified without complaint, and wrongly.
    trained_size: int | None = None

    def __call__(self, images: torch.Tensor, augment: AugmentParams | None = None) -> torch.Tensor:
        shift, scale = self.normalizer.affine(images)
        if augment is not None:
            # Cropping the uint8 pixels is the same as cropping the [0, 1]-scaled
            # floats with 0 padding, at a quarter of the memory traffic.
            images = crop_flip(images, augment)
        x = self.normalizer.apply(images, shift, scale)
        if self.resize_to is not None and tuple(x.shape[-2:]) != (self.resize_to, self.resize_to):
            x = resize(x, self.resize_to, self.interpolation)
        return x.contiguous(memory_format=self.memory_format)


def resize(x: torch.Tensor, size: int, interpolation: str = "bilinear") -> torch.Tensor:
    """Resize a float batch to ``size`` x ``size``; antialiased when shrinking with bilinear/bicubic."""
    if interpolation in ("bilinear", "bicubic"):
        return F.interpolate(x, size=(size, size), mode=interpolation, align_corners=False, antialias=True)
    return F.interpolate(x, size=(size, size), mode=interpolation)


class TrainBatches:
    """Shuffled training batches of a device-resident split, each with its crop/flip to apply.

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

    def epoch(self, epoch: int) -> Iterator[TrainBatch]:
        """The batches of (0-based) epoch ``epoch`` as (uint8 images, labels, augmentation).

        The images are the stored, un-augmented ones on the split's device; the
        augmentation (None when off) is their crop and flip, for
        :class:`InputPipeline` to apply after it has taken the normalization's
        statistics from the images.
        """
        gen = generator(self.seed, "epoch", epoch)
        device = self.images.device
        order = torch.randperm(self.num_images, generator=gen)
        params = draw_params(self.num_images, self.pad, self.flip, gen).to(device) if self.augment else None
        order = order.to(device)
        for start in range(0, self.num_images, self.batch_size):
            index = order[start : start + self.batch_size]
            images = self.images.index_select(0, index)  # far faster than images[index] for uint8
            augment = params.take(index) if params is not None else None
            yield images, self.labels.index_select(0, index), augment


def eval_batches(split: Split, batch_size: int) -> Iterator[Batch]:
    """The split in its stored order, in batches, without augmentation."""
    for start in range(0, len(split), batch_size):
        yield split.images[start : start + batch_size], split.labels[start : start + batch_size]


def to_device(split: Split, device: torch.device) -> Split:
    """The split with its uint8 images and labels moved to ``device`` (no copy if already there)."""
    return Split(split.images.to(device), split.labels.to(device))
