"""Channel statistics of images *after* an input normalization setting.

The earlier work's "Table 1" reported each training set's mean and std after
standardizing with ImageNet's statistics. :func:`normalized_stats` computes
that number for any setting of :mod:`normtest_lib.input_norm`, from the pixels,
with the same float64 accumulation as :func:`normtest_lib.stats.channel.channel_stats`.
"""

from __future__ import annotations

from typing import Sequence

import torch

from ..input_norm import Normalizer, make_normalizer
from .channel import DEFAULT_CHUNK, ChannelStats, channel_stats, transformed_stats


def normalized_stats(
    images: torch.Tensor,
    setting: str,
    finetune_stats: ChannelStats | None = None,
    pretrain_stats: ChannelStats | None = None,
    *,
    raw_stats: ChannelStats | None = None,
    chunk_size: int = DEFAULT_CHUNK,
) -> ChannelStats:
    """Per-channel mean and std of ``images`` (uint8, N x 3 x H x W) after ``setting``.

    ``finetune_stats`` defaults to the statistics of ``images`` themselves (the
    fine-tuning set's own statistics, which is what ``finetune`` and ``center``
    mean);
    ``pretrain_stats`` must be given for ``pretrain`` (ImageNet's for the
    published Table 1). ``raw_stats``, the images' own statistics when the caller
    has them already, saves a pass over the data. Unknown settings raise
    ``ValueError`` naming the known ones.
    """
    raw = raw_stats
    if raw is None and (setting in PER_PIXEL_AFFINE or finetune_stats is None):
        raw = channel_stats(images, chunk_size)
    if setting in ("finetune", "center") and finetune_stats is None:
        finetune_stats = raw
    if setting in PER_PIXEL_AFFINE:
        return affine_stats(raw, setting, finetune_stats=finetune_stats, pretrain_stats=pretrain_stats)
    normalize = make_normalizer(setting, finetune_stats=finetune_stats, pretrain_stats=pretrain_stats)
    return transformed_stats(images, normalize, chunk_size)


def stats_after_settings(
    images: torch.Tensor,
    settings: Sequence[str],
    pretrain_stats: ChannelStats,
    *,
    raw_stats: ChannelStats | None = None,
    chunk_size: int = DEFAULT_CHUNK,
) -> dict[str, ChannelStats]:
    """One row of "Table 1" per setting: the statistics of ``images`` after each of ``settings``.

    ``finetune`` and ``center`` use the images' own statistics (``raw_stats``,
    computed here when not given), ``pretrain`` ``pretrain_stats``.
    """
    raw = raw_stats if raw_stats is not None else channel_stats(images, chunk_size)
    return {
        setting: normalized_stats(
            images, setting, finetune_stats=raw, pretrain_stats=pretrain_stats, raw_stats=raw, chunk_size=chunk_size
        )
        for setting in settings
    }


def affine_stats(
    raw: ChannelStats,
    setting: str,
    *,
    finetune_stats: ChannelStats | None = None,
    pretrain_stats: ChannelStats | None = None,
) -> ChannelStats:
    """Statistics after a per-pixel affine ``setting``, from the raw statistics alone (no pixels needed).

    What lets a committed record answer for other pretraining statistics than
    the ones it was computed with. ``finetune_stats`` defaults to ``raw``.
    """
    if setting not in PER_PIXEL_AFFINE:
        raise ValueError(
            f"setting {setting!r} is not a per-pixel affine map: its statistics need the pixels; "
            f"affine ones: {', '.join(sorted(PER_PIXEL_AFFINE))}"
        )
    if setting in ("finetune", "center") and finetune_stats is None:
        finetune_stats = raw
    normalize = make_normalizer(setting, finetune_stats=finetune_stats, pretrain_stats=pretrain_stats)
    return _through_affine(raw, normalize)


# Settings that map every pixel by the same per-channel affine function: their statistics
# follow exactly from the raw ones, with no second pass over the data.
PER_PIXEL_AFFINE = frozenset({"finetune", "pretrain", "center", "unit", "none"})


def _through_affine(raw: ChannelStats, normalize: Normalizer) -> ChannelStats:
    """Push raw statistics through ``normalize``, read off as f(v) = offset + slope * v per channel.

    The slope and offset come from the normalizer itself (applied to pixel values 0
    and 255), so this cannot drift from what training applies.
    """
    probe = torch.tensor([0, 255], dtype=torch.uint8).view(2, 1, 1, 1).expand(2, 3, 1, 1).contiguous()
    ends = normalize(probe).to(torch.float64).view(2, 3)
    offset, slope = ends[0], (ends[1] - ends[0]) / 255.0
    mean = offset + slope * 255.0 * torch.tensor(raw.mean, dtype=torch.float64)
    std = slope.abs() * 255.0 * torch.tensor(raw.std, dtype=torch.float64)
    return ChannelStats(tuple(mean.tolist()), tuple(std.tolist()), raw.n_images)


def sample_images(images: torch.Tensor, max_images: int | None, seed: int = 0) -> torch.Tensor:
    """At most ``max_images`` of ``images``, drawn without replacement by a fixed seed.

    ``None`` (or a number at least the set's size) returns ``images`` unchanged,
    so statistics on the full set are never silently estimated from a sample.
    """
    if max_images is None or max_images >= images.shape[0]:
        return images
    if max_images < 1:
        raise ValueError(f"max_images must be at least 1 or None, got {max_images}")
    generator = torch.Generator().manual_seed(seed)
    index = torch.randperm(images.shape[0], generator=generator)[:max_images]
    return images[index.sort().values]
