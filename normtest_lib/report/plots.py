"""The figures every chapter shares, and the conventions every figure of the book follows.

Each function returns a matplotlib Figure and shows nothing. Figures are made
through pyplot so that the backend the environment chose (the inline backend in
a notebook, Agg headless) renders them; no figure selects a backend itself,
because a notebook that forces one loses its PNG outputs (TOOLCHAIN.md). A
notebook glues a figure with ``glue(key, fig, display=False)`` and then closes
it. Accuracy fractions are drawn in percent; seaborn is imported inside the
functions (it is slow to import); colours come from
:mod:`normtest_lib.report.colours`. A study's own figures live in its package
(``normtest_lib.studies.<study>.figures``) and build on the helpers here.
"""

from __future__ import annotations

from typing import Any, Collection, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from .colours import palette_for

BAND_ALPHA = 0.2
BASELINE_COLOUR = "0.3"
# Said in the x label of a logarithmic axis: ticks 8, 32, 128 (or 10, 100, 1000) equally spaced read as a linear axis otherwise.
LOG_AXIS = "log scale"


# --- helpers for every figure ------------------------------------------------------


def require_columns(frame: pd.DataFrame, columns: Sequence[str | None], name: str) -> None:
    """KeyError naming the ``columns`` (None entries ignored) that ``frame`` (called ``name``) lacks."""
    missing = [c for c in columns if c is not None and c not in frame.columns]
    if missing:
        raise KeyError(f"{name} have no column(s) {missing}; available: {list(frame.columns)}")


def ordered(values: Any) -> list:
    """Distinct values, sorted when they compare, else in order of appearance."""
    unique = list(pd.unique(pd.Series(values)))
    try:
        return sorted(unique)
    except TypeError:
        return unique


def is_accuracy(metric: str) -> bool:
    """Whether ``metric`` names an accuracy (``test_acc``, ``val_accuracy``): drawn in percent."""
    return bool({"acc", "accuracy"} & set(metric.lower().split("_")))


def metric_name(metric: str) -> str:
    """``test_acc`` -> ``test accuracy``: a metric in words, without its unit (a legend entry)."""
    return " ".join("accuracy" if w == "acc" else w for w in metric.split("_"))


def metric_label(metric: str) -> str:
    """``test_acc`` -> ``test accuracy (%)``; other metrics lose their underscores."""
    return metric_name(metric) + (" (%)" if is_accuracy(metric) else "")


def shared_metric_label(metrics: Sequence[str]) -> str:
    """One axis label for several metrics on one axis: ``accuracy (%)`` when all are accuracies, else their labels."""
    if len(metrics) > 1 and all(is_accuracy(metric) for metric in metrics):
        return "accuracy (%)"
    return " / ".join(metric_label(metric) for metric in metrics)


def as_percent(frame: pd.DataFrame, metric: str) -> pd.DataFrame:
    """A copy with an accuracy ``metric`` in percent when its values are fractions (all <= 1)."""
    frame = frame.copy()
    if is_accuracy(metric) and frame[metric].abs().max() <= 1:
        frame[metric] = frame[metric] * 100
    return frame


