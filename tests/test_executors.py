"""Executors: slot planning, retries and dead workers (local pool and Dask)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from normtest_lib.errors import ConfigError
from normtest_lib.grid.executors import (
    DaskExecutor,
    LocalExecutor,
    Slot,
    make_executor,
    plan_slots,
    threads_per_run,
    worker_slot,
)
from normtest_lib.grid.runner import run_grid
from test_runner import summaries, write_grid, write_notebook


def test_cpu_threads_split_so_workers_never_oversubscribe():
    assert threads_per_run(workers=2, cores=2) == 1
    assert threads_per_run(workers=1, cores=2) == 2
    assert threads_per_run(workers=3, cores=2) == 1
    slots = plan_slots(2, gpus=[], cores=2)
    assert [slot.num_threads for slot in slots] == [1, 1]
    assert slots[0].env == {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    assert [slot.num_threads for slot in plan_slots(None, gpus=[], cores=8)] == [8]  # default: 1 worker on CPU


def test_gpu_slots_spread_runs_over_gpus_first(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2,3")
    slots = plan_slots(None, gpus=["0", "1"], runs_per_gpu=2, cores=16)
    assert [slot.env["CUDA_VISIBLE_DEVICES"] for slot in slots] == ["0", "1", "0", "1"]
    assert [slot.num_threads for slot in slots] == [4, 4, 4, 4]
    assert [slot.gpu for slot in plan_slots(1, gpus=["2", "3"], cores=16)] == ["2"]
    with pytest.raises(ConfigError, match="workers: 5 workers but only 4 GPU slots"):
        plan_slots(5, gpus=["0", "1"], runs_per_gpu=2)


@pytest.mark.parametrize(
    ("name", "options", "expected"),
    [
        ("slurm", {}, "executor: unknown executor 'slurm'; choose one of local, dask"),
        ("local", {"scheduler": "tcp://127.0.0.1:8786"}, "scheduler: only the dask executor"),
        ("dask", {"gpus": ["0"], "scheduler": "tcp://127.0.0.1:8786"}, "gpus: the workers of an existing Dask"),
        ("dask", {"runs_per_gpu": 2, "scheduler": "tcp://127.0.0.1:8786"}, "runs_per_gpu: the workers of an existing"),
        ("local", {"retries": -1}, "retries: expected 0 or more"),
        ("local", {"workers": 0, "gpus": []}, "workers: expected at least 1"),
        ("local", {"runs_per_gpu": 0, "gpus": ["0"]}, "runs_per_gpu: expected at least 1"),
    ],
)
def test_bad_executor_options_are_refused(name, options, expected):
    with pytest.raises(ConfigError, match=expected):
        make_executor(name, **options)


def pinned_gpu(item: int, slot: Slot) -> tuple[str, str | None, int | None]:
    """The worker this ran on, and the GPU and threads its slot gives the run's kernel."""
    from dask.distributed import get_worker

    return str(get_worker().name), slot.env.get("CUDA_VISIBLE_DEVICES"), slot.num_threads


