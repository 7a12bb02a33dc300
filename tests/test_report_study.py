"""Building blocks every chapter shares: table emphasis, generated sentences, protocol tables, a run's best epoch.
Study 1's fabricated runs (tests/test_input_normalization_analysis.py) serve as their example."""

from __future__ import annotations

import pandas as pd

from normtest_lib.report import protocol, sentences, tables
from normtest_lib.report.paired import paired_differences
from test_input_normalization_analysis import frame, run, three_seeds


def test_best_is_bold_and_second_is_underlined_per_row():
    values = pd.DataFrame({"a": [1.0, 5.0], "b": [3.0, 5.0], "c": [2.0, 4.0]})
    css = tables.best_two_css(values, axis=1)
    assert list(css.iloc[0]) == ["", tables.BOLD, tables.UNDERLINE]
    assert list(css.iloc[1]) == [tables.BOLD, tables.BOLD, tables.UNDERLINE]  # tied best, next distinct is second


def test_sentence_names_what_exceeds_the_spread_and_what_does_not():
    runs = three_seeds()
    noisy = frame([run("unit", seed, acc) for seed, acc in ((0, 0.79), (1, 0.83), (2, 0.81))])
    differences = paired_differences(pd.concat([runs, noisy]), "test_acc_at_best_val", "setting", "finetune", ["data"])
    text = sentences.paired_sentence(differences, "setting", "finetune")
    assert "2 of 3 differences exceed" in text
    assert "`instance` (data cifar10-jpeg) -11.0" in text
    assert "Within noise (the interval contains 0): `unit` (data cifar10-jpeg) +0.0" in text
    single = differences.iloc[:1].assign(ci_low=float("nan"), ci_high=float("nan"))
    undecided = sentences.paired_sentence(single, "setting", "finetune")
    assert "no interval exists for `instance`" in undecided
    assert "exceed" not in undecided  # nothing decided, so no claim about the spread


def test_protocol_table_marks_each_reduced_parameter():
    paper = [{"model": m, "epochs": 100, "pretrained": "imagenet", "input_size": None} for m in ("resnet18", "resnet50")]
    local = [{"model": "small", "epochs": 5, "pretrained": "results/s/local/0123456789ab/best.pt", "input_size": None}]
    table = protocol.protocol_table(paper, local, names=("paper", "local"), keys=("model", "epochs", "pretrained", "input_size"))
    assert table.loc["model", "paper"] == "resnet18, resnet50" and table.loc["epochs", "local"] == "5"
    assert table.loc["pretrained", "local"] == protocol.FROM_PRETRAINING_RUN
    assert list(table["same"]) == [False, False, False, True] and table.loc["input_size", "local"] == "native"


def test_at_best_epoch_picks_each_runs_history_row_of_its_best_epoch():
    from normtest_lib.report.results import at_best_epoch

    runs = pd.DataFrame({"run_id": ["a", "b", "c"], "best_epoch": [2, 1, None]})
    histories = pd.DataFrame({"run_id": ["a", "a", "b", "b"], "epoch": [1, 2, 1, 2], "train_acc": [0.1, 0.2, 0.3, 0.4]})
    picked = at_best_epoch(runs, histories, "train_acc")
    assert picked.iloc[:2].tolist() == [0.2, 0.3] and pd.isna(picked.iloc[2])


def test_reductions_sentence_lists_every_changed_parameter_with_both_values():
    paper = [{"epochs": 100, "lr": 0.1, "seed": s} for s in (0, 1, 2)]
    local = [{"epochs": 8, "lr": 0.1, "seed": s} for s in (0, 1, 2)]
    table = protocol.protocol_table(paper, local, names=("paper", "local"), keys=("epochs", "lr", "seed"))
    text = protocol.reductions_sentence(table, "local")
    assert "changes 1 of 3 parameters: `epochs` 8 (published: 100)." in text
    assert "not the published protocol" in text
    reordered = protocol.protocol_table(
        [{"milestones": [75, 95], "seed": s} for s in (0, 1, 2)], [{"milestones": (75, 95), "seed": s} for s in (2, 0, 1)],
        keys=("milestones", "seed"),
    )
    assert reordered["same"].all() and reordered.iloc[0, 1] == "[75, 95]"  # a list and a tuple, seeds in any order
    same = protocol.protocol_table(paper, paper, names=("paper", "paper"), keys=("epochs",))
    assert "agrees" in protocol.reductions_sentence(same, "paper")
