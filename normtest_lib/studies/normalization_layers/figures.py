"""Study 2's figures: probes over training, layer statistics, batch size.

Same conventions as :mod:`normtest_lib.report.plots`, whose helpers they use: each function returns
a matplotlib Figure made through pyplot, shows nothing and never selects a
backend; seaborn is imported inside the functions. ``probes`` is the long frame of
:func:`normtest_lib.report.results.collect_probes` (a run's columns, then epoch,
probe, name, value), filtered to the runs compared; bands are seaborn's
bootstrapped 95 % confidence interval of the mean over the runs (seeds) sharing
a line and an x value.
"""

from __future__ import annotations

from typing import Sequence

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import NullLocator

from ...report.colours import palette_for
from ...report.plots import (
    BASELINE_COLOUR, LOG_AXIS, as_percent, figure_legend, metric_label, ordered, require_columns, t_interval, tick_label,
)  # fmt: skip
from ...report.results import PROBE_COLUMNS

PERCENTILES = ("p01", "p20", "p80", "p99")
GATE_STATS = ("mean", "min", "max")
GATE_ONE_LABEL = "rho = 1 (batch norm only)"


def _probe_rows(probes: pd.DataFrame, probe: str, columns: Sequence[str | None] = ()) -> pd.DataFrame:
    """The rows of ``probe`` with a value; KeyError for missing columns, ValueError when none are left."""
    require_columns(probes, [*PROBE_COLUMNS, *columns], "probes")
    rows = probes[probes["probe"] == probe].dropna(subset=["value"])
    if rows.empty:
        raise ValueError(f"nothing to plot: no {probe!r} probe rows; probes present: {ordered(probes['probe'].dropna())}")
    return rows


def _split_names(rows: pd.DataFrame) -> pd.DataFrame:
    """``<module path>/<stat>`` names split into ``layer`` and ``stat`` columns (paths keep their order)."""
    parts = rows["name"].astype(str).str.rsplit("/", n=1, expand=True)
    if parts.shape[1] < 2 or parts[1].isna().any():
        raise ValueError(f"probe names must read '<module path>/<stat>'; got {sorted(rows['name'].unique())[:5]}")
    return rows.assign(layer=parts[0], stat=parts[1])


def _run_index(rows: pd.DataFrame) -> pd.Series:
    """An integer per run: the rows sharing every column but the probe's own (epoch, probe, name, value)."""
    keys = [c for c in rows.columns if c not in PROBE_COLUMNS]
    if not keys:
        return pd.Series(0, index=rows.index)
    return rows.groupby(keys, dropna=False, sort=False).ngroup()


def feature_evolution(probes: pd.DataFrame, hue: str = "norm_layer", hue_order: Sequence[str] | None = None) -> Figure:
    """The ``features`` probe: a panel per percentile of the pooled features (p01, p20, p80, p99).

    Each panel draws the value against the epoch, a line per ``hue`` value
    with its 95 % band over seeds. Rows of other probes are ignored.
    """
    rows = _probe_rows(probes, "features", [hue])
    import seaborn as sns  # imported here: it costs over a second to import

    palette = palette_for(list(hue_order) if hue_order is not None else ordered(rows[hue]))
    rows = rows[rows[hue].isin(list(palette))]
    with sns.axes_style("whitegrid"):
        fig, axes = plt.subplots(
            1, len(PERCENTILES), figsize=(3.2 * len(PERCENTILES) + 1.6, 3.0), sharex=True, squeeze=False, layout="constrained"
        )
        for ax, percentile in zip(axes[0], PERCENTILES):
            panel = rows[rows["name"] == percentile]
            if panel.empty:
                ax.text(0.5, 0.5, "no runs", transform=ax.transAxes, ha="center", va="center", color="0.5")
            else:
                sns.lineplot(
                    data=panel, x="epoch", y="value", hue=hue, hue_order=list(palette), palette=palette,
                    errorbar=("ci", 95), seed=0, legend=False, ax=ax,
                )  # fmt: skip
            ax.set_title(percentile)
            ax.set_xlabel("epoch")
            ax.set_ylabel("pooled feature value" if ax is axes[0][0] else "")
        figure_legend(fig, palette, hue)
    return fig


