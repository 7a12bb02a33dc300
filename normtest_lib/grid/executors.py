"""Where a grid's runs execute: a local pool of worker processes, or a Dask cluster.

Both executors take the same function and items and yield ``(item, result)``
pairs as runs finish, in completion order; an item whose task raised (after
``retries`` resubmissions) is yielded with the exception as its result. A
run that fails *inside its notebook* is not an exception here: the run
function records it and returns normally, and it is never retried (it would
fail the same way).

``local``
    A ``ProcessPoolExecutor`` (spawn context) with one worker process per
    slot. A slot is what one run may use: with GPUs, one GPU (``gpus``:
    positions among the visible GPUs, see :func:`gpu_ids`; else every visible
    one: the entries of the parent's own ``CUDA_VISIBLE_DEVICES`` where set,
    else ``0..device_count()-1``) shared
    by ``runs_per_gpu`` runs, pinned through ``CUDA_VISIBLE_DEVICES``;
    ``gpus=[]`` means CPU runs; on the CPU, ``cores // workers``
    threads (at least 1) through the run's ``num_threads`` and
    ``OMP_NUM_THREADS``/``MKL_NUM_THREADS``, so the workers together never
    oversubscribe the cores. Default workers: 1 on the CPU, the number of GPU
    slots with GPUs. If a worker process dies, the pool is rebuilt and its
    runs are resubmitted (up to ``retries`` times); they resume from their
    checkpoints.

``dask``
    The same runs as tasks on a Dask distributed cluster: by default a
    ``LocalCluster`` on 127.0.0.1 with one single-threaded worker process per
    slot, planned exactly as for ``local`` (``gpus``, ``runs_per_gpu``,
    threads): worker ``i`` (LocalCluster names its workers 0, 1, ...) runs
    every task it receives in slot ``i``, so its runs' kernels see only that
    slot's GPU, and a worker restarted after dying keeps its name and its GPU.
    Or an existing scheduler (``scheduler="tcp://host:8786"``), whose workers
    bring their own devices: start each with its GPU (``CUDA_VISIBLE_DEVICES``
    per worker, or dask-cuda's ``LocalCUDACluster``) and ``runs_per_gpu``
    workers per GPU; ``gpus`` and ``runs_per_gpu`` are refused there rather
    than ignored. Each run is submitted with ``retries``; a worker that dies
    mid-run makes the scheduler reschedule the task on another worker, where
    the run resumes from its checkpoint. Every worker must see the same file
    system (the run folders) and have normtest installed. Start workers with
    one thread each (``--nthreads 1``): runs in one worker process take turns,
    because the kernel environment is set per process.

Slurm with dask-jobqueue (``pip install dask-jobqueue``): start the cluster in
a long-lived Python session on the login node, then point the grid at it::

    from dask_jobqueue import SLURMCluster
    # cores=1: one thread per Dask worker (one run at a time); job_cpu: the cores Slurm reserves for it
    cluster = SLURMCluster(queue="gpu", cores=1, processes=1, job_cpu=8, memory="32GB",
                           walltime="04:00:00", job_extra_directives=["--gres=gpu:1"])
    cluster.scale(jobs=4)            # four Slurm jobs, one Dask worker (and one GPU) each
    print(cluster.scheduler_address) # e.g. tcp://10.0.0.5:8786; keep this session open

    $ normtest run params/<study>.yml --profile paper --executor dask --scheduler tcp://10.0.0.5:8786

A job that hits its wall time kills its worker; the scheduler resubmits the
run to another worker and it resumes from its last complete epoch.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from multiprocessing import get_context
from typing import Any, Callable, Iterator, Protocol, Sequence, TypeVar

from ..errors import ConfigError

EXECUTORS = ("local", "dask")
THREAD_ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")

Item = TypeVar("Item")


@dataclass(frozen=True)
class Slot:
    """What one run may use: environment variables for its kernel and a thread count."""

    env: dict[str, str] = field(default_factory=dict)
    num_threads: int | None = None
    gpu: str | None = None


class Executor(Protocol):
    def map_unordered(
        self, fn: Callable[[Item, Slot], Any], items: Sequence[Item]
    ) -> Iterator[tuple[Item, Any]]: ...

    def close(self) -> None: ...


def cpu_count() -> int:
    """Cores this process may use (the affinity mask, which containers and Slurm restrict)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _parent_visible_devices() -> list[str] | None:
    """This process's own ``CUDA_VISIBLE_DEVICES`` entries (indices, ``GPU-...`` or ``MIG-...`` UUIDs); None when unset."""
    value = os.environ.get("CUDA_VISIBLE_DEVICES")
    if value is None:
        return None
    return [entry.strip() for entry in value.split(",") if entry.strip()]


