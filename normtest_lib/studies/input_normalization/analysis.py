"""Study 1's runs in its own terms: their labels, the pretraining run, and the earlier work's table layouts.

A study-1 run is named by its parameters, not in a reader's words: a run with
``stats_subset: 10`` is "finetune, statistics from 10 images", one without
pretrained weights the from-scratch control (:func:`setting_label`; the data
set's label is the shared :func:`normtest_lib.report.labels.dataset_label`).
Tables and figures group by these labels so that every condition of the grid is
one column or one curve.

A profile may fine-tune from networks it pretrained itself rather than from an
ImageNet checkpoint, one or several (a grid's ``pretrain: {follow: [norm_layer]}``
pretrains one network per normalization layer): :func:`pretraining_run_ids`,
:func:`split_pretraining`, :func:`pretraining_sentences`. Each run is labelled with
the network it started from (:func:`add_sources`: the source's ``norm_layer``), and
every comparison of settings is made within one (source, model, data set) group
(:func:`comparison_keys`), never across sources or fine-tuning sets: two networks
pretrained differently are two experiments, not seeds of one.

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

from typing import Any, Iterable, Mapping, Sequence

import pandas as pd
from pandas.io.formats.style import Styler

from ...report.findings import and_list
from ...report import protocol
from ...report.converged import with_converged_column
from ...report.labels import dataset_label
from ...report.paired import format_difference, paired_differences, significant
from ...report.results import pretraining_run_ids
from ...report.tables import BETTER, MISSING_TEXT, WORSE, best_two_css, format_mean_std, seed_summary

SCRATCH = "from scratch"
ROW_KEYS = ("model", "data")  # a table row: one network on one data set
SOURCE = "source network"  # the column naming the profile's network a run started from (add_sources)
NO_SOURCE = "no pretraining run"  # SOURCE of a run that started from none of the profile's pretraining runs
SOURCE_KEY = "norm_layer"  # what tells one pretraining run of a profile from another (the grid follows it)
# The parameters the chapter sets beside the published protocol: the protocol table's default list.
PROTOCOL_KEYS = protocol.PROTOCOL_KEYS
# The labels this study's tables and figures use that are not a run parameter's value, each form once
# (<...> stands for a value), for the book's glossary; tests check that setting_label gives only these.
GLOSSARY = {
    "<input setting>": "a network fine-tuned from pretrained weights with that input setting (input_norm)",
    "finetune, stats from <n>": "finetune with the channel statistics estimated from n training images (stats_subset)",
    SCRATCH: "the control: the same network trained from random weights (pretrained: none), with finetune",
    f"{SCRATCH} (<input setting>)": "the from-scratch control with another input setting",
    SOURCE: "the column naming the network a run was fine-tuned from: its pretraining run's norm_layer",
    NO_SOURCE: "a run that started from none of the profile's pretraining runs",
}


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



# --- the profile's own pretraining runs ----------------------------------------------------


def pretraining_run_id(runs: pd.DataFrame) -> str | None:
    """The id of the one run the others started from, if any; ValueError when they start from several
    (:func:`pretraining_run_ids` lists them)."""
    found = pretraining_run_ids(runs)
    if len(found) > 1:
        raise ValueError(f"runs start from more than one pretraining run: {found}")
    return found[0] if found else None


def split_pretraining(runs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``runs`` as (the pretraining runs the others started from, every other run): a pretraining run
    is no fine-tuning cell, so it must never be counted, tabulated or paired as one."""
    if "run_id" not in runs.columns:
        return runs.iloc[:0], runs
    is_source = runs["run_id"].isin(pretraining_run_ids(runs)).to_numpy()
    return runs[is_source], runs[~is_source]


def _run_source(pretrained: Any) -> str | None:
    """The pretraining run id a ``pretrained`` path names, or None."""
    found = protocol.PRETRAINED_RUN.search(str(pretrained))
    return found.group("run") if found else None


def source_labels(runs: pd.DataFrame) -> dict[str, str]:
    """Each pretraining run's id -> the name its runs are grouped under: its ``norm_layer`` read from its row of
    ``runs``; its id where that row (or its norm layer) is not here, or where two sources share a norm layer."""
    ids = pretraining_run_ids(runs)
    if not ids:
        return {}
    rows = runs[runs["run_id"].isin(ids)].drop_duplicates("run_id").set_index("run_id")
    values = rows[SOURCE_KEY] if SOURCE_KEY in rows.columns else pd.Series(dtype=object)
    named = {run_id: str(values[run_id]) if run_id in values.index and pd.notna(values[run_id]) else run_id
             for run_id in ids}
    shared = {label for label in named.values() if list(named.values()).count(label) > 1}
    return {run_id: f"{label} ({run_id})" if label in shared else label for run_id, label in named.items()}