def test_dask_local_cluster_pins_each_worker_to_its_gpu_slot(monkeypatch):
    """--gpus 0,1 --runs-per-gpu 2 under CUDA_VISIBLE_DEVICES=3,5: four workers, each always on
    its own slot's GPU (two per GPU), as the local executor pins its processes."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    executor = make_executor("dask", gpus=["0", "1"], runs_per_gpu=2)
    assert isinstance(executor, DaskExecutor) and executor.workers == 4
    assert [slot.gpu for slot in executor.slots] == ["3", "5", "3", "5"]
    with executor:
        results = dict(executor.map_unordered(pinned_gpu, list(range(12))))
    by_worker = {worker: gpu for worker, gpu, _ in results.values()}
    assert len(set(results.values())) <= 4 and all(gpu in ("3", "5") for gpu in by_worker.values())
    assert by_worker == {worker: executor.slots[int(worker)].gpu for worker in by_worker}
    assert all(threads == max(1, len(os.sched_getaffinity(0)) // 4) for _, _, threads in results.values())


def test_a_worker_name_selects_its_slot():
    slots = [Slot(gpu="3"), Slot(gpu="5")]
    assert [worker_slot(name, slots).gpu for name in (0, 1, "2", 3)] == ["3", "5", "3", "5"]


def fail_until_third_attempt(marker: str, slot: Slot) -> str:
    """Raise on the first two calls (counted in a file), then succeed."""
    path = Path(marker)
    calls = int(path.read_text()) + 1 if path.exists() else 1
    path.write_text(str(calls))
    if calls < 3:
        raise RuntimeError(f"attempt {calls} fails")
    return f"ok after {calls}"


def die_on_first_attempt(marker: str, slot: Slot) -> int:
    """Kill this worker process the first time, as the OOM killer would."""
    path = Path(marker)
    if not path.exists():
        path.write_text("died")
        os._exit(1)
    return os.getpid()


def slot_threads(item: str, slot: Slot) -> tuple[int | None, str | None]:
    return slot.num_threads, slot.env.get("OMP_NUM_THREADS")


def test_a_run_alone_on_the_cpu_gets_every_slots_threads():
    # The pretraining run goes first and alone: one thread of two would leave a core idle.
    with LocalExecutor(plan_slots(2, gpus=[], cores=2)) as executor:
        assert dict(executor.map_unordered(slot_threads, ["pretrain"])) == {"pretrain": (2, "2")}
        assert sorted(dict(executor.map_unordered(slot_threads, ["a", "b", "c"])).values()) == [(1, "1")] * 3


def test_local_executor_retries_a_raising_task_then_reports_the_error(tmp_path):
    flaky, hopeless = str(tmp_path / "flaky"), str(tmp_path / "hopeless")
    with LocalExecutor([Slot(), Slot()], retries=2) as executor:
        results = dict(executor.map_unordered(fail_until_third_attempt, [flaky]))
    assert results == {flaky: "ok after 3"}
    with LocalExecutor([Slot()], retries=1) as executor:
        ((item, error),) = executor.map_unordered(fail_until_third_attempt, [hopeless])
    assert isinstance(error, RuntimeError) and str(error) == "attempt 2 fails"
    assert Path(hopeless).read_text() == "2"  # one try plus one retry


def test_local_executor_replaces_a_dead_worker_and_reruns_its_task(tmp_path):
    marker = str(tmp_path / "marker")
    with LocalExecutor([Slot()], retries=1) as executor:
        ((item, pid),) = executor.map_unordered(die_on_first_attempt, [marker])
    assert isinstance(pid, int) and pid != os.getpid()


@pytest.mark.slow
def test_dask_local_cluster_runs_a_grid_and_a_dead_workers_run_resumes(tmp_path):
    """Two Dask workers on loopback; one run kills its worker after epoch 1 and is rescheduled."""
    notebook = write_notebook(tmp_path / "fake_experiment.ipynb", sleep=0.1)
    grid_file = write_grid(
        tmp_path / "grid.yml",
        notebook,
        """
        base: {model: small, epochs: 3}
        axes: {label_smoothing: [0.0, 0.25]}
        profiles: {smoke: {}, paper: {}}
        """,
    )
    lines: list[str] = []
    report = run_grid(
        grid_file, "smoke", executor="dask", workers=2, runs_root=tmp_path / "runs", log=lines.append, progress=False
    )
    assert (report.done, report.failed) == (2, 0), lines
    results = summaries(tmp_path / "runs" / "demo" / "smoke")
    steady, killer = (results[record.run_id] for record in report.records)
    assert steady["resumed_from"] == 0
    assert killer["resumed_from"] == 1  # rescheduled on a fresh worker, resumed from its checkpoint
    assert killer["num_threads"] == steady["num_threads"] == max(1, len(os.sched_getaffinity(0)) // 2)
    index = json.loads((tmp_path / "runs" / "demo" / "smoke" / "grid.json").read_text())
    assert len(index["runs"]) == 2


@pytest.mark.slow
def test_local_pool_reruns_a_run_whose_worker_died(tmp_path):
    notebook = write_notebook(tmp_path / "fake_experiment.ipynb", sleep=0.1)
    grid_file = write_grid(
        tmp_path / "grid.yml",
        notebook,
        """
        base: {model: small, epochs: 3, label_smoothing: 0.25}
        profiles: {smoke: {}, paper: {}}
        """,
    )
    report = run_grid(grid_file, "smoke", runs_root=tmp_path / "runs", gpus=[], log=lambda line: None, progress=False)
    assert report.done == 1
    (summary,) = summaries(tmp_path / "runs" / "demo" / "smoke").values()
    assert summary["resumed_from"] == 1 and summary["epochs_completed"] == 3


def test_detected_gpus_are_the_parents_visible_devices(monkeypatch):
    import torch

    from normtest_lib.grid.executors import detect_gpus

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert detect_gpus() == ["0", "1"]
    # Slurm gave this job GPUs 5 and 7: runs must be pinned to those, not to 0 and 1.
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "5,7")
    assert detect_gpus() == ["5", "7"]
    assert [slot.env["CUDA_VISIBLE_DEVICES"] for slot in plan_slots(None, gpus=None, cores=4)] == ["5", "7"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-aaaa, GPU-bbbb,GPU-cccc")
    assert detect_gpus() == ["GPU-aaaa", "GPU-bbbb"]  # CUDA counts only those it can open
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    assert detect_gpus() == []


def cli_gpus(text: str) -> list[str]:
    """--gpus as normtest run parses it (normtest_lib/cli.py): the strings, stripped."""
    return [g.strip() for g in text.split(",")]


def test_cli_gpu_positions_select_from_the_parents_visible_devices(monkeypatch):
    from normtest_lib.grid.executors import gpu_ids

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5,7")
    assert gpu_ids(cli_gpus("0,2")) == ["3", "7"]  # positions, not the ids "0" and "2"
    assert gpu_ids([0, 2]) == ["3", "7"]  # the same from Python
    assert gpu_ids(cli_gpus("2, 1")) == ["7", "5"]
    assert [slot.gpu for slot in plan_slots(None, gpus=cli_gpus("1,0"), cores=4)] == ["5", "3"]
    assert [slot.env["CUDA_VISIBLE_DEVICES"] for slot in plan_slots(None, gpus=["2"], cores=4)] == ["7"]


def test_an_out_of_range_gpu_position_names_the_visible_devices(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5,7")
    with pytest.raises(ConfigError, match=r"gpus: position 3 is not among the 3 visible GPU\(s\) \[3, 5, 7\] "
                       r"\(CUDA_VISIBLE_DEVICES=3,5,7\); pass positions 0 to 2"):
        plan_slots(None, gpus=cli_gpus("0,3"))
    with pytest.raises(ConfigError, match=r"position 7 is not among"):
        plan_slots(None, gpus=[7])  # an id of the parent's list is not a position
    for bad in (["a"], ["GPU-aaaa"], [-1], ["-1"], [1.0], [True]):
        with pytest.raises(ConfigError, match="gpus: "):
            plan_slots(None, gpus=bad)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    with pytest.raises(ConfigError, match="no GPU is visible"):
        plan_slots(None, gpus=["0"])


def test_gpu_positions_map_to_uuid_entries(monkeypatch):
    from normtest_lib.grid.executors import gpu_ids

    uuids = ["GPU-8c3f0a2e-1111-2222-3333-444455556666", "MIG-4b1d9e77-aaaa-bbbb-cccc-ddddeeeeffff", "GPU-0f0f"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", " , ".join(uuids))
    assert gpu_ids(cli_gpus("2,0")) == [uuids[2], uuids[0]]
    assert [slot.env["CUDA_VISIBLE_DEVICES"] for slot in plan_slots(None, gpus=["1"], cores=2)] == [uuids[1]]
    with pytest.raises(ConfigError, match=r"\[GPU-8c3f0a2e-1111-2222-3333-444455556666, MIG-"):
        gpu_ids(["3"])


def test_without_a_parent_list_positions_are_torchs_devices(monkeypatch):
    import torch

    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert [slot.gpu for slot in plan_slots(None, gpus=cli_gpus("1,0"), cores=4)] == ["1", "0"]
    assert [slot.gpu for slot in plan_slots(None, gpus=[0, 1], cores=4)] == ["0", "1"]
    with pytest.raises(ConfigError, match=r"position 2 is not among the 2 visible GPU\(s\) \[0, 1\] \(torch sees 2"):
        plan_slots(None, gpus=["2"])
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    with pytest.raises(ConfigError, match="no GPU is visible"):
        plan_slots(None, gpus=["0"])
    # An empty list means CPU runs, even where torch sees GPUs.
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    slots = plan_slots(3, gpus=[], cores=6)
    assert [slot.gpu for slot in slots] == [None, None, None] and "CUDA_VISIBLE_DEVICES" not in slots[0].env


def test_cli_passes_gpu_positions_to_the_executor(monkeypatch, tmp_path):
    """normtest run --gpus 0,2 under CUDA_VISIBLE_DEVICES=3,5,7 plans runs on GPUs 3 and 7."""
    from normtest_lib import cli
    from normtest_lib.grid import executors

    planned = {}

    def fake_make_executor(name, **options):
        planned["ids"] = executors.gpu_ids(options["gpus"])
        raise SystemExit(0)

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5,7")
    monkeypatch.setattr("normtest_lib.grid.runner.make_executor", fake_make_executor, raising=False)
    grid = Path(__file__).resolve().parents[1] / "params" / "quickstart.yml"
    with pytest.raises(SystemExit):
        cli.main(["run", str(grid), "--profile", "smoke", "--gpus", "0,2", "--runs-root", str(tmp_path)])
    assert planned["ids"] == ["3", "7"]
