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
import fcntl
import json
import logging
import os
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

from .executors import THREAD_ENV_VARS, Slot, check_options, make_executor
from .grid import Grid, load_grid
from .io import read_json, write_json

from .run_files import FINISHED
from .run_files import RUN_NOTEBOOK as NOTEBOOK_NAME
from .run_files import SUMMARY as SUMMARY_NAME

PARTIAL_NOTEBOOK_NAME = ".run_experiment.partial.ipynb"
LOCK_NAME = ".lock"
GRID_INDEX_NAME = "grid.json"
RUN_DIR_ENV = "NORMTEST_RUN_DIR"  # marks a run's kernel, so an orphaned one can be found
KERNEL_ARGUMENTS = ["--IPKernelApp.log_level=CRITICAL"]  # no "running over TCP" warning per run; errors are in the notebook
ORPHAN_GRACE_SECONDS = 10.0  # a kernel whose parent died exits within about a second by itself


# --- one run ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunTask:
    """Everything a worker needs to execute one run (picklable, absolute paths)."""

    run_id: str
    notebook: str
    run_dir: str
    parameters: dict[str, Any]


@dataclass(frozen=True)
class RunOutcome:
    """What a worker reports: the status from summary.json, or why it did not run."""

    status: str  # complete / diverged / failed, or busy (another process holds the run)
    seconds: float = 0.0
    error: str | None = None
    already_finished: bool = False  # finished by someone else between the grid's scan and the lock


def read_status(run_dir: str | os.PathLike[str]) -> str | None:
    """The ``status`` in a run folder's summary.json, or None if there is none (yet)."""
    try:
        return read_json(Path(run_dir) / SUMMARY_NAME).get("status")
    except (FileNotFoundError, json.JSONDecodeError, AttributeError):
        return None


def mark_failed(run_dir: str | os.PathLike[str], error: str) -> None:
    """Record a failure in summary.json, keeping the engine's fields; never touches a finished run."""
    path = Path(run_dir) / SUMMARY_NAME
    try:
        summary = read_json(path)
        if not isinstance(summary, dict):
            summary = {}
    except (FileNotFoundError, json.JSONDecodeError):
        summary = {}
    if summary.get("status") in FINISHED:
        return
    summary.update(status="failed", error=error)
    write_json(path, summary)


