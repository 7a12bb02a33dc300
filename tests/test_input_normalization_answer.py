"""Study 1's answer (studies/input_normalization/answer.py): its sentences against hand-computed differences, with
one pretraining source and with two, and the published baseline it stands beside."""

from __future__ import annotations

import shutil

import matplotlib

matplotlib.use("Agg")

import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from normtest_lib.report.results import collect_runs  # noqa: E402
from normtest_lib.studies.input_normalization import analysis  # noqa: E402
from normtest_lib.studies.input_normalization.answer import (  # noqa: E402
    input_normalization_advice, input_normalization_finding, published_finetune, study_answer,
)  # fmt: skip
from test_input_normalization_analysis import frame as analysis_frame  # noqa: E402
from test_input_normalization_analysis import run, three_seeds, two_sources  # noqa: E402
from test_input_normalization_chapter import REPO, SOURCES, fabricate_two_sources  # noqa: E402

METRIC = "test_acc_at_best_val"


def test_one_source_reads_as_before():
    finding = input_normalization_finding(three_seeds(), METRIC, "local")
    # pretrain - finetune per seed (0.78-0.80, 0.79-0.82, 0.78-0.81): -2, -3, -3 points; no group named.
    assert ("(`finetune`) changes test accuracy by -2.7 [-4.1, -1.2] points, beyond the seed-to-seed spread."
            in finding.answer)
    assert "Beyond the spread against `finetune`: `instance` -11.0" in finding.answer
    assert "network" not in finding.answer and "They fine-tune" not in finding.evidence


def test_two_sources_are_paired_within_each_source_and_data_set_never_pooled():
    runs = analysis.add_sources(two_sources())
    pretraining, finetuning = analysis.split_pretraining(runs)
    full = finetuning[finetuning["setting"].isin(["finetune", "pretrain"])]
    by_setting = full.groupby(["setting", "seed"])[METRIC].mean().unstack("setting")
    pooled = 100 * (by_setting["pretrain"] - by_setting["finetune"]).mean()
    assert pooled == pytest.approx(0.0, abs=1e-9)  # what pooling the two sources would report
    finding = input_normalization_finding(finetuning, METRIC, "local", sources=pretraining.to_dict("records"))
    for data in ("cifar10-jpeg", "cifar10-jpeg+dim"):
        assert (f"by +2.0 [+2.0, +2.0] points for the `torch_bn` network on `{data}`, beyond the seed-to-seed spread"
                in finding.answer)
        assert (f"by -2.0 [-2.0, -2.0] points for the `none` network on `{data}`, beyond the seed-to-seed spread"
                in finding.answer)
    assert "+0.0" not in finding.answer
    assert ("They fine-tune 2 networks pretrained in this profile (`torch_bn`: a `small` on `tiny_imagenet_200`; "
            "`none`: a `small` on `tiny_imagenet_200`)") in finding.evidence


def test_with_several_groups_the_differences_within_the_spread_are_counted_not_listed():
    _, finetuning = analysis.split_pretraining(analysis.add_sources(two_sources()))
    # A `minmax` cell beside each finetune one: +2, -1, 0 points by seed, mean +0.3, within the spread in all 4 groups.
    baseline = finetuning[finetuning["setting"] == "finetune"]
    minmax = baseline.assign(setting="minmax", input_norm="minmax",
                             test_acc_at_best_val=baseline[METRIC] + baseline["seed"].map({0: 0.02, 1: -0.01, 2: 0.0}))
    answer = input_normalization_finding(pd.concat([finetuning, minmax]), METRIC, "local").answer
    assert ("Within it: the other 4 differences, from +0.3 to +0.3 points (each with its interval in the chapter's "
            "table of paired differences).") in answer
    assert "`minmax` (for the" not in answer  # no group-by-group list of them


def test_a_derived_data_set_has_no_published_figure():
    value, what = published_finetune(pd.Series({"model": "resnet18", "data": "cifar10-jpeg+dim"}))
    assert value is None and what == "the shifted set `cifar10-jpeg+dim` was not in the earlier work"
    # Its base, a copy of a published set, still finds the published row.
    value, what = published_finetune(pd.Series({"model": "resnet18", "data": "cifar10-jpeg"}))
    assert value == pytest.approx(0.8788) and "one run" in what
    value, what = published_finetune(pd.Series({"model": "small", "data": "cifar10-jpeg"}))
    assert value is None and what.startswith("no run of `small`; with `finetune` on cifar10")


