"""Whether the runs behind a table, figure or answer converged, for every page of the book.

The verdict itself is :func:`normtest_lib.convergence.verdict`; this module only reads it for a frame of runs.
A run's summary records it since the engine computes it at the end of a run (``converged``, ``convergence``,
``train_acc_final``); for a run whose summary predates those keys, the verdict is computed here from its
``history.csv`` by the same function, and its ``train_acc_final`` is not recorded (NaN, shown as
:data:`NOT_RECORDED`): the history's last ``train_acc`` (a running average over augmented batches in training
mode) is kept beside it as ``train_acc_last_epoch``, and a reader is told which of the two a number is.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import pandas as pd

from ..convergence import verdict
from ..run_files import HISTORY, SUMMARY

NOT_RECORDED = "not recorded"
CONVERGED_COLUMN = "converged (runs)"
COLUMNS = ("converged", "convergence", "train_acc_final", "train_acc_last_epoch")


def read_verdict(folder: str | Path) -> dict[str, object]:
    """One run folder's ``converged``, ``convergence``, ``train_acc_final`` and ``train_acc_last_epoch``:
    :func:`~normtest_lib.convergence.verdict` of its history and ``train_acc_final`` (the summary's recorded
    verdict only when the folder has no history)."""
    folder = Path(folder)
    try:
        summary = json.loads((folder / SUMMARY).read_text())
    except (OSError, ValueError):
        summary = {}
    try:
        history = pd.read_csv(folder / HISTORY)
    except (OSError, ValueError, pd.errors.EmptyDataError):
        history = pd.DataFrame(columns=["epoch", "train_loss", "train_acc", "lr"])
    last = pd.to_numeric(history.get("train_acc", pd.Series(dtype=float)), errors="coerce").dropna()
    final = summary.get("train_acc_final")
    if len(history) or "converged" not in summary:
        # Judged again with today's rule, so that a change of the rule reaches every committed run.
        judged = verdict(history.to_dict("records"), str(summary.get("status", "missing")), final)
        converged, reason = judged.converged, judged.reason
    else:
        converged, reason = bool(summary["converged"]), str(summary.get("convergence", ""))
    return {
        "converged": converged,
        "convergence": reason,
        "train_acc_final": float(final) if final is not None else float("nan"),
        "train_acc_last_epoch": float(last.iloc[-1]) if len(last) else float("nan"),
    }


def add_convergence(runs: pd.DataFrame) -> pd.DataFrame:
    """``runs`` (one row per run, with ``path``) with the :data:`COLUMNS` filled in for every run; a frame that
    already has them all is returned as it is, one without ``path`` gets them empty (nothing to judge)."""
    if set(COLUMNS) <= set(runs.columns):
        return runs
    verdicts = [read_verdict(path) if isinstance(path, str) and path else {} for path in runs.get("path", [None] * len(runs))]
    frame = runs.copy()
    for column in COLUMNS:
        values = [found.get(column) for found in verdicts]
        if column == "converged":  # a run whose folder says nothing is not judged converged
            values = [bool(value) if value is not None else False for value in values]
        elif column != "convergence":
            values = [float("nan") if value is None else value for value in values]
        frame[column] = values
    frame.attrs = dict(runs.attrs)
    return frame


def verdicts_per_run(frame: pd.DataFrame) -> pd.Series:
    """``converged`` per distinct run of a frame of runs, histories or probes (indexed by ``run_id``), read from
    its ``converged`` column or else from each run's folder (``path``); empty when neither is there."""
    if not len(frame) or "run_id" not in frame.columns:
        return pd.Series(dtype=bool)
    if "converged" in frame.columns:
        return frame.groupby("run_id")["converged"].first().astype(bool)
    if "path" not in frame.columns:
        return pd.Series(dtype=bool)
    paths = frame.groupby("run_id")["path"].first()
    return pd.Series({run: bool(read_verdict(path)["converged"]) for run, path in paths.items()}, dtype=bool)


def converged_text(converged: Sequence[bool] | pd.Series) -> str:
    """``2 of 3``: how many of these runs converged."""
    values = [bool(value) for value in converged]
    return f"{sum(values)} of {len(values)}"


def converged_by(runs: pd.DataFrame, keys: str | Sequence[str]) -> pd.Series:
    """``converged_text`` per group of ``keys`` of a frame of runs (its ``converged`` column added when absent)."""
    runs = add_convergence(runs)
    return runs.groupby(keys if isinstance(keys, str) else list(keys))["converged"].agg(converged_text).rename(CONVERGED_COLUMN)


def runs_behind(frame: pd.DataFrame) -> str:
    """A caption's count of the runs behind a figure or table and how many converged: ``12, none converged``,
    ``12, all converged``, ``12, 5 converged`` (``12`` alone when no verdict can be read)."""
    verdicts = verdicts_per_run(frame)
    count = int(frame["run_id"].nunique()) if len(frame) and "run_id" in frame.columns else 0
    if count == 0 or len(verdicts) < count:
        return str(count)
    done = int(verdicts.sum())
    converged = "none" if done == 0 else "all" if done == count else str(done)
    return f"{count}, {converged} converged"


def caption_note(runs: pd.DataFrame) -> str:
    """``runs converged: 0 of 12``, for a table's caption; empty without runs or verdicts."""
    verdicts = verdicts_per_run(runs)
    return f"runs converged: {converged_text(verdicts)}" if len(verdicts) else ""


def with_converged_column(table: pd.DataFrame, css: pd.DataFrame, runs: pd.DataFrame | None,
                          keys: str | Sequence[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """An aggregated table (rows: groups of ``keys``) and its CSS frame with a last column
    :data:`CONVERGED_COLUMN` (``2 of 3`` per row), under ``ours`` when the columns have two levels.

    Added only when ``runs`` can say (a ``converged`` or ``path`` column): a fabricated frame gets no column."""
    if runs is None or not len(runs) or not ({"converged", "path"} & set(runs.columns)):
        return table, css
    counts = converged_by(runs, keys)
    column = ("ours", CONVERGED_COLUMN) if table.columns.nlevels == 2 else CONVERGED_COLUMN
    table = table.copy()
    table[column] = counts.reindex(table.index).fillna("").to_numpy()
    css = css.reindex(index=table.index, columns=table.columns, fill_value="")
    return table, css
