"""Per-image checks of the input settings over a data set's images, kept in its statistics record.

The errata chapter's evidence on the data of study 1 rests on them: how far
plain /255 scaling (the earlier work's "minmax", our ``unit``) lies from
per-image min-max, the images with a constant channel (where per-image
standardization without eps divides 0 by 0), what a zero border does to
per-image statistics (over the whole zero-padded image, and averaged over
every random crop of it that the pad-and-crop augmentation can draw), and the
images standardized with the pretraining statistics in BGR order (as an OpenCV loader delivers them). They need every
image of a training split, a minute of decoding for Tiny ImageNet's 100,000, so
``normtest stats`` computes them with the channel statistics
(:mod:`normtest_lib.stats.record`) and the book reads the committed record.
Images are uint8 tensors (N, 3, H, W) in RGB order, walked in chunks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import torch

from ..input_norm import make_normalizer
from .channel import ChannelStats
from .normalized import normalized_stats

CHUNK = 2048
# Per-image float64 copies of 64 px images: 512 images is about 50 MB.
FLOAT_CHUNK = 512
PAD = 4  # the pad-4 random crop of the CIFAR recipes
Triplet = tuple[float, float, float]


@dataclass(frozen=True)
class ImageChecks:
    """What :func:`compute_image_checks` found; per-channel values in R, G, B order, [0, 1] scale."""

    n_images: int
    spanning_full_range: int  # images whose every channel has min 0 and max 255
    mean_channel_range: float  # mean over images and channels of (max - min) / 255
    mean_abs_unit_minus_minmax: float  # mean |unit - minmax| over every pixel value
    constant_channel: int  # images with at least one channel of zero spatial std (min == max)
    instance_finite: bool  # ``instance`` (with its eps) is finite on those images, or on a constant one
    instance_finite_without_eps: bool  # ... and the same setting with eps = 0
    pad: int
    own_mean: Triplet  # mean over images of the per-image channel mean, over the image itself
    own_std: Triplet  # ... of the per-image channel (population) std
    padded_mean: Triplet  # ... over the image zero-padded by ``pad``
    padded_std: Triplet
    padded_mean_change: Triplet  # mean over images of padded / own - 1 where own > 0 (NaN if none)
    padded_std_change: Triplet
    bgr_pretrain: ChannelStats  # the images in reversed channel order, standardized with ``pretrain_stats``
    # Over the crops a pad-``pad`` random crop draws (each of the (2 pad + 1)^2 offsets equally likely, the crop
    # as large as the image): the per-image channel mean and std averaged over those crops, then over images.
    # None in a record written before they existed (``normtest stats`` writes them).
    crop_mean: Triplet | None = None
    crop_std: Triplet | None = None
    crop_mean_change: Triplet | None = None  # mean over images of crop / own - 1 where own > 0
    crop_std_change: Triplet | None = None

    @property
    def constant_checked_on(self) -> str:
        """The images the two ``instance`` checks ran on."""
        if self.constant_channel:
            return f"the {self.constant_channel} image(s) found"
        return "a synthetic constant image"

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_images": self.n_images,
            "spanning_full_range": self.spanning_full_range,
            "mean_channel_range": self.mean_channel_range,
            "mean_abs_unit_minus_minmax": self.mean_abs_unit_minus_minmax,
            "constant_channel": self.constant_channel,
            "instance_finite": self.instance_finite,
            "instance_finite_without_eps": self.instance_finite_without_eps,
            "pad": self.pad,
            # Strict JSON has no NaN: a relative change with no qualifying image is stored as null.
            **{key: [None if math.isnan(v) else v for v in getattr(self, key)] for key in _TRIPLETS},
            "bgr_pretrain": {"mean": list(self.bgr_pretrain.mean), "std": list(self.bgr_pretrain.std)},
            **{key: _nullable(getattr(self, key)) for key in _CROP_TRIPLETS if getattr(self, key) is not None},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ImageChecks":
        n_images = int(data["n_images"])
        return cls(
            n_images=n_images,
            spanning_full_range=int(data["spanning_full_range"]),
            mean_channel_range=float(data["mean_channel_range"]),
            mean_abs_unit_minus_minmax=float(data["mean_abs_unit_minus_minmax"]),
            constant_channel=int(data["constant_channel"]),
            instance_finite=bool(data["instance_finite"]),
            instance_finite_without_eps=bool(data["instance_finite_without_eps"]),
            pad=int(data["pad"]),
            **{key: tuple(float("nan") if v is None else float(v) for v in data[key]) for key in _TRIPLETS},
            bgr_pretrain=ChannelStats.from_dict({**data["bgr_pretrain"], "n_images": n_images}),
            **{key: _triplet_or_nan(data[key]) for key in _CROP_TRIPLETS if data.get(key) is not None},
        )

    @property
    def has_crops(self) -> bool:
        """Whether the record holds the crop statistics (records written before them do not)."""
        return all(getattr(self, key) is not None for key in _CROP_TRIPLETS)


_TRIPLETS = ("own_mean", "own_std", "padded_mean", "padded_std", "padded_mean_change", "padded_std_change")
_CROP_TRIPLETS = ("crop_mean", "crop_std", "crop_mean_change", "crop_std_change")


def _nullable(values: Triplet) -> list[float | None]:
    # Strict JSON has no NaN: a relative change with no qualifying image is stored as null.
    return [None if math.isnan(v) else v for v in values]


def _triplet_or_nan(values) -> Triplet:
    red, green, blue = (float("nan") if v is None else float(v) for v in values)
    return red, green, blue


def compute_image_checks(
    images: torch.Tensor, pretrain_stats: ChannelStats, pad: int = PAD, chunk_size: int = CHUNK
) -> ImageChecks:
    """Every check over ``images`` (uint8, N x 3 x H x W, RGB)."""
    if images.ndim != 4 or images.shape[1] != 3 or images.dtype != torch.uint8 or images.shape[0] == 0:
        raise ValueError(f"expected a non-empty uint8 tensor (N, 3, H, W), got {images.dtype} {tuple(images.shape)}")
    unit, minmax = make_normalizer("unit"), make_normalizer("minmax")
    spanning, range_sum, abs_diff_sum, n_values = 0, 0.0, 0.0, 0
    constant = []
    for start in range(0, images.shape[0], chunk_size):
        chunk = images[start : start + chunk_size]
        low, high = chunk.amin(dim=(2, 3)), chunk.amax(dim=(2, 3))
        spanning += int(((low == 0) & (high == 255)).all(dim=1).sum())
        range_sum += float((high.double() - low.double()).sum()) / 255.0
        abs_diff_sum += float((unit(chunk) - minmax(chunk)).abs().double().sum())
        n_values += chunk.numel()
        constant.append((low == high).any(dim=1))
    is_constant = torch.cat(constant)
    found = images[is_constant]
    if found.shape[0] == 0:  # the checks still say something: on one flat grey image
        found = torch.full((1, 3, *images.shape[2:]), 128, dtype=torch.uint8)
    n = images.shape[0]
    padding = _padding(images, pad, min(chunk_size, FLOAT_CHUNK))
    crops = _crops(images, pad, min(chunk_size, FLOAT_CHUNK))
    return ImageChecks(
        n_images=n,
        spanning_full_range=spanning,
        mean_channel_range=range_sum / (3 * n),
        mean_abs_unit_minus_minmax=abs_diff_sum / n_values,
        constant_channel=int(is_constant.sum()),
        instance_finite=_all_finite(make_normalizer("instance"), found, chunk_size),
        instance_finite_without_eps=_all_finite(make_normalizer("instance", eps=0.0), found, chunk_size),
        pad=pad,
        **padding,
        **crops,
        bgr_pretrain=normalized_stats(images.flip(1), "pretrain", pretrain_stats=pretrain_stats),
    )


def _all_finite(normalize, images: torch.Tensor, chunk_size: int) -> bool:
    return all(bool(torch.isfinite(normalize(images[s : s + chunk_size])).all()) for s in range(0, len(images), chunk_size))


def _padding(images: torch.Tensor, pad: int, chunk_size: int) -> dict[str, Triplet]:
    """Per-image channel mean and std over the image and over it zero-padded by ``pad``.

    Zeros add nothing to the sums and only to the count of values, so the
    padded statistics come from the image's own sums, without building the
    padded image.
    """
    height, width = images.shape[2:]
    padded_count = (height + 2 * pad) * (width + 2 * pad)
    own_mean, own_std, padded_mean, padded_std = [], [], [], []
    for start in range(0, images.shape[0], chunk_size):
        x = images[start : start + chunk_size].to(torch.float64).div_(255.0).flatten(2)
        mean = x.mean(dim=2)
        own_mean.append(mean)
        own_std.append((x - mean[..., None]).square().mean(dim=2).sqrt())
        p_mean = x.sum(dim=2) / padded_count
        p_var = x.square().sum(dim=2) / padded_count - p_mean.square()
        padded_mean.append(p_mean)
        padded_std.append(p_var.clamp_min(0.0).sqrt())
    own_mean, own_std, padded_mean, padded_std = map(torch.cat, (own_mean, own_std, padded_mean, padded_std))
    return {
        "own_mean": _triplet(own_mean.mean(dim=0)),
        "own_std": _triplet(own_std.mean(dim=0)),
        "padded_mean": _triplet(padded_mean.mean(dim=0)),
        "padded_std": _triplet(padded_std.mean(dim=0)),
        "padded_mean_change": _mean_relative_change(own_mean, padded_mean),
        "padded_std_change": _mean_relative_change(own_std, padded_std),
    }


def crop_moments(images: torch.Tensor, pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each image's channel mean and (population) std over every crop of it zero-padded by ``pad``.

    The crops are as large as the image, at each of the (2 pad + 1)^2 offsets a random crop can take
    (``torchvision``'s RandomCrop and our engine draw each offset with equal probability): returns
    (mean, std), each (N, 3, 2 pad + 1, 2 pad + 1), offset (dy, dx) at [..., dy, dx], [0, 1] scale.
    Sums over a crop come from integral images of the padded image and its square, so no crop is built.
    """
    height, width = images.shape[2:]
    x = images.to(torch.float64).div_(255.0)
    moments = []
    for values in (x, x.square()):
        padded = torch.nn.functional.pad(values, (pad, pad, pad, pad))
        integral = torch.nn.functional.pad(padded.cumsum(2).cumsum(3), (1, 0, 1, 0))  # a zero row and column first
        n = 2 * pad + 1
        sums = (integral[..., height : height + n, width : width + n] - integral[..., :n, width : width + n]
                - integral[..., height : height + n, :n] + integral[..., :n, :n])  # fmt: skip
        moments.append(sums / (height * width))
    mean, second = moments
    return mean, (second - mean.square()).clamp_min(0.0).sqrt()