def test_study_answer_reads_two_sources_from_run_folders(tmp_path):
    fabricate_two_sources(tmp_path / "results")
    everything = collect_runs(tmp_path / "results")
    answer = study_answer(everything, "local", str(REPO / "params" / "input_normalization.yml"))
    assert set(SOURCES.values()).isdisjoint(answer.complete["run_id"])  # the pretraining runs are no cells
    assert "by +2.0 [+2.0, +2.0] points for the `torch_bn` network on `cifar10-jpeg`" in answer.finding.answer
    assert "by -2.0 [-2.0, -2.0] points for the `none` network on `cifar10-jpeg+dim`" in answer.finding.answer
    assert "`instance` (for the `torch_bn` network on `cifar10-jpeg`) -10.0 [-10.0, -10.0]" in answer.finding.answer
    # One panel per (source network, data set), titled with it; each control pairs with its own network:
    # 2 sources x 2 sets x (pretrain, instance), and 2 from scratch. The fabricated runs train 3 epochs and
    # converge by no rule: every row is marked as still learning.
    panels = {ax.get_title(loc="left"): [tick.get_text() for tick in ax.get_yticklabels()] for ax in answer.figure.axes}
    assert "pretrain (n=3, still learning)" in panels["source network none, data cifar10-jpeg+dim"]
    assert "from scratch (n=3, still learning)" in panels["source network none, data cifar10-jpeg"]
    assert len(panels) == 4 and sum(len(labels) for labels in panels.values()) == 10
    assert panels["source network none, data cifar10-jpeg"] == [  # reading order: pretrain first, the control last
        "pretrain (n=3, still learning)", "instance (n=3, still learning)", "from scratch (n=3, still learning)"]
    # The baseline is one (source, data set) group, named: three finetune runs, not twelve. It is the group the
    # published networks resemble (a published data set, a network with normalization layers), whatever order
    # the runs come in.
    sentence = "The baseline, `finetune` for the `torch_bn` network on `cifar10-jpeg` (3 runs of 3 epochs)"
    assert sentence in answer.finding.answer
    assert "no run of `small`; with `finetune` on cifar10" in answer.finding.answer
    shuffled = everything.sample(frac=1, random_state=0)
    assert sentence in study_answer(shuffled, "local", str(REPO / "params" / "input_normalization.yml")).finding.answer


def test_the_advice_chooses_per_network_and_data_set_among_converged_settings():
    _, finetuning = analysis.split_pretraining(analysis.add_sources(two_sources()))
    advice = input_normalization_advice(finetuning.assign(converged=True), METRIC)
    # pretrain: +2 points in every seed from the torch_bn network, -2 from the none network.
    for data in ("cifar10-jpeg", "cifar10-jpeg+dim"):
        assert (f"For the `torch_bn` network on `{data}`, use `pretrain`: +2.0 [+2.0, +2.0] points over `finetune`, "
                "beyond the seed spread.") in advice
        assert (f"For the `none` network on `{data}`, use `finetune`; avoid `pretrain`, below it beyond the seed "
                "spread.") in advice
    one = input_normalization_advice(three_seeds().assign(converged=True), METRIC)
    assert one == "Use `finetune`; avoid `pretrain` and `instance`, below it beyond the seed spread."
    # Settings within the seed spread of finetune are named as alternatives, joined by "or".
    tied = analysis_frame([r for seed, f, p, i in [(0, 0.80, 0.81, 0.79), (1, 0.82, 0.81, 0.83), (2, 0.81, 0.82, 0.80)]
                           for r in (run("finetune", seed, f), run("pretrain", seed, p), run("instance", seed, i))])
    assert input_normalization_advice(tied.assign(converged=True), METRIC) == (
        "Use `finetune` (or `pretrain` or `instance`, within the seed spread of it).")
    # One seed (a grid stopped early): no interval, so no setting is chosen over finetune or avoided.
    seed_zero = three_seeds().assign(converged=True).query("seed == 0")
    assert input_normalization_advice(seed_zero, METRIC) == (
        "Use `finetune`, the usual choice: with one seed per setting, no difference to it can be told from the "
        "seed-to-seed spread yet.")


