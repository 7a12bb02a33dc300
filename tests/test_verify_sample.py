"""``normtest verify --sample`` over a results root, and ``normtest run --rerun-stale`` / the dirty-tree refusal."""

from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path

import pytest

from normtest_lib.cli import main
from normtest_lib.config import make_config
from normtest_lib.engine import train
from normtest_lib.errors import ConfigError
from normtest_lib.grid import runner
from normtest_lib.grid.execute import RunOutcome, read_status
from normtest_lib.grid.spec import load_grid
from normtest_lib.layers import batchnorm
from normtest_lib.verify import provenance
from normtest_lib.verify import run as verify_module
from normtest_lib.verify.sample import choose_sample, verify_sample

GRID = """\
study: demo
base: {dataset: synthetic, model: small, epochs: 2, batch_size: 40, train_subset: 120, val_fraction: 0.2,
       device: cpu, eval_batch_size: 256, lr: 0.05, num_threads: 1}
axes:
  norm_layer: [torch_bn, bn]
  seed: [0, 1]
profiles: {smoke: {}, paper: {}}
"""


class InProcess:
    """An executor that trains each run in this process (no papermill), so patched code applies to it."""

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return False

    def map_unordered(self, function, tasks):
        for task in tasks:
            parameters = {key: value for key, value in task.parameters.items()}
            summary = train(make_config(parameters), task.run_dir, progress=False)
            yield task, RunOutcome(summary["status"], 0.0)


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    """results/demo/smoke/: four finished runs (two variants x two seeds), via the grid runner."""
    root = tmp_path_factory.mktemp("project")
    (root / "demo.yml").write_text(GRID)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(runner, "make_executor", lambda *args, **kwargs: InProcess())
        patch.setattr(provenance, "uncommitted_library_changes", lambda: [])
        report = runner.run_grid(root / "demo.yml", "smoke", runs_root=root / "results", log=lambda line: None)
    assert report.done == 4
    return root


@pytest.fixture
def project(results, tmp_path) -> Path:
    return Path(shutil.copytree(results, tmp_path / "project"))


def ids(project: Path) -> dict[tuple[str, int], str]:
    grid = load_grid(project / "demo.yml", "smoke", project / "results")
    return {(run.config.norm_layer, run.config.seed): run.id for run in grid.runs}


@pytest.fixture(autouse=True)
def verify_in_this_process(monkeypatch):
    """These tests patch a layer in this process, which a fresh interpreter per verification would not see."""
    monkeypatch.setattr(verify_module, "ISOLATE", False)


def test_each_run_of_a_sample_is_verified_in_a_fresh_interpreter(tmp_path, monkeypatch):
    monkeypatch.setattr(verify_module, "ISOLATE", True)
    monkeypatch.setattr(verify_module, "verify_or_error", lambda *args, **kwargs: "patched in this process only")
    (tmp_path / "not-a-run").mkdir()
    sources: dict = {}
    outcome = verify_module.verify_in_fresh_process(tmp_path / "not-a-run", root_dir=tmp_path, sources=sources)
    assert outcome.status == verify_module.UNAVAILABLE  # the new interpreter ran the real code, not the patch
    assert outcome.run_dir == tmp_path / "not-a-run" and sources == {}


def test_the_sample_takes_one_run_per_variant_with_the_lowest_seed(project):
    chosen = choose_sample(project / "results" / "demo" / "smoke", 5)
    by_id = ids(project)
    assert [(label, run.name) for label, run in chosen] == [
        ("norm_layer=bn", by_id[("bn", 0)]), ("norm_layer=torch_bn", by_id[("torch_bn", 0)])]
    assert len(choose_sample(project / "results" / "demo" / "smoke", 1)) == 1


