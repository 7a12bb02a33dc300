"""Study 1's figures: accuracy against the size of the fine-tuning set and of the statistics' sample.

Same conventions as :mod:`normtest_lib.report.plots`, whose helpers they use: each
returns a matplotlib Figure made through pyplot, shows nothing and never selects
a backend; accuracy fractions are drawn in percent.
"""

from __future__ import annotations

from itertools import cycle
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import NullLocator

from ...report.colours import palette_for
from ...report.paired import paired_differences
from ...report.plots import (
    BASELINE_COLOUR, LOG_AXIS, as_percent, figure_legend, is_accuracy, metric_label, ordered, require_columns, t_interval, tick_label,
)  # fmt: skip

# One marker shape per setting and a small sideways shift between settings: two settings whose means agree (study
# 1's finetune and pretrain differ by a tenth of a point on a 20-point axis) would otherwise draw one over the other,
# and the reader could not tell a hidden curve from a missing one.
MARKERS = ("o", "s", "^", "D", "v", "P", "X")
DODGE_SHARE = 0.02  # the shift between neighbouring settings, as a share of the x axis' span in decades


def accuracy_vs_size(
    points: pd.DataFrame,
    x: str,
    y: str,
    hue: str,
    *,
    col: str | None = None,
    baseline: str | None = None,
    reference: str | None = None,
    hue_order: Sequence[str] | None = None,
    xlabel: str | None = None,
    ylabel: str | None = None,
    baseline_label: str | None = None,
    pair_on: str = "seed",
) -> Figure:
    """Accuracy ``y`` against a size ``x`` (log axis), a curve per ``hue`` value, a panel per ``col`` value.

    ``points`` has one row per run. Each curve is the mean over the runs at each ``x`` with the 95 % t-interval
    of that mean as error bars; each setting has its own marker shape and is shifted slightly sideways
    (:data:`DODGE_SHARE`) so that curves that agree stay visible. The x ticks are the ``x`` values present.

    The ``baseline`` hue value (whose ``x`` may be missing: it does not depend on it) is drawn instead as a
    dashed horizontal line at the mean of its runs in the panel, named ``baseline_label`` (default the value)
    in the legend. The setting every other is compared with, ``baseline`` or else ``reference`` (a hue value
    that has a run at each ``x``), gets a second row of panels: each other setting's difference to it, paired by
    ``pair_on`` (:func:`normtest_lib.report.paired.paired_differences`, at the same ``x`` for a ``reference``),
    its mean and 95 % interval. The pairing is why the comparison goes there rather than in a band around the
    baseline's line: the seed-to-seed spread the two settings share cancels in a paired difference, while an
    interval of the baseline's mean alone carries all of it (with a few seeds, such a band covered the whole
    panel and said nothing about the difference).
    """
    if baseline is not None and reference is not None:
        raise ValueError(f"give a baseline ({baseline!r}) or a reference ({reference!r}), not both")
    compared_to = baseline if baseline is not None else reference
    require_columns(points, [x, y, hue, col, pair_on if compared_to is not None else None], "points")
    data = points.dropna(subset=[y])
    if compared_to is not None and not (data[hue] == compared_to).any():
        role = "baseline" if baseline is not None else "reference"
        raise ValueError(f"{role} {compared_to!r} is not a {hue} value with a {y}; values: {ordered(data[hue])}")
    is_base = (data[hue] == baseline) if baseline is not None else pd.Series(False, index=data.index)
    curves = data[~is_base].dropna(subset=[x])
    curves = curves.assign(**{x: pd.to_numeric(curves[x])})
    if (curves[x] <= 0).any():
        raise ValueError(f"{x} must be positive on a log axis; got {sorted(curves[x].unique())}")
    if curves.empty and not is_base.any():
        raise ValueError(f"nothing to plot: no run has both {x} and {y}")
    data = as_percent(pd.concat([curves, data[is_base]]), y)
    import seaborn as sns

    order = list(hue_order) if hue_order is not None else ordered(data[hue])
    palette = palette_for([value for value in order if value != baseline])
    markers = dict(zip(palette, cycle(MARKERS)))
    shifts = _dodge(list(palette), curves[x])
    panels = ordered(data[col]) if col is not None else [None]
    differences = _paired_to(data, x, y, hue, col, compared_to, baseline is not None, pair_on) if compared_to else None
    compared_name = (baseline_label or str(baseline)) if baseline is not None else str(reference)
    rows = 1 if differences is None else 2
    with sns.axes_style("whitegrid"):
        fig, axes = plt.subplots(
            rows, len(panels), figsize=(4.2 * len(panels) + 1.8, 3.4 if rows == 1 else 5.6), sharex="col",
            squeeze=False, layout="constrained", gridspec_kw={"height_ratios": [3, 2][:rows]},
        )  # fmt: skip
        for column, panel_value in enumerate(panels):
            panel = data if col is None else data[data[col] == panel_value]
            ax = axes[0][column]
            drawn = panel[panel[hue].isin(list(palette)) & panel[x].notna()]
            for setting, colour in palette.items():
                runs = drawn[drawn[hue] == setting]
                if len(runs):
                    means = pd.DataFrame([t_interval(values) for _, values in runs.groupby(x)[y]],
                                         index=ordered(runs[x]), columns=["mean", "half"])
                    _draw(ax, means.index * shifts[setting], means["mean"], means["half"], colour, markers[setting],
                          str(setting))
            base = panel.loc[panel[hue] == baseline, y] if baseline is not None else pd.Series(dtype=float)
            if not base.empty:
                ax.axhline(base.mean(), color=BASELINE_COLOUR, linestyle="--", linewidth=1.2)
            if col is not None:
                # A "panel" column already names its columns (analysis.group_panels); any other is named here.
                ax.set_title(str(panel_value) if col == "panel" else f"{col} = {panel_value}", fontsize="medium")
            ax.set_ylabel(ylabel or metric_label(y))
            if differences is not None:
                below = axes[1][column]
                in_panel = differences if col is None else differences[differences[col] == panel_value]
                # The line at 0 is the setting compared with, drawn as in the panel above.
                reference_colour = BASELINE_COLOUR if baseline is not None else palette.get(reference, BASELINE_COLOUR)
                below.axhline(0, color=reference_colour, linestyle="--" if baseline is not None else "-", linewidth=1.2)
                for setting, colour in palette.items():
                    found = in_panel[in_panel[hue] == setting]
                    if len(found):
                        halves = ((found["ci_high"] - found["ci_low"]) / 2).fillna(0)  # n = 1: a dot, no interval
                        _draw(below, found[x] * shifts[setting], found["mean"], halves, colour, markers[setting],
                              str(setting))
                unit = "points" if is_accuracy(y) else y
                below.set_ylabel(f"minus {compared_name} ({unit},\npaired by {pair_on})")
            ticks = ordered(drawn[x])
            for each in axes[:, column]:
                each.set_xscale("log")
                if ticks:
                    each.set_xticks(ticks, labels=[tick_label(t) for t in ticks])
                each.xaxis.set_minor_locator(NullLocator())
            axes[-1][column].set_xlabel(f"{xlabel or x} ({LOG_AXIS})")
        dashed = Line2D([], [], color=BASELINE_COLOUR, linestyle="--")
        extra = [] if baseline is None else [(dashed, compared_name)]
        figure_legend(fig, palette, hue, marker=markers, extra=extra)
    return fig


