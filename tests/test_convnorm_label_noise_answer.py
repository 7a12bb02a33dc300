"""Study 3's answer (studies/convnorm_label_noise/answer.py): its sentences against hand-computed differences."""

from __future__ import annotations

import pandas as pd
import pytest

from normtest_lib.studies.convnorm_label_noise.analysis import loss_difference
from normtest_lib.studies.convnorm_label_noise.answer import convnorm_advice, convnorm_finding
from test_findings import METRIC, noise_runs, with_verdicts


def test_loss_difference_is_paired_by_seed():
    difference = loss_difference(noise_runs(), METRIC, "convnorm", "bn", 0.2)
    assert difference["n"] == 3
    assert difference["mean"] == pytest.approx(-6.0)  # 4 - 10 points
    assert difference["ci_low"] < -6.0 < difference["ci_high"]  # seeds differ by a point each


def test_convnorm_finding_reports_losses_the_real_noise_rate_and_the_clean_start():
    finding = convnorm_finding(noise_runs(), METRIC, "local")
    assert "At 20 % nominal label noise (real share of wrong training labels 18.0 %)" in finding.answer
    assert "`bn` +10.0 [+10.0, +10.0]" in finding.answer
    assert "`convnorm` loses less than `bn`: -6.0 [" in finding.answer
    assert "`bn` 80.0 ± 0.0 %; `convnorm` 60.0 ± 0.0 %" in finding.answer


def test_convnorm_finding_names_the_variants_without_runs():
    finding = convnorm_finding(noise_runs(), METRIC, "local")
    assert "`convnorm+bn` has no complete runs in the `local` profile, so it answers nothing about it yet." in finding.answer
    bn_only = convnorm_finding(noise_runs().query("variant == 'bn'"), METRIC, "local")
    assert "`convnorm` and `convnorm+bn` have no complete runs in the `local` profile" in bn_only.answer
    assert "loses less" not in bn_only.answer and "`bn` 80.0 ± 0.0 %" in bn_only.answer


def test_convnorm_finding_with_one_seed_claims_nothing_about_the_spread():
    one_seed = noise_runs().query("seed == 0")
    finding = convnorm_finding(one_seed, METRIC, "local")
    assert "too few seeds to tell" in finding.answer and "within the spread" not in finding.answer


def test_unconverged_noise_runs_say_after_how_many_epochs_and_what_it_measures():
    runs = noise_runs().assign(epochs=10)
    unconverged = convnorm_finding(with_verdicts(runs, False), METRIC, "local").answer
    assert "lost against no noise after 10 epochs" in unconverged and "how fast each variant learns" in unconverged
    converged = convnorm_finding(with_verdicts(runs, True), METRIC, "local").answer
    assert "learning speed" not in converged and "lost against no noise:" in converged


def test_the_answer_says_whether_bn_was_learning_its_wrong_labels_at_the_highest_noise():
    def memorized(share):
        return pd.DataFrame([dict(run_id=f"r{seed}", variant="bn", label_noise=0.2, seed=seed, flipped_fit_noisy=share + seed)
                             for seed in (0, 1, 2)])
    learning = convnorm_finding(noise_runs(), METRIC, "local", memorized=memorized(40.0)).answer
    assert ("By its last epoch, `bn` at 20 % noise predicts 41 % of its flipped training images as their wrong label "
            "(chance about 10 %): it was learning the wrong labels") in learning
    barely = convnorm_finding(noise_runs(), METRIC, "local", memorized=memorized(11.0)).answer
    assert "predicts 12 % of its flipped" in barely and "barely begun to learn them" in barely
    assert "flipped training images" not in convnorm_finding(noise_runs(), METRIC, "local").answer


def test_convnorm_finding_from_noisy_runs_only_says_the_clean_runs_are_missing():
    runs = noise_runs()
    finding = convnorm_finding(runs[runs["label_noise"] > 0], METRIC, "local")
    assert "No run without noise is complete yet" in finding.answer
    assert "test accuracy lost against no noise" not in finding.answer


def with_convnorm_bn(runs: pd.DataFrame) -> pd.DataFrame:
    # convnorm+bn: 85 % clean, 80 + seed points at 20 % noise: 10 + seed points over bn's 70 %, losing 5 - seed.
    rows = [{"variant": "convnorm+bn", "label_noise": noise, "seed": seed, METRIC: 0.85 - (0.05 - seed / 100) * (noise > 0),
             "noise_rate_actual": noise * 0.9, "status": "complete", "dataset": "imagefolder", "data_root": "data/cifar10-jpeg"}
            for seed in (0, 1, 2) for noise in (0.0, 0.2)]
    return pd.concat([runs, pd.DataFrame(rows)], ignore_index=True)


def test_the_advice_keeps_bn_and_says_why_while_bn_itself_is_still_learning():
    advice = convnorm_advice(with_verdicts(noise_runs().assign(epochs=100), False), METRIC)
    assert advice == ("These runs cannot say whether ConvNorm is worth using: 6 of 6 `bn` runs had not converged by the "
                      "book's rule, so every comparison here is of how fast the variants learn in 100 epochs. With no "
                      "evidence either way, `bn` stays the default.")


def test_trained_runs_choose_by_accuracy_at_the_highest_noise_and_report_robustness_apart():
    # convnorm loses 6 points less than bn (the paper's claim holds) but is 13 to 15 points less accurate at 20 %.
    advice = convnorm_advice(with_verdicts(noise_runs(), True), METRIC)
    assert advice.startswith("With noisy labels, keep `bn`: no trained variant is more accurate at 20 % noise beyond "
                             "the seed spread (test accuracy at 20 % noise against it, in points: `convnorm` -14.0 [")
    assert "`convnorm` (-6.0 [" in advice and "loses less accuracy to the noise than `bn`, beyond the seed spread" in advice
    ahead = convnorm_advice(with_verdicts(with_convnorm_bn(noise_runs()), True), METRIC)
    assert ahead.startswith("With noisy labels, use `convnorm+bn`: at 20 % noise it is +11.0 [")  # 10, 11, 12 points
    assert "more accurate than `bn`, beyond the seed spread." in ahead
    assert "`convnorm+bn` (-6.0 [" in ahead  # loses 5, 4, 3 points against bn's 10: less, beyond the spread


def test_a_variant_still_learning_is_named_and_never_chosen():
    runs = with_verdicts(with_convnorm_bn(noise_runs()), True)
    runs.loc[runs["variant"] == "convnorm+bn", "converged"] = False
    advice = convnorm_advice(runs, METRIC)
    assert advice.startswith("With noisy labels, keep `bn`")
    assert advice.endswith("`convnorm+bn` had not converged in the same training: these runs cannot say how it compares "
                           "once trained.")


def test_no_advice_on_robustness_where_bn_had_barely_begun_to_learn_its_wrong_labels():
    memorized = pd.DataFrame([dict(variant="bn", label_noise=0.2, seed=seed, flipped_fit_noisy=12.0) for seed in (0, 1, 2)])
    advice = convnorm_advice(with_verdicts(noise_runs(), True), METRIC, memorized)
    assert advice.startswith("These runs do not test robustness to noisy labels: `bn` had barely begun")
    assert convnorm_advice(with_verdicts(noise_runs().query("label_noise == 0"), True), METRIC) == ""