def layer_output_stats(
    probes: pd.DataFrame, epoch: int | None = None, hue: str = "norm_layer", hue_order: Sequence[str] | None = None
) -> Figure:
    """The ``layer_stats`` probe at one epoch: each normalization layer's output mean and std.

    Two panels (mean above, std below). x is the layer's position in module
    order within its run (1..L, the order its names first appear), labelled
    with the module paths of the first run having that position; a line per
    ``hue`` value is the mean over seeds with its 95 % band. ``epoch`` None
    takes each run's last epoch.
    """
    rows = _probe_rows(probes, "layer_stats", [hue])
    rows = _split_names(rows.assign(_run=_run_index(rows)))
    if epoch is None:
        rows = rows[rows["epoch"] == rows.groupby("_run")["epoch"].transform("max")]
    elif not (rows["epoch"] == epoch).any():
        raise ValueError(f"nothing to plot: no 'layer_stats' rows at epoch {epoch}; epochs: {sorted(rows['epoch'].unique().tolist())}")
    else:
        rows = rows[rows["epoch"] == epoch]
    rows = rows.assign(position=rows.groupby("_run")["layer"].transform(lambda s: pd.factorize(s)[0] + 1))
    labels = rows.drop_duplicates("position").sort_values("position")
    import seaborn as sns

    palette = palette_for(list(hue_order) if hue_order is not None else ordered(rows[hue]))
    rows = rows[rows[hue].isin(list(palette))]
    when = "last epoch" if epoch is None else f"epoch {epoch}"
    with sns.axes_style("whitegrid"):
        fig, axes = plt.subplots(2, 1, figsize=(max(6.0, 0.32 * len(labels) + 2.5), 5.6), sharex=True, layout="constrained")
        for ax, stat in zip(axes, ("mean", "std")):
            panel = rows[rows["stat"] == stat]
            if not panel.empty:
                sns.lineplot(
                    data=panel, x="position", y="value", hue=hue, hue_order=list(palette), palette=palette, marker="o",
                    markersize=4, errorbar=("ci", 95), seed=0, legend=False, ax=ax,
                )  # fmt: skip
            ax.set_title(f"output {stat} ({when})", fontsize="medium")
            ax.set_ylabel(f"output {stat}")
            ax.set_xlabel("normalization layer (module order)")
        axes[1].set_xticks(labels["position"].tolist(), labels=labels["layer"].tolist(), rotation=90, fontsize="small")
        axes[1].xaxis.set_minor_locator(NullLocator())
        figure_legend(fig, palette, hue, marker="o")
    return fig


