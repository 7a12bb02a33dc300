"""Study 2's answer (studies/normalization_layers/answer.py): its sentences against hand-computed differences."""

from __future__ import annotations

import pandas as pd

from normtest_lib.studies.normalization_layers.answer import normalization_layers_finding
from test_findings import METRIC, layer_runs, with_verdicts


def test_layers_finding_states_each_comparison_against_its_hand_computed_difference():
    published = pd.Series({"torch_bn": 0.879, "ln": 0.849})
    finding = normalization_layers_finding(layer_runs(), METRIC, "local", published, 7, 18, published_epochs=100)
    assert "(`bn`) matches PyTorch's (`torch_bn`): +0.0 [+0.0, +0.0] points" in finding.answer
    assert "(`bin`) against `bn`: +2.0 [+2.0, +2.0] points, beyond the seed-to-seed spread, which supports" in finding.answer
    assert "`ln` -10.0 [-10.0, -10.0] points" in finding.answer
    assert "after 100 epochs, were `ln` -3.0" in finding.answer and "trains 8 epochs" in finding.answer
    assert "3 seeds per layer" in finding.certainty
    assert finding.evidence.startswith("**Real data**, on ")
    assert "this answer of the `local` profile rests on 12 complete runs" in finding.evidence  # no profile count given
    assert "changes 7 of 18 parameters" in finding.evidence


def test_unconverged_layer_runs_are_worded_as_learning_speed_never_as_better():
    finding = normalization_layers_finding(with_verdicts(layer_runs(), False), METRIC, "local")
    assert "how fast each layer learns in the first 8 epochs (learning speed), not which layer is better" in finding.answer
    assert "None of these 12 runs converged" in finding.answer
    assert "Slower to learn than `torch_bn` in the first 8 epochs, beyond the spread: `ln` -10.0" in finding.answer
    assert "cannot test the earlier claim that BIN is the best layer" in finding.answer
    assert "supports" not in finding.answer and "Behind `torch_bn`" not in finding.answer


def test_converged_layer_runs_are_compared_as_trained_networks():
    finding = normalization_layers_finding(with_verdicts(layer_runs(), True), METRIC, "local")
    assert "learning speed" not in finding.answer and "in the first" not in finding.answer
    assert "Behind `torch_bn`, beyond the spread: `ln` -10.0" in finding.answer
    assert "which supports the earlier claim that BIN is the best layer" in finding.answer


def converged_runs(gaps: dict[str, float], seeds=(0, 1, 2)) -> pd.DataFrame:
    rows = []
    for seed in seeds:
        for layer, gap in gaps.items():
            rows.append(dict(run_id=f"{layer}{seed}", norm_layer=layer, batch_size=128, momentum=0.9, seed=seed, epochs=100,
                             status="complete", converged=True, test_acc_at_best_val=0.66 + gap / 100 + 0.001 * seed))
    return pd.DataFrame(rows)


def test_converged_runs_are_compared_with_the_published_gaps_and_ordering():
    from normtest_lib.studies.normalization_layers.answer import published_comparison
    from normtest_lib.report.paired import paired_differences

    main = converged_runs({"torch_bn": 0.0, "bn": -0.2, "none": -3.0})
    differences = paired_differences(main, "test_acc_at_best_val", "norm_layer", "torch_bn", ["batch_size"]).droplevel("batch_size")
    published = pd.Series({"torch_bn": 0.879, "bn": 0.878, "none": 0.849})
    sentences = published_comparison(main, differences, published, "test_acc_at_best_val", published_epochs=100)
    assert sentences[0] == ("Gaps to `torch_bn` at convergence here, with the published after 100 epochs: "
                            "`bn` -0.2 (published -0.1); `none` -3.0 (published -3.0) points.")
    assert sentences[1] == "The published ordering by test accuracy holds here: `torch_bn` > `bn` > `none`."
    swapped = published_comparison(main, differences, pd.Series({"torch_bn": 0.879, "bn": 0.881, "none": 0.849}),
                                   "test_acc_at_best_val")
    assert swapped[1].startswith("The published ordering by test accuracy (`bn` > `torch_bn` > `none`) does not hold here")


def test_batch_size_finding_pairs_by_seed_at_each_batch_and_says_what_to_choose():
    from normtest_lib.studies.normalization_layers.answer import batch_size_finding

    rows = []
    for seed in (0, 1, 2):
        for layer, batch, acc in [("bn", 8, 0.60), ("gn:c/4", 8, 0.63), ("bn", 128, 0.65), ("gn:c/4", 128, 0.64)]:
            noise = 0.002 * seed if layer == "gn:c/4" and batch == 128 else 0.001 * seed
            rows.append(dict(run_id=f"{layer}{batch}{seed}", norm_layer=layer, batch_size=batch, seed=seed,
                             test_acc_at_best_val=acc + noise))
    text = batch_size_finding(pd.DataFrame(rows), "test_acc_at_best_val")
    assert text.startswith("Batch size: `gn:c/4` against `bn`, the learning rate scaled with the batch, equal epochs: at batch 8, +3.0")
    assert "beyond the seed-to-seed spread" in text
    assert text.endswith("Choose `gn:c/4` at batch 8 and `bn` at batch 128.") or "`bn` at batch 128, though within" in text
    assert batch_size_finding(pd.DataFrame(rows).query("batch_size == 8"), "test_acc_at_best_val") == ""


