"""How many runs: one function per meaning, and the words every page states each count in.

A page of this book states three different counts of runs, and a reader must never mistake one for another:

- **the runs of a profile** (:func:`profile_count`): how many runs its grid lists (what ``normtest run GRID
  --profile P --dry-run`` prints, pretraining runs included:
  :func:`~normtest_lib.report.reproducibility.grid_run_count`),
  how many run folders of it were found, and how many of those are complete, with the pretraining runs among
  them counted apart (a run that other runs of the profile start from is no cell of the study). Its words,
  :meth:`ProfileCount.text`: "5 of the 27 runs in the `local` profile's grid are complete";
- **the runs behind an answer or a table** (:func:`behind_text`): the complete runs it reads, a subset of the
  profile's ("this answer rests on 21 of them: the runs at batch 128 with the main optimizer");
- **the runs behind a figure** (:func:`~normtest_lib.report.converged.runs_behind`, in every figure caption).

The landing page (its answers' evidence and its provenance table), the study chapters, the errata chapter and the
reproducibility appendix all count through these functions, so two pages never give two numbers for one set of
runs; ``tests/test_counts.py`` checks that they agree on a fabricated results folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .results import pretraining_run_ids

COMPLETE = "complete"


def runs_word(n: int, what: str = "run") -> str:
    """``1 run``, ``3 runs`` (``what`` may be several words: ``1 pretraining run``)."""
    return f"{n} {what}" if n == 1 else f"{n} {what}s"


@dataclass(frozen=True)
class ProfileCount:
    """The runs of one study's profile: listed by its grid, found, complete, and the pretraining runs among the
    complete ones; ``others`` are the found runs that are not complete, by status."""

    study: str
    profile: str
    grid: int | None  # the runs the grid lists for the profile, pretraining runs included; None: no such grid
    found: int
    complete: int
    pretraining: int = 0
    others: tuple[tuple[str, int], ...] = ()

    @property
    def cells(self) -> int:
        """The complete runs that are the study's cells (fine-tuning runs, where a profile pretrains its own)."""
        return self.complete - self.pretraining

    def text(self) -> str:
        """The count in words: ``27 of the 27 runs in the `local` profile's grid are complete``, with the
        pretraining runs apart (``(2 pretraining runs and 108 fine-tuning runs)``) and the runs found that are not
        complete (``; not complete: 1 failed``)."""
        verb = "is" if self.complete == 1 else "are"
        if self.grid is not None and self.complete <= self.grid:
            grid = f"the {runs_word(self.grid)} in the `{self.profile}` profile's grid"
            text = f"{self.complete} of {grid} {verb} complete"
        else:
            text = f"{runs_word(self.complete)} of the `{self.profile}` profile {verb} complete"
            if self.grid is not None:
                text += f" (its grid now lists {self.grid})"
        if self.pretraining:
            pretraining, cells = runs_word(self.pretraining, "pretraining run"), runs_word(self.cells, "fine-tuning run")
            text += f" ({pretraining} and {cells})"
        if self.others:
            text += "; not complete: " + ", ".join(f"{n} {status}" for status, n in self.others)
        return text

    def cell(self) -> str:
        """The count for a table's cell: ``5 of 27`` (complete of the grid's), or ``5`` without a grid."""
        return f"{self.complete} of {self.grid}" if self.grid is not None else str(self.complete)


def profile_count(runs: pd.DataFrame, study: str, profile: str, grid_file: str | Path | None = None) -> ProfileCount:
    """:class:`ProfileCount` of ``study``'s ``profile`` in ``runs`` (a :func:`~normtest_lib.report.results.collect_runs`
    frame, any studies and profiles), its grid's count read from ``grid_file`` (None: not known)."""
    from .reproducibility import grid_run_count

    grid = grid_run_count(grid_file, profile) if grid_file is not None else None
    if runs.empty or not {"study", "profile", "status"} <= set(runs.columns):
        return ProfileCount(study, profile, grid, 0, 0)
    found = runs[(runs["study"] == study) & (runs["profile"] == profile)]
    complete = found[found["status"] == COMPLETE]
    pretraining = int(complete["run_id"].astype(str).isin(pretraining_run_ids(found)).sum()) if "run_id" in complete else 0
    statuses = found.loc[found["status"] != COMPLETE, "status"].astype(str).value_counts()
    others = tuple(sorted((str(status), int(n)) for status, n in statuses.items()))
    return ProfileCount(study, profile, grid, len(found), len(complete), pretraining, others)


def behind_text(n: int, count: ProfileCount | None = None, which: str = "", what: str = "this answer") -> str:
    """The runs ``what`` rests on, as a share of the profile's complete runs: ``this answer rests on all 27 of
    them``, ``... on 21 of them: the runs at batch 128`` (``which`` says which, where given); without ``count``,
    ``this answer rests on 21 complete runs``."""
    if count is None:
        text = f"{what} rests on {runs_word(n, 'complete run')}"
    elif n == count.complete:
        text = f"{what} rests on {'it' if n == 1 else f'all {n} of them'}"
    else:
        text = f"{what} rests on {n} of them"
    return f"{text}: {which}" if which else text
