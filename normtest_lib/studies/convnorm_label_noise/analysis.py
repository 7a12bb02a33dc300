"""Study 3's runs in its own terms: the three variants, noise levels, stability and accuracy lost to noise.

A study-3 network is named by two run parameters, ``conv_layer`` and ``norm_layer``; the
chapter speaks of three variants: ``bn`` (plain convolution + BatchNorm), ``convnorm``
(the preconditioned convolution and its affine, no BatchNorm) and ``convnorm+bn`` (the
same followed by BatchNorm, what the official layer computed by default).

The course paper claimed ConvNorm "more stable" from its curves and "losing less accuracy
as noise grows" from single runs. Both become numbers here:

- :func:`run_stability`, per run, from its history: ``test_acc_std_last10``, the
  sample standard deviation (ddof 1) of test accuracy over the run's last 10
  epochs (the plateau, where a stable network should not move), and
  ``test_acc_mean_abs_change``, the mean of |acc(e) - acc(e-1)| over all pairs of
  consecutive epochs (the whole run's jitter, the lr steps included);
- :func:`accuracy_lost`, per variant and noise level p: the mean over seeds of
  metric(0 %) - metric(p), paired by seed, with the 95 % t interval of
  :mod:`normtest_lib.report.paired` (positive: noise costs accuracy);
- :func:`loss_difference`: what one variant loses to noise minus what another loses, paired by seed.

All are per-seed figures; compare variants by their mean and spread over seeds
(:func:`normtest_lib.report.tables.aggregate_seeds`), never on one seed.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
from pandas.io.formats.style import Styler

from ...report.converged import with_converged_column
from ...report.paired import CONFIDENCE, confidence_interval, paired_differences
from ...report.results import PREFERRED_SOURCE
from ...report.tables import MISSING_TEXT, aggregate_seeds, best_two_css, format_mean_std, seed_summary

VARIANT_NAMES = {("conv", "torch_bn"): "bn", ("convnorm", "none"): "convnorm", ("convnorm", "torch_bn"): "convnorm+bn"}
VARIANT_ORDER = ("bn", "convnorm", "convnorm+bn")
# Each variant in words (the module docstring's), for the book's glossary beside the run parameters that make it.
VARIANT_MEANINGS = {
    "bn": "plain convolution + BatchNorm",
    "convnorm": "the preconditioned convolution and its affine, no BatchNorm",
    "convnorm+bn": "the preconditioned convolution and its affine followed by BatchNorm, what the official layer "
                   "computed by default",
}  # fmt: skip
# The parameters the chapter sets beside the published protocol (report/protocol.py's table).
PROTOCOL_KEYS = (
    "model", "depth_n", "dataset", "val_fraction", "train_subset", "conv_layer", "norm_layer", "label_noise",
    "label_noise_kind", "optimizer", "lr", "momentum", "weight_decay", "schedule", "milestones", "epochs",
    "batch_size", "input_norm", "seed",
)  # fmt: skip


# --- the variants and the noise levels -----------------------------------------------------


def glossary() -> dict[str, str]:
    """Each variant name of the chapter's tables and figures with its words and the two run parameters that
    make it (:data:`VARIANT_NAMES`), and the form any other pair takes: the book's glossary lists them."""
    pairs = {name: pair for pair, name in VARIANT_NAMES.items()}
    terms = {name: f"{VARIANT_MEANINGS[name]}: conv_layer `{pairs[name][0]}`, norm_layer `{pairs[name][1]}`"
             for name in VARIANT_ORDER}
    terms["<conv_layer> + <norm_layer>"] = ("any other pair of the two run parameters, named by both; an argument of "
                                            "the convolution (`convnorm:1000`) never changes a variant's name")
    return terms