def detect_gpus() -> list[str]:
    """Visible CUDA devices as ids for a run's CUDA_VISIBLE_DEVICES (empty without CUDA).

    When this process already has ``CUDA_VISIBLE_DEVICES`` (Slurm, a container),
    its entries are the ids: a run pinned to "0" would otherwise get the
    machine's first GPU, which may belong to someone else's job.
    """
    import torch  # imported here: only the local executor without --gpus needs it

    count = torch.cuda.device_count()
    parent = _parent_visible_devices()
    if parent is None:
        return [str(index) for index in range(count)]
    # CUDA stops at the first invalid entry, so the count may be shorter than the list.
    return parent[:count]


def _position(gpu: str | int) -> int:
    """A GPU position as given: an int (Python) or a string of digits (``--gpus 0,1``)."""
    if isinstance(gpu, bool) or not isinstance(gpu, (int, str)):
        raise ConfigError(f"gpus: expected GPU positions such as 0 or '0', got {gpu!r}")
    text = str(gpu).strip()
    if not text.isdigit():
        raise ConfigError(
            f"gpus: {gpu!r} is not a GPU position; pass positions among the visible GPUs such as 0,1 "
            "(to choose GPUs by id or UUID, set CUDA_VISIBLE_DEVICES and pass their positions in it)"
        )
    return int(text)


def gpu_ids(gpus: Sequence[str | int] | None) -> list[str]:
    """The GPU ids to pin runs to, as strings for CUDA_VISIBLE_DEVICES (the one place they are normalised).

    ``None``: every visible GPU (:func:`detect_gpus`); ``[]``: none, CPU runs.
    Otherwise each entry is a *position* among the visible GPUs, the same
    whether it comes from the command line as a string (``--gpus 0,2`` gives
    ``["0", "2"]``) or from Python as an int: under a parent
    ``CUDA_VISIBLE_DEVICES="3,5,7"`` positions 0 and 2 are GPUs "3" and "7"
    (and UUID entries such as ``GPU-...`` are passed on as they are); without
    it, position i is CUDA device i. A position outside the visible GPUs is a
    ConfigError naming them.
    """
    if gpus is None:
        return detect_gpus()
    positions = [_position(gpu) for gpu in gpus]
    if not positions:
        return []
    parent = _parent_visible_devices()
    if parent is None:
        import torch  # imported here: only explicit positions without CUDA_VISIBLE_DEVICES need it

        visible = [str(index) for index in range(torch.cuda.device_count())]
        described = f"torch sees {len(visible)} CUDA device(s) and CUDA_VISIBLE_DEVICES is not set"
    else:
        visible = parent
        described = f"CUDA_VISIBLE_DEVICES={','.join(parent)}" if parent else "CUDA_VISIBLE_DEVICES is empty"
    for position in positions:
        if position >= len(visible):
            allowed = f"pass positions 0 to {len(visible) - 1}" if visible else "no GPU is visible; leave out --gpus"
            raise ConfigError(
                f"gpus: position {position} is not among the {len(visible)} visible GPU(s) "
                f"[{', '.join(visible)}] ({described}); {allowed}"
            )
    return [visible[position] for position in positions]


