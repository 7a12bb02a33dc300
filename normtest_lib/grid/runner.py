"""Execute a grid: one papermill run of the experiment notebook per run.

:func:`run_grid` is what ``normtest run PARAMS.yml --profile P`` calls. Each run
executes the grid's notebook (default ``notebooks/run_experiment.ipynb``) with
the run's parameters plus ``out_dir`` into ``runs/<study>/<profile>/<run id>/``,
where the executed notebook lies beside the engine's files.

Bookkeeping, so a grid can be interrupted and rerun at any time:

- A run whose ``summary.json`` says ``complete`` or ``diverged`` is finished and
  skipped. Anything else (no summary, ``running``, ``failed``) runs again; the
  engine resumes an interrupted run from its folder's checkpoint.
- A finished result is never replaced by a half-finished one: the engine
  writes its files atomically, the executed notebook is written under a
  temporary name and renamed when papermill returns, and this module touches
  ``summary.json`` only to mark a run failed that is not finished.
- A run that fails (papermill raises ``PapermillExecutionError``; the executed
  notebook shows the error) is recorded in ``summary.json`` as ``failed`` with
  the error, and the grid goes on. The exit code is nonzero if any run failed.
- A grid's pretraining runs (``pretrain``; one per combination of the
  ``follow`` values, see ``spec.py``) execute before every run that starts
  from one, beside each other only. A run whose pretraining run did not
  complete is not started and fails naming it; a finished pretraining run
  whose ``best.pt`` is missing (weights are never committed) is rebuilt when
  an unfinished run starting from it needs it.
- With ``rerun_stale`` (``--rerun-stale``), a finished run whose fingerprint no
  longer verifies with the current code (``normtest_lib/verify/stale.py``) runs
  again, its old record files moved to ``previous/`` in its folder first; with
  ``dry_run`` such runs are listed as ``stale``.
- Under a committed results root (``--runs-root results``), a working tree
  with uncommitted changes under ``normtest_lib/`` is refused before any run
  starts: committed results always name the commit that made them.
- Two grids, or two workers, never execute the same run at once: each run
  folder has a ``.lock`` file locked with ``flock`` (released by the kernel
  when its holder dies, so a dead holder's lock is simply taken over) holding
  the owner's pid and host for messages. The file is removed on a clean
  finish; a new owner that finds one left behind stops the dead owner's
  orphaned kernel (found by its ``NORMTEST_RUN_DIR`` environment variable)
  before resuming the run.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..errors import ConfigError
from ..io import write_json
from ..run_files import FINISHED
from ..run_files import RUN_NOTEBOOK as NOTEBOOK_NAME
from .execute import RunOutcome, RunTask, execute_run, mark_failed, read_status
from .executors import check_options, make_executor
from .spec import PRETRAIN_WEIGHTS, Grid, load_grid

GRID_INDEX_NAME = "grid.json"


@dataclass
class RunRecord:
    """One run's fate in this invocation of the grid."""

    run_id: str
    status: str  # done, diverged, failed, skipped (finished before), busy (running elsewhere), pending (dry run)
    run_dir: Path
    varying: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    error: str | None = None
    summary_status: str | None = None  # summary.json's status afterwards
    label: str | None = None  # what the lines about it say instead of its varying values (a pretraining run)


@dataclass
class GridReport:
    """The outcome of :func:`run_grid`; ``exit_code`` is nonzero if any run failed."""

    study: str
    profile: str
    runs_dir: Path
    records: list[RunRecord]
    wall_seconds: float
    dry_run: bool = False

    def _count(self, *statuses: str) -> int:
        return sum(record.status in statuses for record in self.records)

    @property
    def done(self) -> int:
        return self._count("done")

    @property
    def skipped(self) -> int:
        """Runs not executed: finished before, or being executed by another grid."""
        return self._count("skipped", "busy")

    @property
    def failed(self) -> int:
        return self._count("failed")

    @property
    def diverged(self) -> int:
        return self._count("diverged")

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0

    def summary_line(self) -> str:
        return (
            f"done {self.done}, skipped {self.skipped}, failed {self.failed}, "
            f"diverged {self.diverged}, wall time {self.wall_seconds:.1f}s"
        )


