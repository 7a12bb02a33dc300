"""Channel-statistics tables: each data set's statistics beside a reference, and "Table 1".

"Table 1" is the earlier work's table of per-channel mean and std after an
input normalization setting; here every setting gets its rows. Every number is
computed from images (:mod:`normtest_lib.stats`), live or earlier into a
committed record (:mod:`normtest_lib.stats.record`, the ``records_*`` functions);
published values are only set beside them. Tables that can hold real and
synthetic rows carry a ``data`` level (:func:`label_data`).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from ..input_norm import DESCRIPTIONS, SETTINGS
from ..stats.channel import ChannelStats
from ..stats.normalized import affine_stats, stats_after_settings
from ..stats.record import CHANNEL_ORDER, REAL, SYNTHETIC, StatisticsRecord
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
    return _table1_from_stats(
        {name: stats_after_settings(images, settings, pretrain_stats) for name, images in images_by_dataset.items()}
    )


def _table1_from_stats(rows_by_dataset: Mapping[str, Mapping[str, ChannelStats]]) -> pd.DataFrame:
    labels = [(name, setting) for name, rows in rows_by_dataset.items() for setting in rows]
    rows = [stats_row(rows_by_dataset[name][setting]) for name, setting in labels]
    return pd.DataFrame(rows, index=_pairs_index(labels, ["dataset", "setting"]), columns=stats_columns(), dtype=float)


def published_table1_frame(datasets: Sequence[str] | Mapping[str, str | None]) -> pd.DataFrame:
    """The published Table 1 rows (setting ``pretrain``) of those ``datasets`` that have one.

    ``datasets`` are registry names, or a mapping of the names to show to the
    names published (``{"cifar10-jpeg": "cifar10"}``).
    """
    published_as = dict(datasets) if isinstance(datasets, Mapping) else {name: name for name in datasets}
    labels = [(name, "pretrain") for name, source in published_as.items() if source in PUBLISHED_TABLE1]
    rows = [stats_row(PUBLISHED_TABLE1[published_as[name]]) for name, _ in labels]
    return pd.DataFrame(rows, index=_pairs_index(labels, ["dataset", "setting"]), columns=stats_columns(), dtype=float)


def _pairs_index(labels: Sequence[tuple[str, str]], names: list[str]) -> pd.MultiIndex:
    # from_arrays, unlike from_tuples, also builds an empty two-level index.
    return pd.MultiIndex.from_arrays([[a for a, _ in labels], [b for _, b in labels]], names=names)


# The ``source`` level of a Table 1 comparison: our row, the earlier work's, and ours minus theirs.
COMPUTED, PUBLISHED, DIFFERENCE = "computed", "published", "difference"


def table1_comparison(computed: pd.DataFrame, published: pd.DataFrame | None = None) -> pd.DataFrame:
    """``computed`` Table 1 in long form, each published row and ``difference`` = computed - published below ours.

    Rows (dataset, setting, source), source being ``computed``, ``published`` or
    ``difference``; columns (statistic, channel), the six numbers of one row, so
    no cell is empty: a setting nothing was published for has its ``computed``
    row only. When none of the data sets has a published row the ``source``
    level is left out: the table is ``computed`` itself.
    """
    if published is None:
        published = published_table1_frame(list(computed.index.get_level_values("dataset").unique()))
    published = published.reindex(computed.index).dropna(how="all")
    if published.empty:
        return computed.copy()
    rows, labels = [], []
    for key, row in computed.iterrows():
        rows.append(row)
        labels.append((*key, COMPUTED))
        if key in published.index:
            rows += [published.loc[key], row - published.loc[key]]
            labels += [(*key, PUBLISHED), (*key, DIFFERENCE)]
    index = pd.MultiIndex.from_tuples(labels, names=[*computed.index.names, "source"])
    return pd.DataFrame(rows, columns=computed.columns).set_axis(index, axis=0)


def settings_legend(settings: Sequence[str]) -> str:
    """A footnote line defining each of ``settings`` by the library's own description (input_norm.DESCRIPTIONS).

    Each description says what the setting does to the pixels, so also the
    scale its Table 1 rows are on (``none``: raw 0..255, ``unit``: [0, 1]).
    """
    from .glossary_links import markdown_note

    defined = " ".join(f"`{setting}`: {DESCRIPTIONS[setting]}" for setting in dict.fromkeys(settings))
    return f"Settings: {defined} {markdown_note(['input_norm'])}"


def table1_settings_legend(table1: pd.DataFrame) -> str:
    """:func:`settings_legend` of the settings a Table 1 (long or not) has rows for, in its order."""
    return settings_legend(list(table1.index.get_level_values("setting")))


def distance_from_standard(table1: pd.DataFrame, setting: str) -> pd.Series:
    """Per data set: how far ``setting`` leaves the channels from zero mean and unit std.

    The root mean square over the three channels of mean and (std - 1), from a
    :func:`table1_frame`; 0 means exactly standardized.
    """
    rows = table1.xs(setting, level="setting")
    squared = rows["mean"].pow(2).sum(axis=1) + (rows["std"] - 1).pow(2).sum(axis=1)
    return (squared / (2 * len(CHANNELS))).pow(0.5).rename(f"distance from standard after {setting}")


# --- committed records (normtest_lib.stats.record) and the real/synthetic label ---


def data_kind(dataset) -> str:
    """``synthetic data`` for a data set generated in code (``source == "generated"``), else ``real data``."""
    return SYNTHETIC if getattr(dataset, "source", None) == "generated" else REAL


def label_data(frame: pd.DataFrame, kinds: str | Mapping[str, str]) -> pd.DataFrame:
    """``frame`` with a first index level ``data``: one label, or each row's by its ``dataset`` level.

    Every table that can hold real and synthetic rows carries this level, so
    the two are told apart at a glance.
    """
    names = frame.index.get_level_values("dataset") if "dataset" in (frame.index.names or []) else frame.index
    labels = [kinds if isinstance(kinds, str) else kinds[name] for name in names]
    return frame.set_index(pd.Index(labels, name="data"), append=True).reorder_levels(
        ["data", *[n for n in frame.index.names]]
    )


def records_stats_frame(records: Mapping[str, StatisticsRecord]) -> pd.DataFrame:
    """:func:`channel_stats_frame` of committed records, each beside its published statistics."""
    references = {}
    for name, record in records.items():
        published = published_for(record.published_as) if record.published_as else None
        references[name] = ("published", published) if published is not None else None
    return channel_stats_frame({name: record.stats for name, record in records.items()}, references)


def records_table1_frame(
    records: Mapping[str, StatisticsRecord], pretrain_stats: ChannelStats | None = None
) -> pd.DataFrame:
    """The committed records' Table 1, as :func:`table1_frame` lays it out.

    With ``pretrain_stats`` the ``pretrain`` rows are recomputed for those
    statistics from each record's raw ones (exact: ``pretrain`` is affine per
    pixel), so another pretraining source's Table 1 needs no images.
    """
    rows = {}
    for name, record in records.items():
        rows[name] = dict(record.table1)
        if pretrain_stats is not None and "pretrain" in rows[name]:
            rows[name]["pretrain"] = affine_stats(record.stats, "pretrain", pretrain_stats=pretrain_stats)
    return _table1_from_stats(rows)


def records_published_table1(records: Mapping[str, StatisticsRecord]) -> pd.DataFrame:
    """The published Table 1 rows matching the records, under the records' names."""
    return published_table1_frame({name: record.published_as for name, record in records.items()})


