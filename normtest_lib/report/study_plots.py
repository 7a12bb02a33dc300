"""Figures for the study chapters: curves over a grid of settings, accuracy against data size.

Same conventions as :mod:`normtest_lib.report.plots`: each function returns a
matplotlib Figure made through pyplot, shows nothing and never selects a
backend; seaborn is imported inside the functions (it is slow to import).
Accuracy fractions are drawn in percent.
"""

from __future__ import annotations

from typing import Any, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import NullLocator

from .colours import palette_for

BAND_ALPHA = 0.2
BASELINE_COLOUR = "0.3"


def _require(frame: pd.DataFrame, columns: Sequence[str | None], name: str) -> None:
    missing = [c for c in columns if c is not None and c not in frame.columns]
    if missing:
        raise KeyError(f"{name} have no column(s) {missing}; available: {list(frame.columns)}")


def _ordered(values: Any) -> list:
    """Distinct values, sorted when they compare, else in order of appearance."""
    unique = list(pd.unique(pd.Series(values)))
    try:
        return sorted(unique)
    except TypeError:
        return unique


def is_accuracy(metric: str) -> bool:
    return bool({"acc", "accuracy"} & set(metric.lower().split("_")))


def metric_label(metric: str) -> str:
    """``test_acc`` -> ``test accuracy (%)``; other metrics lose their underscores."""
    words = ["accuracy" if w == "acc" else w for w in metric.split("_")]
    return " ".join(words) + (" (%)" if is_accuracy(metric) else "")


def _as_percent(frame: pd.DataFrame, metric: str) -> pd.DataFrame:
    """A copy with an accuracy ``metric`` in percent when its values are fractions (all <= 1)."""
    frame = frame.copy()
    if is_accuracy(metric) and frame[metric].abs().max() <= 1:
        frame[metric] = frame[metric] * 100
    return frame


def _palette(hue_order: Sequence) -> dict:
    """The book's colour for each value (:mod:`normtest_lib.report.colours`), in ``hue_order``."""
    return palette_for(list(hue_order))


def _figure_legend(fig: Figure, palette: dict, title: str, marker: str = "", extra: Sequence[tuple[Line2D, str]] = ()) -> None:
    handles = [Line2D([], [], color=colour, marker=marker, markersize=4) for colour in palette.values()]
    handles += [handle for handle, _ in extra]
    fig.legend(handles, [str(value) for value in palette] + [label for _, label in extra], title=title, loc="outside right upper")


def history_grid(
    histories: pd.DataFrame,
    metric: str = "test_acc",
    row: str = "model",
    col: str = "dataset",
    hue: str = "input_norm",
    x: str = "epoch",
    hue_order: Sequence[str] | None = None,
) -> Figure:
    """A grid of panels (a row per value of ``row``, a column per value of ``col``) of ``metric`` curves.

    Each panel holds the mean curve of each ``hue`` group with seaborn's
    bootstrapped 95 % confidence band over the runs (seeds) sharing a panel,
    group and ``x`` (``histories`` from
    :func:`normtest_lib.report.results.collect_histories`, filtered to the runs
    compared). Rows whose ``metric`` is NaN (epochs a run did not test) are
    left out. Panels share the y axis; one legend serves the whole figure.
    """
    _require(histories, [x, metric, row, col, hue], "histories")
    data = histories.dropna(subset=[metric])
    if data.empty:
        raise ValueError(f"nothing to plot: every {metric!r} value is missing")
    data = _as_percent(data, metric)
    import seaborn as sns

    rows, cols = _ordered(data[row]), _ordered(data[col])
    palette = _palette(list(hue_order) if hue_order is not None else _ordered(data[hue]))
    with sns.axes_style("whitegrid"):
        fig, axes = plt.subplots(
            len(rows), len(cols), figsize=(3.6 * len(cols) + 1.6, 2.9 * len(rows)),
            sharex=True, sharey=True, squeeze=False, layout="constrained",
        )  # fmt: skip
        for i, row_value in enumerate(rows):
            for j, col_value in enumerate(cols):
                ax = axes[i][j]
                panel = data[(data[row] == row_value) & (data[col] == col_value) & data[hue].isin(list(palette))]
                if panel.empty:
                    ax.text(0.5, 0.5, "no runs", transform=ax.transAxes, ha="center", va="center", color="0.5")
                else:
                    sns.lineplot(
                        data=panel, x=x, y=metric, hue=hue, hue_order=list(palette), palette=palette,
                        errorbar=("ci", 95), seed=0, legend=False, ax=ax,
                    )  # fmt: skip
                # A dimension with one value repeats itself in every title; a single panel keeps both.
                both = ((row, row_value, len(rows)), (col, col_value, len(cols)))
                parts = [f"{name} = {value}" for name, value, n in both if n > 1 or len(rows) * len(cols) == 1]
                ax.set_title(" | ".join(parts), fontsize="medium")
                ax.set_xlabel(x)
                ax.set_ylabel(metric_label(metric))
                ax.label_outer()
        _figure_legend(fig, palette, hue)
    return fig


