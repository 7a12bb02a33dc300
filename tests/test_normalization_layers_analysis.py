"""Study 2's analysis (studies/normalization_layers/analysis.py): the metrics table, the layer order, the main batch."""

from __future__ import annotations

import pandas as pd
import pytest

from normtest_lib.studies.normalization_layers import analysis


def test_metrics_table_has_our_mean_std_and_the_published_values_beside():
    runs = pd.DataFrame.from_records(
        [{"run_id": f"{layer}{seed}", "status": "complete", "seed": seed, "norm_layer": layer, "test": acc + seed / 100}
         for layer, acc in (("torch_bn", 0.80), ("none", 0.70)) for seed in (0, 1)]
    )
    runs.attrs["param_columns"] = ["norm_layer", "seed"]
    published = pd.DataFrame({"test acc.": [0.879, 0.849], "macro-F1": [None, None]}, index=["torch_bn", "none"])
    styler = analysis.metrics_table(runs, {"test acc.": "test", "val acc.": "absent"}, published, order=["none", "torch_bn"])
    table = styler.data
    assert list(table.index) == ["none", "torch_bn"]
    assert table.loc["torch_bn", ("ours", "test acc.")] == "80.5 ± 0.7 (n=2)"
    assert table.loc["none", ("published", "test acc.")] == "84.9"
    assert ("published", "macro-F1") not in table.columns  # nothing published there
    assert "font-weight: bold" in styler.to_html()


def test_layers_are_ordered_as_the_chapter_lists_them_and_compared_at_the_commonest_batch_size():
    assert analysis.layer_order(["none", "zz", "bn", "torch_bn", "aa"]) == ["torch_bn", "bn", "none", "aa", "zz"]
    assert analysis.main_batch_size(pd.DataFrame({"batch_size": [128, 128, 32, 512]})) == 128


def optimizer_runs() -> pd.DataFrame:
    """torch_bn and bn with momentum 0.9 at batch 128 and 8, torch_bn with momentum 0 at 128, 2 seeds each."""
    rows = []
    for seed in (0, 1):
        for layer, batch, momentum, test, final, converged in [
            ("torch_bn", 128, 0.9, 0.66, 0.99, True), ("bn", 128, 0.9, 0.65, 0.99, True), ("bn", 8, 0.9, 0.60, 0.97, True),
            ("torch_bn", 128, 0.0, 0.64, 0.90, seed == 0), ("gn:c/4", 128, 0.9, 0.62, 0.96, True),
        ]:
            rows.append(dict(run_id=f"{layer}{batch}{momentum}{seed}", norm_layer=layer, batch_size=batch, momentum=momentum,
                             seed=seed, test_acc_at_best_val=test + 0.01 * seed, train_acc_final=final, converged=converged))
    return pd.DataFrame(rows)


def test_main_runs_are_the_main_batch_and_the_main_optimizer_only():
    runs = optimizer_runs()
    main = analysis.main_runs(runs)
    assert set(main["batch_size"]) == {128} and set(main["momentum"]) == {0.9}
    assert sorted(main["norm_layer"].unique()) == ["bn", "gn:c/4", "torch_bn"] and len(main) == 6
    other = analysis.other_optimizer_runs(runs)
    assert set(other["norm_layer"]) == {"torch_bn"} and set(other["momentum"]) == {0.0} and len(other) == 2
    sweep = analysis.batch_sweep_runs(runs)
    assert set(zip(sweep["norm_layer"], sweep["batch_size"])) == {("bn", 128), ("bn", 8), ("gn:c/4", 128)}


def test_optimizer_table_sets_the_published_optimizer_beside_the_main_one():
    table = analysis.optimizer_table(optimizer_runs(), "test_acc_at_best_val")
    assert list(table.index) == ["momentum 0", "momentum 0.9"]
    assert table.loc["momentum 0", "converged"] == "1 of 2" and table.loc["momentum 0.9", "converged"] == "2 of 2"
    assert table.loc["momentum 0", "train acc. final (%)"] == pytest.approx(90.0)
    assert table.loc["momentum 0.9", "test acc. (%)"] == pytest.approx(66.5)


def test_the_optimizer_sentence_says_whether_the_published_optimizer_converges_too():
    runs = optimizer_runs()
    sentence = analysis.optimizer_sentence(runs, "test_acc_at_best_val")
    assert sentence.startswith("`torch_bn` at batch 128, momentum 0: 1 of 2 runs converged, 90.0 % of the training "
                               "images fitted, 64.5 % test accuracy; momentum 0.9: 2 of 2 runs converged")
    assert sentence.endswith("does not converge in this budget in every run, which is why the main runs use momentum 0.9.")
    both = analysis.optimizer_sentence(runs.assign(converged=True), "test_acc_at_best_val")
    assert "converges without momentum too: momentum was not needed for it in this budget" in both
    assert analysis.optimizer_sentence(runs[runs["momentum"] == 0.9], "test_acc_at_best_val") == ""


def test_the_micro_f1_sentence_checks_that_micro_f1_is_the_accuracy():
    runs = pd.DataFrame({"test_acc_at_best_val": [0.61, 0.65], "test_micro_f1_at_best_val": [0.61, 0.65]})
    assert analysis.micro_f1_sentence(runs, "test_acc_at_best_val").startswith("in all 2 runs here it equals the test accuracy")
    wrong = runs.assign(test_micro_f1_at_best_val=[0.61, 0.60])
    assert "differs from the test accuracy by up to 5.00 points" in analysis.micro_f1_sentence(wrong, "test_acc_at_best_val")
    assert analysis.micro_f1_sentence(runs.drop(columns="test_micro_f1_at_best_val"), "test_acc_at_best_val") == "no run here recorded it."
