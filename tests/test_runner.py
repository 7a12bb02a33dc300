"""Executing grids with papermill: skip, resume, failures, locks, dry runs, a killed grid.

The runs execute a tiny notebook written here that behaves like
``notebooks/run_experiment.ipynb`` with the engine: a parameters cell with every
RunConfig field plus ``out_dir``, atomic writes of ``summary.json`` (running,
then complete or diverged) and of a checkpoint it resumes from. It needs no
torch, so a run costs about a kernel start. On purpose it fails when
``label_smoothing`` is 0.5, diverges when ``lr`` is 2 or more, sleeps
``SLEEP`` seconds per epoch, and with ``label_smoothing`` 0.25 kills its
parent process (the worker) once, after its first epoch.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import nbformat
import pytest

from normtest_lib.config import RunConfig
from normtest_lib.errors import ConfigError
from normtest_lib.grid.executors import Slot
from normtest_lib.grid.execute import RunTask, execute_run, read_status
from normtest_lib.grid.lock import RunLock
from normtest_lib.grid.runner import run_grid
from normtest_lib.run_files import RUN_NOTEBOOK as NOTEBOOK_NAME

FAKE_ENGINE = '''
import json, os, pathlib, signal, time

out = pathlib.Path(out_dir)
out.mkdir(parents=True, exist_ok=True)

def write(name, obj):
    tmp = out / (name + ".tmp")
    tmp.write_text(json.dumps(obj))
    os.replace(tmp, out / name)

checkpoint = out / "checkpoint.json"
state = json.loads(checkpoint.read_text()) if checkpoint.exists() else {"epoch": 0, "value": float(seed)}
resumed_from = state["epoch"]
write("summary.json", {"status": "running", "epochs_completed": resumed_from})
if label_smoothing == 0.5:
    raise RuntimeError("this run fails on purpose")
for epoch in range(state["epoch"] + 1, epochs + 1):
    time.sleep(SLEEP)
    state = {"epoch": epoch, "value": state["value"] * (1 - lr / 10) + lr * epoch}
    write("checkpoint.json", state)
    if label_smoothing == 0.25 and not (out / "killed_once").exists():
        (out / "killed_once").write_text("")
        os.kill(os.getppid(), signal.SIGKILL)
        time.sleep(60)
write("summary.json", {
    "status": "diverged" if lr >= 2 else "complete",
    "epochs_completed": epochs,
    "value": state["value"],
    "resumed_from": resumed_from,
    "num_threads": num_threads,
    "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
    "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
    "device": device,
    "kernel_pid": os.getpid(),
    "pretrained": pretrained,
    "finished_at": time.time(),
})
if lr < 2:
    (out / "best.pt").write_text(f"weights of seed {seed}")
'''


def write_notebook(path: Path, sleep: float = 0.0) -> Path:
    """A notebook shaped like run_experiment.ipynb, running the fake engine above."""
    defaults = {name: field.get_default(call_default_factory=True) for name, field in RunConfig.model_fields.items()}
    parameters = "\n".join(f"{name} = {value!r}" for name, value in defaults.items()) + "\nout_dir = None\n"
    parameters_cell = nbformat.v4.new_code_cell(parameters)
    parameters_cell.metadata["tags"] = ["parameters"]
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.cells = [parameters_cell, nbformat.v4.new_code_cell(f"SLEEP = {sleep}\n" + FAKE_ENGINE)]
    nbformat.write(notebook, path)
    return path


def write_grid(path: Path, notebook: Path, body: str) -> Path:
    path.write_text(f"study: demo\nnotebook: {notebook}\n" + textwrap.dedent(body))
    return path


def summaries(runs_dir: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in sorted(runs_dir.glob("*/summary.json"))}


@pytest.fixture
def notebook(tmp_path: Path) -> Path:
    return write_notebook(tmp_path / "fake_experiment.ipynb")


def test_a_failing_run_is_recorded_and_the_grid_goes_on_then_a_rerun_skips_finished_runs(tmp_path, notebook, monkeypatch):
    import normtest_lib.grid.executors as executors

    monkeypatch.setattr(executors, "cpu_count", lambda: 2)  # 2 workers on 2 cores: 1 thread each
    grid_file = write_grid(
        tmp_path / "grid.yml",
        notebook,
        """
        base: {model: small, epochs: 2}
        zip:
          - {label_smoothing: [0.0, 0.0, 0.5], lr: [0.1, 3.0, 0.1]}
        profiles: {smoke: {}, paper: {}}
        """,
    )
    lines: list[str] = []
    options = dict(runs_root=tmp_path / "runs", workers=2, gpus=[], log=lines.append, progress=False)
    report = run_grid(grid_file, "smoke", **options)
    runs_dir = tmp_path / "runs" / "demo" / "smoke"
    done, diverged, failed = report.records

    assert (report.done, report.diverged, report.failed, report.skipped) == (1, 1, 1, 0)
    assert report.exit_code == 1
    assert (done.status, diverged.status, failed.status) == ("done", "diverged", "failed")
    assert "RuntimeError: this run fails on purpose" in failed.error
    assert read_status(failed.run_dir) == "failed"
    assert json.loads((failed.run_dir / "summary.json").read_text())["error"] == failed.error
    # The executed notebook, renamed into place, shows the error; no partial notebook or lock is left.
    executed = nbformat.read(failed.run_dir / NOTEBOOK_NAME, as_version=4)
    assert any(o.get("ename") == "RuntimeError" for cell in executed.cells for o in cell.get("outputs", []))
    assert sorted(p.name for p in failed.run_dir.iterdir()) == [NOTEBOOK_NAME, "summary.json"]
    assert lines[-1].startswith("done 1, skipped 0, failed 1, diverged 1, wall time ")
    assert any(line.startswith("failed") and f"see: {failed.run_dir / NOTEBOOK_NAME}" in line for line in lines)
    index = json.loads((runs_dir / "grid.json").read_text())
    assert [run["id"] for run in index["runs"]] == [record.run_id for record in report.records]
    # The CPU allotment reached the kernel: parameter and environment.
    finished = summaries(runs_dir)
    assert finished[done.run_id]["num_threads"] == 1 and finished[done.run_id]["omp_num_threads"] == "1"

    rerun = run_grid(grid_file, "smoke", **options)
    assert (rerun.done, rerun.diverged, rerun.failed, rerun.skipped) == (0, 0, 1, 2)
    assert [record.status for record in rerun.records] == ["skipped", "skipped", "failed"]
    after = summaries(runs_dir)
    for record in (done, diverged):
        assert after[record.run_id] == finished[record.run_id]  # untouched: same kernel pid, same values


def test_dry_run_lists_runs_with_status_and_varying_parameters(tmp_path, notebook):
    grid_file = write_grid(
        tmp_path / "grid.yml",
        notebook,
        """
        base: {model: small, epochs: 1}
        axes: {seed: [0, 1, 2]}
        profiles: {smoke: {axes: {seed: [0]}}, paper: {}}
        """,
    )
    lines: list[str] = []
    report = run_grid(grid_file, "paper", runs_root=tmp_path / "runs", dry_run=True, log=lines.append)
    assert lines[-1] == "3 runs"
    assert [line.split()[0] for line in lines[:-1]] == [record.run_id for record in report.records]
    assert [line.split()[1:] for line in lines[:-1]] == [["-", "seed=0"], ["-", "seed=1"], ["-", "seed=2"]]
    assert not (tmp_path / "runs").exists()  # a dry run writes nothing

    finished = tmp_path / "runs" / "demo" / "paper" / report.records[1].run_id / "summary.json"
    finished.parent.mkdir(parents=True)
    finished.write_text('{"status": "complete"}')
    lines.clear()
    run_grid(grid_file, "paper", runs_root=tmp_path / "runs", dry_run=True, log=lines.append)
    assert [line.split()[1] for line in lines[:-1]] == ["-", "complete", "-"]
    lines.clear()
    run_grid(grid_file, "smoke", runs_root=tmp_path / "runs", dry_run=True, log=lines.append)
    assert lines[-1] == "1 runs" and len(lines) == 2


def test_a_bad_grid_fails_before_any_run(tmp_path, notebook):
    grid_file = write_grid(
        tmp_path / "grid.yml",
        notebook,
        """
        axes: {seed: [0, 1], lr: 0.1}
        profiles: {smoke: {}, paper: {}}
        """,
    )
    with pytest.raises(ConfigError, match="axes.lr: expected a list"):
        run_grid(grid_file, "smoke", runs_root=tmp_path / "runs", log=lambda line: None)
    assert not (tmp_path / "runs").exists()
    with pytest.raises(ConfigError, match="executor: unknown executor 'slurm'"):
        run_grid(grid_file.with_name("x.yml"), "smoke", executor="slurm")
    grid_file.write_text(grid_file.read_text().replace("lr: 0.1", "lr: [0.1]"))
    with pytest.raises(ConfigError, match="workers: expected at least 1"):
        run_grid(grid_file, "smoke", runs_root=tmp_path / "runs", workers=0, log=lambda line: None)
    assert not (tmp_path / "runs").exists()


def test_gpu_slots_pin_one_device_per_run(tmp_path, notebook, monkeypatch):
    # No GPU is needed: the kernel only sees the environment and parameters a GPU run gets.
    # --gpus takes positions in the parent's CUDA_VISIBLE_DEVICES: positions 1 and 2 are GPUs 3 and 5.
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,3,5")
    grid_file = write_grid(
        tmp_path / "grid.yml",
        notebook,
        """
        base: {model: small, epochs: 1, device: "cuda:1"}
        axes: {seed: [0, 1]}
        profiles: {smoke: {}, paper: {}}
        """,
    )
    report = run_grid(grid_file, "smoke", runs_root=tmp_path / "runs", gpus=["1", "2"], log=lambda line: None)
    assert report.done == 2
    results = summaries(tmp_path / "runs" / "demo" / "smoke").values()
    assert sorted(s["cuda_visible_devices"] for s in results) == ["3", "5"]
    assert {s["device"] for s in results} == {"cuda"}  # the pinned GPU is cuda:0 inside the run


def test_a_run_held_by_a_live_process_is_not_run_twice(tmp_path, notebook):
    run_dir = tmp_path / "runs" / "abc"
    run_dir.mkdir(parents=True)
    task = RunTask("abc", str(notebook), str(run_dir), {**RunConfig().to_dict(), "epochs": 1})
    with RunLock(run_dir) as held:
        assert held.acquired
        outcome = execute_run(task, Slot())
    assert outcome.status == "busy" and f"pid {os.getpid()}" in outcome.error
    assert not (run_dir / "summary.json").exists()
    assert not (run_dir / ".lock").exists()  # a clean release removes the file


def test_a_lock_left_by_a_dead_process_is_taken_over(tmp_path, notebook):
    run_dir = tmp_path / "runs" / "abc"
    run_dir.mkdir(parents=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", f"from normtest_lib.grid.lock import RunLock; import pathlib, time; RunLock(pathlib.Path({str(run_dir)!r})).acquire(); print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        with RunLock(run_dir) as lock:
            assert not lock.acquired and lock.holder["pid"] == holder.pid
    finally:
        holder.kill()
        holder.wait()
    outcome = execute_run(RunTask("abc", str(notebook), str(run_dir), {**RunConfig().to_dict(), "epochs": 1}), Slot())
    assert outcome.status == "complete"


@pytest.mark.slow
def test_a_grid_killed_mid_run_resumes_to_the_same_results(tmp_path):
    """SIGKILL a grid's process group mid-run, rerun it, compare with an uninterrupted run's results."""
    notebook = write_notebook(tmp_path / "slow.ipynb", sleep=0.3)
    grid_file = write_grid(
        tmp_path / "grid.yml",
        notebook,
        """
        base: {model: small, epochs: 6, lr: 0.7}
        axes: {seed: [1, 2]}
        profiles: {smoke: {}, paper: {}}
        """,
    )
    driver = tmp_path / "driver.py"
    driver.write_text(
        "import sys\nfrom normtest_lib.grid.runner import run_grid\n"
        "if __name__ == '__main__':\n"
        "    sys.exit(run_grid(sys.argv[1], 'smoke', runs_root=sys.argv[2], gpus=[], progress=False).exit_code)\n"
    )
    grid = subprocess.Popen([sys.executable, str(driver), str(grid_file), str(tmp_path / "runs")], start_new_session=True)
    runs_dir = tmp_path / "runs" / "demo" / "smoke"
    deadline = time.monotonic() + 120
    while not any(_epoch(path) >= 2 for path in runs_dir.glob("*/checkpoint.json")):
        assert grid.poll() is None, "the grid ended before it could be killed"
        assert time.monotonic() < deadline, "no run reached its second epoch"
        time.sleep(0.05)
    os.killpg(grid.pid, signal.SIGKILL)  # the driver and its workers; the kernel has its own session
    grid.wait()
    (interrupted,) = [p.parent.name for p in runs_dir.glob("*/checkpoint.json")]
    assert read_status(runs_dir / interrupted) == "running"

    report = run_grid(grid_file, "smoke", runs_root=tmp_path / "runs", gpus=[], log=lambda line: None, progress=False)
    assert report.done == 2 and report.exit_code == 0
    results = summaries(runs_dir)
    # The interrupted run resumed from a checkpoint its orphaned kernel did not overwrite afterwards
    # and ended where an uninterrupted run ends; the other run ran from scratch.
    assert results[interrupted]["resumed_from"] >= 2
    for record in report.records:
        seed = record.varying["seed"]
        assert results[record.run_id]["value"] == uninterrupted_value(seed=seed, lr=0.7, epochs=6)
    assert not list(runs_dir.glob("*/.lock")) and not list(runs_dir.glob("*/.run_experiment.partial.ipynb"))


def uninterrupted_value(seed: int, lr: float, epochs: int) -> float:
    """The fake engine's result computed in one go (same operations, same order)."""
    value = float(seed)
    for epoch in range(1, epochs + 1):
        value = value * (1 - lr / 10) + lr * epoch
    return value


