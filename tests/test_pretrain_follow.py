"""Several pretraining runs in one grid: ``pretrain.follow`` (grid/spec.py), and grids without it unchanged."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest
import yaml

from normtest_lib.config import make_config
from normtest_lib.errors import ConfigError
from normtest_lib.grid import spec as spec_module
from normtest_lib.grid.spec import load_grid, pretrain_token, read_grid_file, run_id
from normtest_lib.report import reproducibility as repro

REPO = Path(__file__).resolve().parent.parent
# The last commit whose grid/spec.py knew one pretraining run only: grids without `follow` must load
# into the same runs, ids and grid.json with the code after it.
BEFORE_FOLLOW = "14e486f4ba934615c2989d393c47a32fc3c39afb"


@pytest.fixture
def notebook(tmp_path: Path) -> Path:
    path = tmp_path / "nb.ipynb"
    path.write_text("{}")  # only its existence is checked when a grid loads
    return path


def write_grid(tmp_path: Path, notebook: Path, text: str) -> Path:
    path = tmp_path / "study.yml"
    path.write_text(f"study: demo\nnotebook: {notebook}\n" + textwrap.dedent(text))
    return path


FOLLOW_GRID = """
pretrain: {model: small, epochs: 2, seed: 7, follow: [norm_layer]}
base: {model: small, epochs: 1, pretrained: "@pretrain", input_norm: pretrain}
axes:
  norm_layer: [torch_bn, none]
  seed: [0, 1]
