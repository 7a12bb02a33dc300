"""Sentences generated from results, so that a chapter's prose follows its numbers.

A chapter states its conclusions with these instead of typing them: when a run
changes, the sentence changes with it.
"""

from __future__ import annotations

import pandas as pd

from .paired import significant, within_noise


def _describe(name: str, row: pd.Series, digits: int) -> str:
    interval = f"[{row['ci_low']:+.{digits}f}, {row['ci_high']:+.{digits}f}]"
    return f"{name} {row['mean']:+.{digits}f} {interval}"


def _name(key: object, levels: list[str], compare: str) -> str:
    """``instance`` alone, or ``instance on cifar10-jpeg`` when the table has more than the compared level."""
    values = key if isinstance(key, tuple) else (key,)
    by_level = dict(zip(levels, values))
    others = [f"{level} {value}" for level, value in by_level.items() if level != compare]
    setting = f"`{by_level[compare]}`"
    return setting + (f" ({', '.join(others)})" if others else "")


def paired_sentence(differences: pd.DataFrame, compare: str, baseline: str, unit: str = "points", digits: int = 1) -> str:
    """Which paired differences exceed the seed-to-seed spread, in one paragraph.

    ``differences`` is :func:`normtest_lib.report.paired.paired_differences`' frame
    (its index ends in the ``compare`` level). A difference exceeds the spread
    when its 95 % interval excludes 0; it is within noise when the interval
    contains 0; with fewer than two seeds nothing can be said, and the
    sentence says so.
    """
    if differences.empty:
        return f"No setting has complete runs paired with `{baseline}` by seed, so nothing can be compared yet."
    levels = list(differences.index.names)
    exceeds = differences[significant(differences)].sort_values("mean")
    noise = differences[within_noise(differences)]
    undecided = differences[~significant(differences) & ~within_noise(differences)]
    total = len(exceeds) + len(noise)
    parts = []
    if len(exceeds):
        listed = "; ".join(_describe(_name(key, levels, compare), row, digits) for key, row in exceeds.iterrows())
        verb = "exceeds" if len(exceeds) == 1 else "exceed"
        parts.append(
            f"Against `{baseline}`, {len(exceeds)} of {total} differences {verb} the seed-to-seed spread "
            f"(their 95 % interval excludes 0; mean difference in {unit} and interval): {listed}."
        )
    elif len(noise):
        decided = len(noise)
        parts.append(
            f"Against `{baseline}`, {'the one difference with an interval does not exceed' if decided == 1 else f'none of the {decided} differences with an interval exceeds'} "
            "the seed-to-seed spread."
        )
    if len(noise):
        listed = "; ".join(_describe(_name(key, levels, compare), row, digits) for key, row in noise.iterrows())
        parts.append(f"Within noise (the interval contains 0): {listed}.")
    if len(undecided):
        names = ", ".join(_name(key, levels, compare) for key in undecided.index)
        parts.append(f"With fewer than two paired seeds, no interval exists for {names}.")
    return " ".join(parts)