def _epoch(checkpoint: Path) -> int:
    try:
        return json.loads(checkpoint.read_text())["epoch"]
    except (FileNotFoundError, ValueError):
        return 0


PRETRAIN_GRID = """
pretrain: {model: small, epochs: 1, seed: 7}
base: {model: small, epochs: 1, pretrained: "@pretrain", input_norm: pretrain}
axes: {seed: [0, 1]}
profiles: {smoke: {}, paper: {}}
"""


def test_a_declared_pretraining_run_runs_first_and_the_others_start_from_its_weights(tmp_path, notebook, monkeypatch):
    monkeypatch.chdir(tmp_path)
    grid_file = write_grid(tmp_path / "grid.yml", notebook, PRETRAIN_GRID)
    lines: list[str] = []
    dry = run_grid(grid_file, "smoke", dry_run=True, log=lines.append)
    pretrain_id = dry.records[0].run_id
    assert lines[-1] == "3 runs" and "pretraining" in lines[0]

    report = run_grid(grid_file, "smoke", workers=2, gpus=[], progress=False, log=lines.append)
    assert report.done == 3 and report.exit_code == 0
    finished = summaries(Path("runs/demo/smoke"))
    weights = f"runs/demo/smoke/{pretrain_id}/best.pt"  # relative: committed results name no folder of this machine
    dependents = [record.run_id for record in report.records[1:]]
    assert [finished[run]["pretrained"] for run in dependents] == [weights, weights]
    assert all(finished[run]["finished_at"] > finished[pretrain_id]["finished_at"] for run in dependents)
    index = json.loads(Path("runs/demo/smoke/grid.json").read_text())
    assert index["pretrain"]["id"] == pretrain_id and index["notebook"] == "fake_experiment.ipynb"
    executed = json.loads(Path(f"runs/demo/smoke/{pretrain_id}/run_experiment.ipynb").read_text())
    assert executed["metadata"]["papermill"]["input_path"] == "fake_experiment.ipynb"  # no folder of this machine

    # A fresh clone has the committed results but no weights: the pretraining run is rebuilt
    # only when an unfinished run needs it, and its earlier record is kept.
    Path(weights).unlink()
    rerun = run_grid(grid_file, "smoke", progress=False, log=lines.append)
    assert rerun.skipped == 3 and not Path(weights).exists()
    (Path("runs/demo/smoke") / dependents[0] / "summary.json").unlink()
    rerun = run_grid(grid_file, "smoke", progress=False, log=lines.append)
    assert [record.status for record in rerun.records] == ["done", "done", "skipped"]
    assert Path(weights).is_file()
    previous = json.loads(Path(f"runs/demo/smoke/{pretrain_id}/previous/summary.json").read_text())
    assert previous["kernel_pid"] == finished[pretrain_id]["kernel_pid"]


