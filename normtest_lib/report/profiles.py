"""Which profile of a study a page reads: one rule for the study chapters, the landing page and the errata.

A study's runs come in profiles (``local``: the committed real-data runs, ``smoke``: the
synthetic pipeline check, ``paper``: the published protocol, ...). Each page names the profile it
prefers (its ``profile`` parameter) and reads it when the study has a complete run there; where it
has none (a fresh machine without ``results/``, a profile not run yet), the page falls back to the
profile with the most complete runs, so that it shows the fullest evidence there is instead of an
empty page. Every page reading one study through this rule with the same preference reads the
same runs: a study's chapter, its answer on the landing page and its errata evidence agree.
"""

from __future__ import annotations

from typing import Sequence

import pandas as pd


def pick_profile(runs: pd.DataFrame, study: str, preferred: str | Sequence[str] | None = ()) -> str | None:
    """The profile of ``study`` a page reads, from a :func:`~normtest_lib.report.results.collect_runs` frame.

    The rule: the first of ``preferred`` (one name or several, in order) in which ``study`` has a
    complete run; else the profile with the most complete runs of ``study``, ties going to the first
    name in sorted order; None when ``study`` has no complete run in any profile (the caller says
    what to run). Failed, diverged and running runs never make a profile count, nor do pretraining runs
    (:func:`~normtest_lib.report.results.pretraining_run_ids`): a profile whose only complete runs are the
    networks its other runs start from has answered nothing yet.
    """
    from .results import pretraining_run_ids

    names = (preferred,) if isinstance(preferred, str) else tuple(preferred or ())
    if runs.empty:
        return None
    of_study = runs[runs["study"] == study]
    complete = of_study[(of_study["status"] == "complete") & ~of_study["run_id"].isin(pretraining_run_ids(of_study))]
    if complete.empty:
        return None
    present = set(complete["profile"])
    for profile in names:
        if profile in present:
            return profile
    counts = complete["profile"].value_counts()
    # Sorted by count (descending), then by name: the choice never depends on the order runs were read in.
    fullest = sorted(counts.items(), key=lambda item: (-item[1], str(item[0])))
    return str(fullest[0][0])