GLOSSARY = glossary()


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
            {noise_label(level): _published_cells(table[level], approx.get(level, pd.Series(dtype=bool)), digits)
             for level in table.columns},
            index=table.index,
        )
        blocks_text["published"] = shown
        css_blocks["published"] = best_two_css(table.rename(columns=noise_label) * 100.0, axis=0)
    frame = pd.concat(blocks_text, axis=1, names=["source", "label noise"]).fillna(MISSING_TEXT)
    css = pd.concat(css_blocks, axis=1).reindex(index=frame.index, columns=frame.columns, fill_value="")
    frame, css = with_converged_column(frame, css, runs, "variant")
    return frame.style.apply(lambda _: css.fillna(""), axis=None)


def _published_cells(values: pd.Series, approx: pd.Series, digits: int) -> list[str]:
    """One noise level's published column as text: ``94.5``, ``≈73.0`` for a value read as "about"; an
    approximate value equal to the row above's, which the paper gave once for both variants, reads
    ``= convnorm`` rather than repeating it as if it were a second measurement."""
    cells, previous = [], None
    for variant, value in values.items():
        rough = bool(approx.get(variant, False))
        if pd.isna(value):
            cells.append(MISSING_TEXT)
        elif rough and previous is not None and previous[1] == value and previous[2]:
            cells.append(f"= {previous[0]}")
        else:
            cells.append(("≈" if rough else "") + f"{100 * value:.{digits}f}")
        if not pd.isna(value):
            previous = (variant, value, rough)
    return cells


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


# --- stability and accuracy lost to noise ----------------------------------------------


LAST_EPOCHS = 10  # the published stability window: the std over a run's last 10 epochs


def run_stability(histories: pd.DataFrame, *, value: str = "test_acc", last: int = LAST_EPOCHS) -> pd.DataFrame:
    """One row per ``run_id``: the std of ``value`` over its last ``last`` epochs and its mean absolute change.

    ``histories`` is long, one row per epoch (``run_id``, ``epoch``, ``value``), as
    :func:`normtest_lib.report.results.collect_histories` returns. Epochs without a
    value (e.g. ``test_every_epoch: false``) are left out. A run with fewer than
    ``last`` epochs gets the std of all it has (``n_epochs`` says how many it has);
    fewer than two values give NaN, since one number has no spread and no change.
    A run is identified by (``study``, ``profile``, ``run_id``) where the frame has
    those columns; a run present under both ``results/`` and ``runs/`` counts once
    (the committed copy, as :func:`normtest_lib.report.results.drop_duplicate_runs`).
    Columns: the run's key, every other column constant within each run (its params
    and location), then ``{value}_std_last{last}``, ``{value}_mean_abs_change``, ``n_epochs``.
    """
    missing = [c for c in ("run_id", "epoch", value) if c not in histories.columns]
    if missing:
        raise KeyError(f"history frame has no column(s) {missing}; available: {list(histories.columns)}")
    key = [c for c in ("study", "profile", "run_id") if c in histories.columns]
    std_name, change_name = f"{value}_std_last{last}", f"{value}_mean_abs_change"
    if histories.empty:
        return pd.DataFrame(columns=[*key, std_name, change_name, "n_epochs"])
    histories = _one_copy_per_run(histories, key)
    frame = histories.assign(_value=pd.to_numeric(histories[value], errors="coerce")).dropna(subset=["_value"])
    frame = frame.sort_values([*key, "epoch"], kind="stable")
    rows = []
    for run, group in frame.groupby(key, sort=True, dropna=False):
        values = group["_value"].to_numpy(dtype=float)
        tail = values[-last:]
        rows.append(
            {
                **dict(zip(key, run)),
                std_name: float(np.std(tail, ddof=1)) if len(tail) >= 2 else float("nan"),
                change_name: float(np.mean(np.abs(np.diff(values)))) if len(values) >= 2 else float("nan"),
                "n_epochs": len(values),
            }
        )
    out = pd.DataFrame(rows, columns=[*key, std_name, change_name, "n_epochs"])
    carried = _constant_columns(histories, key, exclude={value, "epoch"})
    if carried:
        firsts = histories.groupby(key, sort=True, dropna=False)[carried].first().reset_index()
        out = firsts.merge(out, on=key, how="right")
    return out


