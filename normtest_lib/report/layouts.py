"""The earlier work's accuracy tables, with ours beside theirs.

Two layouts, as study 1's reference work printed them:

- :func:`settings_table`: every input setting side by side, the best of each
  row in bold and the second underlined;
- :func:`finetune_pretrain_table`: the two statistics a fine-tuner chooses
  between, and their difference, coloured.

Our cells are "mean ± std (n=k)" over seeds in percent; a published cell is the
earlier work's single number. The published block appears only where it has a
row that our runs also have (same model, same data set, same setting names), so a
reduced profile is never printed beside numbers it did not reproduce.
Our difference is coloured by its paired 95 % interval (green or red only when
it excludes 0, see :mod:`normtest_lib.report.paired`); the published one by
its sign, the only thing one seed gives.
"""

from __future__ import annotations

from typing import Sequence

import pandas as pd
from pandas.io.formats.style import Styler

from .converged import with_converged_column
from .paired import format_difference, paired_differences, significant
from .tables import BETTER, MISSING_TEXT, WORSE, aggregate_seeds, best_two_css, format_mean_std

ROW_KEYS = ("model", "data")


def seed_summary(runs: pd.DataFrame, metric: str, keys: Sequence[str] = (*ROW_KEYS, "setting")) -> pd.DataFrame:
    """Mean, std and n over seeds of ``metric`` per group of ``keys``, mean and std in percent."""
    stats = aggregate_seeds(runs, metric, list(keys))
    stats[["mean", "std"]] *= 100.0
    return stats


def published_block(published: pd.Series, settings: Sequence[str]) -> pd.DataFrame:
    """Published values (index model, dataset, setting; fractions) as rows (model, data) x settings, in percent."""
    wide = (published * 100.0).unstack("setting")
    wide.index = wide.index.set_names(list(ROW_KEYS))
    return wide.reindex(columns=[s for s in settings if s in wide.columns])


def _matching(published: pd.DataFrame, rows: pd.Index) -> pd.DataFrame | None:
    """The published rows that our table also has, or None when there are none."""
    matched = published.reindex(rows)
    return None if matched.isna().all().all() else matched


def settings_table(
    ours: pd.DataFrame | None, published: pd.Series | None, settings: Sequence[str], digits: int = 1,
    runs: pd.DataFrame | None = None,
) -> Styler:
    """Rows (model, data); a block of setting columns for ours and one for the published values.

    ``ours`` is :func:`seed_summary` by (model, data, setting); ``published`` is
    :func:`normtest_lib.report.published.published_values`. Pass ``ours=None``
    to show the published table alone. ``runs`` (the runs ``ours`` summarizes) add a
    column of how many of each row's runs converged.
    """
    text, values = {}, {}
    if ours is not None and not ours.empty:
        means = ours["mean"].unstack("setting")
        columns = [s for s in settings if s in means.columns]
        values["ours"] = means.reindex(columns=columns)
        cells = ours.apply(lambda row: format_mean_std(row["mean"], row["std"], row["n"], digits), axis=1)
        text["ours"] = cells.unstack("setting").reindex(columns=columns)
    if published is not None and not published.empty:
        theirs = published_block(published, settings)
        theirs = _matching(theirs, text["ours"].index) if "ours" in text else theirs
        if theirs is not None:
            values["published"] = theirs
            text["published"] = theirs.map(lambda value: MISSING_TEXT if pd.isna(value) else f"{value:.2f}")
    if not text:
        raise ValueError("nothing to tabulate: no runs of ours and no published values")
    table = pd.concat(text, axis=1, names=["source", "setting"]).fillna(MISSING_TEXT)
    css = pd.concat({source: best_two_css(block, axis=1) for source, block in values.items()}, axis=1)
    css = css.reindex(index=table.index, columns=table.columns, fill_value="")
    table, css = with_converged_column(table, css, runs, list(ROW_KEYS))
    return table.style.apply(lambda _: css, axis=None)


