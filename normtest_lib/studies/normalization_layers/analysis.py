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


def main_momentum(runs: pd.DataFrame) -> float:
    """The momentum most of ``runs`` trained with: the optimizer every comparison of the chapter uses."""
    return float(runs["momentum"].mode().iloc[0]) if "momentum" in runs.columns else 0.0


def main_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs every layer comparison is made with: the main batch size and the main optimizer.

    A profile may run the reference layer with another optimizer beside (the ``local`` profile runs
    ``torch_bn`` with the published optimizer, without momentum, as the evidence for its change):
    those runs are :func:`other_optimizer_runs`, never paired with the main ones."""
    at_batch = runs[runs["batch_size"] == main_batch_size(runs)]
    if "momentum" not in at_batch.columns:
        return at_batch
    return at_batch[at_batch["momentum"] == main_momentum(at_batch)]


def other_optimizer_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs at the main batch size with another momentum than the main runs' (none when all share it)."""
    at_batch = runs[runs["batch_size"] == main_batch_size(runs)]
    if "momentum" not in at_batch.columns:
        return at_batch.iloc[:0]
    return at_batch[at_batch["momentum"] != main_momentum(at_batch)]


def batch_sweep_runs(runs: pd.DataFrame, layers: Sequence[str] = ("bn", "gn:c/4")) -> pd.DataFrame:
    """``layers``' runs with the main optimizer at every batch size: the batch-size comparison."""
    chosen = runs[runs["norm_layer"].isin(layers)]
    if "momentum" in chosen.columns and len(runs):
        chosen = chosen[chosen["momentum"] == main_momentum(runs[runs["batch_size"] == main_batch_size(runs)])]
    return chosen


def optimizer_table(runs: pd.DataFrame, metric: str, layer: str = "torch_bn") -> pd.DataFrame:
    """``layer`` at the main batch size, one row per momentum: runs, how many converged, the final training
    accuracy (evaluation mode, no augmentation) and ``metric``, means over seeds in percent.

    What a reader needs to judge a profile's change of optimizer: whether the published one trains the
    network in the same budget."""
    at_batch = runs[(runs["batch_size"] == main_batch_size(runs)) & (runs["norm_layer"] == layer)]
    if "momentum" not in at_batch.columns:
        at_batch = at_batch.assign(momentum=float("nan"))
    rows = {}
    for momentum, group in at_batch.groupby("momentum", sort=True, dropna=False):
        converged = group["converged"].fillna(False).astype(bool) if "converged" in group.columns else None
        rows[f"momentum {momentum:g}"] = {
            "runs": len(group),
            "converged": "–" if converged is None else f"{int(converged.sum())} of {len(group)}",
            "train acc. final (%)": 100 * group["train_acc_final"].mean() if "train_acc_final" in group else float("nan"),
            "test acc. (%)": 100 * group[metric].mean(),
        }
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis(f"{layer}, batch {main_batch_size(runs)}")


def optimizer_sentence(runs: pd.DataFrame, metric: str, layer: str = "torch_bn") -> str:
    """What the published optimizer did beside the main one, for ``layer`` at the main batch size, in words:
    each momentum's runs, how many converged, their final training accuracy and ``metric``, and what that
    says about the profile's change of optimizer (empty when only one momentum ran)."""
    table = optimizer_table(runs, metric, layer)
    if len(table) < 2:
        return ""
    main = f"momentum {main_momentum(runs[runs['batch_size'] == main_batch_size(runs)]):g}"
    described = "; ".join(
        f"{name}: {row['converged']} runs converged, {row['train acc. final (%)']:.1f} % of the training images "
        f"fitted, {row['test acc. (%)']:.1f} % test accuracy" for name, row in table.iterrows())
    others = [name for name in table.index if name != main]
    converged_elsewhere = all(table.loc[name, "converged"].split(" of ")[0] == table.loc[name, "converged"].split(" of ")[1]
                              for name in others)
    if converged_elsewhere:
        verdict = (f"So `{layer}` converges without momentum too: momentum was not needed for it in this budget. "
                   f"The main runs keep {main} for every layer; whether the layers that learn slower would converge "
                   "with the published optimizer was not run.")
    else:
        verdict = (f"So with the published optimizer `{layer}` does not converge in this budget in every run, which "
                   f"is why the main runs use {main}.")
    return f"`{layer}` at batch {main_batch_size(runs)}, {described}. {verdict}"


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



def micro_f1_sentence(runs: pd.DataFrame, metric: str, micro_f1: str = "test_micro_f1_at_best_val") -> str:
    """Whether every run's micro-F1 equals its accuracy (as it must for single-label classification, where
    each wrong prediction is one false positive and one false negative), with the largest difference."""
    both = runs[[metric, micro_f1]].apply(pd.to_numeric, errors="coerce").dropna() if micro_f1 in runs else pd.DataFrame()
    if both.empty:
        return "no run here recorded it."
    largest = float((both[metric] - both[micro_f1]).abs().max())
    if largest < 1e-6:
        return f"in all {len(both)} runs here it equals the test accuracy (largest difference {largest:.1e}), so it is not shown."
    return (f"here it differs from the test accuracy by up to {100 * largest:.2f} points, which single-label "
            "classification cannot give: a run's metrics need checking.")
