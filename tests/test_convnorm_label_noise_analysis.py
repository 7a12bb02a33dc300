"""Study 3's analysis (studies/convnorm_label_noise/analysis.py): variants, noise levels and tables on fabricated
runs whose numbers are known; stability numbers and accuracy lost to label noise, against hand computations."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pandas as pd
import pytest

from normtest_lib.report.paired import paired_difference_table
from normtest_lib.report.published import published_results
from normtest_lib.report.tables import check_only_seeds_vary
from normtest_lib.studies.convnorm_label_noise import analysis
from normtest_lib.studies.convnorm_label_noise.analysis import accuracy_lost, run_stability


def _runs() -> pd.DataFrame:
    rows = []
    for conv, norm, base in (("conv", "torch_bn", 0.90), ("convnorm:1000", "none", 0.80), ("convnorm", "torch_bn", 0.85)):
        for noise in (0.0, 0.2):
            for seed in (0, 1, 2):
                rows.append({"conv_layer": conv, "norm_layer": norm, "label_noise": noise, "seed": seed, "noise_seed": seed,
                             "status": "complete", "acc": base - noise / 2 + 0.01 * seed})  # fmt: skip
    return analysis.add_variant(pd.DataFrame(rows))


def test_variants_are_named_from_the_two_layer_parameters():
    assert analysis.variant_label("conv", "torch_bn") == "bn"
    assert analysis.variant_label("convnorm:1000", "none") == "convnorm"  # the decay length is not a variant
    assert analysis.variant_label("convnorm", "torch_bn") == "convnorm+bn"
    assert analysis.variant_label("conv", "gn") == "conv + gn"
    with pytest.raises(KeyError, match="conv_layer"):
        analysis.add_variant(pd.DataFrame({"norm_layer": ["none"]}))


def test_accuracy_by_noise_shows_mean_std_per_level_and_the_published_values():
    runs = _runs()
    published = analysis.published_by_variant(published_results("convnorm_label_noise"))
    table = analysis.accuracy_by_noise(runs, "acc", published).data
    # bn at 20 % noise: 0.80, 0.81, 0.82 -> 81.0 ± 1.0 (n=3)
    assert table.loc["bn", ("ours", "20 % noise")] == "81.0 ± 1.0 (n=3)"
    assert table.loc["bn", ("published", "0 % noise")] == "94.5"
    assert table.loc["convnorm", ("published", "20 % noise")] == "≈63.0"  # "about" values are marked
    # The paper gives one "about" figure for ConvNorm and ConvNorm+BN alike: shown once, not as two measurements
    assert table.loc["convnorm+bn", ("published", "20 % noise")] == "= convnorm"
    assert list(table.index) == ["bn", "convnorm", "convnorm+bn"]


def test_noise_seeds_pool_like_seeds_but_other_params_do_not():
    runs = _runs().assign(lr=0.1)
    runs.attrs["param_columns"] = ["conv_layer", "norm_layer", "label_noise", "lr", "noise_seed", "seed"]
    check_only_seeds_vary(runs, ["variant", "label_noise"])  # seed and noise_seed vary together: replicates
    runs.loc[0, "lr"] = 0.2
    with pytest.raises(ValueError, match="lr"):
        check_only_seeds_vary(runs, ["variant", "label_noise"])


def test_noise_levels_read_as_percent_in_tables_and_the_stability_window_scales_with_the_run():
    frame = pd.DataFrame({"mean": [1.0]}, index=pd.MultiIndex.from_tuples([("convnorm", 0.2)], names=["variant", "label_noise"]))
    assert list(analysis.by_noise_level(frame).index) == [("convnorm", "20 %")]
    assert analysis.by_noise_level(frame).index.names == ["variant", "label noise"]
    assert analysis.stability_window(100) == 10 and analysis.stability_window(10) == 3 and analysis.stability_window(4) == 2


# --- stability and accuracy lost to noise ---------------------------------------------------

T_975_2DF = 4.302652729911275  # t quantile 0.975 with 2 degrees of freedom (tables)

LONG = [0.10, 0.30, 0.50, 0.60, 0.62, 0.61, 0.63, 0.64, 0.60, 0.65, 0.66, 0.64]  # 12 epochs


def history(run_id: str, accuracies: list[float | None], **columns) -> pd.DataFrame:
    return pd.DataFrame(
        {"run_id": run_id, "epoch": range(1, len(accuracies) + 1), "test_acc": accuracies, "train_loss": 1.0, **columns}
    )


def test_std_of_the_last_ten_epochs_and_mean_absolute_change():
    frame = pd.concat(
        [
            history("long", LONG, norm_layer="bn"),
            history("short", [0.5, 0.7, 0.6], norm_layer="convnorm"),
            history("one", [0.4], norm_layer="bn"),
        ]
    ).sample(frac=1.0, random_state=0)  # rows in any order
    out = run_stability(frame).set_index("run_id")
    assert out.loc["long", "test_acc_std_last10"] == pytest.approx(statistics.stdev(LONG[2:]))
    changes = [0.2, 0.2, 0.1, 0.02, 0.01, 0.02, 0.01, 0.04, 0.05, 0.01, 0.02]
    assert out.loc["long", "test_acc_mean_abs_change"] == pytest.approx(sum(changes) / 11)
    # Fewer than 10 epochs: the std of what there is (mean 0.6, deviations 0.1, 0.1, 0 -> var 0.02 / 2).
    assert out.loc["short", "test_acc_std_last10"] == pytest.approx(0.1)
    assert out.loc["short", "test_acc_mean_abs_change"] == pytest.approx((0.2 + 0.1) / 2)
    assert out.loc["short", "n_epochs"] == 3 and out.loc["long", "n_epochs"] == 12
    assert math.isnan(out.loc["one", "test_acc_std_last10"]) and math.isnan(out.loc["one", "test_acc_mean_abs_change"])
    # Columns constant within a run (its params) come along; per-epoch columns do not.
    assert out.loc["short", "norm_layer"] == "convnorm"
    assert "epoch" not in out.columns and "test_acc" not in out.columns


def test_epochs_without_a_test_accuracy_are_left_out():
    out = run_stability(history("gaps", [0.5, None, 0.7, float("nan"), 0.6]))
    assert out.loc[0, "n_epochs"] == 3
    assert out.loc[0, "test_acc_std_last10"] == pytest.approx(0.1)
    assert out.loc[0, "test_acc_mean_abs_change"] == pytest.approx(0.15)


def test_a_run_both_committed_and_local_counts_once():
    location = dict(study="label_noise", profile="paper")
    committed = history("abc", [0.5, 0.7, 0.6], source="results", path="results/x", **location)
    local = history("abc", [0.1, 0.9, 0.1, 0.9], source="runs", path="runs/x", **location)
    out = run_stability(pd.concat([local, committed]))
    assert len(out) == 1 and out.loc[0, "source"] == "results" and out.loc[0, "n_epochs"] == 3
    assert out.loc[0, "test_acc_std_last10"] == pytest.approx(0.1)


def test_missing_columns_are_named():
    with pytest.raises(KeyError, match="test_acc"):
        run_stability(pd.DataFrame({"run_id": ["a"], "epoch": [1]}))


def runs_frame() -> pd.DataFrame:
    accuracy = {  # (variant, seed): accuracy at 0 %, 10 %, 20 % noise
        ("bn", 0): (0.90, 0.80, 0.70),
        ("bn", 1): (0.92, 0.85, 0.75),
        ("bn", 2): (0.91, 0.83, 0.70),
        ("convnorm", 0): (0.80, 0.78, None),
        ("convnorm", 1): (0.82, 0.79, 0.74),
    }
    rows = [
        {"variant": variant, "seed": seed, "label_noise": noise, "test_acc": value}
        for (variant, seed), values in accuracy.items()
        for noise, value in zip((0.0, 0.1, 0.2), values)
        if value is not None
    ]
    rows.append({"variant": "convnorm", "seed": 2, "label_noise": 0.1, "test_acc": 0.5})  # no baseline: not paired
    return pd.DataFrame(rows)


def test_accuracy_lost_is_the_paired_mean_with_a_t_interval():
    lost = accuracy_lost(runs_frame(), "test_acc")
    # bn at 10 %: 0.90-0.80, 0.92-0.85, 0.91-0.83 = 10, 7, 8 percentage points.
    differences = [10.0, 7.0, 8.0]
    mean, s = sum(differences) / 3, statistics.stdev(differences)
    half = T_975_2DF * s / math.sqrt(3)
    row = lost.loc[("bn", 0.1)]
    assert row["mean"] == pytest.approx(mean) and row["std"] == pytest.approx(s) and row["n"] == 3
    assert row["ci_low"] == pytest.approx(mean - half) and row["ci_high"] == pytest.approx(mean + half)
    assert lost.loc[("bn", 0.2), "mean"] == pytest.approx((20 + 17 + 21) / 3)
    # convnorm: seed 2 has no 0 % run, so only seeds 0 and 1 pair at 10 %; at 20 % one seed, no interval.
    assert lost.loc[("convnorm", 0.1), "n"] == 2 and lost.loc[("convnorm", 0.1), "mean"] == pytest.approx(2.5)
    one = lost.loc[("convnorm", 0.2)]
    assert one["n"] == 1 and one["mean"] == pytest.approx(8.0) and math.isnan(one["ci_low"])
    assert 0.0 not in lost.index.get_level_values("label_noise")


def test_accuracy_lost_in_fractions_and_as_a_table():
    lost = accuracy_lost(runs_frame(), "test_acc", scale=1.0)
    assert lost.loc[("bn", 0.1), "mean"] == pytest.approx(25 / 300)
    # Less lost is better: a significant loss is coloured as worse.
    html = paired_difference_table(lost, "label_noise", higher_is_better=False).to_html()
    assert "+0.08 [" in html


def test_accuracy_lost_is_empty_until_a_clean_run_is_complete():
    """A grid may finish its noisy runs first: nothing is lost to noise before a clean run exists to pair with."""
    frame = runs_frame()
    lost = accuracy_lost(frame[frame["label_noise"] > 0], "test_acc")
    assert lost.empty and list(lost.columns) == ["mean", "std", "n", "ci_low", "ci_high"]
    assert list(lost.index.names) == ["variant", "label_noise"]
    unfinished = frame.assign(status=["running" if noise == 0 else "complete" for noise in frame["label_noise"]])
    assert accuracy_lost(unfinished, "test_acc").empty


def test_memorization_cost_is_the_chosen_epochs_test_accuracy_minus_the_last_ones_in_points():
    runs = pd.DataFrame([
        dict(run_id="a", variant="bn", label_noise=0.2, seed=0, test_acc_at_best_val=0.60, final_test_acc=0.52),
        dict(run_id="b", variant="bn", label_noise=0.2, seed=1, test_acc_at_best_val=0.62, final_test_acc=0.58),
        dict(run_id="c", variant="convnorm", label_noise=0.2, seed=0, test_acc_at_best_val=0.50, final_test_acc=None),
    ])
    cost = analysis.memorization_cost(runs)
    assert list(cost["run_id"]) == ["a", "b"]  # c tested only its chosen epoch
    np.testing.assert_allclose(cost["cost"], [8.0, 4.0])
    assert analysis.per_seed_cells(cost, "cost").loc["bn", "20 % noise"] == "6.0 ± 2.8 (n=2)"
    assert analysis.memorization_cost(runs.drop(columns="final_test_acc")).empty


def test_memorization_at_end_takes_each_runs_last_epoch_in_percent_and_says_it_against_chance():
    probes = pd.DataFrame([
        dict(run_id=run, variant=variant, label_noise=noise, seed=0, epoch=epoch, probe="memorization", name=name, value=value)
        for run, variant, noise in (("a", "bn", 0.2), ("b", "convnorm", 0.2), ("z", "bn", 0.0))
        for epoch, name, value in ((1, "flipped_fit_noisy", 0.1), (2, "flipped_fit_noisy", 0.4 if variant == "bn" else 0.2),
                                   (2, "flipped_fit_true", 0.5))
    ])
    at_end = analysis.memorization_at_end(probes)
    assert dict(zip(at_end["run_id"], at_end["flipped_fit_noisy"])) == {"a": 40.0, "b": 20.0}  # no clean run
    sentence = analysis.memorization_sentence(at_end)
    assert "at 20 % noise, `bn` 40 %, `convnorm` 20 %. Chance is about 10 %" in sentence
    assert analysis.memorization_sentence(at_end.iloc[:0]) == ""


def _stability_inputs(convnorm_fit: float) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """bn moving 0.8 points over the last 10 epochs while fitting 90 % of its labels; convnorm moving 0.3 and
    fitting ``convnorm_fit``; 20 epochs at lr 0.1 then 0.001 from epoch 11 on."""
    per_run = pd.DataFrame({"run_id": ["b0", "b1", "c0", "c1"], "variant": ["bn", "bn", "convnorm", "convnorm"],
                            "label_noise": [0.2] * 4, "val_acc_std_last10": [0.007, 0.009, 0.002, 0.004]})
    runs = per_run[["run_id", "variant", "label_noise"]].assign(train_acc_final=[0.89, 0.91, convnorm_fit, convnorm_fit])
    histories = pd.DataFrame([{"run_id": run, "epoch": epoch, "lr": 0.1 if epoch <= 10 else 0.001}
                              for run in per_run["run_id"] for epoch in range(1, 21)])
    return per_run, runs, histories


def test_stability_reading_calls_a_variant_that_moves_less_but_fits_fewer_labels_a_slower_learner():
    text = analysis.stability_reading(*_stability_inputs(convnorm_fit=0.50), window=10)
    assert text.startswith("Over the last 10 epochs the learning rate was 0.001, 100 times below its peak of 0.1")
    assert "`convnorm` moves less than `bn` (std 0.30 against 0.80 points) but fits only 50 % of its training labels " \
           "against 90 %: a slower learner, not a more stable one." in text
    assert "more stable." not in text


def test_stability_reading_calls_it_more_stable_only_when_it_fits_as_many_labels():
    text = analysis.stability_reading(*_stability_inputs(convnorm_fit=0.885), window=10)
    assert "while fitting as many of its training labels (88 % against 90 %): more stable." in text
    per_run, runs, histories = _stability_inputs(convnorm_fit=0.95)
    per_run["val_acc_std_last10"] = [0.002, 0.004, 0.007, 0.009]  # now convnorm moves more
    assert "`convnorm` moves as much as `bn` or more (std 0.80 against 0.30 points)" in analysis.stability_reading(
        per_run, runs, histories, window=10)
    per_run, runs, histories = _stability_inputs(convnorm_fit=0.5)
    without_fit = analysis.stability_reading(per_run, runs.drop(columns="train_acc_final"), histories, window=10)
    assert "cannot be told whether it is more stable or has learnt less" in without_fit
