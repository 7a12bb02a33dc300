"""The one figure each study's answer opens with, on the landing page and in its chapter.

Same conventions as :mod:`normtest_lib.report.plots`: each function returns a
matplotlib Figure made through pyplot, shows nothing and never selects a
backend. Colours are the book's fixed ones (:mod:`normtest_lib.report.colours`).
"""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .colours import palette_for
from .paired import confidence_interval


def difference_forest(differences: pd.DataFrame, compare: str, baseline: str, *, title: str,
                      unit: str = "points") -> Figure:
    """Each setting's paired difference to ``baseline`` as a dot with its 95 % interval, one row each.

    ``differences`` is :func:`normtest_lib.report.paired.paired_differences`' frame whose index
    ends in the ``compare`` level; a row without an interval (one seed) is a dot alone. The
    vertical line at 0 is the baseline: an interval that crosses it is within the seed-to-seed spread.
    """
    if differences.empty:
        raise ValueError(f"no paired differences to {baseline!r} to draw")
    names = [str(name) for name in differences.index.get_level_values(compare)]
    colours = palette_for(names)
    fig, ax = plt.subplots(figsize=(6.4, 0.45 * len(names) + 1.4))
    for row, (name, (_, values)) in enumerate(zip(names, differences.iterrows())):
        if not pd.isna(values["ci_low"]):
            ax.plot([values["ci_low"], values["ci_high"]], [row, row], color=colours[name], linewidth=2.5)
        ax.plot(values["mean"], row, "o", color=colours[name], markersize=7)
    ax.axvline(0, color="0.3", linewidth=1)
    ax.set_yticks(range(len(names)), [f"{name} (n={int(n)})" for name, n in zip(names, differences["n"])])
    ax.invert_yaxis()
    ax.set_xlabel(f"test accuracy minus {baseline}'s, {unit} (mean over seeds, 95 % interval)")
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.4)
    fig.tight_layout()
    return fig


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
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for name in names:
        points = frame[frame[variant] == name].groupby("_noise")["_value"]
        if not len(points):
            continue
        means = points.mean()
        bounds = np.array([confidence_interval(values.to_numpy()) for _, values in points])
        errors = np.abs(bounds.T - means.to_numpy())
        counts = points.count()
        ax.errorbar(means.index, means.to_numpy(), yerr=np.nan_to_num(errors), marker="o", capsize=3,
                    color=colours[name], label=f"{name} (n={int(counts.min())}–{int(counts.max())})"
                    if counts.min() != counts.max() else f"{name} (n={int(counts.min())} per level)")
    ax.set_xticks(sorted(frame["_noise"].unique()))
    ax.set_xlabel("nominal label noise (%)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title)
    ax.grid(alpha=0.4)
    ax.legend(frameon=False)
    fig.tight_layout()
    return fig