def records_provenance(records: Mapping[str, StatisticsRecord]) -> pd.DataFrame:
    """What each record rests on: images (of the split), sample, split, channel order, size, code and time."""
    rows = []
    for name, record in records.items():
        sample = "whole split" if record.sample is None else f"seeded sample (seed {record.sample['seed']})"
        rows.append({
            "data": record.data,
            "dataset": name,
            "read as": record.dataset,
            "split": record.split,
            "images": record.n_images,
            "of": record.n_images_in_split,
            "sample": sample,
            "size": "x".join(str(v) for v in record.image_size),
            "channels": CHANNEL_ORDER,
            "published as": record.published_as or "",
            "commit": (record.computed_with.get("git_commit") or "unknown")[:12],
            "torch": record.computed_with.get("torch", "unknown"),
            "seconds": record.seconds,
        })
    return pd.DataFrame(rows).set_index(["data", "dataset"])


def published_difference_sentence(comparison: pd.DataFrame, setting: str = "pretrain") -> str:
    """One sentence per data set with a published ``setting`` row: the largest gap to it, means and stds apart.

    ``comparison`` is a :func:`table1_comparison` (with its ``difference`` rows).
    """
    if "source" not in comparison.index.names or DIFFERENCE not in comparison.index.get_level_values("source"):
        return "None of these data sets has a published row to compare with."
    differences = comparison.xs(DIFFERENCE, level="source")
    gaps = differences[differences.index.get_level_values("setting") == setting].droplevel("setting").abs()
    parts = [
        f"`{name}` differs from its published row by at most {row['mean'].max():.2f} in the means "
        f"and {row['std'].max():.2f} in the standard deviations"
        for name, row in gaps.iterrows()
    ]
    return "; ".join(parts) + "." if parts else "None of these data sets has a published row to compare with."


