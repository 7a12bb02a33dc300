"""The finished runs of a grid whose fingerprint no longer verifies: what ``normtest run --rerun-stale`` reruns.

A run id is a hash of the parameters, not of the code, so a change to what a layer computes
leaves ids unchanged and the runner would skip the old runs. These are found by recomputing
each finished run's fingerprint (``verify.run``): a run that ``differs`` (or lost its
fingerprint) is stale. When one of the grid's pretraining runs is stale, every run started from it
is stale too (its start changed), without recomputing them. Runs made before fingerprints
existed have nothing to compare and are left alone: their reruns are their own issue.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable

from .run import FAILURES, Outcome, has_fingerprint, read_params, source_run_dir, verify_in_fresh_process

Log = Callable[[str], None]


def stale_runs(
    finished: Iterable[Path], *, pretrains: Iterable[Path] = (), root_dir: str | Path = ".", log: Log = print
) -> dict[Path, Outcome]:
    """The stale run folders among ``finished`` (the grid's pretraining runs, if any, given as ``pretrains``)."""
    finished = list(finished)
    stale: dict[Path, Outcome] = {}
    sources: dict[Path, Outcome] = {}  # each source run is verified once, however many runs started from it
    for pretrain in pretrains:
        if pretrain not in finished or not has_fingerprint(pretrain):
            continue
        outcome = verify_in_fresh_process(pretrain, root_dir=root_dir, sources=sources)
        sources[pretrain.resolve()] = outcome
        if outcome.status in FAILURES:
            log(f"{pretrain.name}  stale: {outcome.detail}; every run started from it is rerun too")
            stale[pretrain] = outcome
    for run in finished:
        if run in stale or not has_fingerprint(run):
            continue
        source = source_run_dir(read_params(run), Path(root_dir))
        old = next((old for old in stale if source is not None and source.resolve() == old.resolve()), None)
        if old is not None:
            stale[run] = stale[old]
            continue
        outcome = verify_in_fresh_process(run, root_dir=root_dir, sources=sources)
        if outcome.status in FAILURES:
            log(f"{run.name}  stale: {outcome.detail}")
            stale[run] = outcome
    return stale