def run_grid(
    grid_path: str | os.PathLike[str],
    profile: str,
    *,
    executor: str = "local",
    workers: int | None = None,
    runs_root: str | os.PathLike[str] = "runs",
    dry_run: bool = False,
    scheduler: str | None = None,
    retries: int = 1,
    gpus: list[str] | None = None,
    runs_per_gpu: int = 1,
    progress: bool | None = None,
    log: Callable[[str], None] = print,
    rerun_stale: bool = False,
) -> GridReport:
    """Execute every unfinished run of a grid file's profile; see the module docstring.

    ``progress``: show a progress bar (None: only when stderr is a terminal).
    ``log`` receives one line per finished run and the summary line.
    Raises :class:`ConfigError` for a bad grid file or executor options,
    before any run starts.
    """
    started = time.monotonic()
    options = dict(workers=workers, scheduler=scheduler, retries=retries, gpus=gpus, runs_per_gpu=runs_per_gpu)
    check_options(executor, **options)
    grid = load_grid(grid_path, profile, runs_root)
    # Relative when runs_root is: run folders, the parameters papermill writes into each executed
    # notebook and a pretrained path then name no folder of this machine (results are committed).
    runs_dir = Path(runs_root) / grid.study / grid.profile
    records = [
        RunRecord(run.id, "pending", runs_dir / run.id, run.varying, summary_status=read_status(runs_dir / run.id))
        for run in grid.all_runs
    ]
    sources = records[: len(grid.pretrains)]  # the pretraining runs, in grid.all_runs' order
    for record, run in zip(sources, grid.pretrains):
        if grid.follow:
            record.label = f"pretraining ({_describe(run.varying)})"
        else:
            record.varying = {"pretraining": "the runs below start from it"}
    dependents = {record.run_id: [r for r in records if grid.source_of(r.run_id) == record.run_id] for record in sources}
    stale = _stale(records, sources, log) if rerun_stale else set()
    if dry_run:
        for record in records:
            shown = "stale" if record.run_id in stale else record.summary_status or "-"
            log(f"{record.run_id}  {shown:<9} {_describe_record(record)}".rstrip())
        log(f"{len(records)} runs")  # exactly "N runs", even for one: scripts parse this line
        return GridReport(grid.study, grid.profile, runs_dir, records, time.monotonic() - started, dry_run=True)

    for record in records:
        if record.summary_status in FINISHED and record.run_id not in stale:
            record.status = "skipped"
    if any(record.status == "pending" for record in records):
        check_committable(runs_root)
    write_json(runs_dir / GRID_INDEX_NAME, grid.index())
    for record in records:
        if record.run_id in stale:
            _move_to_previous(record.run_dir)
            log(f"{record.run_id}  rerunning: its fingerprint no longer verifies (old record in previous/)")
            record.summary_status = None
    for record in sources:
        _rebuild_missing_weights(record, dependents[record.run_id], log)
    todo = [record for record in records if record.status == "pending"]
    if todo:
        runner = make_executor(executor, **options)
        with runner, _ProgressBar(grid, len(records), len(records) - len(todo), progress, log) as bar:
            configs = {run.id: run.config for run in grid.all_runs}

            def execute(batch: list[RunRecord]) -> None:
                tasks = [
                    RunTask(record.run_id, str(grid.notebook), str(record.run_dir), configs[record.run_id].to_dict())
                    for record in batch
                ]
                by_id = {record.run_id: record for record in batch}
                for task, result in runner.map_unordered(execute_run, tasks):
                    record = by_id[task.run_id]
                    _apply(record, result)
                    bar.finished(record)

            first = [record for record in sources if record in todo]
            if first:
                # The others start from their weights: they run first, beside each other only.
                execute(first)
                todo = [record for record in todo if record not in first]
                ended = {record.run_id: record for record in first if record.summary_status != "complete"}
                for record in todo:
                    source = ended.get(grid.source_of(record.run_id) or "")
                    if source is not None:
                        record.status = "failed"
                        record.error = f"not run: the pretraining run {source.run_id} ended {source.summary_status!r}"
                        bar.finished(record)
                todo = [record for record in todo if record.status == "pending"]
            execute(todo)
    report = GridReport(grid.study, grid.profile, runs_dir, records, time.monotonic() - started)
    log(report.summary_line())
    return report