def add_sources(runs: pd.DataFrame, labels: Mapping[str, str] | None = None) -> pd.DataFrame:
    """``runs`` with a :data:`SOURCE` column: the label (:func:`source_labels`, or ``labels`` computed on a frame
    that holds the pretraining runs) of the pretraining run each started from.

    A run that started from none of them (the from-scratch control) takes the label of the source with its own
    ``norm_layer``, the network it is the control of; else :data:`NO_SOURCE`. A pretraining run is labelled as
    its own source.
    """
    labels = source_labels(runs) if labels is None else dict(labels)
    known = set(labels.values())

    def label(run: Mapping[str, Any]) -> str:
        source = _run_source(run.get("pretrained")) or (run.get("run_id") if run.get("run_id") in labels else None)
        if source is not None:
            return labels.get(source, source)
        own = str(run.get(SOURCE_KEY))
        return own if own in known else NO_SOURCE

    labelled = runs.assign(**{SOURCE: [label(record) for record in runs.to_dict("records")]})
    labelled.attrs = dict(runs.attrs)
    return labelled


def source_keys(runs: pd.DataFrame) -> list[str]:
    """``[SOURCE]`` where ``runs`` start from several pretraining runs, else ``[]``: the key that keeps their
    comparisons apart, absent where there is one source so that a one-source profile reads as before."""
    if len(pretraining_run_ids(runs)) < 2:
        return []
    if SOURCE not in runs.columns:
        raise ValueError(f"runs start from several pretraining runs {pretraining_run_ids(runs)}: "
                         "label them with add_sources before comparing them")
    return [SOURCE]


def comparison_keys(runs: pd.DataFrame) -> list[str]:
    """The groups within which settings are compared: (model, data), and the source before them where the runs
    start from several pretraining runs. Runs of different groups are never pooled as seeds of one cell."""
    return [*source_keys(runs), *ROW_KEYS]


def varying_keys(runs: pd.DataFrame) -> list[str]:
    """Those :func:`comparison_keys` that take more than one value in ``runs``: what a sentence or a figure must
    keep apart (an index level with one value only repeats itself)."""
    return [key for key in comparison_keys(runs) if key in runs.columns and runs[key].nunique(dropna=False) > 1]


def without_constant_levels(differences: pd.DataFrame, keep: str = "setting") -> pd.DataFrame:
    """``differences`` without the index levels that hold one value (``keep`` stays), so a sentence names a
    setting alone when there is one group and with its group where there are several."""
    constant = [name for name in differences.index.names
                if name != keep and differences.index.get_level_values(name).nunique() <= 1]
    return differences.droplevel(constant) if constant and len(constant) < differences.index.nlevels else differences