profiles: {smoke: {}, paper: {}}
"""


def test_follow_makes_one_pretraining_run_per_value_and_each_run_starts_from_its_own(tmp_path, notebook):
    grid = load_grid(write_grid(tmp_path, notebook, FOLLOW_GRID), "smoke", runs_root="results")
    expected = [make_config(model="small", epochs=2, seed=7, norm_layer=layer) for layer in ("torch_bn", "none")]
    assert [run.config for run in grid.pretrains] == expected  # in the order first needed
    assert [run.id for run in grid.pretrains] == [run_id(config) for config in expected]
    assert [run.varying for run in grid.pretrains] == [{"norm_layer": "torch_bn"}, {"norm_layer": "none"}]
    assert grid.all_runs == grid.pretrains + grid.runs and len(grid.runs) == 4
    by_layer = {run.config.norm_layer: run.id for run in grid.pretrains}
    for run in grid.runs:
        source = by_layer[run.config.norm_layer]
        assert run.config.pretrained == f"results/demo/smoke/{source}/best.pt"
        assert grid.source_of(run.id) == source
        # A dependent's id hashes its source's id, not the weights' path: the same in any runs root.
        assert run.id == spec_module._hash({**spec_module._identity(run.config), "pretrained": pretrain_token(source)})
    assert [run.id for run in load_grid(grid.path, "smoke").runs] == [run.id for run in grid.runs]
    index = grid.index()
    assert index["pretrain"] is None  # several: grid.json's single-run key names none of them
    assert index["pretrains"] == [{"id": run.id, "params": run.config.to_dict()} for run in grid.pretrains]


def test_a_followed_key_the_runs_do_not_set_gives_one_pretraining_run_with_the_default(tmp_path, notebook):
    grid = load_grid(write_grid(tmp_path, notebook, FOLLOW_GRID.replace("[norm_layer]", "[conv_layer]")), "smoke")
    assert len(grid.pretrains) == 1
    assert grid.pretrains[0].config == make_config(model="small", epochs=2, seed=7)  # conv_layer: its default
    assert {run.config.pretrained for run in grid.runs} == {f"runs/demo/smoke/{grid.pretrains[0].id}/best.pt"}
    assert grid.index()["pretrain"] == grid.index()["pretrains"][0]


def test_a_profile_replaces_follow_and_without_it_there_is_one_pretraining_run(tmp_path, notebook):
    text = FOLLOW_GRID.replace("profiles: {smoke: {}, paper: {}}", "profiles: {smoke: {pretrain: {follow: []}}, paper: {}}")
    grid_file = write_grid(tmp_path, notebook, text)
    single, several = load_grid(grid_file, "smoke"), load_grid(grid_file, "paper")
    assert len(several.pretrains) == 2 and len(single.pretrains) == 1
    assert single.pretrains[0].config == make_config(model="small", epochs=2, seed=7)
    index = single.index()
    assert index["pretrain"] == {"id": single.pretrains[0].id, "params": single.pretrains[0].config.to_dict()}
    assert index["pretrains"] == [index["pretrain"]]


def test_no_pretraining_run_means_empty_pretrains_in_grid_json(tmp_path, notebook):
    grid = load_grid(write_grid(tmp_path, notebook, "axes: {seed: [0, 1]}\nprofiles: {smoke: {}, paper: {}}\n"), "smoke")
    assert grid.pretrains == () and grid.all_runs == grid.runs and grid.source_of(grid.runs[0].id) is None
    assert grid.index()["pretrain"] is None and grid.index()["pretrains"] == []


@pytest.mark.parametrize(
    ("pretrain", "profile_pretrain", "expected"),
    [
        ("{model: small, follow: [norm_layr]}", "{}", r"pretrain.follow: 'norm_layr' is not a run parameter; did you mean 'norm_layer'\?"),
        ("{model: small, follow: norm_layer}", "{}", r"pretrain.follow: expected a list of run parameters .*'norm_layer'"),
        ("{model: small, follow: [1]}", "{}", r"pretrain.follow: expected a list of run parameters"),
        ("{model: small, follow: [seed, seed]}", "{}", r"pretrain.follow: the key 'seed' is listed twice"),
        ("{model: small, follow: [pretrained]}", "{}", r"pretrain.follow: 'pretrained' cannot be followed"),
        ("{model: small}", "{follow: [lrr]}", r"profiles.smoke.pretrain.follow: 'lrr' is not a run parameter"),
    ],
)
def test_a_bad_follow_is_a_config_error_naming_file_profile_and_key(tmp_path, notebook, pretrain, profile_pretrain, expected):
    text = f"""
    pretrain: {pretrain}
    base: {{model: small, epochs: 1, pretrained: "@pretrain"}}
    profiles: {{smoke: {{pretrain: {profile_pretrain}}}, paper: {{}}}}
    """
    grid_file = write_grid(tmp_path, notebook, text)
    for profile in ("smoke", "paper"):  # every profile's sections are checked, whichever one is loaded
        with pytest.raises(ConfigError, match=expected) as caught:
            load_grid(grid_file, profile)
        assert str(caught.value).startswith(f"{grid_file} (profile '{profile}'): ")


def test_a_pretraining_run_that_fails_validation_names_its_followed_values(tmp_path, notebook):
    text = FOLLOW_GRID.replace("norm_layer: [torch_bn, none]", "norm_layer: [torch_bn, no_such_layer]")
    with pytest.raises(ConfigError, match=r"\(profile 'smoke'\): pretrain \(norm_layer='no_such_layer'\): invalid"):
        load_grid(write_grid(tmp_path, notebook, text), "smoke")


def test_grid_run_count_counts_each_distinct_pretraining_run(tmp_path, notebook):
    grid_file = write_grid(tmp_path, notebook, FOLLOW_GRID)
    grid = load_grid(grid_file, "smoke")
    assert repro.grid_run_count(grid_file, "smoke") == len(grid.all_runs) == 6
    profile_dir = tmp_path / "runs" / "demo" / "smoke"
    profile_dir.mkdir(parents=True)
    (profile_dir / "grid.json").write_text(json.dumps(grid.index()))
    assert repro.recorded_grid_count(profile_dir) == 6
    # A grid.json written before pretrains existed counts its one pretraining run.
    old = {key: value for key, value in grid.index().items() if key != "pretrains"}
    (profile_dir / "grid.json").write_text(json.dumps({**old, "pretrain": {"id": "0123456789ab", "params": {}}}))
    assert repro.recorded_grid_count(profile_dir) == 5


# --- grids without follow: unchanged ----------------------------------------------------------


def _spec_before_follow(monkeypatch) -> types.ModuleType:
    """grid/spec.py as of :data:`BEFORE_FOLLOW`, importing today's package around it."""
    try:
        source = subprocess.run(
            ["git", "show", f"{BEFORE_FOLLOW}:normtest_lib/grid/spec.py"],
            cwd=REPO, capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        pytest.skip(f"needs the git history with commit {BEFORE_FOLLOW}")
    name = "normtest_lib.grid._spec_before_follow"
    module = types.ModuleType(name)
    module.__package__ = "normtest_lib.grid"
    module.__file__ = spec_module.__file__  # its project root (notebook lookup) is this one
    monkeypatch.setitem(sys.modules, name, module)
    exec(compile(source, f"spec.py@{BEFORE_FOLLOW[:7]}", "exec"), module.__dict__)
    return module


@pytest.mark.slow
def test_every_committed_grid_and_profile_keeps_its_runs_ids_and_grid_json(tmp_path, monkeypatch):
    before = _spec_before_follow(monkeypatch)
    grid_files = sorted((REPO / "params").glob("*.yml"))
    for grid_file in grid_files:  # data roots need only exist, relative to where the grid runs
        for folder in set(re.findall(r"data/[A-Za-z0-9_.-]+", grid_file.read_text())):
            (tmp_path / folder).mkdir(parents=True, exist_ok=True)
    monkeypatch.chdir(tmp_path)
    compared = 0
    for grid_file in grid_files:
        # The code before `follow` cannot read a profile that uses it, so it gets the file without those.
        without_follow = _profiles_without_follow(grid_file, tmp_path)
        for profile in read_grid_file(without_follow)["profiles"]:
            old = before.load_grid(without_follow, profile, "results").index()
            new = load_grid(without_follow, profile, "results").index()
            pretrains = new.pop("pretrains")
            assert new == old, f"{grid_file.name} --profile {profile}"
            assert pretrains == ([old["pretrain"]] if old["pretrain"] is not None else []), grid_file.name
            compared += 1
    assert compared >= 14  # every profile of the four grids but study 1's local, which follows norm_layer


def _profiles_without_follow(grid_file: Path, folder: Path) -> Path:
    """A copy of ``grid_file`` in ``folder`` without the profiles whose pretraining run uses ``follow``."""
    grid = yaml.safe_load(grid_file.read_text())
    grid["profiles"] = {
        name: profile for name, profile in grid["profiles"].items()
        if "follow" not in ((profile or {}).get("pretrain") or {})
    }  # fmt: skip
    copy = folder / grid_file.name
    copy.write_text(yaml.safe_dump(grid, sort_keys=False))
    return copy
