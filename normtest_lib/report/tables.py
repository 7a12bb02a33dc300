"""The book's tables: emphasis, number formatting, and results over seeds.

Conventions shared by every table:

- the best value per row or column is set in bold (and, where a table says so,
  the second best underlined, as the earlier work's tables did);
- a difference against a baseline is green where it is better and red where
  it is worse, as the earlier work's tables did;
- a result over seeds reads "mean ± std (n=k)", std being the sample standard
  deviation over the k seeds, so a reader sees how many runs a number rests on.

Channel-statistics tables (Table 1) are in :mod:`normtest_lib.report.stats_tables`,
paired comparisons with their confidence intervals in :mod:`normtest_lib.report.paired`.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
from pandas.io.formats.style import Styler

from .results import drop_duplicate_runs, param_columns

BOLD = "font-weight: bold"
UNDERLINE = "text-decoration: underline"
BETTER = "background-color: #d8f3dc; color: #1b5e20"
WORSE = "background-color: #fde2e1; color: #b71c1c"
MISSING_TEXT = "–"
# Params that say how a run executed, not what it computed: they may differ between seeds.
EXECUTION_ONLY_PARAMS = frozenset({"data_root", "download", "device", "num_threads", "seed"})
# Params that draw a replicate, like the seed: study 3 gives each seed its own draw of noisy
# labels, so pooling over seeds pools over both draws, as intended.
REPLICATE_PARAMS = frozenset({"noise_seed"})


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


def second_mask(values: pd.DataFrame, axis: int = 1, higher_is_better: bool = True) -> pd.DataFrame:
    """True where a value is the second best distinct value of its row (axis=1) or column (axis=0).

    Values tied for best are all best (see :func:`best_mask`), so the second is the next distinct value.
    """
    numeric = values.apply(pd.to_numeric, errors="coerce").astype(float)
    if not higher_is_better:
        numeric = -numeric
    best = best_mask(numeric, axis)
    below_best = numeric.mask(best)
    second = below_best.max(axis=axis)
    return below_best.eq(second, axis=1 - axis)


def best_two_css(values: pd.DataFrame, axis: int = 1, higher_is_better: bool = True) -> pd.DataFrame:
    """CSS per cell: bold for the best, underline for the second best of each row (axis=1) or column (axis=0)."""
    best = best_mask(values, axis, higher_is_better).to_numpy()
    second = second_mask(values, axis, higher_is_better).to_numpy()
    return pd.DataFrame(np.where(best, BOLD, np.where(second, UNDERLINE, "")), index=values.index, columns=values.columns)


def emphasize_best_two(
    styler: Styler, values: pd.DataFrame, axis: int = 1, higher_is_better: bool = True
) -> Styler:
    """Bold the best and underline the second best value of each row (axis=1) or column (axis=0).

    ``values`` decide and are aligned with the styler's data (NaN is never best
    or second), so a text table of "mean ± std" cells is emphasized by its means.
    """
    css = best_two_css(values, axis, higher_is_better).reindex(
        index=styler.data.index, columns=styler.data.columns, fill_value=""
    )
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
    ignored = EXECUTION_ONLY_PARAMS | REPLICATE_PARAMS | {pair_on} | set(keys)
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


def seed_summary(runs: pd.DataFrame, metric: str, keys: Sequence[str]) -> pd.DataFrame:
    """:func:`aggregate_seeds` of an accuracy ``metric`` (fractions) per group of ``keys``, mean and std in percent."""
    stats = aggregate_seeds(runs, metric, list(keys))
    stats[["mean", "std"]] *= 100.0
    return stats


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


# --- number formatting ---------------------------------------------------


def style_numbers(frame: pd.DataFrame, digits: int = 3) -> Styler:
    """Floats with ``digits`` decimals, integers as they are, missing values as a dash."""

    def decimal(value: float) -> str:
        # Adding 0.0 turns a rounded -0.0 into 0.0, so no "-0.000" appears.
        return f"{round(float(value), digits) + 0.0:.{digits}f}"

    formats = {column: ("{:d}" if pd.api.types.is_integer_dtype(frame[column]) else decimal) for column in frame.columns}
    return frame.style.format(formats, na_rep=MISSING_TEXT)
