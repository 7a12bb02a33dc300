"""Grid files: expansion, profiles, run ids, and errors raised before any run starts."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from normtest_lib.config import make_config
from normtest_lib.errors import ConfigError
from normtest_lib.grid.spec import EXECUTION_ONLY_KEYS, expand, load_grid, resolve_profile, run_id


@pytest.fixture
def notebook(tmp_path: Path) -> Path:
    path = tmp_path / "nb.ipynb"
    path.write_text("{}")  # only its existence is checked when a grid loads
    return path


def write_grid(tmp_path: Path, text: str, notebook: Path | None = None, name: str = "study.yml") -> Path:
    text = textwrap.dedent(text)
    if notebook is not None:
        text = f"notebook: {notebook}\n" + text
    path = tmp_path / name
    path.write_text(text)
    return path


GRID = """
study: demo
base: {dataset: synthetic, model: small, epochs: 3}
axes:
  input_norm: [finetune, instance]
  seed: [0, 1]
zip:
  - {batch_size: [32, 64], lr: [0.1, 0.2]}
exclude:
  - {input_norm: instance, batch_size: 64}
profiles:
  smoke: {base: {epochs: 1, lr: 0.05}, axes: {seed: [7], flip: [true, false]}}
  paper: {}
  nozip: {zip: [], exclude: []}
