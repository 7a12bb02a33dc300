"""Sizing a profile: variants that cost the same per epoch, a run's projected seconds, the makespan."""

import itertools
from pathlib import Path

import pytest

from normtest_lib.grid.cost import EpochCost, cost_from_history, group_variants, makespan, variant_key
from normtest_lib.grid.spec import load_grid

STUDY_3 = Path(__file__).resolve().parents[1] / "params" / "convnorm_label_noise.yml"


def test_runs_differing_only_in_seed_noise_or_lr_are_one_variant():
    base = {"model": "cifar_resnet", "norm_layer": "torch_bn", "batch_size": 128}
    runs = [
        ("a", {**base, "seed": 0, "label_noise": 0.0, "lr": 0.1}),
        ("b", {**base, "seed": 1, "label_noise": 0.2, "lr": 0.01}),
        ("c", {**base, "norm_layer": "gn:c/4", "seed": 0}),
        ("d", {**base, "batch_size": 8, "seed": 0}),
    ]
    assert list(group_variants(runs).values()) == [["a", "b"], ["c"], ["d"]]
    assert variant_key({"x": 1, "y": [2]}) == variant_key({"y": [2], "x": 1})  # order-independent


def test_the_study_3_local_profile_has_three_variants(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the data root is relative to where the grid runs; it need only exist here
    (tmp_path / "data" / "cifar10-jpeg").mkdir(parents=True)
    grid = load_grid(STUDY_3, "local")
    groups = group_variants((run.id, run.config.to_dict()) for run in grid.all_runs)
    layers = {tuple(grid_run.config.conv_layer for grid_run in grid.runs if grid_run.id in ids) for ids in groups.values()}
    assert len(groups) == 3 and all(len(set(names)) == 1 for names in layers)


def test_a_run_costs_its_first_epoch_and_then_the_steady_rate():
    assert EpochCost(first=30.0, steady=10.0).run_seconds(100) == 30.0 + 99 * 10.0
    with pytest.raises(ValueError):
        EpochCost(1.0, 1.0).run_seconds(0)


def test_makespan_longest_first_matches_brute_force_on_small_sets():
    durations = [7.0, 5.0, 4.0, 3.0, 3.0, 2.0]
    assert makespan(durations, 1) == sum(durations)
    assert makespan(durations, 10) == 7.0
    # Two workers: longest-first gives 7+3+2 = 12 and 5+4+3 = 12, the optimum (24 / 2).
    best = min(
        max(sum(d for d, w in zip(durations, assign) if w == k) for k in (0, 1))
        for assign in itertools.product((0, 1), repeat=len(durations))
    )
    assert makespan(durations, 2) == best == 12.0
    assert makespan([], 2) == 0.0


def test_a_variants_cost_read_from_a_run_is_its_first_epoch_and_the_median_of_the_later_ones():
    # A resumed run compiles again in its first epoch after the resume (25 s): the median keeps it out of the rate.
    rows = [{"seconds": 30.0}, {"seconds": 10.0}, {"seconds": 25.0}, {"seconds": 11.0}, {"seconds": 12.0}]
    assert cost_from_history(rows) == EpochCost(first=30.0, steady=11.5)
    assert cost_from_history(rows).run_seconds(5) == 30.0 + 4 * 11.5
    assert cost_from_history(rows[:1]) is None  # one epoch gives no steady rate
    assert cost_from_history([{"seconds": 30.0}, {"seconds": None}]) is None