def t_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """Mean and half-width of the Student-t confidence interval of the mean (0 for one value)."""
    from scipy import stats

    values = np.asarray(values, dtype=float)
    mean = float(values.mean())
    if len(values) < 2:
        return mean, 0.0
    sem = values.std(ddof=1) / np.sqrt(len(values))
    return mean, float(stats.t.ppf(0.5 + confidence / 2, len(values) - 1) * sem)


def _tick_label(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def accuracy_vs_size(
    points: pd.DataFrame,
    x: str,
    y: str,
    hue: str,
    *,
    col: str | None = None,
    baseline: str | None = None,
    hue_order: Sequence[str] | None = None,
    xlabel: str | None = None,
    ylabel: str | None = None,
    baseline_label: str | None = None,
) -> Figure:
    """Accuracy ``y`` against a size ``x`` (log axis), a curve per ``hue`` value, a panel per ``col`` value.

    ``points`` has one row per run. Each curve is the mean over the runs at
    each ``x`` with seaborn's bootstrapped 95 % confidence band; the x ticks
    are the ``x`` values present. The ``baseline`` hue value (whose ``x`` may
    be missing: it does not depend on it) is drawn instead as a horizontal
    line at the mean of its runs in the panel, shaded by the 95 % t-interval
    of that mean, and named ``baseline_label`` (default the value) in the legend.
    """
    _require(points, [x, y, hue, col], "points")
    data = points.dropna(subset=[y])
    is_base = (data[hue] == baseline) if baseline is not None else pd.Series(False, index=data.index)
    if baseline is not None and not is_base.any():
        raise ValueError(f"baseline {baseline!r} is not a {hue} value with a {y}; values: {_ordered(data[hue])}")
    curves = data[~is_base].dropna(subset=[x])
    curves = curves.assign(**{x: pd.to_numeric(curves[x])})
    if (curves[x] <= 0).any():
        raise ValueError(f"{x} must be positive on a log axis; got {sorted(curves[x].unique())}")
    data = pd.concat([curves, data[is_base]])
    if curves.empty and not is_base.any():
        raise ValueError(f"nothing to plot: no run has both {x} and {y}")
    data = _as_percent(data, y)
    import seaborn as sns

    order = list(hue_order) if hue_order is not None else _ordered(data[hue])
    palette = _palette([value for value in order if value != baseline])
    panels = _ordered(data[col]) if col is not None else [None]
    with sns.axes_style("whitegrid"):
        fig, axes = plt.subplots(
            1, len(panels), figsize=(4.2 * len(panels) + 1.8, 3.4), sharey=False, squeeze=False, layout="constrained"
        )
        for ax, panel_value in zip(axes[0], panels):
            panel = data if col is None else data[data[col] == panel_value]
            drawn = panel[panel[hue].isin(list(palette)) & panel[x].notna()]
            if not drawn.empty:
                sns.lineplot(
                    data=drawn, x=x, y=y, hue=hue, hue_order=list(palette), palette=palette, marker="o",
                    errorbar=("ci", 95), seed=0, legend=False, ax=ax,
                )  # fmt: skip
                ax.set_xscale("log")
                ticks = _ordered(drawn[x])
                ax.set_xticks(ticks, labels=[_tick_label(t) for t in ticks])
                ax.xaxis.set_minor_locator(NullLocator())
            base = panel.loc[panel[hue] == baseline, y] if baseline is not None else pd.Series(dtype=float)
            if not base.empty:
                mean, half = t_interval(base)
                ax.axhline(mean, color=BASELINE_COLOUR, linestyle="--", linewidth=1.2)
                ax.axhspan(mean - half, mean + half, color=BASELINE_COLOUR, alpha=BAND_ALPHA, linewidth=0)
            if col is not None:
                ax.set_title(f"{col} = {panel_value}", fontsize="medium")
            ax.set_xlabel(xlabel or x)
            ax.set_ylabel(ylabel or metric_label(y))
        dashed = Line2D([], [], color=BASELINE_COLOUR, linestyle="--")
        extra = [] if baseline is None else [(dashed, baseline_label or str(baseline))]
        _figure_legend(fig, palette, hue, marker="o", extra=extra)
    return fig