def _dodge(settings: list, sizes: pd.Series) -> dict:
    """``{setting: factor}`` to multiply its ``x`` by: neighbours :data:`DODGE_SHARE` of the log span apart, centred."""
    span = float(np.log10(sizes.max() / sizes.min())) if len(sizes) else 0.0
    step = DODGE_SHARE * max(span, 1.0)  # one decade at least: a single size still parts its settings
    middle = (len(settings) - 1) / 2
    return {setting: 10 ** ((index - middle) * step) for index, setting in enumerate(settings)}


def _draw(ax: Axes, xs, means, halves, colour: str, marker: str, label: str) -> None:
    """A setting's points joined by a line, with vertical error bars of half-widths ``halves``."""
    ax.errorbar(np.asarray(xs, dtype=float), np.asarray(means, dtype=float), yerr=np.asarray(halves, dtype=float),
                color=colour, marker=marker, markersize=5, linewidth=1.4, elinewidth=1, capsize=0, label=label)


def _paired_to(data: pd.DataFrame, x: str, y: str, hue: str, col: str | None, compared_to: str, flat: bool,
               pair_on: str) -> pd.DataFrame:
    """Each other setting's paired difference to ``compared_to`` per panel and ``x``, one row each (columns
    ``col``, ``x``, ``hue`` and :func:`paired_differences`' ``mean``, ``ci_low``, ``ci_high``, ``n``).

    A ``flat`` one (a baseline, independent of ``x``) pairs with every ``x`` of its panel; otherwise only with
    the runs at the same ``x``. ``y`` is already in its drawn unit, so the differences are not scaled again.
    """
    panel_key = col if col is not None else "_panel"
    data = data.assign(**{panel_key: data[col] if col is not None else ""})
    others = data[(data[hue] != compared_to) & data[x].notna()]
    found = []
    for (panel_value, size), runs in others.groupby([panel_key, x], sort=True):
        partners = data[(data[hue] == compared_to) & (data[panel_key] == panel_value)]
        if not flat:
            partners = partners[partners[x] == size]
        if partners.empty:
            continue  # nothing to compare with at this size
        pairs = pd.concat([runs, partners.assign(**{x: size})])
        found.append(paired_differences(pairs, y, hue, compared_to, [panel_key, x], pair_on, scale=1.0).reset_index())
    columns = [panel_key, x, hue, "mean", "ci_low", "ci_high", "n"]
    return pd.concat(found, ignore_index=True) if found else pd.DataFrame(columns=columns)