def test_the_advice_never_chooses_a_setting_still_learning_and_says_why_without_a_converged_finetune():
    runs = three_seeds().assign(converged=True, epochs=30)
    runs.loc[runs["setting"] == "instance", "converged"] = False
    advice = input_normalization_advice(runs, METRIC)
    assert "instance" not in advice.split(".")[0]
    assert advice.endswith("`instance` had not converged in the same fine-tuning: these runs cannot say how it "
                           "compares once trained.")
    stopped = input_normalization_advice(runs.assign(converged=False), METRIC)
    assert stopped.startswith("These runs cannot say which statistics to use: 3 of 3 `finetune` runs had not converged "
                              "by the book's rule, so every comparison here is of how fast each setting learns in 30 "
                              "epochs of fine-tuning.")


def test_study_answer_without_a_finetune_baseline_says_what_is_missing(tmp_path):
    """A grid stopped after its first runs may have `pretrain` but not yet `finetune`, which every setting is
    paired with: the answer is a LookupError naming the missing baseline (the pages print it), not a crash
    deep in the pairing."""
    fabricate_two_sources(tmp_path / "results")
    for run in (tmp_path / "results" / "input_normalization" / "local").glob("*-finetune-None-None-*"):
        shutil.rmtree(run)
    everything = collect_runs(tmp_path / "results")
    with pytest.raises(LookupError, match="no complete `finetune` run on the largest fine-tuning set of the `local`"):
        study_answer(everything, "local", str(REPO / "params" / "input_normalization.yml"))


def test_the_answer_names_the_settings_still_learning_and_keeps_a_converged_headline_unqualified():
    runs = three_seeds().assign(converged=True, epochs=60)
    runs.loc[runs["setting"] == "instance", "converged"] = False
    answer = input_normalization_finding(runs, METRIC, "local").answer
    # finetune and pretrain converged: their difference is a trained network's, with no "after 60 epochs".
    assert "(`finetune`) changes test accuracy by -2.7 [-4.1, -1.2] points" in answer
    assert ("Runs that had not converged by the book's rule: `instance` (3 of 3); a difference involving them says "
            "how fast each learns in its 60 epochs (learning speed), not which is better once trained. Every run of "
            "the other settings converged.") in answer
    stopped = input_normalization_finding(runs.assign(converged=False), METRIC, "local").answer
    assert "changes test accuracy after 60 epochs of fine-tuning by -2.7" in stopped
    assert "None of these 9 runs converged by the book's rule" in stopped


def test_the_answer_figure_marks_a_row_still_learning_where_its_setting_or_its_finetune_had_not_converged():
    from normtest_lib.report.paired import paired_differences
    from normtest_lib.studies.input_normalization.answer import _still_learning_rows

    _, finetuning = analysis.split_pretraining(analysis.add_sources(two_sources()))
    runs = finetuning.assign(converged=True)
    network, data = runs[analysis.SOURCE], runs["data"]
    runs.loc[(runs["setting"] == "pretrain") & (network == "none"), "converged"] = False
    runs.loc[(runs["setting"] == "finetune") & (data == "cifar10-jpeg+dim") & (network == "torch_bn"), "converged"] = False
    differences = paired_differences(runs, METRIC, "setting", "finetune", analysis.comparison_keys(runs))
    assert _still_learning_rows(differences, runs) == {("none", "small", "cifar10-jpeg", "pretrain"),
                                                        ("none", "small", "cifar10-jpeg+dim", "pretrain"),
                                                        ("torch_bn", "small", "cifar10-jpeg+dim", "pretrain")}
    assert _still_learning_rows(differences, runs.assign(converged=True)) == set()


def test_the_answer_says_which_settings_trained_longer_than_finetune_and_on_which_network():
    records = [*two_sources(scratch=False).to_dict("records")]
    for norm_layer, run_id, epochs in (("none", "bbbbbbbbbbbb", 150), ("torch_bn", "aaaaaaaaaaaa", 60)):
        for seed in (0, 1, 2):
            records.append({**run("unit", seed, 0.6, pretrained=f"results/s/p/{run_id}/best.pt", norm_layer=norm_layer,
                                  epochs=epochs), "run_id": f"unit-{norm_layer}-{seed}"})
    runs = analysis_frame(records)
    runs.attrs["param_columns"] = [*runs.attrs["param_columns"], "norm_layer", "epochs"]
    runs["epochs"] = runs["epochs"].fillna(60)
    pretraining, finetuning = analysis.split_pretraining(analysis.add_sources(runs))
    answer = input_normalization_finding(finetuning, METRIC, "local").answer
    assert ("Trained longer than `finetune` (60 epochs), so that they could converge: `unit`, 150 epochs for the "
            "`none` network.") in answer
    same = input_normalization_finding(finetuning.assign(epochs=60), METRIC, "local").answer
    assert "Trained longer" not in same
