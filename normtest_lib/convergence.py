"""Whether a run converged: the one rule behind every "converged" column, caption and answer of the book.

The rule, as the book states it. A run has converged when, over its **window** (the last fifth of its
epochs, at least :data:`MIN_WINDOW` of them, and only epochs after its last step decay of the learning
rate, so that the drop a step decay causes is not mistaken for learning; with a schedule that anneals
the learning rate towards zero without steps (cosine), the last fifth of the epochs before it falls below
:data:`ANNEALED_SHARE` (10 %) of its peak, since near zero the loss stops moving whether or not the
network has learnt):

1. **its training loss is flat**: the least-squares line through the window's training losses changes,
   from the window's first epoch to its last, by at most :data:`LOSS_TOLERANCE` (5 %) of the window's
   mean training loss, or by at most :data:`LOSS_FLOOR` (0.01 nats) when the loss is near zero; and
2. **its training accuracy is at its best**: the last epoch's training accuracy is within
   :data:`ACCURACY_TOLERANCE` (1 point) of the best training accuracy of the run.

A run that is not complete, or too short for a window of :data:`MIN_WINDOW` epochs after its last
step decay, is not judged converged. Training loss and accuracy are the epoch's averages over its
augmented batches in training mode (``history.csv``), which every run records.

Why the annealed tail is left out: a first version of this rule judged the last fifth of every run,
and called five of study 2's 8-epoch cosine runs converged at about 30 % training accuracy; their
loss had flattened because the learning rate had, not because the networks had learnt. The book also
shows ``train_acc_final`` (accuracy on the training subset, evaluation mode, no augmentation, at the
last epoch) beside every verdict, and a study's sizing asks for a minimum of it on top of the rule.
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
# Without step decays, epochs trained below this share of the peak learning rate are not judged.
ANNEALED_SHARE = 0.1


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
        "after its last step decay of the learning rate, so that the drop a decay causes is not taken for learning; "
        "with a schedule that anneals the learning rate towards zero without steps, such as cosine, the last "
        f"{share} % of the epochs before it falls below {100 * ANNEALED_SHARE:g} % of its peak, since near zero the "
        "loss stops moving whether the network has learnt or not), "
        f"(1) its training loss is flat: the least-squares line through those epochs' training losses changes by at "
        f"most {100 * LOSS_TOLERANCE:g} % of their mean, or by at most {LOSS_FLOOR:g} nats when the loss is near zero; "
        f"and (2) its last epoch's training accuracy is within {100 * ACCURACY_TOLERANCE:g} point"
        f"{'' if 100 * ACCURACY_TOLERANCE == 1 else 's'} of its best. A run that is not complete, or too short for "
        f"{MIN_WINDOW} such epochs, is not judged converged. Training loss and accuracy are each epoch's averages over "
        "its augmented batches in training mode. The training accuracy of the last epoch's weights, in evaluation "
        "mode and without augmentation (`train_acc_final`), stands beside each verdict."
    )


def last_step_decay(learning_rates: Sequence[float]) -> int | None:
    """The index of the last epoch whose learning rate is a step decay, None without one.

    A schedule is a step schedule when its learning rate stays the same from one epoch to the next
    somewhere (multistep: constant between milestones); in one, every epoch whose rate is at most half
    the previous epoch's is a step decay, the last epoch included. A schedule that falls every epoch
    (cosine) has none: its tail is handled by :func:`before_annealing`.
    """
    rates = [_float(rate) for rate in learning_rates]
    pairs = list(zip(rates, rates[1:]))
    if not any(math.isfinite(a) and math.isclose(a, b, rel_tol=1e-9) for a, b in pairs):
        return None
    steps = [index + 1 for index, (a, b) in enumerate(pairs) if math.isfinite(a) and b <= STEP_FACTOR * a]
    return steps[-1] if steps else None


def before_annealing(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The epochs before the learning rate first falls below :data:`ANNEALED_SHARE` of its peak (all of them
    when it never does, or when the rows record no learning rate)."""
    rates = [_float(row.get("lr")) for row in rows]
    finite = [rate for rate in rates if math.isfinite(rate)]
    if not finite:
        return list(rows)
    floor = ANNEALED_SHARE * max(finite)
    cut = next((index for index, rate in enumerate(rates) if math.isfinite(rate) and rate < floor), len(rows))
    return list(rows[:cut])


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
    step = last_step_decay([row.get("lr", math.nan) for row in rows])
    if step is None:
        rows = before_annealing(rows)
    window = window_size(len(rows))
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


def _float(value: Any) -> float:
    return float(value) if _finite(value) else math.nan