def threads_per_run(workers: int, cores: int | None = None) -> int:
    """CPU threads each of ``workers`` concurrent runs gets so they never oversubscribe the cores."""
    return max(1, (cores or cpu_count()) // workers)


def _thread_env(threads: int) -> dict[str, str]:
    return {name: str(threads) for name in THREAD_ENV_VARS}


def plan_slots(
    workers: int | None, gpus: Sequence[str | int] | None, runs_per_gpu: int = 1, cores: int | None = None
) -> list[Slot]:
    """One slot per concurrent run: GPUs pinned round-robin, CPU threads split evenly.

    ``gpus=None`` asks torch how many GPUs there are; ``gpus=[]`` means CPU only.
    """
    if runs_per_gpu < 1:
        raise ConfigError(f"runs_per_gpu: expected at least 1, got {runs_per_gpu}")
    if workers is not None and workers < 1:
        raise ConfigError(f"workers: expected at least 1, got {workers}")
    ids = gpu_ids(gpus)
    if not ids:
        count = workers or 1
        threads = threads_per_run(count, cores)
        return [Slot(env=_thread_env(threads), num_threads=threads) for _ in range(count)]
    # Slot order spreads runs over GPUs first: with 2 GPUs x 2 runs, slots go 0, 1, 0, 1.
    gpu_slots = [gpu for _ in range(runs_per_gpu) for gpu in ids]
    count = workers or len(gpu_slots)
    if count > len(gpu_slots):
        raise ConfigError(
            f"workers: {count} workers but only {len(gpu_slots)} GPU slots "
            f"({len(ids)} GPUs x {runs_per_gpu} runs per GPU); raise runs_per_gpu or lower workers"
        )
    threads = threads_per_run(count, cores)
    return [
        Slot(env={"CUDA_VISIBLE_DEVICES": gpu, **_thread_env(threads)}, num_threads=threads, gpu=gpu)
        for gpu in gpu_slots[:count]
    ]


def check_options(
    name: str,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    retries: int = 1,
    gpus: Sequence[str | int] | None = None,
    runs_per_gpu: int = 1,
) -> None:
    """Refuse bad executor options (cheaply, before any run starts) with a ConfigError naming the option."""
    if name not in EXECUTORS:
        raise ConfigError(f"executor: unknown executor {name!r}; choose one of {', '.join(EXECUTORS)}")
    if workers is not None and workers < 1:
        raise ConfigError(f"workers: expected at least 1, got {workers}")
    if retries < 0:
        raise ConfigError(f"retries: expected 0 or more, got {retries}")
    if runs_per_gpu < 1:
        raise ConfigError(f"runs_per_gpu: expected at least 1, got {runs_per_gpu}")
    if name == "local" and scheduler is not None:
        raise ConfigError("scheduler: only the dask executor connects to a scheduler; add --executor dask")
    if name == "dask" and scheduler is not None and gpus is not None:
        raise ConfigError(
            "gpus: the workers of an existing Dask scheduler bring their own GPUs; start each worker with "
            "its GPU (CUDA_VISIBLE_DEVICES per worker, or dask-cuda's LocalCUDACluster), or leave out "
            "--scheduler to let normtest start a local cluster with one worker per GPU slot"
        )
    if name == "dask" and scheduler is not None and runs_per_gpu != 1:
        raise ConfigError(
            "runs_per_gpu: the workers of an existing Dask scheduler run one run each at a time; start "
            f"{runs_per_gpu} workers per GPU instead, or leave out --scheduler"
        )


def make_executor(
    name: str,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    retries: int = 1,
    gpus: Sequence[str | int] | None = None,
    runs_per_gpu: int = 1,
) -> "LocalExecutor | DaskExecutor":
    """Build the executor ``name`` (``local`` or ``dask``); bad options raise ConfigError."""
    check_options(name, workers=workers, scheduler=scheduler, retries=retries, gpus=gpus, runs_per_gpu=runs_per_gpu)
    if name == "local":
        return LocalExecutor(plan_slots(workers, gpus, runs_per_gpu), retries=retries)
    if scheduler is not None:
        return DaskExecutor(scheduler=scheduler, retries=retries)
    return DaskExecutor(slots=plan_slots(workers, gpus, runs_per_gpu), retries=retries)


def _share_cores(slots: Sequence[Slot], runs: int) -> list[Slot]:
    """Fewer CPU runs than slots (a pretraining run that the others wait for) share all the slots' threads."""
    if runs >= len(slots) or runs == 0 or any(slot.gpu or slot.num_threads is None for slot in slots):
        return list(slots)
    threads = threads_per_run(runs, sum(slot.num_threads or 0 for slot in slots))
    return [Slot(env=_thread_env(threads), num_threads=threads) for _ in range(runs)]


class LocalExecutor:
    """A spawn-context process pool with one worker, and one slot, per concurrent run."""

    def __init__(self, slots: Sequence[Slot], *, retries: int = 1) -> None:
        self.slots = list(slots)
        self.retries = retries
        self._pool: ProcessPoolExecutor | None = None

    @property
    def workers(self) -> int:
        return len(self.slots)

    def _new_pool(self) -> ProcessPoolExecutor:
        # spawn: a fresh interpreter per worker, no forked copies of the parent's
        # threads, locks or CUDA state.
        return ProcessPoolExecutor(max_workers=self.workers, mp_context=get_context("spawn"))

    def map_unordered(self, fn: Callable[[Item, Slot], Any], items: Sequence[Item]) -> Iterator[tuple[Item, Any]]:
        # Submit only as many runs as there are free slots, so that each run
        # knows its slot (its GPU) when it starts.
        pending: deque[tuple[Item, int]] = deque((item, 0) for item in items)
        free = _share_cores(self.slots, len(items))
        in_flight: dict[Future, tuple[Item, int, Slot]] = {}
        self._pool = self._pool or self._new_pool()
        while pending or in_flight:
            while pending and free:
                item, attempt = pending.popleft()
                slot = free.pop(0)
                in_flight[self._pool.submit(fn, item, slot)] = (item, attempt, slot)
            done, _ = wait(list(in_flight), return_when=FIRST_COMPLETED)
            pool_broke = False
            for future in done:
                item, attempt, slot = in_flight.pop(future)
                free.append(slot)
                try:
                    result = future.result()
                except BrokenProcessPool as exc:
                    # A worker process died (killed, out of memory): every run in
                    # the pool is lost; rerun them, they resume from checkpoints.
                    pool_broke = True
                    error: BaseException = RuntimeError(f"a worker process died: {exc}")
                except Exception as exc:  # noqa: BLE001 - reported per run, never stops the grid
                    error = exc
                else:
                    yield item, result
                    continue
                if attempt < self.retries:
                    pending.appendleft((item, attempt + 1))
                else:
                    yield item, error
            if pool_broke:
                # Runs still in flight were lost with the pool through no fault
                # of their own: resubmit them without counting an attempt.
                for future, (item, attempt, slot) in list(in_flight.items()):
                    del in_flight[future]
                    free.append(slot)
                    pending.appendleft((item, attempt))
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = self._new_pool()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> "LocalExecutor":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


def worker_slot(worker_name: Any, slots: Sequence[Slot]) -> Slot:
    """The slot of the LocalCluster worker named ``worker_name`` (0, 1, ...: one per slot)."""
    return slots[int(worker_name) % len(slots)]


def _run_in_worker_slot(fn: Callable[[Item, Slot], Any], item: Item, slots: Sequence[Slot]) -> Any:
    """A task on a local cluster's worker: ``fn`` in the slot that worker owns."""
    from dask.distributed import get_worker

    return fn(item, worker_slot(get_worker().name, slots))


class DaskExecutor:
    """Runs as Dask tasks, on a LocalCluster on loopback (one worker per slot) or on an existing scheduler."""

    def __init__(
        self, *, slots: Sequence[Slot] | None = None, scheduler: str | None = None, retries: int = 1
    ) -> None:
        # No slots: one CPU worker, threads as plan_slots gives them.
        self.slots = list(slots) if slots is not None else None
        self.scheduler = scheduler
        self.retries = retries
        self._cluster: Any = None
        self._client: Any = None

    @property
    def workers(self) -> int:
        return len(self.slots) if self.slots else 1

    def start(self) -> None:
        if self._client is not None:
            return
        from dask.distributed import Client, LocalCluster

        if self.scheduler:
            try:
                self._client = Client(self.scheduler, timeout="30s")
            except OSError as exc:
                raise ConfigError(f"scheduler: cannot reach the Dask scheduler at {self.scheduler} ({exc})") from None
        else:
            self.slots = self.slots or plan_slots(1, gpus=[])
            self._cluster = LocalCluster(
                n_workers=len(self.slots),
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
                silence_logs=logging.ERROR,
            )
            self._client = self._cluster.get_client()

    def map_unordered(self, fn: Callable[[Item, Slot], Any], items: Sequence[Item]) -> Iterator[tuple[Item, Any]]:
        from dask.distributed import as_completed

        self.start()
        token = uuid.uuid4().hex[:8]
        futures = {}
        for index, item in enumerate(items):
            # A unique key per submission: Dask would otherwise reuse a result
            # computed under the same key by an earlier grid on this scheduler.
            key = f"normtest-run-{getattr(item, 'run_id', index)}-{token}"
            if self._cluster is not None:
                task = (_run_in_worker_slot, fn, item, self.slots)
            else:  # a remote worker's threads and devices are its own business (its --nthreads, its GPUs)
                task = (fn, item, Slot())
            futures[self._client.submit(*task, key=key, retries=self.retries, pure=False)] = item
        for future in as_completed(futures):
            item = futures[future]
            try:
                yield item, future.result()
            except Exception as exc:  # noqa: BLE001 - reported per run (includes KilledWorker)
                yield item, exc
    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None

    def __enter__(self) -> "DaskExecutor":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