def network_rows(runs: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """``runs`` and the column to draw one panel row per network by: ``model`` with one source; with several, a
    ``network`` column naming model and source, so curves of differently pretrained networks never share a panel."""
    if not source_keys(runs):
        return runs, "model"
    return runs.assign(network=runs["model"].astype(str) + ", " + runs[SOURCE].astype(str)), "network"


def group_panels(runs: pd.DataFrame, by: str | None = None) -> tuple[pd.DataFrame, str | None]:
    """``runs`` and the column to draw one panel per value of ``by`` (None: one panel) within one comparison group.

    With one group that is ``by`` itself; with several (:func:`varying_keys`) a ``panel`` column names each run's
    group and its ``by`` value, each after its column ("source network none, train_images 500", what a figure
    titles the panel with), so a panel never pools runs of different sources or fine-tuning sets.
    """
    keys = varying_keys(runs)
    if not keys:
        return runs, by
    columns = [*keys, *([by] if by else [])]
    named = runs[columns].astype(str).apply(lambda values: values.name + " " + values)
    names = named.agg(", ".join, axis=1) if len(runs) else pd.Series(dtype=str)
    return runs.assign(panel=names), "panel"


def with_several_sizes(runs: pd.DataFrame, size: str = "train_images", within: Sequence[str] = ()) -> pd.DataFrame:
    """The runs of each comparison group (:func:`varying_keys` other than ``size``, and the ``within`` columns) that
    has more than one value of ``size``: a group measured at one size only has no curve against size to draw."""
    if runs.empty:
        return runs
    keys = [*(key for key in varying_keys(runs) if key != size), *within]
    if not keys:
        return runs if runs[size].nunique() > 1 else runs.iloc[0:0]
    several = runs.groupby(keys, dropna=False)[size].transform("nunique") > 1
    return runs[several.to_numpy()]


def _images(values: Iterable[Any]) -> str:
    return and_list(f"{int(value):,}" for value in sorted({int(value) for value in values}))


def small_data_design(by_size: pd.DataFrame, subsets: pd.DataFrame) -> str:
    """What the two small-data figures compare, in words, from the runs they draw: ``by_size`` (a
    ``train_images`` column) and ``subsets`` (``train_images`` and ``stats_images``, the images the
    ``finetune`` statistics came from)."""
    if by_size.empty:
        first = "This profile fine-tunes every data set at one size only, so the first figure has nothing to compare."
    else:
        data = and_list(sorted(set(by_size["data"].astype(str))))
        first = (
            f"The first figure fine-tunes on {_images(by_size['train_images'])} images ({data}) with the set's own "
            "statistics (from all of its images) and with the pretraining ones."
        )
    if subsets.empty:
        second = "No run of this profile estimates the `finetune` statistics from a subset of its images."
    else:
        sets = _images(subsets["train_images"])
        second = (
            f"The second keeps the fine-tuning set at {sets} images (one panel each) and estimates the `finetune` "
            f"statistics from {_images(subsets['stats_images'])} of them; the dashed line is `pretrain`'s mean."
        )
    return f"{first} {second}"


def _number(value: Any) -> float | None:
    return None if value is None or (isinstance(value, float) and pd.isna(value)) else float(value)


def _pretrained_network(source: Mapping[str, Any]) -> str:
    """``a `small` pretrained in this profile on `tiny_imagenet_200` at 32 px for 10 epochs (best validation
    accuracy 25.0 %, test 24.5 %; training accuracy 27.1 % at its last epoch, converged: ...)``: the source's
    record, as a phrase. Its training accuracy and verdict (``train_acc_final``, ``convergence``) are said where
    the run recorded them: a source still learning is a weaker source than its accuracy suggests."""
    # The summary's input size (the size actually trained at) wins over the parameter (None: native).
    size = _number(source.get("summary_input_size", source.get("input_size")))
    accuracy = [_number(source.get(key)) for key in ("best_val_acc", "test_acc_at_best_val")]
    trained = _number(source.get("train_acc_final"))
    verdict = source.get("convergence")
    fitted = "" if trained is None else f"; training accuracy {100 * trained:.1f} % at its last epoch"
    if isinstance(verdict, str) and verdict:
        fitted += f", {verdict}" if fitted else f"; {verdict}"
    measured = (
        f" (best validation accuracy {100 * accuracy[0]:.1f} %, test {100 * accuracy[1]:.1f} %{fitted})"
        if None not in accuracy
        else ""
    )
    size_text = f" at {int(size)} px" if size is not None else ""
    return (f"a `{source['model']}` pretrained in this profile on `{source['dataset']}`{size_text} for "
            f"{int(source['epochs'])} epochs{measured}")


def pretraining_sentence(source: Mapping[str, Any] | None, data: str) -> str:
    """What every fine-tuning cell of a profile is, in one sentence built from its pretraining run's record.

    ``source`` is the pretraining run's row of :func:`normtest_lib.report.results.collect_runs`
    (None when the runs start from no pretraining run of their own); ``data``
    names the fine-tuning set.
    """
    if source is None:
        return f"These runs fine-tune on {data} and start from no pretraining run of this profile."
    return (
        f"Read every cell below as {data} fine-tuned from {_pretrained_network(source)}, not as an ImageNet "
        "network: the pretraining set's statistics play ImageNet's part in `pretrain`. Its weights are not "
        "committed; the profile rebuilds them, and each fine-tuning run records the SHA-256 of the file it started from."
    )


def pretraining_sentences(pretraining: pd.DataFrame, finetuning: pd.DataFrame) -> str:
    """What the fine-tuning cells are: :func:`pretraining_sentence` where the runs start from at most one
    pretraining run; with several, one sentence per source (its norm layer, the sets fine-tuned from it, its
    record), then what they share. ``pretraining`` and ``finetuning`` are :func:`split_pretraining`'s frames."""
    ids = pretraining_run_ids(finetuning)
    if len(ids) < 2:
        source = pretraining.iloc[0].to_dict() if len(pretraining) else None
        return pretraining_sentence(source, dataset_label(finetuning.iloc[0]) if len(finetuning) else "?")
    labels = source_labels(pd.concat([pretraining, finetuning]))
    started = finetuning["pretrained"].astype(str).map(_run_source)
    sentences = []
    for run_id in ids:
        mine = finetuning[(started == run_id).to_numpy()]
        data = and_list(sorted({dataset_label(run) for run in mine.to_dict("records")}))
        rows = pretraining[pretraining["run_id"] == run_id]
        network = (_pretrained_network(rows.iloc[0].to_dict()) if len(rows)
                   else f"pretraining run `{run_id}`, whose record is not here")
        sentences.append(f"The `{labels[run_id]}` cells: {data} fine-tuned from {network}.")
    sentences.append(
        f"The cells of each of these {len(ids)} networks are compared only among themselves, never pooled across "
        "networks; none is an ImageNet network: the pretraining set's statistics play ImageNet's part in `pretrain`. "
        "Their weights are not committed; the profile rebuilds them, and each fine-tuning run records the SHA-256 "
        "of the file it started from."
    )
    return " ".join(sentences)


# --- the earlier work's table layouts, ours beside theirs -----------------------------------


def settings_summary(runs: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Mean, std and n over seeds of ``metric`` per (model, data, setting), mean and std in percent, and per
    source first where the runs start from several (:func:`comparison_keys`): the rows :func:`settings_table`
    lays out."""
    return seed_summary(runs, metric, (*comparison_keys(runs), "setting"))


def published_block(published: pd.Series, settings: Sequence[str]) -> pd.DataFrame:
    """Published values (index model, dataset, setting; fractions) as rows (model, data) x settings, in percent."""
    wide = (published * 100.0).unstack("setting")
    wide.index = wide.index.set_names(list(ROW_KEYS))
    return wide.reindex(columns=[s for s in settings if s in wide.columns])


def _matching(published: pd.DataFrame, rows: pd.Index) -> pd.DataFrame | None:
    """The published rows that our table also has (matched on model and data set where our rows are also split by
    source), or None when there are none."""
    extra = [name for name in rows.names if name not in ROW_KEYS]
    matched = published.reindex(rows.droplevel(extra) if extra else rows)
    matched.index = rows
    return None if matched.isna().all().all() else matched


def settings_table(
    ours: pd.DataFrame | None, published: pd.Series | None, settings: Sequence[str], digits: int = 1,
    runs: pd.DataFrame | None = None,
) -> Styler:
    """Rows (model, data); a block of setting columns for ours and one for the published values.

    ``ours`` is :func:`settings_summary`; ``published`` is
    :func:`normtest_lib.report.published.published_values`. Pass ``ours=None``
    to show the published table alone. ``runs`` (the runs ``ours`` summarizes) add a
    column of how many of each row's runs converged. Where ``ours`` is split by source its rows are too.
    """
    text, values = {}, {}
    row_keys = list(ROW_KEYS)
    if ours is not None and not ours.empty:
        row_keys = [name for name in ours.index.names if name != "setting"]
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
    table, css = with_converged_column(table, css, runs, row_keys)
    return table.style.apply(lambda _: css, axis=None)


def finetune_pretrain_table(
    runs: pd.DataFrame | None,
    published: pd.Series | None,
    metric: str = "test_acc_at_best_val",
    digits: int = 1,
) -> Styler:
    """``finetune`` against ``pretrain`` per (model, data): both accuracies and their difference, coloured.

    ``runs`` carry ``model``, ``data``, ``setting`` and ``seed`` columns
    (:func:`add_labels`), and :data:`SOURCE` where they start from several pretraining runs (a row per
    source then); our difference is the mean paired difference over seeds with its 95 % interval.
    """
    text: dict[str, pd.DataFrame] = {}
    colours: dict[str, pd.DataFrame] = {}
    difference = "finetune − pretrain"
    if runs is not None and not runs.empty:
        pair = runs[runs["setting"].isin(["finetune", "pretrain"])]
        stats = settings_summary(pair, metric)
        keys = comparison_keys(pair)
        cells = stats.apply(lambda row: format_mean_std(row["mean"], row["std"], row["n"], digits), axis=1)
        ours = cells.unstack("setting").reindex(columns=["finetune", "pretrain"])
        paired = paired_differences(pair, metric, "setting", "pretrain", keys).xs("finetune", level="setting")
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