def agreement_decimals(ours: ChannelStats, published: ChannelStats, most: int = 6) -> int:
    """To how many decimals ``published`` equals ``ours``: the largest d (at most ``most``) with every one of the
    six values within half a unit of the d-th decimal (0 when even the first decimal differs)."""
    gap = max(abs(a - b) for a, b in zip((*ours.mean, *ours.std), (*published.mean, *published.std)))
    return max([d for d in range(most + 1) if gap < 0.5 * 10.0**-d], default=0)


def published_source_sentence(records: Mapping[str, StatisticsRecord]) -> str:
    """Where the ``published`` channel statistics come from, and how closely each equals the row computed here.

    They are the earlier work of study 1's typed statistics (the dictionary of its ``stats.py``, which its
    README reprints), not numbers from a paper; a row that equals ours to four decimals or more was
    computed from the same training images, in RGB, as ours was, so it confirms our computation and is no
    independent measurement. A row that differs says by how much.
    """
    from .references import link

    parts = []
    for name, record in records.items():
        published = published_for(record.published_as) if record.published_as else None
        if published is None:
            continue
        gap = max(abs(a - b) for a, b in zip((*record.stats.mean, *record.stats.std), (*published.mean, *published.std)))
        decimals = agreement_decimals(record.stats, published)
        if decimals >= 4:
            parts.append(
                f"`{name}`'s published row equals ours to {decimals} decimals (largest difference {gap:.1e}): it was "
                f"computed from the same {record.n_images:,} training images, in RGB, as ours was, so it checks our "
                "computation and is not an independent measurement"
            )
        else:
            parts.append(f"`{name}`'s published row differs from ours by at most {gap:.4f}")
    if not parts:
        return "None of these data sets has published statistics to set beside."
    return (
        f"The `published` rows are the statistics the earlier work of study 1 ({link('normalization-test')}) typed "
        "into the dictionary of its `stats.py` (its README reprints them), not numbers from a paper. "
        + "; ".join(parts) + "."
    )


def data_caption(frame: pd.DataFrame, title: str) -> str:
    """``title`` led by the data kinds of ``frame``'s ``data`` level: "Real data and synthetic data: ...", and
    followed by links to the glossary sections of the names ``frame`` lists (its data sets and, in a Table 1,
    the input settings: :func:`~normtest_lib.report.glossary_links.caption_note`)."""
    from .glossary_links import table_kinds, with_caption_note

    kinds = list(dict.fromkeys(frame.index.get_level_values("data")))
    label = " and ".join(kinds) if kinds else "no data"
    names = [kind for kind in table_kinds(frame) if kind != "study_labels"]  # a Table 1's settings are input settings
    if "input_norm" not in names and set(map(str, frame.columns)) & set(DESCRIPTIONS):  # a column per setting
        names.append("input_norm")
    return with_caption_note(f"{label[:1].upper()}{label[1:]}: {title}", frame, names)


def distances_frame(table1: pd.DataFrame, settings: Sequence[str] = ("pretrain", "finetune", "instance")) -> pd.DataFrame:
    """:func:`distance_from_standard` of each of ``settings``, one column each, rows by data set."""
    return pd.concat({setting: distance_from_standard(table1, setting) for setting in settings}, axis=1)


def table1_summary(table1: pd.DataFrame, data: str, setting: str = "pretrain") -> str:
    """What ``setting`` leaves of each channel over a :func:`table1_frame`'s data sets, in one sentence."""
    rows = table1.xs(setting, level="setting")
    distances = distance_from_standard(table1, setting)
    return (
        f"On the {data} ({', '.join(f'`{name}`' for name in rows.index)}), `{setting}` leaves channel means between "
        f"{rows['mean'].min().min():.2f} and {rows['mean'].max().max():.2f} and standard deviations between "
        f"{rows['std'].min().min():.2f} and {rows['std'].max().max():.2f}; the set it leaves farthest from zero mean "
        f"and unit standard deviation is `{distances.idxmax()}` (distance {distances.max():.2f})."
    )