# Within this many points of the reference's training accuracy (on its noisy labels), a variant fits its labels
# as far as the reference does, so moving less over the last epochs is stability and not slower learning.
FITS_AS_MUCH = 2.0


def stability_reading(per_run: pd.DataFrame, runs: pd.DataFrame, histories: pd.DataFrame, window: int,
                      reference: str = "bn", value: str = "val_acc") -> str:
    """The stability table read against the learning rate and against how far each variant learnt, in words.

    ``per_run`` is :func:`run_stability`'s frame (with ``variant`` and ``label_noise``), ``runs`` one row per
    complete run with ``train_acc_final`` (accuracy on the labels it trained on, noisy ones included), and
    ``histories`` the runs' epochs with ``lr``. A variant that moves less than ``reference`` over the last
    ``window`` epochs is called more stable only where it also fits its training labels within
    :data:`FITS_AS_MUCH` points of the reference; fitting fewer, it is a slower learner: a network that has
    learnt less has less left to move, and the same low learning rate damps both."""
    std_column = f"{value}_std_last{window}"
    if per_run.empty or std_column not in per_run.columns:
        return ""
    parts = [_window_lr_text(histories, window)]
    moved = per_run.assign(_std=100 * pd.to_numeric(per_run[std_column], errors="coerce"))
    moved = moved.groupby(["variant", "label_noise"])["_std"].mean()
    fitted = pd.Series(dtype=float)
    if "train_acc_final" in runs.columns:
        fitted = runs.assign(_fit=100 * pd.to_numeric(runs["train_acc_final"], errors="coerce"))
        fitted = fitted.groupby(["variant", "label_noise"])["_fit"].mean()
    for (variant, level), std in moved.items():
        if variant == reference or (reference, level) not in moved.index:
            continue
        reference_std = moved[(reference, level)]
        fit, reference_fit = fitted.get((variant, level), np.nan), fitted.get((reference, level), np.nan)
        where = f"at {noise_label(level)}"
        if np.isnan(std) or np.isnan(reference_std):
            continue
        if std >= reference_std:
            parts.append(f"{where}, `{variant}` moves as much as `{reference}` or more (std {std:.2f} against "
                         f"{reference_std:.2f} points): no sign of greater stability.")
        elif np.isnan(fit) or np.isnan(reference_fit):
            parts.append(f"{where}, `{variant}` moves less than `{reference}` (std {std:.2f} against {reference_std:.2f} "
                         "points), but without their training accuracy it cannot be told whether it is more stable or "
                         "has learnt less.")
        elif fit >= reference_fit - FITS_AS_MUCH:
            parts.append(f"{where}, `{variant}` moves less than `{reference}` (std {std:.2f} against {reference_std:.2f} "
                         f"points) while fitting as many of its training labels ({fit:.0f} % against {reference_fit:.0f} "
                         "%): more stable.")
        else:
            parts.append(f"{where}, `{variant}` moves less than `{reference}` (std {std:.2f} against {reference_std:.2f} "
                         f"points) but fits only {fit:.0f} % of its training labels against {reference_fit:.0f} %: a "
                         "slower learner, not a more stable one.")
    return " ".join(part[0].upper() + part[1:] for part in parts if part)


def _window_lr_text(histories: pd.DataFrame, window: int) -> str:
    """The learning rate(s) over the runs' last ``window`` epochs, in words; empty without an ``lr`` column."""
    if "lr" not in histories.columns or histories.empty:
        return ""
    last = histories.groupby("run_id")["epoch"].transform("max")
    tail = pd.to_numeric(histories.loc[histories["epoch"] > last - window, "lr"], errors="coerce").dropna()
    if tail.empty:
        return ""
    low, high = tail.min(), tail.max()
    rate = f"{low:.3g}" if np.isclose(low, high) else f"{low:.3g} to {high:.3g}"
    peak = pd.to_numeric(histories["lr"], errors="coerce").max()
    share = f", {peak / high:.0f} times below its peak of {peak:.3g}" if high < peak and not np.isclose(high, peak) else ""
    return (f"over the last {window} epochs the learning rate was {rate}{share}, so every variant's steps there are "
            "small and its accuracy moves little whatever its normalization.")


