"""Study 2's runs in its own terms: the layers in the chapter's order, the main batch size, the metrics table.

Every comparison of the chapter is at one batch size, the one most runs trained
with (:func:`main_batch_size`); the batch-size sweep has its own figure. Layers
are listed in :data:`LAYER_ORDER` (PyTorch's batch norm first: every difference
is taken against it), any other after them.
"""

from __future__ import annotations

from typing import Sequence

import pandas as pd
from pandas.io.formats.style import Styler

from ...report.converged import with_converged_column
from ...report.tables import MISSING_TEXT, best_two_css, format_mean_std, seed_summary

LAYER_ORDER = ("torch_bn", "bn", "in", "bin", "ln", "gn:c/4", "gn:32", "none")
# The parameters the chapter sets beside the published protocol (report/protocol.py's table).
PROTOCOL_KEYS = (
    "model", "depth_n", "dataset", "val_fraction", "train_subset", "norm_layer", "optimizer", "lr", "momentum",
    "weight_decay", "schedule", "milestones", "epochs", "batch_size", "input_norm", "pad", "flip", "seed",
)  # fmt: skip


def layer_order(names: Sequence[str]) -> list[str]:
    """The layers among ``names`` in :data:`LAYER_ORDER`, then any other, sorted."""
    present = set(names)
    return [name for name in LAYER_ORDER if name in present] + sorted(present - set(LAYER_ORDER))


def main_batch_size(runs: pd.DataFrame) -> int:
    """The batch size most of ``runs`` trained with: the one every comparison of the chapter is made at."""
    return int(runs["batch_size"].mode().iloc[0])


def metrics_table(
    runs: pd.DataFrame,
    metrics: dict[str, str],
    published: pd.DataFrame | None = None,
    index: str = "norm_layer",
    order: Sequence[str] | None = None,
    digits: int = 1,
) -> Styler:
    """One row per ``index`` value, a column per metric: ours as mean ± std (n) in percent, the published beside.

    ``metrics`` maps a column label (``"test acc."``) to the runs' column holding
    the fraction (``"test_acc_at_best_val"``); ``published`` has one row per
    ``index`` value and the same labels as columns (fractions; NaN where nothing
    was published; labels with no published value at all are left out). The
    best mean of each of our columns is bold and the second underlined.
    """
    text, values = {}, {}
    for label, column in metrics.items():
        stats = seed_summary(runs, column, [index]) if column in runs.columns else None
        if stats is None or stats.empty:
            continue
        values[label] = stats["mean"]
        text[label] = stats.apply(lambda row: format_mean_std(row["mean"], row["std"], row["n"], digits), axis=1)
    if not text:
        raise ValueError(f"none of the columns {list(metrics.values())} has complete runs")
    ours_text, ours_values = pd.DataFrame(text), pd.DataFrame(values)
    rows = [name for name in (order or ours_text.index) if name in ours_text.index]
    blocks_text = {"ours": ours_text.reindex(rows)}
    css_blocks = {"ours": best_two_css(ours_values.reindex(rows), axis=0)}
    if published is not None:
        theirs = (published.reindex(rows) * 100.0).dropna(axis=1, how="all")
        if not theirs.empty and theirs.notna().any().any():
            blocks_text["published"] = theirs.map(lambda value: MISSING_TEXT if pd.isna(value) else f"{value:.1f}")
            css_blocks["published"] = best_two_css(theirs, axis=0)
    table = pd.concat(blocks_text, axis=1, names=["source", "metric"]).fillna(MISSING_TEXT)
    css = pd.concat(css_blocks, axis=1).reindex(index=table.index, columns=table.columns, fill_value="")
    table, css = with_converged_column(table, css, runs, index)
    return table.style.apply(lambda _: css, axis=None)