def test_the_sample_report_counts_per_set_and_records_it(project, monkeypatch, capsys):
    by_id = ids(project)
    set_dir = project / "results" / "demo" / "smoke"
    legacy = set_dir / by_id[("bn", 0)]
    (legacy / "fingerprint.json").unlink()  # as made before fingerprints existed
    monkeypatch.setattr(verify_module, "commit_records_fingerprints", lambda commit: False)
    assert main(["verify", "--sample", "2", str(project / "results")]) == 0
    out = capsys.readouterr().out
    assert "demo/smoke: 2 of 4 runs checked (3 with a fingerprint): 1 verified, 1 no fingerprint; 1 of 1 fingerprinted runs reproduce" in out
    record = json.loads((set_dir / "verification.json").read_text())
    assert record["counts"]["verified"] == 1 and record["counts"]["no fingerprint"] == 1
    assert record["runs_in_set"] == 4 and record["with_fingerprint"] == 3 and record["sample"] == 2
    assert {entry["run_id"] for entry in record["checked"]} == {by_id[("bn", 0)], by_id[("torch_bn", 0)]}
    assert str(project) not in json.dumps(record)  # committed: names no folder of this machine
    # A fingerprinted run that no longer verifies fails the sample, naming its first difference.
    init = batchnorm.BatchNorm.__init__
    monkeypatch.setattr(batchnorm.BatchNorm, "__init__", lambda self, n, eps=1e-5, momentum=0.1: init(self, n, 1e-2, momentum))
    shutil.rmtree(legacy)  # the bn variant's lowest seed is now seed 1, which has its fingerprint
    assert main(["verify", "--sample", "2", str(project / "results"), "--no-record"]) == 1
    out = capsys.readouterr().out
    assert "differs" in out and "(initial logit rms)" in out
    assert json.loads((set_dir / "verification.json").read_text()) == record  # --no-record wrote nothing


def test_a_root_without_runs_is_an_error(tmp_path, capsys):
    assert main(["verify", "--sample", "2", str(tmp_path)]) == 2
    assert "holds no finished run folders" in capsys.readouterr().err


def run(project: Path, **options):
    lines: list[str] = []
    report = runner.run_grid(project / "demo.yml", "smoke", runs_root=project / "results", log=lines.append, **options)
    return report, "\n".join(lines)


def test_rerun_stale_reruns_exactly_the_runs_that_no_longer_verify(project, monkeypatch):
    monkeypatch.setattr(runner, "make_executor", lambda *args, **kwargs: InProcess())
    monkeypatch.setattr(provenance, "uncommitted_library_changes", lambda: [])
    by_id = ids(project)
    report, _ = run(project, rerun_stale=True)
    assert report.done == 0 and report.skipped == 4  # unchanged code: nothing is stale
    init = batchnorm.BatchNorm.__init__
    monkeypatch.setattr(batchnorm.BatchNorm, "__init__", lambda self, n, eps=1e-5, momentum=0.1: init(self, n, 1e-2, momentum))
    _, listing = run(project, rerun_stale=True, dry_run=True)
    assert f"{by_id[('bn', 0)]}  stale" in listing and f"{by_id[('bn', 1)]}  stale" in listing
    assert f"{by_id[('torch_bn', 0)]}  complete" in listing
    old = (project / "results" / "demo" / "smoke" / by_id[("bn", 0)] / "fingerprint.json").read_text()
    report, _ = run(project)
    assert report.done == 0  # without --rerun-stale, finished runs are skipped as before
    report, _ = run(project, rerun_stale=True)
    assert report.done == 2 and report.skipped == 2
    folder = project / "results" / "demo" / "smoke" / by_id[("bn", 0)]
    assert (folder / "previous" / "fingerprint.json").read_text() == old
    assert (folder / "fingerprint.json").read_text() != old and read_status(folder) == "complete"
    assert verify_module.verify_run(folder).status == "verified"


def test_runs_into_results_are_refused_from_a_tree_with_uncommitted_library_changes(tmp_path, monkeypatch):
    (tmp_path / "demo.yml").write_text(GRID)
    monkeypatch.setattr(provenance, "uncommitted_library_changes", lambda: [" M normtest_lib/layers/batchnorm.py"])

    def never(*args, **kwargs):
        raise AssertionError("a run started")

    monkeypatch.setattr(runner, "make_executor", never)
    with pytest.raises(ConfigError, match=r"normtest_lib/ has uncommitted changes \(M normtest_lib/layers/batchnorm.py\)"
                                          r".*name the commit that made them"):
        runner.run_grid(tmp_path / "demo.yml", "smoke", runs_root=tmp_path / "results", log=lambda line: None)
    assert not (tmp_path / "results").exists()
    # runs/ is not committed: the same tree may run there (the executor is reached).
    with pytest.raises(AssertionError, match="a run started"):
        runner.run_grid(tmp_path / "demo.yml", "smoke", runs_root=tmp_path / "runs", log=lambda line: None)