def _one_copy_per_run(histories: pd.DataFrame, key: list[str]) -> pd.DataFrame:
    """Drop a second copy of a run's epochs (a run both committed and local), keeping the committed one."""
    if "source" not in histories.columns:
        return histories
    histories = histories.reset_index(drop=True)
    preference = (histories["source"] != PREFERRED_SOURCE).to_numpy()
    ordered = histories.assign(_preference=preference).sort_values("_preference", kind="stable")
    chosen = ordered.groupby(key, sort=False, dropna=False)["source"].transform("first").sort_index()
    return histories[histories["source"] == chosen]


def _constant_columns(histories: pd.DataFrame, key: list[str], exclude: set[str]) -> list[str]:
    """Columns other than ``key`` and ``exclude`` that hold one value within every run (params, location)."""
    candidates = [c for c in histories.columns if c not in key and c not in exclude]
    if not candidates:
        return []
    as_text = histories[candidates].astype(str)  # str: NaN, tuples and mixed types compare as written
    spread = as_text.groupby([histories[k] for k in key], dropna=False).nunique(dropna=False).max()
    return [c for c in candidates if spread[c] <= 1]


LOST_COLUMNS = ("mean", "std", "n", "ci_low", "ci_high")


def accuracy_lost(
    runs: pd.DataFrame,
    metric: str = "test_acc_at_best_val",
    *,
    variant: str = "variant",
    noise: str = "label_noise",
    pair_on: str = "seed",
    scale: float = 100.0,
    confidence: float = CONFIDENCE,
) -> pd.DataFrame:
    """Per ``variant`` and noise level p > 0: the mean over seeds of metric(noise 0) - metric(noise p).

    Runs (one row each, columns ``variant``, ``noise``, ``pair_on``, ``metric``) are
    paired by seed within a variant, by
    :func:`normtest_lib.report.paired.paired_differences` (its rules: complete runs
    only when a ``status`` column says so, a seed counts only where both levels
    have a run, nothing but the seed may vary within a group), with the sign
    turned: a positive figure is accuracy *lost* to the noise. Returns one row per
    (variant, p), indexed like that function's frame, with ``mean``, ``std``, ``n``
    and the ``confidence`` t interval ``ci_low``, ``ci_high`` (NaN for n < 2), all
    scaled by ``scale`` (percentage points for accuracies by default). Empty (same columns and index
    levels) while no complete run has the clean level: a grid may finish its noisy runs first.
    """
    complete = runs[runs["status"] == "complete"] if "status" in runs.columns else runs
    if not (pd.to_numeric(complete[noise], errors="coerce") == 0.0).any():
        empty = pd.MultiIndex.from_arrays([[], []], names=[variant, noise])
        return pd.DataFrame({column: pd.Series(dtype=float) for column in LOST_COLUMNS}, index=empty)
    differences = paired_differences(
        runs, metric, noise, 0.0, [variant], pair_on, scale=scale, confidence=confidence
    )  # metric(p) - metric(0)
    lost = differences.copy()
    lost["mean"] = -differences["mean"]
    lost["ci_low"] = -differences["ci_high"]
    lost["ci_high"] = -differences["ci_low"]
    return lost[list(LOST_COLUMNS)]


def loss_difference(runs: pd.DataFrame, metric: str, variant: str, reference: str, level: float,
                    scale: float = 100.0) -> pd.Series:
    """Accuracy lost to noise ``level`` by ``variant`` minus that lost by ``reference``, paired by seed
    (negative: ``variant`` loses less). ``mean``, ``n``, ``ci_low``, ``ci_high`` in points."""
    complete = runs[runs["status"] == "complete"] if "status" in runs.columns else runs
    values = complete.assign(_value=pd.to_numeric(complete[metric], errors="coerce") * scale,
                             _noise=complete["label_noise"].astype(float))
    wide = values.pivot_table(index="seed", columns=["variant", "_noise"], values="_value", aggfunc="mean")
    needed = [(name, noise) for name in (variant, reference) for noise in (0.0, float(level))]
    if any(column not in wide.columns for column in needed):
        return pd.Series({"mean": np.nan, "n": 0, "ci_low": np.nan, "ci_high": np.nan})
    lost = {name: wide[(name, 0.0)] - wide[(name, float(level))] for name in (variant, reference)}
    per_seed = (lost[variant] - lost[reference]).dropna()
    low, high = confidence_interval(per_seed.to_numpy())
    return pd.Series({"mean": per_seed.mean(), "n": len(per_seed), "ci_low": low, "ci_high": high})