def test_runs_are_not_started_when_their_pretraining_run_fails(tmp_path, notebook, monkeypatch):
    monkeypatch.chdir(tmp_path)
    grid_file = write_grid(tmp_path / "grid.yml", notebook, PRETRAIN_GRID.replace("seed: 7}", "seed: 7, label_smoothing: 0.5}"))
    report = run_grid(grid_file, "smoke", progress=False, log=lambda line: None)
    assert [record.status for record in report.records] == ["failed", "failed", "failed"]
    assert all("not run: the pretraining run" in record.error for record in report.records[1:])
    assert not any(record.run_dir.exists() for record in report.records[1:])
    assert report.exit_code == 1


FOLLOW_GRID = """
pretrain: {model: small, epochs: 1, seed: 7, follow: [norm_layer]}
base: {model: small, epochs: 1, pretrained: "@pretrain", input_norm: pretrain}
axes: {norm_layer: [torch_bn, none], seed: [0, 1]}
profiles: {smoke: {}, paper: {}}
"""


def test_followed_pretraining_runs_all_run_before_the_runs_that_start_from_them(tmp_path, notebook, monkeypatch):
    monkeypatch.chdir(tmp_path)
    grid_file = write_grid(tmp_path / "grid.yml", notebook, FOLLOW_GRID)
    lines: list[str] = []
    dry = run_grid(grid_file, "smoke", dry_run=True, log=lines.append)
    sources = {layer: record.run_id for layer, record in zip(("torch_bn", "none"), dry.records[:2])}
    assert lines[0] == f"{sources['torch_bn']}  -         pretraining (norm_layer=torch_bn)"
    assert lines[1] == f"{sources['none']}  -         pretraining (norm_layer=none)"
    assert lines[-1] == "6 runs" and not any("pretraining" in line for line in lines[2:])

    report = run_grid(grid_file, "smoke", workers=2, gpus=[], progress=False, log=lines.append)
    assert report.done == 6 and report.exit_code == 0
    finished = summaries(Path("runs/demo/smoke"))
    last_source = max(finished[run]["finished_at"] for run in sources.values())
    for record in report.records[2:]:
        layer = record.varying["norm_layer"]
        assert finished[record.run_id]["pretrained"] == f"runs/demo/smoke/{sources[layer]}/best.pt"
        assert finished[record.run_id]["finished_at"] > last_source
    index = json.loads(Path("runs/demo/smoke/grid.json").read_text())
    assert [entry["id"] for entry in index["pretrains"]] == list(sources.values()) and index["pretrain"] is None

    # Weights are rebuilt per source: only the one an unfinished run needs.
    for weights in Path("runs/demo/smoke").glob("*/best.pt"):
        weights.unlink()
    none_runs = [record.run_id for record in report.records[2:] if record.varying["norm_layer"] == "none"]
    (Path("runs/demo/smoke") / none_runs[0] / "summary.json").unlink()
    rerun = run_grid(grid_file, "smoke", progress=False, log=lines.append)
    statuses = {record.run_id: record.status for record in rerun.records}
    assert statuses[sources["none"]] == "done" and statuses[sources["torch_bn"]] == "skipped"
    assert statuses[none_runs[0]] == "done" and list(statuses.values()).count("skipped") == 4
    assert Path(f"runs/demo/smoke/{sources['none']}/best.pt").is_file()
    assert not Path(f"runs/demo/smoke/{sources['torch_bn']}/best.pt").exists()