def finetune_pretrain_table(
    runs: pd.DataFrame | None,
    published: pd.Series | None,
    metric: str = "test_acc_at_best_val",
    digits: int = 1,
) -> Styler:
    """``finetune`` against ``pretrain`` per (model, data): both accuracies and their difference, coloured.

    ``runs`` carry ``model``, ``data``, ``setting`` and ``seed`` columns
    (:func:`normtest_lib.report.labels.add_labels`); our difference is the mean
    paired difference over seeds with its 95 % interval.
    """
    text: dict[str, pd.DataFrame] = {}
    colours: dict[str, pd.DataFrame] = {}
    difference = "finetune − pretrain"
    if runs is not None and not runs.empty:
        pair = runs[runs["setting"].isin(["finetune", "pretrain"])]
        stats = seed_summary(pair, metric)
        cells = stats.apply(lambda row: format_mean_std(row["mean"], row["std"], row["n"], digits), axis=1)
        ours = cells.unstack("setting").reindex(columns=["finetune", "pretrain"])
        paired = paired_differences(pair, metric, "setting", "pretrain", list(ROW_KEYS)).xs("finetune", level="setting")
        ours[difference] = paired.apply(
            lambda row: format_difference(row["mean"], row["ci_low"], row["ci_high"], row["n"], digits), axis=1
        )
        verdict = significant(paired).map({True: BETTER, False: ""}).where(paired["mean"] >= 0, WORSE)
        verdict = verdict.where(significant(paired), "")
        text["ours"] = ours.fillna(MISSING_TEXT)
        colours["ours"] = pd.DataFrame({difference: verdict}).reindex(ours.index).fillna("")
    if published is not None and not published.empty:
        theirs = published_block(published, ["finetune", "pretrain"])
        theirs = _matching(theirs, text["ours"].index) if "ours" in text else theirs
        if theirs is not None:
            theirs[difference] = theirs["finetune"] - theirs["pretrain"]
            sign = theirs[difference].map(lambda v: "" if pd.isna(v) or v == 0 else (BETTER if v > 0 else WORSE))
            text["published"] = theirs.map(lambda v: MISSING_TEXT if pd.isna(v) else f"{v:.2f}")
            text["published"][difference] = theirs[difference].map(lambda v: MISSING_TEXT if pd.isna(v) else f"{v:+.2f}")
            colours["published"] = pd.DataFrame({difference: sign})
    if not text:
        raise ValueError("nothing to tabulate: no runs of ours and no published values")
    table = pd.concat(text, axis=1, names=["source", ""])
    css = pd.concat(colours, axis=1).astype(object).reindex(index=table.index, columns=table.columns, fill_value="")
    css = css.where(css.notna(), "")
    return table.style.apply(lambda _: css, axis=None)


def metrics_table(
    runs: pd.DataFrame,
    metrics: dict[str, str],
    published: pd.DataFrame | None = None,
    index: str = "norm_layer",
    order: Sequence[str] | None = None,
    digits: int = 1,
) -> Styler:
    """One row per ``index`` value, a column per metric: ours as mean ± std (n) in percent, the published beside.

    ``metrics`` maps a column label (``"test acc."``) to the runs' column holding
    the fraction (``"test_acc_at_best_val"``); ``published`` has one row per
    ``index`` value and the same labels as columns (fractions; NaN where nothing
    was published; labels with no published value at all are left out). The
    best mean of each of our columns is bold and the second underlined.
    """
    text, values = {}, {}
    for label, column in metrics.items():
        stats = seed_summary(runs, column, [index]) if column in runs.columns else None
        if stats is None or stats.empty:
            continue
        values[label] = stats["mean"]
        text[label] = stats.apply(lambda row: format_mean_std(row["mean"], row["std"], row["n"], digits), axis=1)
    if not text:
        raise ValueError(f"none of the columns {list(metrics.values())} has complete runs")
    ours_text, ours_values = pd.DataFrame(text), pd.DataFrame(values)
    rows = [name for name in (order or ours_text.index) if name in ours_text.index]
    blocks_text = {"ours": ours_text.reindex(rows)}
    css_blocks = {"ours": best_two_css(ours_values.reindex(rows), axis=0)}
    if published is not None:
        theirs = (published.reindex(rows) * 100.0).dropna(axis=1, how="all")
        if not theirs.empty and theirs.notna().any().any():
            blocks_text["published"] = theirs.map(lambda value: MISSING_TEXT if pd.isna(value) else f"{value:.1f}")
            css_blocks["published"] = best_two_css(theirs, axis=0)
    table = pd.concat(blocks_text, axis=1, names=["source", "metric"]).fillna(MISSING_TEXT)
    css = pd.concat(css_blocks, axis=1).reindex(index=table.index, columns=table.columns, fill_value="")
    table, css = with_converged_column(table, css, runs, index)
    return table.style.apply(lambda _: css, axis=None)
