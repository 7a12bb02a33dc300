"""Channel-statistics tables: each data set's statistics beside a reference, and "Table 1".

"Table 1" is the earlier work's table of per-channel mean and std after an
input normalization setting; here every setting gets its rows. Every number is
computed from images (:mod:`normtest_lib.stats`); published values are only
set beside them.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from ..input_norm import SETTINGS
from ..stats.channel import ChannelStats, channel_stats
from ..stats.normalized import normalized_stats
from ..stats.reference import IMAGENET, PUBLISHED_TABLE1, published_for

CHANNELS = ("R", "G", "B")


def stats_columns() -> pd.MultiIndex:
    return pd.MultiIndex.from_product([("mean", "std"), CHANNELS], names=["statistic", "channel"])


def stats_row(stats: ChannelStats) -> list[float]:
    return [*stats.mean, *stats.std]


def reference_for(dataset) -> tuple[str, ChannelStats] | None:
    """What to set a data set's computed statistics beside.

    The published statistics where the earlier works gave some; for the
    built-in synthetic sets the design targets their generator aims at (the
    data set's ``extra``); otherwise None.
    """
    published = published_for(dataset.name)
    if published is not None:
        return "published", published
    extra = getattr(dataset, "extra", {}) or {}
    if "design_mean" in extra and "design_std" in extra:
        return "design target", ChannelStats(tuple(extra["design_mean"]), tuple(extra["design_std"]))
    return None


def channel_stats_frame(
    computed: Mapping[str, ChannelStats],
    references: Mapping[str, tuple[str, ChannelStats] | None] | None = None,
) -> pd.DataFrame:
    """Computed channel statistics, each followed by its reference row where one exists.

    Rows are (dataset, source) with source ``computed`` or the reference's
    label; columns (statistic, channel) plus ``images``, the number of images
    the computed row rests on.
    """
    rows, labels, counts = [], [], []
    for name, stats in computed.items():
        rows.append(stats_row(stats))
        labels.append((name, "computed"))
        counts.append(stats.n_images)
        reference = (references or {}).get(name)
        if reference is not None:
            label, ref_stats = reference
            rows.append(stats_row(ref_stats))
            labels.append((name, label))
            counts.append(np.nan)
    frame = pd.DataFrame(rows, index=_pairs_index(labels, ["dataset", "source"]), columns=stats_columns(), dtype=float)
    frame[("images", "")] = pd.array(counts, dtype="Int64")
    return frame


def table1_frame(
    images_by_dataset: Mapping[str, torch.Tensor],
    pretrain_stats: ChannelStats = IMAGENET,
    settings: Sequence[str] = SETTINGS,
) -> pd.DataFrame:
    """The earlier work's "Table 1" for every input normalization setting.

    For each data set (uint8 training images) and each setting: the
    per-channel mean and std of the images after the setting, computed by
    :func:`normtest_lib.stats.normalized.normalized_stats`. ``finetune`` uses each
    set's own statistics (computed once here), ``pretrain`` ``pretrain_stats``
    (ImageNet's, as published). Rows (dataset, setting), columns (statistic, channel).
    """
    rows, labels = [], []
    for name, images in images_by_dataset.items():
        own = channel_stats(images)
        for setting in settings:
            stats = normalized_stats(images, setting, finetune_stats=own, pretrain_stats=pretrain_stats)
            rows.append(stats_row(stats))
            labels.append((name, setting))
    return pd.DataFrame(rows, index=_pairs_index(labels, ["dataset", "setting"]), columns=stats_columns(), dtype=float)


def published_table1_frame(datasets: Sequence[str]) -> pd.DataFrame:
    """The published Table 1 rows (setting ``pretrain``) of those ``datasets`` that have one."""
    labels = [(name, "pretrain") for name in datasets if name in PUBLISHED_TABLE1]
    rows = [stats_row(PUBLISHED_TABLE1[name]) for name, _ in labels]
    return pd.DataFrame(rows, index=_pairs_index(labels, ["dataset", "setting"]), columns=stats_columns(), dtype=float)


def _pairs_index(labels: Sequence[tuple[str, str]], names: list[str]) -> pd.MultiIndex:
    # from_arrays, unlike from_tuples, also builds an empty two-level index.
    return pd.MultiIndex.from_arrays([[a for a, _ in labels], [b for _, b in labels]], names=names)


def table1_comparison(computed: pd.DataFrame, published: pd.DataFrame | None = None) -> pd.DataFrame:
    """``computed`` Table 1 beside the published values (NaN where nothing was published).

    When none of the data sets has a published row, the published block is
    left out rather than shown as a block of dashes.
    """
    if published is None:
        published = published_table1_frame(list(computed.index.get_level_values("dataset").unique()))
    published = published.reindex(computed.index)
    blocks = {"computed": computed}
    if published.notna().any().any():
        blocks["published"] = published
    return pd.concat(blocks, axis=1, names=["source"])


def distance_from_standard(table1: pd.DataFrame, setting: str) -> pd.Series:
    """Per data set: how far ``setting`` leaves the channels from zero mean and unit std.

    The root mean square over the three channels of mean and (std - 1), from a
    :func:`table1_frame`; 0 means exactly standardized.
    """
    rows = table1.xs(setting, level="setting")
    squared = rows["mean"].pow(2).sum(axis=1) + (rows["std"] - 1).pow(2).sum(axis=1)
    return (squared / (2 * len(CHANNELS))).pow(0.5).rename(f"distance from standard after {setting}")
