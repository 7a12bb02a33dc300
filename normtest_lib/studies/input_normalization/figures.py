"""Study 1's figures: accuracy against the size of the fine-tuning set and of the statistics' sample.

Same conventions as :mod:`normtest_lib.report.plots`, whose helpers they use: each
returns a matplotlib Figure made through pyplot, shows nothing and never selects
a backend; accuracy fractions are drawn in percent.
"""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import NullLocator

from ...report.colours import palette_for
from ...report.plots import (
    BAND_ALPHA, BASELINE_COLOUR, as_percent, figure_legend, metric_label, ordered, require_columns, t_interval, tick_label,
)  # fmt: skip


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
    require_columns(points, [x, y, hue, col], "points")
    data = points.dropna(subset=[y])
    is_base = (data[hue] == baseline) if baseline is not None else pd.Series(False, index=data.index)
    if baseline is not None and not is_base.any():
        raise ValueError(f"baseline {baseline!r} is not a {hue} value with a {y}; values: {ordered(data[hue])}")
    curves = data[~is_base].dropna(subset=[x])
    curves = curves.assign(**{x: pd.to_numeric(curves[x])})
    if (curves[x] <= 0).any():
        raise ValueError(f"{x} must be positive on a log axis; got {sorted(curves[x].unique())}")
    data = pd.concat([curves, data[is_base]])
    if curves.empty and not is_base.any():
        raise ValueError(f"nothing to plot: no run has both {x} and {y}")
    data = as_percent(data, y)
    import seaborn as sns

    order = list(hue_order) if hue_order is not None else ordered(data[hue])
    palette = palette_for([value for value in order if value != baseline])
    panels = ordered(data[col]) if col is not None else [None]
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
                ticks = ordered(drawn[x])
                ax.set_xticks(ticks, labels=[tick_label(t) for t in ticks])
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
        figure_legend(fig, palette, hue, marker="o", extra=extra)
    return fig

