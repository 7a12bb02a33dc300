"""Study 1's runs in its own terms: their labels, the pretraining run, and the earlier work's table layouts.

A study-1 run is named by its parameters, not in a reader's words: a run with
``stats_subset: 10`` is "finetune, statistics from 10 images", one without
pretrained weights the from-scratch control (:func:`setting_label`; the data
set's label is the shared :func:`normtest_lib.report.labels.dataset_label`).
Tables and figures group by these labels so that every condition of the grid is
one column or one curve.

A profile may fine-tune from a network it pretrained itself rather than from an
ImageNet checkpoint (:func:`pretraining_run_id`, :func:`pretraining_sentence`).

Two table layouts, as the earlier work printed them:

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

from typing import Any, Mapping, Sequence

import pandas as pd
from pandas.io.formats.style import Styler

from ...report import protocol
from ...report.converged import with_converged_column
from ...report.labels import dataset_label
from ...report.paired import format_difference, paired_differences, significant
from ...report.tables import BETTER, MISSING_TEXT, WORSE, best_two_css, format_mean_std, seed_summary

SCRATCH = "from scratch"
ROW_KEYS = ("model", "data")  # a table row: one network on one data set
# The parameters the chapter sets beside the published protocol: the protocol table's default list.
PROTOCOL_KEYS = protocol.PROTOCOL_KEYS


# --- labels -------------------------------------------------------------------------------


def setting_label(run: Mapping[str, Any]) -> str:
    """The input setting, with the number of images its statistics came from, or ``from scratch``.

    A run without pretrained weights is the from-scratch control whatever its
    input setting; the label says which setting it used when that is not ``finetune``.
    """
    setting = str(run.get("input_norm"))
    if str(run.get("pretrained", "none")) == "none":
        return SCRATCH if setting == "finetune" else f"{SCRATCH} ({setting})"
    images = run.get("stats_subset")
    if setting == "finetune" and images is not None and not pd.isna(images):
        return f"finetune, stats from {int(images)}"
    return setting


def add_labels(runs: pd.DataFrame) -> pd.DataFrame:
    """``runs`` with ``data`` (:func:`dataset_label`) and ``setting`` (:func:`setting_label`) columns added."""
    records = runs.to_dict("records")
    labelled = runs.assign(
        data=[dataset_label(record) for record in records],
        setting=[setting_label(record) for record in records],
    )
    labelled.attrs = dict(runs.attrs)
    return labelled


def setting_order(labels: pd.Series | list[str], first: tuple[str, ...] = ()) -> list[str]:
    """Labels in reading order: ``first`` as given, then finetune with the fewest images first, then the rest."""
    present = list(dict.fromkeys(labels))

    def key(label: str) -> tuple[int, int, str]:
        if label in first:
            return (0, first.index(label), "")
        if label.startswith("finetune, stats from "):
            return (1, int(label.rsplit(" ", 1)[1]), "")
        if label.startswith(SCRATCH):
            return (3, 0, label)
        return (2, 0, label)

    return sorted(present, key=key)


def largest_training_set(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs that fine-tune on the most images: ``train_subset`` unset (all), else its largest value."""
    if "train_subset" not in runs.columns or runs.empty:
        return runs
    subset = pd.to_numeric(runs["train_subset"], errors="coerce")
    keep = subset.isna() if subset.isna().any() else subset == subset.max()
    return runs[keep.to_numpy()]



# --- the profile's own pretraining run ------------------------------------------------------


def pretraining_run_id(runs: pd.DataFrame) -> str | None:
    """The id of the run the others started from (named in their ``pretrained`` path), if any."""
    if "pretrained" not in runs.columns:
        return None
    found = runs["pretrained"].astype(str).str.extract(protocol.PRETRAINED_RUN)["run"].dropna().unique()
    if len(found) > 1:
        raise ValueError(f"runs start from more than one pretraining run: {sorted(found)}")
    return str(found[0]) if len(found) else None


def _number(value: Any) -> float | None:
    return None if value is None or (isinstance(value, float) and pd.isna(value)) else float(value)


def pretraining_sentence(source: Mapping[str, Any] | None, data: str) -> str:
    """What every fine-tuning cell of a profile is, in one sentence built from its pretraining run's record.

    ``source`` is the pretraining run's row of :func:`normtest_lib.report.results.collect_runs`
    (None when the runs start from no pretraining run of their own); ``data``
    names the fine-tuning set.
    """
    if source is None:
        return f"These runs fine-tune on {data} and start from no pretraining run of this profile."
    # The summary's input size (the size actually trained at) wins over the parameter (None: native).
    size = _number(source.get("summary_input_size", source.get("input_size")))
    accuracy = [_number(source.get(key)) for key in ("best_val_acc", "test_acc_at_best_val")]
    measured = (
        f" (best validation accuracy {100 * accuracy[0]:.1f} %, test {100 * accuracy[1]:.1f} %)"
        if None not in accuracy
        else ""
    )
    size_text = f" at {int(size)} px" if size is not None else ""
    return (
        f"Read every cell below as {data} fine-tuned from a `{source['model']}` pretrained in this profile on "
        f"`{source['dataset']}`{size_text} for {int(source['epochs'])} epochs{measured}, not as an ImageNet "
        "network: the pretraining set's statistics play ImageNet's part in `pretrain`. Its weights are not "
        "committed; the profile rebuilds them, and each fine-tuning run records the SHA-256 of the file it started from."
    )



# --- the earlier work's table layouts, ours beside theirs -----------------------------------


def settings_summary(runs: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Mean, std and n over seeds of ``metric`` per (model, data, setting), mean and std in percent:
    the rows :func:`settings_table` lays out."""
    return seed_summary(runs, metric, (*ROW_KEYS, "setting"))


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

    ``ours`` is :func:`settings_summary`; ``published`` is
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
    (:func:`add_labels`); our difference is the mean
    paired difference over seeds with its 95 % interval.
    """
    text: dict[str, pd.DataFrame] = {}
    colours: dict[str, pd.DataFrame] = {}
    difference = "finetune − pretrain"
    if runs is not None and not runs.empty:
        pair = runs[runs["setting"].isin(["finetune", "pretrain"])]
        stats = settings_summary(pair, metric)
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