def test_a_run_is_not_started_when_its_own_pretraining_run_fails_and_the_others_go_on(tmp_path, notebook, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text = FOLLOW_GRID.replace("follow: [norm_layer]", "follow: [norm_layer, label_smoothing]").replace(
        "axes: {norm_layer: [torch_bn, none], seed: [0, 1]}",
        "axes: {seed: [0, 1]}\nzip: [{norm_layer: [torch_bn, none], label_smoothing: [0.0, 0.5]}]",
    )
    grid_file = write_grid(tmp_path / "grid.yml", notebook, text)
    report = run_grid(grid_file, "smoke", workers=2, gpus=[], progress=False, log=lambda line: None)
    good, bad = report.records[:2]
    assert (good.status, bad.status) == ("done", "failed")  # the fake engine fails at label_smoothing 0.5
    dependents = report.records[2:]
    assert len(dependents) == 4
    for record in dependents:
        if record.varying["norm_layer"] == "none":
            assert record.status == "failed"
            assert record.error == f"not run: the pretraining run {bad.run_id} ended 'failed'"
            assert not record.run_dir.exists()
        else:
            assert record.status == "done"
    assert report.exit_code == 1


def test_starting_from_pretrain_without_declaring_it_is_an_error(tmp_path, notebook):
    grid_file = write_grid(tmp_path / "grid.yml", notebook, PRETRAIN_GRID.replace("pretrain: {model: small, epochs: 1, seed: 7}", ""))
    with pytest.raises(ConfigError, match="declares no pretrain run"):
        run_grid(grid_file, "smoke", runs_root=tmp_path / "runs", dry_run=True, log=lambda line: None)
