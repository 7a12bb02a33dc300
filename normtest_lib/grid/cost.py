"""What a grid profile costs in machine time, projected from one measured epoch per variant.

A profile is sized by measurement (``benchmarks/profile_cost.py`` measures, or reads the epochs
of the grid's own runs where they exist; this module groups and projects). Runs that differ
only in parameters that do not change the work of an epoch (the seed, the label noise, the
learning rate and its schedule, the input setting, the number of epochs) cost the same per
epoch: they are one *variant*, measured once. A run then costs its first epoch (which includes
compiling, when the run compiles) plus its other epochs at the measured steady rate, and the
profile's wall time on ``workers`` parallel workers is the makespan of the runs, longest first,
each started on the worker that frees first (the local executor starts runs in grid order as
workers free; longest-first is the schedule a sizing should assume, since the grid's order can
always be arranged so).
"""

from __future__ import annotations

import heapq
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# Parameters that leave the work of one epoch unchanged: the same network, data and batch do the
# same arithmetic whatever these are (the noise draw relabels images; an lr or input setting changes
# values, not operations). Everything else (model, layers, batch size, subset sizes, probes,
# evaluation settings, ...) defines a variant.
COST_NEUTRAL_KEYS = frozenset({
    "seed", "noise_seed", "label_noise", "label_noise_kind", "noisy_val",
    "lr", "momentum", "nesterov", "weight_decay", "schedule", "milestones", "gamma", "warmup_epochs",
    "label_smoothing", "input_norm", "stats_subset", "pretrained", "epochs",
    "data_root", "download", "deterministic",
})  # fmt: skip


def variant_key(params: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """The parameters that set an epoch's cost, as a hashable, order-independent key."""
    return tuple(sorted((key, repr(value)) for key, value in params.items() if key not in COST_NEUTRAL_KEYS))


def group_variants(runs: Iterable[tuple[str, Mapping[str, Any]]]) -> dict[tuple, list[str]]:
    """Run ids grouped by variant, in first-seen order; ``runs`` are (id, parameters) pairs."""
    groups: dict[tuple, list[str]] = {}
    for run_id, params in runs:
        groups.setdefault(variant_key(params), []).append(run_id)
    return groups


@dataclass(frozen=True)
class EpochCost:
    """One variant's measured seconds: its first epoch (with any compiling) and a later one."""

    first: float
    steady: float

    def run_seconds(self, epochs: int) -> float:
        """A run of ``epochs`` epochs: the first as measured, the rest at the steady rate."""
        if epochs < 1:
            raise ValueError(f"a run has at least one epoch, got {epochs}")
        return self.first + (epochs - 1) * self.steady


def cost_from_history(rows: Sequence[Mapping[str, Any]]) -> EpochCost | None:
    """A variant's cost read from a run of it (its ``history.csv`` rows): the first epoch as it ran and,
    as the steady rate, the median of the later ones (a resumed run compiles again in its first epoch
    after the resume: the median keeps such an epoch from setting the rate). None under two epochs."""
    seconds = [float(row["seconds"]) for row in rows if row.get("seconds") is not None]
    if len(seconds) < 2:
        return None
    return EpochCost(first=seconds[0], steady=statistics.median(seconds[1:]))


def makespan(durations: Sequence[float], workers: int) -> float:
    """Wall seconds for jobs of these ``durations`` on ``workers`` workers, longest first, each
    job started on the worker that frees first."""
    if workers < 1:
        raise ValueError(f"at least one worker, got {workers}")
    if not durations:
        return 0.0
    finish = [0.0] * min(workers, len(durations))  # a heap of the workers' finishing times
    for duration in sorted(durations, reverse=True):
        heapq.heapreplace(finish, finish[0] + duration)
    return max(finish)
