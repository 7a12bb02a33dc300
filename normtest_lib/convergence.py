"""Whether a run converged: the one rule behind every "converged" column, caption and answer of the book.

The rule, as the book states it. A run has converged when, over its **window** (the last fifth of its
epochs, at least :data:`MIN_WINDOW` of them, and only epochs after its last step decay of the learning
rate, so that the drop a step decay causes is not mistaken for learning):

1. **its training loss is flat**: the least-squares line through the window's training losses changes,
   from the window's first epoch to its last, by at most :data:`LOSS_TOLERANCE` (5 %) of the window's
   mean training loss, or by at most :data:`LOSS_FLOOR` (0.01 nats) when the loss is near zero; and
2. **its training accuracy is at its best**: the last epoch's training accuracy is within
   :data:`ACCURACY_TOLERANCE` (1 point) of the best training accuracy of the run.

A run that is not complete, or too short for a window of :data:`MIN_WINDOW` epochs after its last
step decay, is not judged converged. Training loss and accuracy are the epoch's averages over its
augmented batches in training mode (``history.csv``), which every run records.

What the rule cannot see: a schedule that anneals the learning rate to zero (cosine) flattens the
loss by itself at the end, whether the network had learnt its training set or not. The book
therefore shows ``train_acc_final`` (accuracy on the training subset, evaluation mode, no
augmentation, at the last epoch) beside every verdict, and a study's sizing asks for a minimum of
it on top of the rule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

LOSS_TOLERANCE = 0.05
LOSS_FLOOR = 0.01
ACCURACY_TOLERANCE = 0.01
MIN_WINDOW = 3
WINDOW_SHARE = 0.2
# A step decay: the learning rate falls to at most half of the previous epoch's and stays there an epoch.
STEP_FACTOR = 0.5


@dataclass(frozen=True)
class Verdict:
    """A run's verdict: ``converged``, a reader's one-line ``reason``, and the numbers behind it."""

    converged: bool
    reason: str
    window: int = 0  # epochs judged
    loss_change: float = math.nan  # the fitted line's change over the window, relative to the window's mean loss
    loss_slope: float = math.nan  # per epoch, in nats
    accuracy_gap: float = math.nan  # best training accuracy minus the last epoch's (fraction)


def rule_text() -> str:
    """The rule of this module in a reader's words (Markdown), from its constants: what the book prints."""
    share = round(100 * WINDOW_SHARE)
    return (
        f"A run has converged when, over the last {share} % of its epochs (at least {MIN_WINDOW}, and only epochs "
        "after its last step decay of the learning rate, so that the drop a decay causes is not taken for learning), "
        f"(1) its training loss is flat: the least-squares line through those epochs' training losses changes by at "
        f"most {100 * LOSS_TOLERANCE:g} % of their mean, or by at most {LOSS_FLOOR:g} nats when the loss is near zero; "
        f"and (2) its last epoch's training accuracy is within {100 * ACCURACY_TOLERANCE:g} point"
        f"{'' if 100 * ACCURACY_TOLERANCE == 1 else 's'} of its best. A run that is not complete, or too short for "
        f"{MIN_WINDOW} such epochs, is not judged converged. Training loss and accuracy are each epoch's averages over "
        "its augmented batches in training mode. The rule cannot see a schedule that anneals the learning rate to zero "
        "(cosine), which flattens the loss whether the network has learnt its training set or not; that is why the "
        "training accuracy of the last epoch's weights, in evaluation mode and without augmentation "
        "(`train_acc_final`), stands beside each verdict."
    )


def last_step_decay(learning_rates: Sequence[float]) -> int | None:
    """The index of the last epoch whose learning rate is a step decay (at most half the previous epoch's and
    the same in the next epoch); None without one. A schedule that falls every epoch (cosine) has none."""
    rates = [float(rate) for rate in learning_rates]
    last = None
    for index in range(1, len(rates) - 1):
        if rates[index] <= STEP_FACTOR * rates[index - 1] and math.isclose(rates[index + 1], rates[index], rel_tol=1e-9):
            last = index
    return last


def window_size(epochs: int) -> int:
    """The last fifth of ``epochs`` (rounded up), at least :data:`MIN_WINDOW`."""
    return max(MIN_WINDOW, math.ceil(WINDOW_SHARE * epochs))


def loss_slope(train_loss: Sequence[float]) -> float:
    """The least-squares slope of the training loss per epoch over the last fifth of the epochs (NaN if fewer
    than two): what each run's summary records as ``train_loss_slope``."""
    losses = np.asarray([float(v) for v in train_loss], dtype=float)
    window = losses[-window_size(len(losses)):] if len(losses) else losses
    window = window[np.isfinite(window)]
    if len(window) < 2:
        return math.nan
    return float(np.polyfit(np.arange(len(window)), window, 1)[0])


def verdict(history: Sequence[dict[str, Any]], status: str = "complete") -> Verdict:
    """The rule of this module applied to a run's history rows (``epoch``, ``train_loss``, ``train_acc``,
    ``lr``: ``history.csv`` read as dicts or a DataFrame's records) and its summary's status."""
    if status != "complete":
        return Verdict(False, f"not judged: the run is {status}")
    rows = [row for row in history if _finite(row.get("train_loss")) and _finite(row.get("train_acc"))]
    if not rows:
        return Verdict(False, "not judged: no finite training loss")
    window = window_size(len(rows))
    step = last_step_decay([row.get("lr", math.nan) for row in rows])
    if step is not None:
        window = min(window, len(rows) - step)
    if window < MIN_WINDOW or window > len(rows):
        where = f" after the last step decay (epoch {rows[step]['epoch']})" if step is not None else ""
        return Verdict(False, f"too short to judge: fewer than {MIN_WINDOW} epochs{where}", window)
    losses = np.asarray([float(row["train_loss"]) for row in rows[-window:]])
    slope = float(np.polyfit(np.arange(window), losses, 1)[0])
    change = slope * (window - 1)
    relative = change / max(float(losses.mean()), 1e-12)
    accuracies = [float(row["train_acc"]) for row in rows]
    gap = max(accuracies) - accuracies[-1]
    flat = abs(relative) <= LOSS_TOLERANCE or abs(change) <= LOSS_FLOOR
    at_best = gap <= ACCURACY_TOLERANCE
    numbers = dict(window=window, loss_change=relative, loss_slope=slope, accuracy_gap=gap)
    if flat and at_best:
        return Verdict(True, f"converged: training loss {relative:+.1%} over the last {window} epochs", **numbers)
    if not flat:
        trend = "still falling" if change < 0 else "rising"
        return Verdict(False, f"not converged: training loss {trend}, {relative:+.1%} over the last {window} epochs", **numbers)
    return Verdict(False, f"not converged: training accuracy {100 * gap:.1f} points below its best", **numbers)


def _finite(value: Any) -> bool:
    try:
        return value is not None and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False