def _crops(images: torch.Tensor, pad: int, chunk_size: int) -> dict[str, Triplet]:
    """Per-image channel mean and std averaged over the image's equally likely crops, against its own."""
    own_mean, own_std, crop_mean, crop_std = [], [], [], []
    for start in range(0, images.shape[0], chunk_size):
        chunk = images[start : start + chunk_size]
        x = chunk.to(torch.float64).div_(255.0).flatten(2)
        mean = x.mean(dim=2)
        own_mean.append(mean)
        own_std.append((x - mean[..., None]).square().mean(dim=2).sqrt())
        means, stds = crop_moments(chunk, pad)
        crop_mean.append(means.flatten(2).mean(dim=2))  # the expectation over the offsets, per image and channel
        crop_std.append(stds.flatten(2).mean(dim=2))
    own_mean, own_std, crop_mean, crop_std = map(torch.cat, (own_mean, own_std, crop_mean, crop_std))
    return {
        "crop_mean": _triplet(crop_mean.mean(dim=0)),
        "crop_std": _triplet(crop_std.mean(dim=0)),
        "crop_mean_change": _mean_relative_change(own_mean, crop_mean),
        "crop_std_change": _mean_relative_change(own_std, crop_std),
    }


def _triplet(values: torch.Tensor) -> Triplet:
    red, green, blue = (float(v) for v in values.tolist())
    return red, green, blue


def _mean_relative_change(own: torch.Tensor, changed: torch.Tensor) -> Triplet:
    """Per channel: the mean of changed / own - 1 over the images where own > 0 (NaN if none)."""
    positive = own > 0
    ratio = torch.where(positive, changed / own.where(positive, torch.ones_like(own)) - 1.0, torch.zeros_like(own))
    return _triplet(ratio.sum(dim=0) / positive.sum(dim=0).double())  # 0 / 0 is NaN where no image qualifies
