"""Execute one run: papermill runs the experiment notebook into the run's folder, under the run's lock.

Notebook failures become a ``failed`` summary (the executed notebook shows the
error); a finished run is never touched. See :mod:`normtest_lib.grid.spec.runner`
for how a grid schedules these.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from ..io import read_json, relative_path, write_json
from ..run_files import FINISHED
from ..run_files import RUN_NOTEBOOK as NOTEBOOK_NAME
from ..run_files import SUMMARY as SUMMARY_NAME
from ..engine.compiling import cache_env
from .executors import THREAD_ENV_VARS, Slot
from .lock import RunLock

PARTIAL_NOTEBOOK_NAME = ".run_experiment.partial.ipynb"
RUN_DIR_ENV = "NORMTEST_RUN_DIR"  # marks a run's kernel, so an orphaned one can be found
KERNEL_ARGUMENTS = ["--IPKernelApp.log_level=CRITICAL"]  # no "running over TCP" warning per run; errors are in the notebook
CUBLAS_WORKSPACE_ENV = "CUBLAS_WORKSPACE_CONFIG"
CUBLAS_DETERMINISTIC_WORKSPACE = ":4096:8"
ORPHAN_GRACE_SECONDS = 10.0  # a kernel whose parent died exits within about a second by itself


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
    env = {**slot.env, **kernel_env(run_dir), RUN_DIR_ENV: str(run_dir.resolve())}
    if parameters.get("num_threads") is None and slot.num_threads is not None:
        parameters["num_threads"] = slot.num_threads
    if parameters.get("num_threads") is not None:
        env.update({name: str(parameters["num_threads"]) for name in THREAD_ENV_VARS})
    if slot.gpu is not None and str(parameters.get("device", "")).startswith("cuda:"):
        # The pinned GPU is the only one the kernel sees, as cuda:0.
        parameters["device"] = "cuda"
    return parameters, env


def kernel_env(run_dir: Path) -> dict[str, str]:
    """What every run's kernel gets before torch starts: the grid profile's shared compile cache
    (``engine/compiling.py``), and cuBLAS's deterministic workspace, which cuBLAS reads only when
    it first creates a handle, so a run cannot set it itself once CUDA is in use (the default
    workspace is not deterministic; this one costs a few MiB of GPU memory)."""
    env = cache_env(run_dir.parent)
    if os.environ.get(CUBLAS_WORKSPACE_ENV) is None:
        env[CUBLAS_WORKSPACE_ENV] = CUBLAS_DETERMINISTIC_WORKSPACE
    return env


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
            str(_as_given_for(template, run_dir)),
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


def _as_given_for(template: Path, run_dir: Path) -> Path:
    """The template's path relative to the working directory when the run folder's is relative.

    papermill records the path it was given in the executed notebook; a run
    folder under a relative root (``results/``) is committed, and must name no
    folder of this machine.
    """
    return template if run_dir.is_absolute() else relative_path(template)


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