def test_a_layer_still_learning_beside_a_trained_baseline_is_worded_as_learning_speed_and_the_rest_as_trained():
    runs = layer_runs().assign(converged=lambda frame: frame["norm_layer"] != "ln",
                               train_acc_final=lambda frame: frame["norm_layer"].map({"ln": 0.58}).fillna(0.99))
    published = pd.Series({"torch_bn": 0.879, "bn": 0.878, "bin": 0.881, "ln": 0.849})
    finding = normalization_layers_finding(runs, METRIC, "local", published, published_epochs=100)
    # bn, bin and torch_bn converged: compared as trained networks, beside the published gaps
    assert "(`bn`) matches PyTorch's (`torch_bn`): +0.0" in finding.answer
    assert "which supports the earlier claim that BIN is the best layer" in finding.answer
    assert "`bn` +0.0 (published -0.1); `bin` +2.0 (published +0.2) points" in finding.answer
    # ln did not: its gap is learning speed, with how much of its training set it fits and the published gap
    assert ("`ln` had not converged after the same 8 epochs (training images their last weights classify correctly: "
            "`ln` 58 %), while `torch_bn` fits its training set: its gap to it, `ln` -10.0 [-10.0, -10.0] points, "
            "says how much slower it learns here") in finding.answer
    assert "The published gap after 100 epochs on the whole training set: `ln` -3.0 points." in finding.answer
    assert "Behind `torch_bn`" not in finding.answer and "None of these" not in finding.answer


def test_the_batch_size_choice_says_when_a_layer_was_still_learning():
    from normtest_lib.studies.normalization_layers.answer import batch_size_finding

    rows = [dict(run_id=f"{layer}{batch}{seed}", norm_layer=layer, batch_size=batch, seed=seed,
                 test_acc_at_best_val=acc + 0.001 * seed, converged=not (layer == "gn:c/4" and batch == 8))
            for seed in (0, 1, 2) for layer, batch, acc in [("bn", 8, 0.70), ("gn:c/4", 8, 0.54), ("bn", 128, 0.65), ("gn:c/4", 128, 0.52)]]
    text = batch_size_finding(pd.DataFrame(rows), "test_acc_at_best_val")
    assert "at batch 8, -16.0 [-16.0, -16.0] points (beyond the seed-to-seed spread; `gn:c/4` still learning at the last epoch)" in text
    assert "at batch 128, -13.0 [-13.0, -13.0] points (beyond the seed-to-seed spread)" in text
    assert text.endswith("Choose `bn` at batch 8 for this training budget and `bn` at batch 128.")


def test_the_advice_names_the_trained_layers_within_the_spread_the_ones_still_learning_and_the_small_batch_choice():
    from normtest_lib.studies.normalization_layers.answer import layers_advice

    main = layer_runs().assign(converged=lambda frame: frame["norm_layer"] != "ln", train_acc_final=0.99)
    # bin is 2 points ahead of torch_bn in every seed: it is the choice at batch 128
    assert layers_advice(main, METRIC).startswith("At batch 128, choose `bin`: ahead of `torch_bn` beyond the seed spread.")
    tied = main[main["norm_layer"] != "bin"]
    advice = layers_advice(tied, METRIC)
    assert advice.startswith("At batch 128, choose any of `torch_bn` and `bn`: once trained, they are within the seed spread")
    assert "`ln` had not converged in the same training" in advice
    sweep = pd.DataFrame([dict(run_id=f"{layer}{batch}{seed}", norm_layer=layer, batch_size=batch, seed=seed, converged=True,
                               test_acc_at_best_val=acc + 0.001 * seed)
                          for seed in (0, 1, 2) for layer, batch, acc in [("bn", 8, 0.70), ("gn:c/4", 8, 0.54),
                                                                          ("bn", 128, 0.65), ("gn:c/4", 128, 0.52)]])
    assert layers_advice(tied, METRIC, sweep).endswith(
        "At batch 8, choose `bn` (-16.0 [-16.0, -16.0] points for `gn:c/4` against `bn`, beyond the seed spread).")
    assert layers_advice(main.assign(converged=False), METRIC) == ""  # torch_bn still learning: the runs cannot say


def test_one_choice_at_every_batch_size_is_said_once_and_tied_layers_give_no_ordering():
    from normtest_lib.report.paired import paired_differences
    from normtest_lib.studies.normalization_layers.answer import batch_size_finding, published_comparison

    rows = [dict(run_id=f"{layer}{batch}{seed}", norm_layer=layer, batch_size=batch, seed=seed,
                 test_acc_at_best_val=acc + 0.001 * seed, converged=layer == "bn")
            for seed in (0, 1, 2) for layer, batch, acc in [("bn", 8, 0.70), ("gn:c/4", 8, 0.54), ("bn", 128, 0.65), ("gn:c/4", 128, 0.52)]]
    assert batch_size_finding(pd.DataFrame(rows), "test_acc_at_best_val").endswith(
        "Choose `bn` at batch 8 and 128 for this training budget.")
    # Seeds that disagree in sign: every gap within the spread, so no ordering is read from the means
    main = pd.DataFrame([dict(run_id=f"{layer}{seed}", norm_layer=layer, batch_size=128, seed=seed,
                              test_acc_at_best_val=0.66 + shift * (1 if seed % 2 else -1))
                         for seed in (0, 1, 2) for layer, shift in (("torch_bn", 0.0), ("bn", 0.01), ("bin", 0.02))])
    differences = paired_differences(main, "test_acc_at_best_val", "norm_layer", "torch_bn", ["batch_size"]).droplevel("batch_size")
    published = pd.Series({"torch_bn": 0.879, "bn": 0.878, "bin": 0.881})
    sentences = published_comparison(main, differences, published, "test_acc_at_best_val")
    assert sentences[1] == ("Here `torch_bn`, `bn` and `bin` are all within the seed spread of each other, so no ordering "
                            "can be read from them; the published gaps, from one run each, are at most 0.2 points, well "
                            "inside such a spread.")
