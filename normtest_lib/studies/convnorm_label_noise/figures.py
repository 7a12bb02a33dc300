"""Study 3's figures: test accuracy against label noise, and memorization of the flipped labels.

Same conventions as :mod:`normtest_lib.report.plots`, whose helpers they use: each
returns a matplotlib Figure made through pyplot, shows nothing and never selects a
backend; colours are the book's fixed ones (:mod:`normtest_lib.report.colours`).
"""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from ...report.colours import palette_for
from ...report.paired import confidence_interval
from ...report.plots import figure_legend, t_interval
from .analysis import noise_label, variant_order

MEMORIZATION = "memorization"
# The memorization probe's values: flipped images predicted as their noisy or their true label.
FIT_NOISY, FIT_TRUE = "flipped_fit_noisy", "flipped_fit_true"


def accuracy_vs_noise(runs: pd.DataFrame, metric: str, *, title: str, order: Sequence[str] | None = None,
                      variant: str = "variant", noise: str = "label_noise") -> Figure:
    """Test accuracy (%) against the nominal noise level, a line per ``variant``: the mean over
    seeds with its 95 % t interval as error bars; n per point is the number of runs behind it."""
    frame = runs.assign(_noise=100 * runs[noise].astype(float), _value=100 * pd.to_numeric(runs[metric], errors="coerce"))
    frame = frame.dropna(subset=["_value"])
    if frame.empty:
        raise ValueError(f"no run has a {metric} to draw")
    names = list(order) if order is not None else sorted(frame[variant].unique())
    colours = palette_for(names)
    levels = sorted(frame["_noise"].unique())
    fig, ax = plt.subplots(figsize=(7.6, 3.8), layout="constrained")
    for name in names:
        points = frame[frame[variant] == name].groupby("_noise")["_value"]
        if not len(points):
            continue
        means = points.mean()
        bounds = np.array([confidence_interval(values.to_numpy()) for _, values in points])
        errors = np.abs(bounds.T - means.to_numpy())
        counts = points.count()
        runs_text = (f"n={int(counts.min())}–{int(counts.max())}" if counts.min() != counts.max()
                     else f"n={int(counts.min())} per level")  # fmt: skip
        # A level with no run of this variant yet: its line joins the levels either side, so the legend says so.
        missing = [f"{level:g} %" for level in levels if level not in means.index]
        if missing:
            runs_text += f"; none yet at {', '.join(missing)}"
        ax.errorbar(means.index, means.to_numpy(), yerr=np.nan_to_num(errors), marker="o", capsize=3,
                    color=colours[name], label=f"{name} ({runs_text})")
    ax.set_xticks(levels)
    ax.set_xlabel("nominal label noise (%)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title)
    ax.grid(alpha=0.4)
    fig.legend(frameon=False, loc="outside right upper")  # outside the axes: inside, it hid a variant's error bar
    return fig



def memorization_curves(probes: pd.DataFrame, hue_order: Sequence[str] | None = None) -> Figure:
    """Per noise level above 0, a panel: over epochs, the share of the flipped training images the
    network predicts as their noisy label (solid) and as their true label (dashed), per variant,
    mean over seeds with a 95 % band. Rising solid lines are memorization of the wrong labels."""
    rows = probes[(probes["probe"] == MEMORIZATION) & probes["name"].isin([FIT_NOISY, FIT_TRUE])]
    rows = rows[rows["label_noise"].astype(float) > 0]
    if rows.empty:
        raise ValueError("no memorization probe rows at a noise level above 0")
    levels = sorted(rows["label_noise"].astype(float).unique())
    palette = palette_for(list(hue_order) if hue_order is not None else variant_order(rows["variant"].unique()))
    fig, axes = plt.subplots(1, len(levels), figsize=(4.2 * len(levels), 3.3), squeeze=False, sharey=True, layout="constrained")
    for ax, level in zip(axes[0], levels):
        at_level = rows[rows["label_noise"].astype(float) == level]
        for variant, colour in palette.items():
            for name, style in ((FIT_NOISY, "-"), (FIT_TRUE, "--")):
                group = at_level[(at_level["variant"] == variant) & (at_level["name"] == name)]
                if group.empty:
                    continue
                epochs = sorted(group["epoch"].unique())
                means, halves = zip(*(t_interval(100 * group.loc[group["epoch"] == e, "value"]) for e in epochs))
                means, halves = np.asarray(means), np.asarray(halves)
                ax.plot(epochs, means, style, color=colour, linewidth=1.4)
                ax.fill_between(epochs, means - halves, means + halves, color=colour, alpha=0.15, linewidth=0)
        ax.set_title(noise_label(level))
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("flipped training images (%)")
    extra = [(Line2D([], [], color="grey", linestyle="-"), "predicted as the noisy label"),
             (Line2D([], [], color="grey", linestyle="--"), "predicted as the true label")]  # fmt: skip
    figure_legend(fig, palette, "variant", extra=extra)
    return fig

