"""The book's tables: pandas frames and Stylers built from computed numbers only.

Conventions shared by every table:

- the best value per row or column is set in bold;
- a difference against a baseline is green where it is better and red where
  it is worse, as the earlier work's tables did;
- a result over seeds reads "mean ± std (n=k)", std being the sample standard
  deviation over the k seeds, so a reader sees how many runs a number rests on.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from pandas.io.formats.style import Styler

from ..input_norm import SETTINGS
from ..stats.normalized import normalized_stats
from ..stats.reference import IMAGENET, PUBLISHED_TABLE1, published_for
from .results import drop_duplicate_runs, param_columns
from ..stats.channel import ChannelStats, channel_stats

CHANNELS = ("R", "G", "B")
BOLD = "font-weight: bold"
BETTER = "background-color: #d8f3dc; color: #1b5e20"
WORSE = "background-color: #fde2e1; color: #b71c1c"
MISSING_TEXT = "–"
# Params that say how a run executed, not what it computed: they may differ between seeds.
EXECUTION_ONLY_PARAMS = frozenset({"data_root", "download", "device", "num_threads", "seed"})


# --- emphasis -------------------------------------------------------------


def best_mask(values: pd.DataFrame, axis: int | None = 0, higher_is_better: bool = True) -> pd.DataFrame:
    """True where a value is the best of its column (axis=0), row (axis=1) or the table (None).

    Ties are all best; NaN is never best.
    """
    numeric = values.apply(pd.to_numeric, errors="coerce").astype(float)
    if not higher_is_better:
        numeric = -numeric
    if axis is None:
        return numeric == numeric.max().max()
    best = numeric.max(axis=axis)
    return numeric.eq(best, axis=1 - axis)


def bold_best(
    styler: Styler,
    values: pd.DataFrame | None = None,
    axis: int | None = 0,
    higher_is_better: bool = True,
) -> Styler:
    """Set the best cell of each column/row of ``styler`` in bold.

    ``values`` are the numbers that decide (aligned with the styler's data);
    by default the styler's own data, which must then be numeric. Passing the
    means lets a text table such as "87.9 ± 0.3 (n=3)" bold its best mean.
    """
    mask = best_mask(styler.data if values is None else values, axis, higher_is_better)
    mask = mask.reindex(index=styler.data.index, columns=styler.data.columns, fill_value=False)
    css = pd.DataFrame(np.where(mask.to_numpy(), BOLD, ""), index=mask.index, columns=mask.columns)
    return styler.apply(lambda _: css, axis=None)


def difference_frame(frame: pd.DataFrame, baseline: str, axis: int = 1) -> pd.DataFrame:
    """``frame`` minus its ``baseline`` column (axis=1) or row (axis=0)."""
    if axis == 1:
        if baseline not in frame.columns:
            raise KeyError(f"baseline column {baseline!r} not in {list(frame.columns)}")
        return frame.sub(frame[baseline], axis=0)
    if baseline not in frame.index:
        raise KeyError(f"baseline row {baseline!r} not in {list(frame.index)}")
    return frame.sub(frame.loc[baseline], axis=1)


def style_differences(
    differences: pd.DataFrame,
    higher_is_better: bool = True,
    digits: int = 2,
    tolerance: float = 0.0,
) -> Styler:
    """Differences against a baseline, signed, green where better and red where worse.

    A difference within ``tolerance`` of zero (the baseline itself) is not coloured.
    """
    sign = 1.0 if higher_is_better else -1.0

    def colour(value: float) -> str:
        if pd.isna(value) or abs(value) <= tolerance:
            return ""
        return BETTER if sign * value > 0 else WORSE

    return differences.style.map(colour).format(f"{{:+.{digits}f}}", na_rep=MISSING_TEXT)


# --- results over seeds ---------------------------------------------------


def check_only_seeds_vary(runs: pd.DataFrame, keys: Sequence[str], pair_on: str = "seed") -> None:
    """Raise ValueError where runs pooled into one group of ``keys`` differ in more than their seed.

    Averaging runs with different learning rates as if they were seeds would
    report a number no run measured. The params are those of
    :func:`normtest_lib.report.results.param_columns` (none for a frame that does not
    say); ``pair_on`` and the execution-only params may vary.
    """
    keys = list(keys)
    ignored = EXECUTION_ONLY_PARAMS | {pair_on} | set(keys)
    others = [c for c in param_columns(runs) if c not in ignored]
    if runs.empty or not others:
        return
    as_text = runs[others].astype(str)  # str: NaN, tuples and mixed types compare as written
    spread = as_text.groupby([runs[k] for k in keys], dropna=False).nunique()
    varying = spread[(spread > 1).any(axis=1)]
    if varying.empty:
        return
    group = varying.index[0]
    columns = [c for c in others if varying.iloc[0][c] > 1]
    label = ", ".join(f"{k}={v}" for k, v in zip(keys, group if isinstance(group, tuple) else (group,)))
    raise ValueError(
        f"runs grouped by {keys} differ in {columns} as well as in {pair_on!r} (first such group: {label}); "
        f"select one value of {columns[0]!r} before the table, or add it to the table's keys"
    )


def aggregate_seeds(
    runs: pd.DataFrame, value: str, keys: Sequence[str], *, only_complete: bool = True
) -> pd.DataFrame:
    """Mean, sample std and count of ``value`` per group of ``keys`` (one row per group).

    With ``only_complete`` (the default) runs whose status is not ``complete``
    are left out, so a crashed run never lowers a mean. A group of one run has
    std NaN: one number has no spread.
    """
    keys = list(keys)
    missing = [k for k in [*keys, value] if k not in runs.columns]
    if missing:
        raise KeyError(f"results have no column(s) {missing}; available: {list(runs.columns)}")
    runs = drop_duplicate_runs(runs)
    if only_complete and "status" in runs.columns:
        runs = runs[runs["status"] == "complete"]
    check_only_seeds_vary(runs, keys)
    values = pd.to_numeric(runs[value], errors="coerce")
    grouped = values.groupby([runs[k] for k in keys], dropna=False)
    return pd.DataFrame({"mean": grouped.mean(), "std": grouped.std(ddof=1), "n": grouped.count()})


def format_mean_std(mean: float, std: float, n: int, digits: int = 1) -> str:
    """"87.9 ± 0.3 (n=3)"; without a spread (n=1 or NaN std) "87.9 (n=1)"."""
    if pd.isna(mean):
        return MISSING_TEXT
    if pd.isna(std):
        return f"{mean:.{digits}f} (n={int(n)})"
    return f"{mean:.{digits}f} ± {std:.{digits}f} (n={int(n)})"


def mean_std_table(
    runs: pd.DataFrame,
    value: str,
    index: str | Sequence[str],
    columns: str | Sequence[str] | None = None,
    *,
    scale: float = 100.0,
    digits: int = 1,
    best_axis: int | None = 0,
    higher_is_better: bool = True,
) -> Styler:
    """A Styler of "mean ± std (n=k)" cells over seeds, best mean in bold.

    ``value`` is scaled by ``scale`` (accuracies to percent by default);
    ``index``/``columns`` choose the table's rows and columns (every other
    column, such as the seed, is what the statistics run over); ``best_axis``
    picks best per column (0), per row (1), in the table (None).
    """
    index = [index] if isinstance(index, str) else list(index)
    columns = [] if columns is None else [columns] if isinstance(columns, str) else list(columns)
    stats = aggregate_seeds(runs, value, [*index, *columns])
    stats[["mean", "std"]] *= scale
    text = stats.apply(lambda row: format_mean_std(row["mean"], row["std"], row["n"], digits), axis=1)
    means = stats["mean"]
    if columns:
        text, means = text.unstack(columns), means.unstack(columns)
    else:
        text, means = text.to_frame(value), means.to_frame(value)
    return bold_best(text.fillna(MISSING_TEXT).style, means, best_axis, higher_is_better)


# --- data set statistics ("Table 1") --------------------------------------


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


def style_numbers(frame: pd.DataFrame, digits: int = 3) -> Styler:
    """Floats with ``digits`` decimals, integers as they are, missing values as a dash."""

    def decimal(value: float) -> str:
        # Adding 0.0 turns a rounded -0.0 into 0.0, so no "-0.000" appears.
        return f"{round(float(value), digits) + 0.0:.{digits}f}"

    formats = {column: ("{:d}" if pd.api.types.is_integer_dtype(frame[column]) else decimal) for column in frame.columns}
    return frame.style.format(formats, na_rep=MISSING_TEXT)


# --- paired comparisons -----------------------------------------------------


def paired_differences(
    runs: pd.DataFrame,
    value: str,
    compare: str,
    baseline: str,
    index: Sequence[str],
    pair_on: str = "seed",
    *,
    scale: float = 100.0,
) -> pd.DataFrame:
    """Per group of ``index`` and each setting of ``compare``: the paired difference to ``baseline``.

    Runs are paired by ``pair_on`` (the seed: same initialisation and data
    order), so seed-to-seed variation common to both settings cancels. Returns
    one row per (index..., setting) with columns mean, std and n of the paired
    differences (scaled), and ``seed_std``: the baseline's own seed-to-seed
    std, against which a difference can be judged.
    """
    index = list(index)
    runs = drop_duplicate_runs(runs)
    complete = runs[runs["status"] == "complete"] if "status" in runs.columns else runs
    check_only_seeds_vary(complete, [*index, compare], pair_on)
    values = complete.assign(_value=pd.to_numeric(complete[value], errors="coerce") * scale)
    wide = values.pivot_table(index=[*index, pair_on], columns=compare, values="_value", aggfunc="mean")
    if baseline not in wide.columns:
        raise KeyError(f"baseline {baseline!r} has no complete runs; settings present: {list(wide.columns)}")
    differences = wide.sub(wide[baseline], axis=0).drop(columns=baseline)
    grouped = differences.groupby(level=index)
    stacked = {name: frame.stack() for name, frame in (("mean", grouped.mean()), ("std", grouped.std(ddof=1)), ("n", grouped.count()))}
    out = pd.DataFrame(stacked)
    out["seed_std"] = wide[baseline].groupby(level=index).std(ddof=1).reindex(out.index.droplevel(-1)).to_numpy()
    return out


def within_noise(differences: pd.DataFrame) -> pd.Series:
    """True where a mean paired difference is smaller than the baseline's seed-to-seed std."""
    return differences["mean"].abs() < differences["seed_std"]
