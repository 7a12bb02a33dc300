"""Stability as numbers: how much test accuracy moves from epoch to epoch, and what label noise costs.

The course paper of study 3 claimed ConvNorm "more stable" from its curves and
"losing less accuracy as noise grows" from single runs. Both become numbers here:

- :func:`run_stability`, per run, from its history: ``test_acc_std_last10``, the
  sample standard deviation (ddof 1) of test accuracy over the run's last 10
  epochs (the plateau, where a stable network should not move), and
  ``test_acc_mean_abs_change``, the mean of |acc(e) - acc(e-1)| over all pairs of
  consecutive epochs (the whole run's jitter, the lr steps included);
- :func:`accuracy_lost`, per variant and noise level p: the mean over seeds of
  metric(0 %) - metric(p), paired by seed, with the 95 % t interval of
  :mod:`normtest_lib.report.paired` (positive: noise costs accuracy).

Both are per-seed figures; compare variants by their mean and spread over seeds
(:func:`normtest_lib.report.tables.aggregate_seeds`), never on one seed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .paired import CONFIDENCE, paired_differences
from .results import PREFERRED_SOURCE

LAST_EPOCHS = 10


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
    scaled by ``scale`` (percentage points for accuracies by default).
    """
    differences = paired_differences(
        runs, metric, noise, 0.0, [variant], pair_on, scale=scale, confidence=confidence
    )  # metric(p) - metric(0)
    lost = differences.copy()
    lost["mean"] = -differences["mean"]
    lost["ci_low"] = -differences["ci_high"]
    lost["ci_high"] = -differences["ci_low"]
    return lost[["mean", "std", "n", "ci_low", "ci_high"]]