# --- what memorizing the wrong labels costs ---------------------------------------------------


def per_seed_cells(frame: pd.DataFrame, column: str, digits: int = 1) -> pd.DataFrame:
    """``column`` (one row per run, in points or percent) as ``mean ± std (n)`` over seeds, a row per variant
    and a column per noise level (``20 % noise``), variants in the book's order."""
    stats = aggregate_seeds(frame.dropna(subset=[column]), column, ["variant", "label_noise"])
    cells = stats.apply(lambda row: format_mean_std(row["mean"], row["std"], row["n"], digits), axis=1)
    table = cells.unstack("label_noise")
    table.columns = [noise_label(level) for level in table.columns]
    return table.reindex([name for name in variant_order(table.index) if name in table.index])


def memorization_cost(runs: pd.DataFrame, metric: str = "test_acc_at_best_val",
                      last: str = "final_test_acc") -> pd.DataFrame:
    """Per run: test accuracy at the epoch chosen on the clean validation split (``metric``), at the last epoch
    (``last``), and the first minus the last in points (``cost``: what training on past the chosen epoch
    costs, which grows as a network memorizes its wrong labels). Runs without ``last`` are left out."""
    if last not in runs.columns:
        return pd.DataFrame(columns=["run_id", "variant", "label_noise", "seed", metric, last, "cost"])
    frame = runs.assign(**{name: pd.to_numeric(runs[name], errors="coerce") for name in (metric, last)})
    frame = frame.dropna(subset=[metric, last])
    return frame[["run_id", "variant", "label_noise", "seed", metric, last]].assign(
        cost=100 * (frame[metric] - frame[last]))


def memorization_at_end(probes: pd.DataFrame, name: str = "flipped_fit_noisy") -> pd.DataFrame:
    """Per run at a noise level above 0: the ``memorization`` probe's ``name`` at the run's last epoch, in
    percent of the flipped training images (``flipped_fit_noisy``: predicted as their wrong label)."""
    rows = probes[(probes["probe"] == "memorization") & (probes["name"] == name)]
    rows = rows[rows["label_noise"].astype(float) > 0]
    if rows.empty:
        return pd.DataFrame(columns=["run_id", "variant", "label_noise", "seed", name])
    last = rows[rows["epoch"] == rows.groupby("run_id")["epoch"].transform("max")]
    return last[["run_id", "variant", "label_noise", "seed"]].assign(**{name: 100 * last["value"].to_numpy(dtype=float)})


def memorization_sentence(at_end: pd.DataFrame, classes: int = 10, name: str = "flipped_fit_noisy") -> str:
    """How far each variant memorized its wrong labels by its last epoch, per noise level, in words, against
    chance (a network guessing at random predicts a flipped image as its wrong label once in ``classes``)."""
    if at_end.empty:
        return ""
    parts = []
    for level, group in at_end.groupby("label_noise", sort=True):
        means = group.groupby("variant")[name].mean()
        listed = ", ".join(f"`{variant}` {means[variant]:.0f} %" for variant in variant_order(means.index))
        parts.append(f"at {noise_label(level)}, {listed}")
    chance = 100 / classes
    return (f"By the last epoch, the share of flipped training images predicted as their wrong label (mean over seeds): "
            f"{'; '.join(parts)}. Chance is about {chance:.0f} %: above it, a network has learnt wrong labels it was "
            "given, and the test accuracy it loses between the chosen and the last epoch (the table above) is what "
            "that memorization costs.")
