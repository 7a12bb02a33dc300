"""Paired comparisons: each setting against a baseline, run by run, with a confidence interval.

Runs are paired by seed (same initialisation and data order), so the
seed-to-seed variation the two settings share cancels in the difference. For
each group the table reports the mean of the k paired differences and the
two-sided 95 % confidence interval of that mean, t-based over the seeds::

    mean ± t_{0.975, k-1} · s / √k        (s: sample std of the differences)

computed by ``scipy.stats.ttest_1samp(...).confidence_interval``.

- A difference is **within noise** when its interval contains 0, and
  **significant** when it excludes 0.
- With fewer than two pairs (k < 2) there is no spread to estimate, the
  interval is undefined (NaN), and the difference is *neither* within noise
  nor significant: one seed cannot say.
- A green/red cell in :func:`paired_difference_table` is a significant
  difference (better/worse); an uncoloured one is within noise or undefined.
"""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
import pandas as pd
from pandas.io.formats.style import Styler
from scipy import stats

from .results import drop_duplicate_runs
from .tables import BETTER, MISSING_TEXT, WORSE, check_only_seeds_vary

CONFIDENCE = 0.95


def confidence_interval(differences: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The t-based ``confidence`` interval of the mean of ``differences`` (NaN values dropped).

    (NaN, NaN) with fewer than two values. Identical values give the zero-width
    interval at their value.
    """
    values = np.asarray(differences, dtype=float)
    values = values[~np.isnan(values)]
    if len(values) < 2:
        return (float("nan"), float("nan"))
    with warnings.catch_warnings():
        # scipy warns about precision loss when the values are (nearly) identical;
        # the interval it returns is then (nearly) zero-width, which is right.
        warnings.simplefilter("ignore", RuntimeWarning)
        interval = stats.ttest_1samp(values, 0.0).confidence_interval(confidence)
    return (float(interval.low), float(interval.high))


def paired_differences(
    runs: pd.DataFrame,
    value: str,
    compare: str,
    baseline: str,
    index: Sequence[str],
    pair_on: str = "seed",
    *,
    scale: float = 100.0,
    confidence: float = CONFIDENCE,
) -> pd.DataFrame:
    """Per group of ``index`` and each setting of ``compare``: the paired difference to ``baseline``.

    Runs are paired by ``pair_on`` (the seed); only complete runs count, and a
    seed counts only where both the setting and the baseline have a run.
    Returns one row per (index..., setting) with columns ``mean``, ``std`` and
    ``n`` of the paired differences (scaled by ``scale``, so percentage points
    for accuracies) and ``ci_low``, ``ci_high``: the ``confidence`` interval of
    the mean (:func:`confidence_interval`; NaN for n < 2).
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
    out = pd.DataFrame(
        {name: frame.stack() for name, frame in (("mean", grouped.mean()), ("std", grouped.std(ddof=1)), ("n", grouped.count()))}
    )
    for bound, name in ((0, "ci_low"), (1, "ci_high")):
        limit = grouped.agg(lambda column: confidence_interval(column.to_numpy(), confidence)[bound])
        out[name] = limit.stack().reindex(out.index)
    out["n"] = out["n"].astype(int)
    return out[out["n"] > 0]  # a setting with no run at a baseline's seed is no comparison at all


def within_noise(differences: pd.DataFrame) -> pd.Series:
    """True where the confidence interval of a paired difference contains 0; False where it is undefined (n < 2)."""
    return ((differences["ci_low"] <= 0) & (differences["ci_high"] >= 0)).rename("within_noise")


def significant(differences: pd.DataFrame) -> pd.Series:
    """True where the confidence interval of a paired difference excludes 0; False where it is undefined (n < 2)."""
    return ((differences["ci_low"] > 0) | (differences["ci_high"] < 0)).rename("significant")


def format_difference(mean: float, low: float, high: float, n: int, digits: int = 2) -> str:
    """"+1.00 [+0.50, +1.50] (n=3)"; with no interval (n < 2) "+1.00 (n=1, no CI)"."""
    if pd.isna(mean):
        return MISSING_TEXT
    if pd.isna(low) or pd.isna(high):
        return f"{mean:+.{digits}f} (n={int(n)}, no CI)"
    return f"{mean:+.{digits}f} [{low:+.{digits}f}, {high:+.{digits}f}] (n={int(n)})"


def paired_difference_table(
    differences: pd.DataFrame, compare: str, *, higher_is_better: bool = True, digits: int = 2
) -> Styler:
    """A Styler of "mean [ci_low, ci_high] (n=k)" cells, one column per setting of ``compare``.

    ``differences`` is :func:`paired_differences`' frame. A cell is green where
    the difference is significantly better, red where significantly worse, and
    uncoloured where its interval contains 0 or is undefined.
    """
    text = differences.apply(
        lambda row: format_difference(row["mean"], row["ci_low"], row["ci_high"], row["n"], digits), axis=1
    )
    sign = 1.0 if higher_is_better else -1.0
    verdict = np.where(significant(differences), np.where(sign * differences["mean"] > 0, BETTER, WORSE), "")
    css = pd.Series(verdict, index=differences.index)
    text, css = text.unstack(compare), css.unstack(compare)
    css = css.reindex(index=text.index, columns=text.columns).fillna("")
    return text.fillna(MISSING_TEXT).style.apply(lambda _: css, axis=None)