def tick_label(value: float) -> str:
    """A tick's text: ``8`` for a whole number, else the shortest float (``0.5``)."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def figure_legend(fig: Figure, palette: dict, title: str, marker: str | Mapping[Any, str] = "",
                  extra: Sequence[tuple[Line2D, str]] = ()) -> None:
    """One legend for the whole figure, outside on the right: a line per ``palette`` entry, then ``extra``.

    ``marker`` is one marker for every entry, or one per ``palette`` key where each setting has its own shape.
    """
    markers = marker if isinstance(marker, Mapping) else {name: marker for name in palette}
    handles = [Line2D([], [], color=colour, marker=markers[name], markersize=4) for name, colour in palette.items()]
    handles += [handle for handle, _ in extra]
    fig.legend(handles, [str(value) for value in palette] + [label for _, label in extra], title=title, loc="outside right upper")


def t_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """Mean and half-width of the Student-t confidence interval of the mean (0 for one value)."""
    from scipy import stats

    values = np.asarray(values, dtype=float)
    mean = float(values.mean())
    if len(values) < 2:
        return mean, 0.0
    sem = values.std(ddof=1) / np.sqrt(len(values))
    return mean, float(stats.t.ppf(0.5 + confidence / 2, len(values) - 1) * sem)


# --- figures of runs -------------------------------------------------------------------


def training_curves(
    histories: pd.DataFrame,
    metrics: Sequence[str] = ("train_acc", "val_acc"),
    hue: str = "input_norm",
    x: str = "epoch",
    errorbar: tuple[str, int] | str | None = ("ci", 95),
    hue_order: Sequence[str] | None = None,
) -> Figure:
    """One panel per metric: the mean curve of each ``hue`` group with a band over seeds, one legend on the right.

    Every row sharing a ``hue`` value and an ``x`` value is one observation of
    that point (normally one per seed), so filter ``histories`` (from
    :func:`normtest_lib.report.results.collect_histories`) to the runs being compared
    first. The band is seaborn's bootstrapped 95 % confidence interval of the mean.
    """
    missing = [c for c in [x, hue, *metrics] if c not in histories.columns]
    if missing:
        raise KeyError(f"histories have no column(s) {missing}; available: {list(histories.columns)}")
    import seaborn as sns  # imported here: it costs over a second and most callers need none of it

    palette = palette_for(list(hue_order) if hue_order is not None else list(dict.fromkeys(histories[hue])))
    with sns.axes_style("whitegrid"):
        fig, axes = plt.subplots(1, len(metrics), figsize=(4.5 * len(metrics), 3.4), squeeze=False, layout="constrained")
        for ax, metric in zip(axes[0], metrics):
            sns.lineplot(data=as_percent(histories, metric), x=x, y=metric, hue=hue, hue_order=list(palette), palette=palette,
                         errorbar=errorbar, ax=ax, seed=0, legend=False)  # fmt: skip
            ax.set_title(metric_label(metric))
            ax.set_ylabel(metric_label(metric))
        figure_legend(fig, palette, hue)  # outside the panels: inside, it hides the curves it names
    return fig


def run_curves(history: pd.DataFrame, best_epoch: int | None = None) -> Figure:
    """One run's loss and accuracy per epoch on its train, val and test splits.

    ``history`` is the run's ``history.csv``; splits whose column is missing or
    empty (no validation split) are left out. A dashed line marks
    ``best_epoch``, the epoch selected on validation accuracy.
    """
    if "epoch" not in history.columns:
        raise KeyError(f"history has no epoch column; available: {list(history.columns)}")
    # Plain matplotlib: this figure is drawn once per run, where seaborn's import would be
    # a large share of a short run's time.
    with plt.style.context("seaborn-v0_8-whitegrid"):
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), layout="constrained")
        for ax, quantity in zip(axes, ("loss", "acc")):
            for split in ("train", "val", "test"):
                column = f"{split}_{quantity}"
                if column in history.columns and history[column].notna().any():
                    ax.plot(history["epoch"], history[column], marker="o", markersize=3, label=split)
            if best_epoch is not None:
                ax.axvline(best_epoch, color="0.4", linestyle="--", linewidth=1, label="best val")
            ax.set_title("accuracy" if quantity == "acc" else quantity)
            ax.set_ylabel("accuracy" if quantity == "acc" else quantity)
            ax.legend()
    return fig


def history_grid(
    histories: pd.DataFrame,
    metric: str = "test_acc",
    row: str = "model",
    col: str = "dataset",
    hue: str = "input_norm",
    x: str = "epoch",
    hue_order: Sequence[str] | None = None,
    dashed_metric: str | None = None,
) -> Figure:
    """A grid of panels (a row per value of ``row``, a column per value of ``col``) of ``metric`` curves.

    Each panel holds the mean curve of each ``hue`` group with seaborn's
    bootstrapped 95 % confidence band over the runs (seeds) sharing a panel,
    group and ``x`` (``histories`` from
    :func:`normtest_lib.report.results.collect_histories`, filtered to the runs
    compared). Rows whose ``metric`` is NaN (epochs a run did not test) are
    left out. Panels share the y axis; one legend serves the whole figure.

    ``dashed_metric`` (e.g. ``train_acc`` beside ``test_acc``) adds a dashed curve of that metric per group, in
    the group's colour, so that a reader can judge from one panel whether the runs had stopped learning; the
    legend then names each line style.
    """
    require_columns(histories, [x, metric, row, col, hue, dashed_metric], "histories")
    data = histories.dropna(subset=[metric])
    if data.empty:
        raise ValueError(f"nothing to plot: every {metric!r} value is missing")
    data = as_percent(data, metric)
    # (metric, its rows, line style): a run may record the dashed metric on epochs it did not test, so each
    # metric keeps its own rows.
    curves = [(metric, data, "-")]
    if dashed_metric is not None:
        curves.append((dashed_metric, as_percent(histories.dropna(subset=[dashed_metric]), dashed_metric), "--"))
    import seaborn as sns

    rows, cols = ordered(data[row]), ordered(data[col])
    scale = 1.0 if dashed_metric is None else 1.3  # twice the curves in a panel need more room to be told apart
    whole_steps = bool((pd.to_numeric(data[x]) % 1 == 0).all())
    palette = palette_for(list(hue_order) if hue_order is not None else ordered(data[hue]))
    with sns.axes_style("whitegrid"):
        fig, axes = plt.subplots(
            len(rows), len(cols), figsize=(3.6 * scale * len(cols) + 1.6, 2.9 * scale * len(rows)),
            sharex=True, sharey=True, squeeze=False, layout="constrained",
        )  # fmt: skip
        for i, row_value in enumerate(rows):
            for j, col_value in enumerate(cols):
                ax = axes[i][j]
                drawn = False
                for name, rows_of_metric, linestyle in curves:
                    in_panel = (rows_of_metric[row] == row_value) & (rows_of_metric[col] == col_value)
                    panel = rows_of_metric[in_panel & rows_of_metric[hue].isin(list(palette))]
                    if not panel.empty:
                        sns.lineplot(
                            data=panel, x=x, y=name, hue=hue, hue_order=list(palette), palette=palette,
                            errorbar=("ci", 95), seed=0, legend=False, ax=ax, linestyle=linestyle,
                        )  # fmt: skip
                        drawn = True
                if not drawn:
                    ax.text(0.5, 0.5, "no runs", transform=ax.transAxes, ha="center", va="center", color="0.5")
                # A dimension with one value repeats itself in every title; a single panel keeps both.
                both = ((row, row_value, len(rows)), (col, col_value, len(cols)))
                parts = [f"{name} = {value}" for name, value, n in both if n > 1 or len(rows) * len(cols) == 1]
                ax.set_title(" | ".join(parts), fontsize="medium")
                ax.set_xlabel(x)
                if whole_steps:
                    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # no epoch 1.5 on a wide panel
                ax.set_ylabel(shared_metric_label([name for name, _, _ in curves]))
                ax.label_outer()
        # Black: the key to the line styles must not read as one more setting (from scratch is grey).
        styles = [(Line2D([], [], color="black", linestyle=linestyle), metric_name(name))
                  for name, _, linestyle in curves] if dashed_metric is not None else []
        figure_legend(fig, palette, hue, extra=styles)
    return fig


def difference_forest(differences: pd.DataFrame, compare: str, baseline: str, *, title: str,
                      unit: str = "points", still_learning: Collection[Any] = ()) -> Figure:
    """Each setting's paired difference to ``baseline`` as a dot with its 95 % interval, one row each.

    ``differences`` is :func:`normtest_lib.report.paired.paired_differences`' frame whose index
    ends in the ``compare`` level; a row without an interval (one seed) is a dot alone. The
    vertical line at 0 is the baseline: an interval that crosses it is within the seed-to-seed spread.
    Index levels before ``compare`` (a comparison group: a source network, a data set) give one panel
    each, titled with the group's values, on a shared axis; a setting has one colour in every panel.
    Rows named in ``still_learning`` (settings whose runs had not converged: the ``compare`` value, or the
    row's whole index key where there are groups) get a hollow dot and say so in their label: their
    difference is learning speed, not a final accuracy.
    """
    if differences.empty:
        raise ValueError(f"no paired differences to {baseline!r} to draw")
    groups = [name for name in differences.index.names if name != compare]
    panels = list(differences.groupby(level=groups, sort=False)) if groups else [((), differences)]
    colours = palette_for([str(name) for name in dict.fromkeys(differences.index.get_level_values(compare))])
    heights = [len(rows) + (0.9 if groups else 0) for _, rows in panels]
    fig, axes = plt.subplots(len(panels), 1, sharex=True, squeeze=False, layout="constrained",
                             figsize=(6.4, 0.42 * sum(heights) + 1.2), gridspec_kw={"height_ratios": heights})
    for ax, (group, rows) in zip(axes[:, 0], panels):
        labels = []
        for row, (key, values) in enumerate(rows.iterrows()):
            name = str(key[-1] if isinstance(key, tuple) else key)
            hollow = (key if groups else name) in still_learning
            colour = colours[name]
            if not pd.isna(values["ci_low"]):
                ax.plot([values["ci_low"], values["ci_high"]], [row, row], color=colour, linewidth=2.5)
            ax.plot(values["mean"], row, "o", color=colour, markersize=7,
                    markerfacecolor="white" if hollow else colour, markeredgewidth=2 if hollow else 1)
            labels.append(f"{name} (n={int(values['n'])}{', still learning' if hollow else ''})")
        ax.axvline(0, color="0.3", linewidth=1)
        ax.set_yticks(range(len(labels)), labels)
        ax.set_ylim(len(labels) - 0.5, -0.5)
        ax.grid(axis="x", alpha=0.4)
        if groups:
            values = group if isinstance(group, tuple) else (group,)
            ax.set_title(", ".join(f"{level} {value}" for level, value in zip(groups, values)), fontsize="medium",
                         loc="left")
    axes[-1, 0].set_xlabel(f"test accuracy minus {baseline}'s, {unit} (mean over seeds, 95 % interval)")
    if groups:
        fig.suptitle(title)
    else:
        axes[0, 0].set_title(title)
    return fig


# --- when there is nothing to draw -------------------------------------------------------


def message_figure(message: str) -> Figure:
    """A small figure that only says ``message``: what a chapter glues when the runs behind a figure are missing.

    A ``{glue:figure}`` directive needs its key in every build; saying why the
    figure is empty keeps the page honest and the build free of warnings.
    """
    fig, ax = plt.subplots(figsize=(6, 1.2), layout="constrained")
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True)
    ax.set_axis_off()
    return fig
