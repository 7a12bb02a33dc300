"""Study 3's views: ConvNorm against BatchNorm at each label-noise level.

A study-3 network is named by two run parameters, ``conv_layer`` and ``norm_layer``; the
chapter speaks of three variants: ``bn`` (plain convolution + BatchNorm), ``convnorm``
(the preconditioned convolution and its affine, no BatchNorm) and ``convnorm+bn`` (the
same followed by BatchNorm, what the official layer computed by default).
"""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator
from pandas.io.formats.style import Styler

from .converged import with_converged_column
from .layouts import seed_summary
from .study_plots import _figure_legend, _palette, t_interval
from .tables import MISSING_TEXT, best_two_css, format_mean_std

VARIANT_NAMES = {("conv", "torch_bn"): "bn", ("convnorm", "none"): "convnorm", ("convnorm", "torch_bn"): "convnorm+bn"}
VARIANT_ORDER = ("bn", "convnorm", "convnorm+bn")
MEMORIZATION = "memorization"
# The memorization probe's values: flipped images predicted as their noisy or their true label.
FIT_NOISY, FIT_TRUE = "flipped_fit_noisy", "flipped_fit_true"


def variant_label(conv_layer: str, norm_layer: str) -> str:
    """``bn``, ``convnorm`` or ``convnorm+bn``; any other pair as ``conv_layer + norm_layer``.
    An argument of the convolution (``convnorm:1000``, its decay length) does not change the variant."""
    base = str(conv_layer).partition(":")[0]
    return VARIANT_NAMES.get((base, str(norm_layer)), f"{conv_layer} + {norm_layer}")


def add_variant(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` (runs, histories or probes, with ``conv_layer`` and ``norm_layer`` columns) with a ``variant`` column."""
    missing = [c for c in ("conv_layer", "norm_layer") if c not in frame.columns]
    if missing:
        raise KeyError(f"no column(s) {missing} to name the variant from")
    labels = [variant_label(c, n) for c, n in zip(frame["conv_layer"], frame["norm_layer"])]
    return frame.assign(variant=labels)


def variant_order(values: Sequence[str]) -> list[str]:
    """The three variants in the chapter's order, then any other, sorted."""
    present = set(values)
    return [v for v in VARIANT_ORDER if v in present] + sorted(present - set(VARIANT_ORDER))


def noise_label(fraction: float) -> str:
    """0.2 -> ``20 % noise``."""
    return f"{noise_level_text(fraction)} noise"


def noise_level_text(fraction: float) -> str:
    """0.2 -> ``20 %``: a noise level as a table's index shows it."""
    return f"{100 * float(fraction):g} %"


def by_noise_level(frame: pd.DataFrame, level: str = "label_noise") -> pd.DataFrame:
    """``frame`` with its ``label_noise`` index level renamed ``label noise`` and shown as ``20 %``,
    so tables and the sentences built from them read "(label noise 20 %)"."""
    names = list(frame.index.names)
    if level not in names:
        return frame
    renamed = frame.rename(index=noise_level_text, level=level)
    return renamed.rename_axis(index={level: "label noise"})


def stability_window(epochs: int, published: int = 10) -> int:
    """How many last epochs the stability std covers: the published 10, or for a run too short
    for that to be a plateau (under 40 epochs) its last third, at least 2."""
    return published if epochs >= 4 * published else max(2, epochs // 3)


def accuracy_by_noise(
    runs: pd.DataFrame,
    metric: str,
    published: pd.DataFrame | None = None,
    digits: int = 1,
) -> Styler:
    """Rows: variants; a column per noise level: ours as mean ± std (n) in percent over seeds, the
    published beside (``published``: rows variant, columns noise fraction, values fractions;
    approximate values in a column ``approx`` of booleans are shown with ``≈``). Best of each
    column bold, second underlined."""
    if runs.empty:
        raise ValueError("no runs to tabulate")
    levels = sorted(runs["label_noise"].astype(float).unique())
    text, values = {}, {}
    for level in levels:
        stats = seed_summary(runs[runs["label_noise"].astype(float) == level], metric, ["variant"])
        label = noise_label(level)
        values[label] = stats["mean"]
        text[label] = stats.apply(lambda row: format_mean_std(row["mean"], row["std"], row["n"], digits), axis=1)
    ours_text, ours_values = pd.DataFrame(text), pd.DataFrame(values)
    rows = variant_order(list(ours_text.index) + (list(published["variant"]) if published is not None else []))
    blocks_text = {"ours": ours_text.reindex(rows)}
    css_blocks = {"ours": best_two_css(ours_values.reindex(rows), axis=0)}
    if published is not None and not published.empty:
        table = published.pivot_table(index="variant", columns="label_noise", values="value")
        approx = published.pivot_table(index="variant", columns="label_noise", values="approx", aggfunc="any")
        table = table.reindex(rows)
        shown = pd.DataFrame(
            {
                noise_label(level): [
                    MISSING_TEXT if pd.isna(v) else ("≈" if bool(approx.get(level, pd.Series()).get(variant, False)) else "")
                    + f"{100 * v:.{digits}f}"
                    for variant, v in table[level].items()
                ]
                for level in table.columns
            },
            index=table.index,
        )
        blocks_text["published"] = shown
        css_blocks["published"] = best_two_css(table.rename(columns=noise_label) * 100.0, axis=0)
    frame = pd.concat(blocks_text, axis=1, names=["source", "label noise"]).fillna(MISSING_TEXT)
    css = pd.concat(css_blocks, axis=1).reindex(index=frame.index, columns=frame.columns, fill_value="")
    frame, css = with_converged_column(frame, css, runs, "variant")
    return frame.style.apply(lambda _: css.fillna(""), axis=None)


def published_by_variant(published: pd.DataFrame, dataset: str = "cifar10") -> pd.DataFrame:
    """The published long frame (``report.published.published_results``) of one data set as
    (variant, label_noise, value, approx) rows, ``approx`` True for values read as "about"."""
    rows = published[(published["dataset"] == dataset) & published["metric"].str.startswith("test_acc")]
    return pd.DataFrame(
        {
            "variant": rows["variant"].to_numpy(),
            "label_noise": rows["label_noise"].astype(float).to_numpy(),
            "value": rows["value"].astype(float).to_numpy(),
            "approx": rows["metric"].str.endswith("_approx").to_numpy(),
        }
    )


def memorization_curves(probes: pd.DataFrame, hue_order: Sequence[str] | None = None) -> Figure:
    """Per noise level above 0, a panel: over epochs, the share of the flipped training images the
    network predicts as their noisy label (solid) and as their true label (dashed), per variant,
    mean over seeds with a 95 % band. Rising solid lines are memorization of the wrong labels."""
    rows = probes[(probes["probe"] == MEMORIZATION) & probes["name"].isin([FIT_NOISY, FIT_TRUE])]
    rows = rows[rows["label_noise"].astype(float) > 0]
    if rows.empty:
        raise ValueError("no memorization probe rows at a noise level above 0")
    levels = sorted(rows["label_noise"].astype(float).unique())
    palette = _palette(list(hue_order) if hue_order is not None else variant_order(rows["variant"].unique()))
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
    _figure_legend(fig, palette, "variant", extra=extra)
    return fig