def _rebuild_missing_weights(pretrain: RunRecord, dependents: list[RunRecord], log: Callable[[str], None]) -> None:
    """Run a finished pretraining run again when its weights are gone and unfinished runs need them.

    Weights are never committed, so a fresh clone has the pretraining run's
    results but not its ``best.pt``. Its record files move to ``previous/`` in
    its folder (kept, not destroyed; ``previous/`` of an earlier rebuild is replaced) and the run starts over; a deterministic
    run rebuilds the same weights, and each dependent run records the hash of
    the file it started from.
    """
    weights = pretrain.run_dir / PRETRAIN_WEIGHTS
    if pretrain.status != "skipped" or weights.is_file() or all(r.status == "skipped" for r in dependents):
        return
    _move_to_previous(pretrain.run_dir)
    log(f"{pretrain.run_id}  rebuilding the pretraining run: {weights} is missing (weights are not kept in results)")
    pretrain.status, pretrain.summary_status = "pending", None


def _move_to_previous(run_dir: Path) -> None:
    """Move a run's record files into ``previous/`` in its folder (kept, not destroyed; an earlier ``previous/`` is overwritten)."""
    previous = run_dir / "previous"
    previous.mkdir(exist_ok=True)
    for path in run_dir.iterdir():
        if path.is_file() and not path.name.startswith("."):
            os.replace(path, previous / path.name)


def _stale(records: list[RunRecord], sources: list[RunRecord], log: Callable[[str], None]) -> set[str]:
    """The ids of finished runs whose fingerprint no longer verifies (``verify/stale.py``); ``sources``: the pretraining runs."""
    from ..verify.stale import stale_runs

    finished = [record.run_dir for record in records if record.summary_status in FINISHED]
    pretrains = [record.run_dir for record in sources]
    return {run.name for run in stale_runs(finished, pretrains=pretrains, log=log)}


def check_committable(runs_root: str | os.PathLike[str]) -> None:
    """Refuse to run into a committed results root from a working tree with uncommitted library changes."""
    from ..verify.provenance import is_committed_results_root, uncommitted_library_changes

    if not is_committed_results_root(runs_root):
        return
    changes = uncommitted_library_changes()
    if changes:
        shown = "; ".join(line.strip() for line in changes[:5]) + (f"; and {len(changes) - 5} more" if len(changes) > 5 else "")
        raise ConfigError(
            f"--runs-root {runs_root}: normtest_lib/ has uncommitted changes ({shown}). Committed results always "
            "name the commit that made them: commit the changes first, or run into runs/ instead"
        )


def _apply(record: RunRecord, result: RunOutcome | BaseException) -> None:
    if isinstance(result, BaseException):
        # The task itself raised (after the executor's retries): the kernel
        # would not start, a worker kept dying, ...
        record.status, record.error = "failed", f"{type(result).__name__}: {result}"
        with contextlib.suppress(OSError):
            mark_failed(record.run_dir, record.error)
    elif result.status == "busy":
        record.status, record.error = "busy", result.error
    elif result.already_finished:
        record.status = "skipped"
    else:
        record.status = {"complete": "done"}.get(result.status, result.status)
        record.seconds, record.error = result.seconds, result.error
    record.summary_status = read_status(record.run_dir)


def _describe(varying: dict[str, Any]) -> str:
    return " ".join(f"{key}={value}" for key, value in varying.items())


def _describe_record(record: RunRecord) -> str:
    return record.label if record.label is not None else _describe(record.varying)


class _ProgressBar:
    """One tqdm bar for the grid, and log lines that do not tear it."""

    def __init__(self, grid: Grid, total: int, skipped: int, enabled: bool | None, log: Callable[[str], None]):
        from tqdm import tqdm

        self._tqdm = tqdm
        self.log = log
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.bar = tqdm(
            total=total, initial=skipped, desc=f"{grid.study}/{grid.profile}", unit="run",
            disable=not self.enabled, file=sys.stderr, dynamic_ncols=True,
        )  # fmt: skip
        self.failed = 0

    def finished(self, record: RunRecord) -> None:
        line = f"{record.status:<9} {record.run_id}  {_describe_record(record)}"
        if record.seconds:
            line += f"  ({record.seconds:.1f}s)"
        if record.status == "failed":
            self.failed += 1
            line += f"\n          error: {record.error}\n          see: {record.run_dir / NOTEBOOK_NAME}"
        elif record.status == "busy":
            line += f"  skipped: {record.error}"
        self.write(line)
        self.bar.update(1)
        if self.failed:
            self.bar.set_postfix(failed=self.failed)

    def write(self, line: str) -> None:
        if self.enabled:
            with self._tqdm.external_write_mode(file=sys.stderr):
                self.log(line)
        else:
            self.log(line)

    def __enter__(self) -> "_ProgressBar":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.bar.close()
