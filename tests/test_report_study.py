"""Study chapters' building blocks: run labels, the earlier work's table layouts, generated sentences, protocol tables."""

from __future__ import annotations

import pandas as pd
import pytest

from normtest_lib.report import labels, layouts, protocol, sentences, tables
from normtest_lib.report.paired import paired_differences
from normtest_lib.report.published import published_values


def run(setting="finetune", seed=0, acc=0.5, **params):
    base = {"study": "s", "profile": "p", "run_id": f"{setting}-{seed}-{params}", "status": "complete", "seed": seed,
            "model": "small", "dataset": "imagefolder", "data_root": "data/cifar10-jpeg", "input_norm": setting,
            "pretrained": "results/s/p/0123456789ab/best.pt", "stats_subset": None, "test_acc_at_best_val": acc}
    return {**base, **params}


def frame(records):
    runs = pd.DataFrame.from_records(records)
    runs.attrs["param_columns"] = ["model", "dataset", "data_root", "input_norm", "pretrained", "stats_subset", "seed"]
    return labels.add_labels(runs)


def test_labels_name_the_data_folder_the_statistics_and_the_scratch_control():
    runs = frame([run(), run(stats_subset=10.0), run(pretrained="none"), run("instance", pretrained="none"),
                  run(dataset="cifar10", data_root="data/cifar10")])
    assert list(runs["data"]) == ["cifar10-jpeg"] * 4 + ["cifar10"]
    assert list(runs["setting"]) == ["finetune", "finetune, stats from 10", "from scratch", "from scratch (instance)",
                                     "finetune"]
    order = labels.setting_order(["from scratch", "unit", "finetune, stats from 100", "pretrain",
                                  "finetune, stats from 10", "finetune"], first=("finetune", "pretrain"))
    assert order == ["finetune", "pretrain", "finetune, stats from 10", "finetune, stats from 100", "unit", "from scratch"]


def test_largest_training_set_prefers_all_images_then_the_biggest_subset():
    runs = pd.DataFrame({"train_subset": [None, 450.0, 4500.0]})
    assert list(labels.largest_training_set(runs).index) == [0]
    assert list(labels.largest_training_set(runs.iloc[1:]).index) == [2]


def test_best_is_bold_and_second_is_underlined_per_row():
    values = pd.DataFrame({"a": [1.0, 5.0], "b": [3.0, 5.0], "c": [2.0, 4.0]})
    css = tables.best_two_css(values, axis=1)
    assert list(css.iloc[0]) == ["", tables.BOLD, tables.UNDERLINE]
    assert list(css.iloc[1]) == [tables.BOLD, tables.BOLD, tables.UNDERLINE]  # tied best, next distinct is second


SEEDS = [(0, 0.80, 0.78, 0.70), (1, 0.82, 0.79, 0.71), (2, 0.81, 0.78, 0.69)]


def three_seeds():
    return frame([r for seed, f, p, i in SEEDS for r in (run("finetune", seed, f), run("pretrain", seed, p),
                                                        run("instance", seed, i))])


def test_settings_table_shows_mean_std_n_and_leaves_out_published_cells_we_do_not_have():
    published = published_values("input_normalization")
    styler = layouts.settings_table(layouts.seed_summary(three_seeds(), "test_acc_at_best_val"), published,
                                    ["finetune", "pretrain", "instance"])
    table = styler.data
    assert list(table.columns.get_level_values("source").unique()) == ["ours"]  # small on cifar10-jpeg: never published
    assert table.loc[("small", "cifar10-jpeg"), ("ours", "finetune")] == "81.0 ± 1.0 (n=3)"
    html = styler.to_html()
    assert "font-weight: bold" in html and "text-decoration: underline" in html


def test_published_table_alone_has_the_published_numbers_in_percent():
    table = layouts.settings_table(None, published_values("input_normalization"), ["finetune", "pretrain"], digits=2).data
    assert table.loc[("resnet18", "cifar10"), ("published", "finetune")] == "87.88"
    assert table.loc[("densenet121", "svhn"), ("published", "pretrain")] == "94.91"


def test_finetune_pretrain_difference_is_the_paired_mean_with_its_interval():
    styler = layouts.finetune_pretrain_table(three_seeds(), None)
    cell = styler.data.loc[("small", "cifar10-jpeg"), ("ours", "finetune − pretrain")]
    # paired differences 2, 3, 3 points: mean 2.67, t(0.975, 2) * 0.577 / sqrt(3) = 1.43
    assert cell.startswith("+2.7 [+1.2, +4.1] (n=3)")
    assert "#d8f3dc" in styler.to_html()  # significantly better: green
    published = layouts.finetune_pretrain_table(None, published_values("input_normalization")).data
    assert published.loc[("resnet50", "cifar10"), ("published", "finetune − pretrain")] == "-0.42"


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


def test_the_pretraining_run_is_found_from_the_others_paths_and_described_from_its_record():
    runs = frame([run(), run(seed=1), {**run(pretrained="none"), "run_id": "0123456789ab"}])
    assert protocol.pretraining_run_id(runs) == "0123456789ab"
    source = {"model": "small", "dataset": "tiny_imagenet_200", "summary_input_size": 32, "input_size": 32,
              "epochs": 10, "best_val_acc": 0.25, "test_acc_at_best_val": 0.245}
    text = protocol.pretraining_sentence(source, "cifar10-jpeg")
    assert "`tiny_imagenet_200` at 32 px for 10 epochs (best validation accuracy 25.0 %, test 24.5 %)" in text
    two = frame([run(), run(pretrained="results/s/p/ba9876543210/best.pt")])
    with pytest.raises(ValueError, match="more than one pretraining run"):
        protocol.pretraining_run_id(two)


def test_metrics_table_has_our_mean_std_and_the_published_values_beside():
    runs = pd.DataFrame.from_records(
        [{"run_id": f"{layer}{seed}", "status": "complete", "seed": seed, "norm_layer": layer, "test": acc + seed / 100}
         for layer, acc in (("torch_bn", 0.80), ("none", 0.70)) for seed in (0, 1)]
    )
    runs.attrs["param_columns"] = ["norm_layer", "seed"]
    published = pd.DataFrame({"test acc.": [0.879, 0.849], "macro-F1": [None, None]}, index=["torch_bn", "none"])
    styler = layouts.metrics_table(runs, {"test acc.": "test", "val acc.": "absent"}, published, order=["none", "torch_bn"])
    table = styler.data
    assert list(table.index) == ["none", "torch_bn"]
    assert table.loc["torch_bn", ("ours", "test acc.")] == "80.5 ± 0.7 (n=2)"
    assert table.loc["none", ("published", "test acc.")] == "84.9"
    assert ("published", "macro-F1") not in table.columns  # nothing published there
    assert "font-weight: bold" in styler.to_html()


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
