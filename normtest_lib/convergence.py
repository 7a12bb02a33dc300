"""Whether a run converged: the one rule behind every "converged" column, caption and answer of the book.

The rule, as the book states it. A run has converged when it is complete, its training accuracy over its
last :data:`ACCURACY_EPOCHS` (5) epochs is within :data:`ACCURACY_TOLERANCE` (1 point) of its best over any 5
consecutive epochs, and either

1. **it fits its training set**: the last epoch's weights classify at least :data:`FIT_ACCURACY` (95 %)
   of its training images correctly (``train_acc_final``: evaluation mode, no augmentation, the labels
   it trained on); or
2. **its training loss stopped falling while the learning rate could still move it**: over its
   **window** (the last fifth, at least :data:`MIN_WINDOW`, of the epochs it trained at
   :data:`ANNEALED_SHARE` (10 %) of its peak learning rate or more, and of those only the epochs after
   the last step decay, so that the drop a decay causes is not mistaken for learning), the
   least-squares line through the training losses changes by at most :data:`LOSS_TOLERANCE` (5 %)
   of their mean, or by at most :data:`LOSS_FLOOR` (0.01 nats) when the loss is near zero.

Why the low learning rates are left out of (2): below a tenth of its peak, the loss stops moving
whether or not the network has learnt. A first version judged the last fifth of every run and called
five of study 2's 8-epoch cosine runs converged at about 30 % training accuracy; a second judged the
epochs after the last step decay, and called a layer-norm network converged at 53 % training accuracy
after a step schedule had cut its learning rate to 1 % of its peak. Why (1): a network that fits its
training set has converged whatever its loss does next, and its loss keeps shrinking towards zero
(study 2's batch-norm networks: 99 % of their training images, the loss still halving at a tenth of the
peak rate). Why averages of 5 epochs for the accuracy: one epoch's training accuracy on study 3's
2,000 images moves by about a point from epoch to epoch, so a first version, which set the last epoch
against the best single one of 100, called five runs unconverged (1.1 to 1.4 points below their best)
whose accuracy had been flat for twenty epochs (their last 5 epochs 0.0 to 0.14 points below their best
5); an accuracy that falls at the end is still caught. A run without ``train_acc_final`` is judged by
(2) alone. Training loss and accuracy are the
epoch's averages over its augmented batches in training mode (``history.csv``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

LOSS_TOLERANCE = 0.05
# A network that classifies this share of its training images (evaluation mode, no augmentation) fits them.
FIT_ACCURACY = 0.95
LOSS_FLOOR = 0.01
ACCURACY_TOLERANCE = 0.01
# The training accuracy is judged as a mean over this many consecutive epochs (fewer in a shorter run).
ACCURACY_EPOCHS = 5
MIN_WINDOW = 3
WINDOW_SHARE = 0.2
# A step decay: the learning rate falls to at most half of the previous epoch's and stays there an epoch.
STEP_FACTOR = 0.5
# Epochs trained below this share of the peak learning rate are never judged for flatness.
ANNEALED_SHARE = 0.1
# How a reason starts when the rule had nothing to judge (a run not complete, no finite loss): such a run is
# neither converged nor not, and a page can say so.
NOT_JUDGED = "not judged"


@dataclass(frozen=True)
class Verdict:
    """A run's verdict: ``converged``, a reader's one-line ``reason``, and the numbers behind it."""

    converged: bool
    reason: str
    window: int = 0  # epochs judged
    loss_change: float = math.nan  # the fitted line's change over the window, relative to the window's mean loss
    loss_slope: float = math.nan  # per epoch, in nats
    accuracy_gap: float = math.nan  # best training accuracy over ACCURACY_EPOCHS epochs minus the last ones' (fraction)


def rule_text() -> str:
    """The rule of this module in a reader's words (Markdown), from its constants: what the book prints."""
    share = round(100 * WINDOW_SHARE)
    return (
        f"A run has converged when it is complete, its training accuracy averaged over its last {ACCURACY_EPOCHS} "
        f"epochs is within {100 * ACCURACY_TOLERANCE:g} point{'' if 100 * ACCURACY_TOLERANCE == 1 else 's'} of its "
        f"best average over {ACCURACY_EPOCHS} consecutive epochs (one epoch's accuracy moves by about a point on a "
        "small training set), and either "
        f"(1) it fits its training set: the last epoch's weights, in evaluation mode and without augmentation, classify "
        f"at least {100 * FIT_ACCURACY:g} % of its training images correctly (`train_acc_final`); or (2) its training "
        f"loss stopped falling while the learning rate could still move it: over the last {share} % of the epochs it "
        f"trained at {100 * ANNEALED_SHARE:g} % of its peak learning rate or more (at least {MIN_WINDOW}, and only "
        "epochs after the last step decay among them, so that the drop a decay causes is not taken for learning), the "
        f"least-squares line through the training losses changes by at most {100 * LOSS_TOLERANCE:g} % of their mean, "
        f"or by at most {LOSS_FLOOR:g} nats when the loss is near zero. Below a tenth of its peak the learning rate "
        "is too small for a flat loss to mean anything: the loss stops moving whether the network has learnt or not. "
        "A run that is not complete is not judged. Training loss and accuracy are each epoch's averages over its "
        "augmented batches in training mode."
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
    floor = ANNEALED_SHARE * max(finite) * (1 - 1e-9)  # a rate of exactly a tenth (0.1 -> 0.01) is judged
    cut = next((index for index, rate in enumerate(rates) if math.isfinite(rate) and rate < floor), len(rows))
    return list(rows[:cut])


def window_size(epochs: int) -> int:
    """The last fifth of ``epochs`` (rounded up), at least :data:`MIN_WINDOW`."""
    return max(MIN_WINDOW, math.ceil(WINDOW_SHARE * epochs))


def accuracy_gap(accuracies: Sequence[float]) -> float:
    """The best mean over :data:`ACCURACY_EPOCHS` consecutive epochs (all of them in a shorter run) minus the
    mean over the last ones: how far the training accuracy ended below its best (a fraction)."""
    values = np.asarray(accuracies, dtype=float)
    span = min(ACCURACY_EPOCHS, len(values))
    means = np.convolve(values, np.ones(span) / span, mode="valid")
    return float(means.max() - means[-1])


def loss_slope(train_loss: Sequence[float]) -> float:
    """The least-squares slope of the training loss per epoch over the last fifth of the epochs (NaN if fewer
    than two): what each run's summary records as ``train_loss_slope``."""
    losses = np.asarray([float(v) for v in train_loss], dtype=float)
    window = losses[-window_size(len(losses)):] if len(losses) else losses
    window = window[np.isfinite(window)]
    if len(window) < 2:
        return math.nan
    return float(np.polyfit(np.arange(len(window)), window, 1)[0])


def verdict(history: Sequence[dict[str, Any]], status: str = "complete", train_acc_final: float | None = None) -> Verdict:
    """The rule of this module applied to a run's history rows (``epoch``, ``train_loss``, ``train_acc``,
    ``lr``: ``history.csv`` read as dicts or a DataFrame's records), its summary's status and its
    ``train_acc_final`` (None when not recorded: the rule's second branch alone)."""
    if status != "complete":
        return Verdict(False, f"{NOT_JUDGED}: the run is {status}")
    rows = [row for row in history if _finite(row.get("train_loss")) and _finite(row.get("train_acc"))]
    if not rows:
        return Verdict(False, f"{NOT_JUDGED}: no finite training loss")
    gap = accuracy_gap([float(row["train_acc"]) for row in rows])
    at_best = gap <= ACCURACY_TOLERANCE
    fits = _finite(train_acc_final) and float(train_acc_final) >= FIT_ACCURACY
    judged = before_annealing(rows)
    step = last_step_decay([row.get("lr", math.nan) for row in judged])
    window = window_size(len(judged))
    if step is not None:
        window = min(window, len(judged) - step)
    numbers: dict[str, Any] = dict(accuracy_gap=gap)
    flat = False
    if MIN_WINDOW <= window <= len(judged):
        losses = np.asarray([float(row["train_loss"]) for row in judged[-window:]])
        slope = float(np.polyfit(np.arange(window), losses, 1)[0])
        change = slope * (window - 1)
        relative = change / max(float(losses.mean()), 1e-12)
        flat = abs(relative) <= LOSS_TOLERANCE or abs(change) <= LOSS_FLOOR
        numbers.update(window=window, loss_change=relative, loss_slope=slope)
    if not at_best:
        return Verdict(False, f"not converged: training accuracy over its last {min(ACCURACY_EPOCHS, len(rows))} epochs "
                              f"{100 * gap:.1f} points below its best", **numbers)
    if fits:
        return Verdict(True, f"converged: fits its training set ({100 * float(train_acc_final):.1f} % of its images)", **numbers)
    if flat:
        return Verdict(True, f"converged: training loss {numbers['loss_change']:+.1%} over {window} epochs at a tenth "
                             "of the peak learning rate or more", **numbers)
    fit_text = f"it fits {100 * float(train_acc_final):.1f} % of its training images, and " if _finite(train_acc_final) else ""
    if "loss_change" not in numbers:
        where = f" after the last step decay (epoch {judged[step]['epoch']})" if step is not None else ""
        return Verdict(False, f"not converged: {fit_text}too few epochs at a tenth of the peak learning rate or more{where} "
                              f"to judge its loss (fewer than {MIN_WINDOW})", **numbers)
    trend = "still falling" if numbers["loss_slope"] < 0 else "rising"
    return Verdict(False, f"not converged: {fit_text}its training loss was {trend}, {numbers['loss_change']:+.1%} over "
                          f"{window} epochs at a tenth of the peak learning rate or more", **numbers)


def _finite(value: Any) -> bool:
    try:
        return value is not None and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _float(value: Any) -> float:
    return float(value) if _finite(value) else math.nan