"""


def varied(params: dict, keys=("input_norm", "seed", "batch_size", "lr")) -> tuple:
    return tuple(params.get(key) for key in keys)


def test_axes_cross_in_file_order_then_zip_groups_then_exclusions(tmp_path, notebook):
    grid = load_grid(write_grid(tmp_path, GRID, notebook), "paper")
    got = [varied(run.config.to_dict()) for run in grid.runs]
    assert got == [
        ("finetune", 0, 32, 0.1),
        ("finetune", 0, 64, 0.2),
        ("finetune", 1, 32, 0.1),
        ("finetune", 1, 64, 0.2),
        ("instance", 0, 32, 0.1),  # instance with batch 64 excluded
        ("instance", 1, 32, 0.1),
    ]
    assert all(run.config.epochs == 3 and run.config.model == "small" for run in grid.runs)
    assert grid.study == "demo" and grid.profile == "paper"
    assert grid.varying_keys == ("input_norm", "seed", "batch_size", "lr")
    assert grid.runs[1].varying == {"input_norm": "finetune", "seed": 0, "batch_size": 64, "lr": 0.2}
    assert len({run.id for run in grid.runs}) == 6


def test_profile_merges_base_and_axes_and_pins_its_base_keys(tmp_path, notebook):
    grid = load_grid(write_grid(tmp_path, GRID, notebook), "smoke")
    params = [run.config.to_dict() for run in grid.runs]
    # base merged key by key: epochs overridden, model kept; lr pinned out of the zip group.
    assert {p["epochs"] for p in params} == {1} and {p["model"] for p in params} == {"small"}
    assert {p["lr"] for p in params} == {0.05}
    # seed axis replaced in place, flip axis added after the file's axes, zip crossed last.
    assert [(p["input_norm"], p["seed"], p["flip"], p["batch_size"]) for p in params] == [
        ("finetune", 7, True, 32),
        ("finetune", 7, True, 64),
        ("finetune", 7, False, 32),
        ("finetune", 7, False, 64),
        ("instance", 7, True, 32),
        ("instance", 7, False, 32),
    ]
    assert grid.varying_keys == ("input_norm", "flip", "batch_size")


def test_profile_zip_and_exclude_replace_the_files_lists(tmp_path, notebook):
    grid = load_grid(write_grid(tmp_path, GRID, notebook), "nozip")
    assert [varied(run.config.to_dict(), ("input_norm", "seed", "batch_size")) for run in grid.runs] == [
        ("finetune", 0, 128),
        ("finetune", 1, 128),
        ("instance", 0, 128),
        ("instance", 1, 128),
    ]


def test_profile_axis_replaces_a_file_base_value():
    spec = {
        "base": {"epochs": 3, "seed": 1},
        "profiles": {"sweep": {"axes": {"seed": [4, 5]}}},
    }
    assert expand(resolve_profile(spec, "sweep")) == [{"epochs": 3, "seed": 4}, {"epochs": 3, "seed": 5}]


def test_exclusion_compares_unset_keys_with_the_defaults():
    spec = {
        "axes": {"lr": [0.1, 0.2]},
        "exclude": [{"lr": 0.2, "optimizer": "sgd"}],  # optimizer defaults to sgd
        "profiles": {"paper": {}},
    }
    assert expand(resolve_profile(spec, "paper")) == [{"lr": 0.1}]


def test_a_pinned_key_that_makes_runs_identical_runs_once(tmp_path, notebook):
    grid_file = write_grid(
        tmp_path,
        """
        base: {model: small}
        axes: {lr: [0.1, 0.2]}
        profiles: {smoke: {base: {lr: 0.3}}, paper: {}}
        """,
        notebook,
    )
    assert len(load_grid(grid_file, "paper").runs) == 2
    smoke = load_grid(grid_file, "smoke")
    assert [run.config.lr for run in smoke.runs] == [0.3]
    assert smoke.varying_keys == ()


def test_grid_index_lists_ids_and_resolved_params(tmp_path, notebook):
    grid = load_grid(write_grid(tmp_path, GRID, notebook), "paper")
    index = json.loads(json.dumps(grid.index()))  # must be JSON as it is
    assert index["study"] == "demo" and index["profile"] == "paper"
    assert [entry["id"] for entry in index["runs"]] == [run.id for run in grid.runs]
    assert index["runs"][0]["params"]["batch_size"] == 32
    assert index["varying"] == ["input_norm", "seed", "batch_size", "lr"]


def test_study_defaults_to_the_file_name(tmp_path, notebook):
    grid_file = write_grid(tmp_path, "profiles: {smoke: {}, paper: {}}\n", notebook, name="my_study.yml")
    grid = load_grid(grid_file, "smoke")
    assert grid.study == "my_study" and len(grid.runs) == 1


# --- run ids ---------------------------------------------------------------------------------


def test_execution_only_keys_keep_the_id_and_result_keys_change_it(tmp_path):
    config = make_config(epochs=2, lr=0.1)
    same = make_config(epochs=2, lr=0.1, data_root=str(tmp_path), download=True, device="cpu", num_threads=3)
    assert run_id(config) == run_id(same)
    assert run_id(make_config(epochs=2, lr=0.2)) != run_id(config)
    assert run_id(make_config(epochs=2, lr=0.1, seed=1)) != run_id(config)
    assert EXECUTION_ONLY_KEYS == {"data_root", "download", "device", "num_threads", "compile", "channels_last"}


def test_id_is_the_sha256_of_the_parameters_that_differ_from_the_defaults():
    # Defaults stay out, so a field added to RunConfig later leaves committed results' ids alone.
    config = make_config(epochs=2, lr=0.1, model="small", data_root="somewhere")
    canonical = json.dumps({"epochs": 2, "lr": 0.1}, sort_keys=True, separators=(",", ":"))
    assert run_id(config) == hashlib.sha256(canonical.encode()).hexdigest()[:12]
    assert run_id(make_config()) == hashlib.sha256(b"{}").hexdigest()[:12]


def test_runs_from_the_pretraining_run_keep_their_ids_in_any_runs_root(tmp_path, notebook):
    text = """
    study: demo
    pretrain: {model: small, epochs: 1}
    base: {model: small, epochs: 1, pretrained: "@pretrain"}
    axes: {seed: [0, 1]}
    profiles: {smoke: {}, paper: {}}
    """
    grid_file = write_grid(tmp_path, text, notebook)
    in_runs, in_results = load_grid(grid_file, "smoke"), load_grid(grid_file, "smoke", runs_root="results")
    assert [run.id for run in in_runs.runs] == [run.id for run in in_results.runs]
    assert in_results.runs[0].config.pretrained == f"results/demo/smoke/{in_results.pretrains[0].id}/best.pt"
    assert len({run.id for run in in_runs.runs}) == 2


class _FixedParams:
    """A stand-in config, so the pinned id below does not move when RunConfig gains a field."""

    def to_dict(self):
        return {"lr": 0.1, "seed": 3, "model": "small", "milestones": [2, 4], "device": "cuda:1", "num_threads": 2}


def test_pinned_id_guards_the_hashing_scheme():
    # Computed once (defaults left out: "model": "small" is not hashed); if this changes, every existing run folder is orphaned.
    assert run_id(_FixedParams()) == "de851ee453d7"


def test_id_is_stable_across_processes_and_hash_seeds():
    code = (
        "from normtest_lib.grid.spec import run_id\n"
        "class P:\n"
        "    def to_dict(self):\n"
        "        return {'seed': 3, 'model': 'small', 'lr': 0.1, 'num_threads': 2, 'device': 'cuda:1', 'milestones': [2, 4]}\n"
        "print(run_id(P()))\n"
    )
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        assert result.stdout.strip() == run_id(_FixedParams()) == "de851ee453d7"


# --- errors, all before any run -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "profile", "expected"),
    [
        ("axes: {seed: [0]}\nprofiles: {smoke: {}, paper: {}}\nexecutor: dask\n", "smoke", r"executor: unknown top-level key"),
        ("profiles: {smoke: {workers: 2}, paper: {}}\n", "smoke", r"profiles.smoke.workers: unknown profile key"),
        ("profiles: {smoke: {}, paper: {}}\n", "big", r"profile 'big'.*unknown profile 'big'; known profiles: paper, smoke"),
        ("axes: {seed: 0}\nprofiles: {smoke: {}, paper: {}}\n", "smoke", r"axes.seed: expected a list of values, got 0"),
        ("profiles: {smoke: {axes: {seed: 3}}, paper: {}}\n", "paper", r"profiles.smoke.axes.seed: expected a list"),
        ("zip: [{lr: [0.1, 0.2], seed: [1]}]\nprofiles: {smoke: {}, paper: {}}\n", "smoke", r"zip\[0\]: zipped lists must have equal length: lr has 2, seed has 1"),
        ("axes: {learning_rate: [0.1]}\nprofiles: {smoke: {}, paper: {}}\n", "smoke", r"axes.learning_rate: unknown run parameter"),
        ("base: {epoch: 3}\nprofiles: {smoke: {}, paper: {}}\n", "smoke", r"base.epoch: unknown run parameter; did you mean 'epochs'\?"),
        ("exclude: [{modle: small}]\nprofiles: {smoke: {}, paper: {}}\n", "smoke", r"exclude\[0\].modle: unknown run parameter"),
        ("profiles: {smoke: {}}\n", "smoke", r"profiles: every grid needs the profiles smoke, paper; missing: paper"),
        ("base: {seed: 1}\naxes: {seed: [1, 2]}\nprofiles: {smoke: {}, paper: {}}\n", "smoke", r"axes.seed: seed is also set in base"),
        ("axes: {seed: [1, 1]}\nprofiles: {smoke: {}, paper: {}}\n", "smoke", r"axes.seed: the value 1 is listed twice"),
        ("zip: [{seed: [1, 1], lr: [0.1, 0.1]}]\nprofiles: {smoke: {}, paper: {}}\n", "smoke", r"zip\[0\]: the row \{'seed': 1, 'lr': 0.1\} is listed twice"),
        ("axes: {seed: []}\nprofiles: {smoke: {}, paper: {}}\n", "smoke", r"axes.seed: the list is empty"),
        ("axes: {device: [cpu, cuda]}\nprofiles: {smoke: {}, paper: {}}\n", "smoke", r"device: runs differ only in execution-only keys"),
        ("axes: {seed: [1]}\nexclude: [{seed: 1}]\nprofiles: {smoke: {}, paper: {}}\n", "smoke", r"exclude: every run is excluded"),
        ("study: 'a b'\nprofiles: {smoke: {}, paper: {}}\n", "smoke", r"study: expected a folder-safe name"),
    ],
)
def test_bad_grid_files_name_the_file_profile_and_key(tmp_path, notebook, text, profile, expected):
    grid_file = write_grid(tmp_path, text, notebook)
    with pytest.raises(ConfigError, match=expected) as info:
        load_grid(grid_file, profile)
    assert str(info.value).startswith(f"{grid_file} (profile {profile!r}): ")


def test_a_run_that_fails_validation_names_its_parameters(tmp_path, notebook):
    grid_file = write_grid(
        tmp_path,
        """
        base: {model: small}
        axes:
          input_norm: [finetune, pretrain]
          seed: [0, 1]
        profiles: {smoke: {}, paper: {}}
        """,
        notebook,
    )
    with pytest.raises(ConfigError) as info:
        load_grid(grid_file, "paper")
    message = str(info.value)
    assert message.startswith(f"{grid_file} (profile 'paper'): run input_norm='pretrain', seed=0: invalid run parameters")
    assert "input_norm 'pretrain' needs a pretrained start" in message
    assert "(2 of 4 runs are invalid; the first is shown)" in message


def test_yaml_syntax_error_names_the_file_and_line(tmp_path):
    grid_file = write_grid(tmp_path, "profiles: {smoke: {}, paper: {}}\naxes:\n  seed: [0, 1\n  lr: [0.1]\n")
    with pytest.raises(ConfigError, match=rf"{grid_file}: line 4, column 5: YAML syntax error: expected ','"):
        load_grid(grid_file, "smoke")


def test_missing_grid_file_and_missing_notebook(tmp_path):
    with pytest.raises(ConfigError, match="grid file not found"):
        load_grid(tmp_path / "nowhere.yml", "smoke")
    grid_file = write_grid(tmp_path, "notebook: notebooks/absent.ipynb\nprofiles: {smoke: {}, paper: {}}\n")
    with pytest.raises(ConfigError, match=r"notebook: notebooks/absent.ipynb not found"):
        load_grid(grid_file, "smoke")


def test_top_level_must_be_a_mapping(tmp_path):
    grid_file = write_grid(tmp_path, "- seed\n- lr\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_grid(grid_file, "smoke")