def execute_run(task: RunTask, slot: Slot | None = None) -> RunOutcome:
    """Execute one run's notebook with papermill (in a worker process).

    Notebook failures are returned as a ``failed`` outcome, not raised; an
    exception here (the kernel would not start, ...) lets the executor retry.
    """
    run_dir = Path(task.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    with RunLock(run_dir) as lock:
        if not lock.acquired:
            return RunOutcome("busy", error=f"being run by {lock.describe_holder()}")
        status = read_status(run_dir)
        if status in FINISHED:
            return RunOutcome(status, already_finished=True)
        if lock.previous_owner is not None:
            stop_orphan_kernels(run_dir)
        parameters, env = _parameters_and_env(task, slot or Slot(), run_dir)
        started = time.monotonic()
        with _process_env(env):
            error = _execute_notebook(Path(task.notebook), run_dir, parameters)
        seconds = time.monotonic() - started
        status = read_status(run_dir)
        if error is None and status not in FINISHED:
            error = f"the notebook finished but {SUMMARY_NAME} says status {status!r}"
        if error is not None:
            mark_failed(run_dir, error)
            return RunOutcome("failed", seconds, error)
        return RunOutcome(status, seconds)


def _parameters_and_env(task: RunTask, slot: Slot, run_dir: Path) -> tuple[dict[str, Any], dict[str, str]]:
    # Batch runs keep their notebooks free of progress bars; the grid shows one bar of its own.
    parameters = {**task.parameters, "out_dir": str(run_dir), "progress": False}
    env = {**slot.env, RUN_DIR_ENV: str(run_dir.resolve())}
    if parameters.get("num_threads") is None and slot.num_threads is not None:
        parameters["num_threads"] = slot.num_threads
    if parameters.get("num_threads") is not None:
        env.update({name: str(parameters["num_threads"]) for name in THREAD_ENV_VARS})
    if slot.gpu is not None and str(parameters.get("device", "")).startswith("cuda:"):
        # The pinned GPU is the only one the kernel sees, as cuda:0.
        parameters["device"] = "cuda"
    return parameters, env


def _execute_notebook(template: Path, run_dir: Path, parameters: dict[str, Any]) -> str | None:
    """Run papermill into a temporary notebook, rename it into place; return the error, if any."""
    import papermill
    from nbclient.exceptions import DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    _quiet_unknown_parameter_warnings()
    partial = run_dir / PARTIAL_NOTEBOOK_NAME
    error = None
    try:
        papermill.execute_notebook(
            str(template),
            str(partial),
            parameters=parameters,
            kernel_name="python3",
            progress_bar=False,
            log_output=False,
            start_timeout=120,
            extra_arguments=KERNEL_ARGUMENTS,
        )
    except PapermillExecutionError as exc:
        error = f"{exc.ename}: {exc.evalue}"
    except DeadKernelError as exc:
        error = f"the kernel died (out of memory or killed?): {exc}"
    finally:
        # papermill has saved the notebook (outputs, and the error when a cell
        # failed) by the time it returns or raises.
        if partial.exists():
            os.replace(partial, run_dir / NOTEBOOK_NAME)
    return error


class _DropUnknownParameterWarnings(logging.Filter):
    # papermill warns for every parameter the notebook's parameters cell does
    # not list; the notebook validates its parameters itself (make_config
    # rejects unknown keys), so these warnings are noise, one per RunConfig key.
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Passed unknown parameter")


def _quiet_unknown_parameter_warnings() -> None:
    logger = logging.getLogger("papermill")
    if not any(isinstance(f, _DropUnknownParameterWarnings) for f in logger.filters):
        logger.addFilter(_DropUnknownParameterWarnings())


_ENV_LOCK = threading.Lock()


@contextlib.contextmanager
def _process_env(overrides: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the kernel papermill starts (it inherits ours).

    The environment is per process, so runs in threads of one process (a Dask
    worker with several threads) take turns.
    """
    with _ENV_LOCK:
        saved = {name: os.environ.get(name) for name in overrides}
        os.environ.update(overrides)
        try:
            yield
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def stop_orphan_kernels(run_dir: Path, grace: float = ORPHAN_GRACE_SECONDS) -> int:
    """Wait for, then kill, kernels a dead owner of ``run_dir`` left running; returns how many.

    A kernel runs in its own session, so killing a grid's process group leaves
    it alive until it notices its parent is gone (ipykernel checks every
    second). It must not write into the folder once the run resumes.
    """
    import psutil

    marker = str(run_dir.resolve())
    orphans = []
    for process in psutil.process_iter():
        if process.pid == os.getpid():
            continue
        try:
            if process.environ().get(RUN_DIR_ENV) == marker:
                orphans.append(process)
        except (psutil.Error, OSError):
            continue  # gone, or another user's process
    if orphans:
        _, alive = psutil.wait_procs(orphans, timeout=grace)
        for process in alive:
            with contextlib.suppress(psutil.Error):
                process.kill()
        psutil.wait_procs(alive, timeout=5)
    return len(orphans)


class RunLock:
    """An exclusive, non-blocking ``flock`` on ``<run_dir>/.lock``.

    The kernel releases a flock when its holder dies, so stale locks need no
    detection. Works on local file systems and NFS (Linux emulates flock with
    NFS byte-range locks); Lustre needs the ``flock`` mount option.
    """

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / LOCK_NAME
        self.acquired = False
        self.holder: dict[str, Any] = {}
        self.previous_owner: dict[str, Any] | None = None
        self._fd: int | None = None

    def acquire(self) -> bool:
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self.holder = _read_lock_content(fd)
                os.close(fd)
                return False
            except OSError as exc:
                os.close(fd)
                raise OSError(
                    exc.errno,
                    f"cannot lock {self.path} ({exc.strerror}); run folders need a file system "
                    "with flock (on Lustre, mount with -o flock)",
                ) from None
            # The previous holder may have removed the file between our open and
            # flock; then we hold a lock on a deleted file. Try again.
            try:
                same_file = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same_file = False
            if not same_file:
                os.close(fd)
                continue
            content = _read_lock_content(fd)
            self.previous_owner = content or None  # a clean finish removes the file
            owner = {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            }
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(owner).encode(), 0)
            self._fd, self.acquired = fd, True
            return True

    def release(self) -> None:
        if self._fd is None:
            return
        # Remove the file while still holding the lock, so nobody takes it over
        # from a file that is about to disappear (acquire checks the inode).
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        os.close(self._fd)
        self._fd, self.acquired = None, False

    def describe_holder(self) -> str:
        if not self.holder:
            return "another process"
        return f"pid {self.holder.get('pid')} on host {self.holder.get('host')} since {self.holder.get('started')}"

    def __enter__(self) -> "RunLock":
        self.acquire()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.release()


def _read_lock_content(fd: int) -> dict[str, Any]:
    try:
        content = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except (OSError, ValueError):
        return {}
    return content if isinstance(content, dict) else {}


# --- a grid ----------------------------------------------------------------------------------


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
    grid = load_grid(grid_path, profile)
    runs_dir = (Path(runs_root) / grid.study / grid.profile).resolve()
    records = [
        RunRecord(run.id, "pending", runs_dir / run.id, run.varying, summary_status=read_status(runs_dir / run.id))
        for run in grid.runs
    ]
    if dry_run:
        for record in records:
            log(f"{record.run_id}  {record.summary_status or '-':<9} {_describe(record.varying)}".rstrip())
        log(f"{len(records)} runs")  # exactly "N runs", even for one: scripts parse this line
        return GridReport(grid.study, grid.profile, runs_dir, records, time.monotonic() - started, dry_run=True)

    write_json(runs_dir / GRID_INDEX_NAME, grid.index())
    for record in records:
        if record.summary_status in FINISHED:
            record.status = "skipped"
    todo = [record for record in records if record.status == "pending"]
    if todo:
        runner = make_executor(executor, **options)
        with runner, _ProgressBar(grid, len(records), len(records) - len(todo), progress, log) as bar:
            configs = {run.id: run.config for run in grid.runs}
            tasks = [
                RunTask(record.run_id, str(grid.notebook), str(record.run_dir), configs[record.run_id].to_dict())
                for record in todo
            ]
            by_id = {record.run_id: record for record in todo}
            for task, result in runner.map_unordered(execute_run, tasks):
                record = by_id[task.run_id]
                _apply(record, result)
                bar.finished(record)
    report = GridReport(grid.study, grid.profile, runs_dir, records, time.monotonic() - started)
    log(report.summary_line())
    return report


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
        line = f"{record.status:<9} {record.run_id}  {_describe(record.varying)}"
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
