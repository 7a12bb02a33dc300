"""What every study's answer shares (report/findings.py): wording, captions, the baseline and convergence,
and the landing page executed on fabricated results of all three studies. Each study's own answer is tested
in tests/test_<study>_answer.py, on the fabricated runs built here."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from normtest_lib.report import findings
from test_book import built_book, executed_chapter  # noqa: F401 (a fixture)

METRIC = "test_acc_at_best_val"


def frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame([{"status": "complete", "dataset": "imagefolder", "data_root": "data/cifar10-jpeg", **row} for row in rows])


def test_data_kind_tells_real_from_synthetic_and_titles_say_it():
    real, synthetic = frame([{"dataset": "imagefolder"}]), frame([{"dataset": "synthetic-dim"}])
    assert findings.data_kind(real) == "real data"
    assert findings.data_kind(synthetic) == "synthetic data"
    assert findings.data_kind(pd.concat([real, synthetic])) == "real and synthetic data"
    assert findings.titled("accuracy", synthetic) == "Synthetic data: accuracy"


def test_interval_text_with_and_without_an_interval():
    assert findings.interval_text(pd.Series({"mean": 0.54, "ci_low": -0.2, "ci_high": 1.26})) == "+0.5 [-0.2, +1.3]"
    assert findings.interval_text(pd.Series({"mean": -2.0, "ci_low": float("nan"), "ci_high": float("nan")})) == (
        "-2.0 (one seed, no interval)"
    )
    # A unit goes after the numbers, before the parenthesis.
    one_seed = pd.Series({"mean": -2.0, "ci_low": float("nan"), "ci_high": float("nan")})
    assert findings.interval_text(one_seed, unit="points") == "-2.0 points (one seed, no interval)"
    assert findings.interval_text(pd.Series({"mean": 0.5, "ci_low": -0.2, "ci_high": 1.3}), unit="points") == (
        "+0.5 [-0.2, +1.3] points"
    )
    assert findings.and_list(["a", "b", "c"], conjunction="or") == "a, b or c"


def layer_runs() -> pd.DataFrame:
    # bn = torch_bn exactly; bin is 2 points over bn in every seed; ln 10 points under torch_bn.
    accuracy = {"torch_bn": 0.70, "bn": 0.70, "bin": 0.72, "ln": 0.60}
    return frame([{"norm_layer": layer, "seed": seed, "batch_size": 128, "epochs": 8, METRIC: value + seed / 100}
                  for layer, value in accuracy.items() for seed in (0, 1, 2)])


def noise_runs() -> pd.DataFrame:
    # bn loses 10 points at 20 % noise, convnorm 4 (seed-dependent: 3, 4, 5): convnorm loses 6 less.
    rows = []
    for seed in (0, 1, 2):
        for noise in (0.0, 0.2):
            rows.append({"variant": "bn", "label_noise": noise, "seed": seed, METRIC: 0.80 - noise / 2,
                         "noise_rate_actual": noise * 0.9})
            rows.append({"variant": "convnorm", "label_noise": noise, "seed": seed,
                         METRIC: 0.60 - (0.03 + seed / 100) * (noise > 0), "noise_rate_actual": noise * 0.9})
    return frame(rows)


@pytest.mark.slow
def test_the_landing_page_answers_all_three_studies_from_fabricated_results(built_book):
    # The book build executed the landing page on the three studies' fabricated runs
    # (test_book.fabricate_study_results: fabricate_local_profile, fabricate_layers, fabricate_convnorm).
    landing = executed_chapter(built_book, "findings")
    text = json.dumps(landing.cells)
    assert "`instance` -10.0 [-10.0, -10.0]" in text  # study 1: instance is 10 points under finetune in every seed
    assert "`in` -8.0 [-8.0, -8.0]" in text  # study 2: in is 8 points under torch_bn
    assert "`convnorm` loses less than `bn`: -10.0 [-10.0, -10.0]" in text  # study 3: 10 against 20 points at 20 %
    assert text.count("**Real data**") == 3
    assert "No answer yet" not in text
    # The page opens with prose and answers: every code cell comes after the last study's answer
    cells = landing.cells
    first_code = min(i for i, cell in enumerate(cells) if cell.cell_type == "code")
    last_answer = max(i for i, cell in enumerate(cells) if "_advice`" in cell.source)
    assert first_code > last_answer
    assert text.count("**What to do:**") == 3  # each answer ends with what a reader should do, or why it cannot say
    assert "complete runs" in text  # the provenance table, glued by the code at the end


def test_difference_forest_draws_a_row_per_setting_with_its_seed_count():
    import matplotlib.pyplot as plt

    from normtest_lib.report.paired import paired_differences
    from normtest_lib.report.plots import difference_forest

    differences = paired_differences(layer_runs(), METRIC, "norm_layer", "torch_bn", ["batch_size"]).droplevel("batch_size")
    fig = difference_forest(differences, "norm_layer", "torch_bn", title="Real data: layers")
    labels = [tick.get_text() for tick in fig.axes[0].get_yticklabels()]
    assert labels == [f"{name} (n=3)" for name in differences.index]
    assert fig.axes[0].get_title() == "Real data: layers"
    plt.close(fig)
    with pytest.raises(ValueError, match="no paired differences"):
        difference_forest(differences.iloc[:0], "norm_layer", "torch_bn", title="")
    # Groups before the compared level: a panel each, titled with the group, one colour per layer in all of them.
    grouped = pd.concat({"cifar10": differences, "svhn": differences}, names=["data"])
    fig = difference_forest(grouped, "norm_layer", "torch_bn", title="Two sets", still_learning={("svhn", "bin")})
    assert [ax.get_title(loc="left") for ax in fig.axes] == ["data cifar10", "data svhn"]
    assert fig.get_suptitle() == "Two sets"
    second = [tick.get_text() for tick in fig.axes[1].get_yticklabels()]
    assert "bin (n=3, still learning)" in second and "bin (n=3)" in [t.get_text() for t in fig.axes[0].get_yticklabels()]
    dots = [[line.get_color() for line in ax.lines if line.get_marker() == "o"] for ax in fig.axes]
    assert dots[0] == dots[1]  # a layer's colour is the same in every panel
    plt.close(fig)


def test_run_count_counts_distinct_runs():
    from normtest_lib.report.results import run_count

    assert run_count(pd.DataFrame({"run_id": ["a", "a", "b"], "epoch": [1, 2, 1]})) == 2
    assert run_count(pd.DataFrame()) == 0


# --- whether the runs converged ---------------------------------------------------


def with_verdicts(runs: pd.DataFrame, converged: bool) -> pd.DataFrame:
    reason = "converged: training loss -1.0% over the last 3 epochs" if converged else (
        "not converged: training loss still falling, -15.0% over the last 3 epochs")
    return runs.assign(converged=converged, convergence=reason, train_acc_final=float("nan"),
                       train_acc_last_epoch=runs[METRIC] + 0.01)


def test_the_baseline_sentence_gives_absolute_accuracies_published_ones_and_the_verdict():
    baseline = with_verdicts(layer_runs().query("norm_layer == 'torch_bn'"), False)
    text = findings.baseline_sentence(baseline, "torch_bn", METRIC, 0.879, 0.970, "after 100 epochs")
    assert text.startswith("The baseline, `torch_bn` (3 runs of 8 epochs): test accuracy 71.0 ± 1.0 %, training accuracy 72.0 ± 1.0 %")
    assert "the last epoch's running average over augmented batches: train_acc_final was not recorded" in text
    assert "Published (after 100 epochs): 87.9 % test and 97.0 % training accuracy." in text
    assert "Its runs converged: 0 of 3 (not converged: training loss still falling" in text
    recorded = findings.baseline_sentence(baseline.assign(train_acc_final=0.5, converged=True), "torch_bn", METRIC)
    assert "training accuracy 50.0 ± 0.0 % (of the last weights on the training set" in recorded
    assert "Its runs converged: 3 of 3" in recorded and "Published" not in recorded


def test_the_baseline_sentence_without_baseline_runs_says_so():
    none = layer_runs().query("norm_layer == 'no-such-layer'")
    text = findings.baseline_sentence(none, "bn, no label noise", METRIC, 0.945, None, "one run")
    assert text == "The baseline, `bn, no label noise`, has no complete run yet. Published (one run): 94.5 % test accuracy."


def test_figure_titles_say_when_their_runs_did_not_converge():
    assert "learning speed, not final accuracy" in findings.unconverged_title("t", with_verdicts(layer_runs(), False))
    assert findings.unconverged_title("t", with_verdicts(layer_runs(), True)) == "t"
    assert findings.unconverged_title("t", layer_runs()) == "t"  # a frame that does not say


def write_run(folder: Path, losses, status="complete", **summary) -> None:
    folder.mkdir(parents=True)
    rows = ["epoch,train_loss,train_acc,lr"] + [f"{i + 1},{loss},{0.5},0.1" for i, loss in enumerate(losses)]
    (folder / "history.csv").write_text("\n".join(rows) + "\n")
    (folder / "summary.json").write_text(json.dumps({"status": status, **summary}))
    (folder / "params.yaml").write_text("seed: 0\nnorm_layer: bn\n")


def test_verdicts_are_judged_again_with_todays_rule_from_each_runs_history(tmp_path):
    from normtest_lib.report import converged
    from normtest_lib.report.results import collect_runs

    write_run(tmp_path / "s" / "p" / "old_falling", [2.0, 1.5, 1.0, 0.5, 0.2])
    write_run(tmp_path / "s" / "p" / "old_flat", [1.0] * 10)
    # A verdict recorded under an earlier rule gives way to today's: this run fits 96 % of its images.
    write_run(tmp_path / "s" / "p" / "new", [2.0, 1.0, 0.5], converged=False, convergence="recorded", train_acc_final=0.96)
    runs = converged.add_convergence(collect_runs(tmp_path))
    by_run = runs.set_index("run_id")
    assert by_run.loc["old_falling", "converged"] == False and "still falling" in by_run.loc["old_falling", "convergence"]  # noqa: E712
    assert by_run.loc["old_flat", "converged"] == True and math.isnan(by_run.loc["old_flat", "train_acc_final"])  # noqa: E712
    assert by_run.loc["new", "converged"] == True and by_run.loc["new", "train_acc_final"] == 0.96  # noqa: E712
    assert by_run.loc["new", "convergence"] == "converged: fits its training set (96.0 % of its images)"
    assert by_run.loc["new", "train_acc_last_epoch"] == 0.5
    assert converged.runs_behind(runs) == "3, 2 converged"
    assert converged.runs_behind(runs[runs["run_id"] == "old_falling"].drop(columns=["converged"])) == "1, none converged"
    assert converged.caption_note(runs) == "runs converged: 2 of 3"
    assert converged.converged_by(runs, "norm_layer").to_dict() == {"bn": "2 of 3"}
    table = findings.labelled(pd.DataFrame({"x": [1]}), runs, "accuracy")
    assert table.caption == "Real data: accuracy (runs converged: 2 of 3)"  # no dataset column: real
    assert converged.runs_behind(pd.DataFrame({"run_id": ["a", "b"]})) == "2"  # nothing to read a verdict from