def test_the_git_query_sees_uncommitted_changes(tmp_path, monkeypatch):
    import subprocess

    repo = tmp_path / "repo"
    package = repo / "normtest_lib"
    package.mkdir(parents=True)
    (package / "a.py").write_text("x = 1\n")
    git = ["git", "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q", str(repo)], check=True)
    subprocess.run([*git, "-C", str(repo), "add", "."], check=True)
    subprocess.run([*git, "-C", str(repo), "commit", "-qm", "x"], check=True)
    monkeypatch.setattr(provenance, "PACKAGE", package)
    assert provenance.uncommitted_library_changes() == []
    (package / "a.py").write_text("x = 2\n")
    assert provenance.uncommitted_library_changes() == [" M normtest_lib/a.py"]


# --- several pretraining runs (a grid's pretrain.follow) --------------------------------------


def _fake_run(folder: Path, pretrained: str = "none", **params) -> Path:
    folder.mkdir(parents=True)
    (folder / "params.yaml").write_text(json.dumps({"pretrained": pretrained, **params}))  # JSON is YAML
    (folder / "summary.json").write_text(json.dumps({"status": "complete"}))
    (folder / "fingerprint.json").write_text("{}")
    return folder


def test_a_stale_pretraining_run_makes_only_its_own_runs_stale(tmp_path, monkeypatch):
    from normtest_lib.verify import stale

    sources = {layer: _fake_run(tmp_path / f"source_{layer}", norm_layer=layer) for layer in ("bn", "none")}
    runs = {layer: _fake_run(tmp_path / f"run_{layer}", f"{sources[layer]}/best.pt", norm_layer=layer) for layer in sources}
    verified: list[str] = []

    def fake_verify(run_dir, **kwargs):
        verified.append(Path(run_dir).name)
        status = "differs" if Path(run_dir).name == "source_none" else "verified"
        return verify_module.Outcome(Path(run_dir), status, status)

    monkeypatch.setattr(stale, "verify_in_fresh_process", fake_verify)
    found = stale.stale_runs([*sources.values(), *runs.values()], pretrains=list(sources.values()), log=lambda line: None)
    assert set(found) == {sources["none"], runs["none"]}
    assert found[runs["none"]] is found[sources["none"]]  # stale because its start is, without recomputing it
    assert "run_none" not in verified and "run_bn" in verified


def test_the_sample_tells_several_pretraining_runs_apart(tmp_path):
    from normtest_lib.verify.sample import variants

    set_dir = tmp_path / "demo" / "smoke"
    sources = {layer: _fake_run(set_dir / f"{layer:0>12}", norm_layer=layer, seed=7) for layer in ("bn", "none")}
    for layer, source in sources.items():
        _fake_run(set_dir / f"run{layer:0>9}", f"{source}/best.pt", norm_layer=layer, seed=0)
    entries = [{"id": source.name, "params": {"norm_layer": layer, "seed": 7}} for layer, source in sources.items()]
    index = {"varying": ["norm_layer"], "pretrain": None, "pretrains": entries, "runs": []}
    (set_dir / "grid.json").write_text(json.dumps(index))
    grouped = variants(set_dir)
    assert grouped["pretraining run norm_layer=bn"] == [sources["bn"]]
    assert grouped["pretraining run norm_layer=none"] == [sources["none"]]
    assert set(grouped) == {"pretraining run norm_layer=bn", "pretraining run norm_layer=none", "norm_layer=bn", "norm_layer=none"}
    # A grid.json from before pretrains: its one pretraining run.
    (set_dir / "grid.json").write_text(json.dumps({"varying": ["norm_layer"], "pretrain": entries[0], "runs": []}))
    assert variants(set_dir)["pretraining run"] == [sources["bn"]]


def test_sample_all_verifies_every_run_of_every_set(project, capsys):
    # "all" is not the absence of --sample: it once parsed to None, the default, and was taken for one run folder
    assert main(["verify", "--sample", "all", str(project / "results"), "--no-record"]) == 0
    out = capsys.readouterr().out
    assert "demo/smoke: 2 of 4 runs checked" in out  # one run of each of its 2 variants
    assert "norm_layer=bn" in out and "norm_layer=torch_bn" in out