def gate_over_training(probes: pd.DataFrame, stat: str = "mean") -> Figure:
    """The ``bin_gate`` probe: every BIN layer's gate rho over training, and where each ends.

    Left, a heat map: a row per BIN layer in module order, a column per epoch, its colour ``stat`` of rho
    over the layer's channels, the mean over the runs (seeds); 1 is pure batch norm, 0 pure instance norm.
    Right, on the same rows, the last epoch: ``stat`` as a dot with its 95 % Student-t interval over the
    runs, and (unless ``stat`` is ``min``) the channels' minimum as a hollow dot; a dotted line marks
    rho = 1. Fifteen layers read as rows of one picture where fifteen lines in one panel did not.
    """
    if stat not in GATE_STATS:
        raise ValueError(f"stat must be one of {list(GATE_STATS)}; got {stat!r}")
    rows = _split_names(_probe_rows(probes, "bin_gate"))
    if not (rows["stat"] == stat).any():
        raise ValueError(f"nothing to plot: no 'bin_gate' {stat!r} rows; stats present: {ordered(rows['stat'])}")
    rows = rows.assign(_run=_run_index(rows))
    layers = list(pd.unique(rows["layer"]))
    chosen = rows[rows["stat"] == stat]
    grid = chosen.pivot_table(index="layer", columns="epoch", values="value", aggfunc="mean").reindex(layers)
    last = rows[rows["epoch"] == rows.groupby("_run")["epoch"].transform("max")]
    with plt.style.context("seaborn-v0_8-whitegrid"):
        fig, (heat, ends) = plt.subplots(
            1, 2, figsize=(10.0, 0.3 * len(layers) + 2.4), sharey=True, width_ratios=(3, 1), layout="constrained"
        )
        epochs = grid.columns.to_numpy(dtype=float)
        image = heat.imshow(
            grid.to_numpy(dtype=float), aspect="auto", cmap="viridis", vmin=0.0, vmax=1.0, interpolation="nearest",
            extent=(epochs.min() - 0.5, epochs.max() + 0.5, len(layers) - 0.5, -0.5),
        )  # fmt: skip
        heat.grid(False)
        heat.set_yticks(range(len(layers)), labels=layers, fontsize="small")
        heat.set_xlabel("epoch")
        heat.set_title(f"gate rho ({stat} over channels, mean over runs)", fontsize="medium")
        fig.colorbar(image, ax=heat, location="bottom", pad=0.02, fraction=0.05, aspect=40,
                     label="rho: 1 batch norm, 0 instance norm")
        for position, layer in enumerate(layers):
            mean, half = t_interval(last.loc[(last["layer"] == layer) & (last["stat"] == stat), "value"])
            ends.errorbar(mean, position, xerr=half, fmt="o", color=BASELINE_COLOUR, markersize=5, capsize=2)
            if stat != "min" and ((last["layer"] == layer) & (last["stat"] == "min")).any():
                lowest = last.loc[(last["layer"] == layer) & (last["stat"] == "min"), "value"].mean()
                ends.plot(lowest, position, "o", color=BASELINE_COLOUR, markerfacecolor="white", markersize=5)
        ends.axvline(1.0, color=BASELINE_COLOUR, linestyle=":", linewidth=1.2)
        ends.set_xlim(-0.05, 1.05)
        ends.set_xlabel("rho at the last epoch")
        ends.set_title("last epoch", fontsize="medium")
        extra = [(Line2D([], [], color=BASELINE_COLOUR, marker="o", linestyle=""), f"{stat} over channels (95 % interval)")]
        if stat != "min" and (rows["stat"] == "min").any():
            extra.append((Line2D([], [], color=BASELINE_COLOUR, marker="o", markerfacecolor="white", linestyle=""),
                          "min over channels"))
        extra.append((Line2D([], [], color=BASELINE_COLOUR, linestyle=":"), GATE_ONE_LABEL))
        fig.legend([handle for handle, _ in extra], [label for _, label in extra], loc="outside lower center",
                   ncols=len(extra), fontsize="small")
    return fig


def metric_vs_batch_size(
    points: pd.DataFrame,
    y: str = "test_acc_at_best_val",
    hue: str = "norm_layer",
    x: str = "batch_size",
    hue_order: Sequence[str] | None = None,
) -> Figure:
    """``y`` against the batch size ``x`` (log2 axis, the batch sizes as ticks), a line per ``hue`` value.

    ``points`` has one row per run; each marker is the mean over the runs
    (seeds) sharing a ``hue`` and ``x`` value, its error bar the 95 %
    Student-t interval of that mean (:func:`~normtest_lib.report.plots.t_interval`).
    Accuracy fractions are drawn in percent.
    """
    require_columns(points, [x, y, hue], "points")
    data = points.dropna(subset=[x, y])
    if data.empty:
        raise ValueError(f"nothing to plot: no run has both {x} and {y}")
    data = data.assign(**{x: pd.to_numeric(data[x])})
    if (data[x] <= 0).any():
        raise ValueError(f"{x} must be positive on a log axis; got {sorted(data[x].unique().tolist())}")
    data = as_percent(data, y)
    import seaborn as sns

    palette = palette_for(list(hue_order) if hue_order is not None else ordered(data[hue]))
    with sns.axes_style("whitegrid"):
        fig, ax = plt.subplots(figsize=(6.0, 3.6), layout="constrained")
        for value, colour in palette.items():
            group = data[data[hue] == value]
            if group.empty:
                continue
            sizes = ordered(group[x])
            means, halves = zip(*(t_interval(group.loc[group[x] == size, y]) for size in sizes))
            ax.errorbar(
                np.asarray(sizes, dtype=float), np.asarray(means), yerr=np.asarray(halves),
                color=colour, marker="o", markersize=4, capsize=3, linewidth=1.4,
            )  # fmt: skip
        ax.set_xscale("log", base=2)
        ticks = ordered(data[x])
        ax.set_xticks(ticks, labels=[tick_label(t) for t in ticks])
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xlabel(f"{x.replace('_', ' ')} ({LOG_AXIS})")
        ax.set_ylabel(metric_label(y))
        figure_legend(fig, palette, hue, marker="o")
    return fig
