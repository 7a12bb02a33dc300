"""Study 1's analysis (studies/input_normalization/analysis.py): run labels, the pretraining run, and the earlier
work's table layouts, on fabricated runs whose numbers are known."""

from __future__ import annotations

import pandas as pd
import pytest

from normtest_lib.report.published import published_values
from normtest_lib.studies.input_normalization import analysis


def run(setting="finetune", seed=0, acc=0.5, **params):
    base = {"study": "s", "profile": "p", "run_id": f"{setting}-{seed}-{params}", "status": "complete", "seed": seed,
            "model": "small", "dataset": "imagefolder", "data_root": "data/cifar10-jpeg", "input_norm": setting,
            "pretrained": "results/s/p/0123456789ab/best.pt", "stats_subset": None, "test_acc_at_best_val": acc}
    return {**base, **params}


def frame(records):
    runs = pd.DataFrame.from_records(records)
    runs.attrs["param_columns"] = ["model", "dataset", "data_root", "input_norm", "pretrained", "stats_subset", "seed"]
    return analysis.add_labels(runs)


def test_labels_name_the_data_folder_the_statistics_and_the_scratch_control():
    runs = frame([run(), run(stats_subset=10.0), run(pretrained="none"), run("instance", pretrained="none"),
                  run(dataset="cifar10", data_root="data/cifar10")])
    assert list(runs["data"]) == ["cifar10-jpeg"] * 4 + ["cifar10"]
    assert list(runs["setting"]) == ["finetune", "finetune, stats from 10", "from scratch", "from scratch (instance)",
                                     "finetune"]
    order = analysis.setting_order(["from scratch", "unit", "finetune, stats from 100", "pretrain",
                                  "finetune, stats from 10", "finetune"], first=("finetune", "pretrain"))
    assert order == ["finetune", "pretrain", "finetune, stats from 10", "finetune, stats from 100", "unit", "from scratch"]


def test_largest_training_set_prefers_all_images_then_the_biggest_subset():
    runs = pd.DataFrame({"train_subset": [None, 450.0, 4500.0]})
    assert list(analysis.largest_training_set(runs).index) == [0]
    assert list(analysis.largest_training_set(runs.iloc[1:]).index) == [2]


SEEDS = [(0, 0.80, 0.78, 0.70), (1, 0.82, 0.79, 0.71), (2, 0.81, 0.78, 0.69)]


def three_seeds():
    return frame([r for seed, f, p, i in SEEDS for r in (run("finetune", seed, f), run("pretrain", seed, p),
                                                        run("instance", seed, i))])


def test_settings_table_shows_mean_std_n_and_leaves_out_published_cells_we_do_not_have():
    published = published_values("input_normalization")
    styler = analysis.settings_table(analysis.settings_summary(three_seeds(), "test_acc_at_best_val"), published,
                                     ["finetune", "pretrain", "instance"])
    table = styler.data
    assert list(table.columns.get_level_values("source").unique()) == ["ours"]  # small on cifar10-jpeg: never published
    assert table.loc[("small", "cifar10-jpeg"), ("ours", "finetune")] == "81.0 ± 1.0 (n=3)"
    html = styler.to_html()
    assert "font-weight: bold" in html and "text-decoration: underline" in html


def test_published_table_alone_has_the_published_numbers_in_percent():
    table = analysis.settings_table(None, published_values("input_normalization"), ["finetune", "pretrain"], digits=2).data
    assert table.loc[("resnet18", "cifar10"), ("published", "finetune")] == "87.88"
    assert table.loc[("densenet121", "svhn"), ("published", "pretrain")] == "94.91"


def test_finetune_pretrain_difference_is_the_paired_mean_with_its_interval():
    styler = analysis.finetune_pretrain_table(three_seeds(), None)
    cell = styler.data.loc[("small", "cifar10-jpeg"), ("ours", "finetune − pretrain")]
    # paired differences 2, 3, 3 points: mean 2.67, t(0.975, 2) * 0.577 / sqrt(3) = 1.43
    assert cell.startswith("+2.7 [+1.2, +4.1] (n=3)")
    assert "#d8f3dc" in styler.to_html()  # significantly better: green
    published = analysis.finetune_pretrain_table(None, published_values("input_normalization")).data
    assert published.loc[("resnet50", "cifar10"), ("published", "finetune − pretrain")] == "-0.42"


def test_the_pretraining_run_is_found_from_the_others_paths_and_described_from_its_record():
    runs = frame([run(), run(seed=1), {**run(pretrained="none"), "run_id": "0123456789ab"}])
    assert analysis.pretraining_run_id(runs) == "0123456789ab"
    source = {"model": "small", "dataset": "tiny_imagenet_200", "summary_input_size": 32, "input_size": 32,
              "epochs": 10, "best_val_acc": 0.25, "test_acc_at_best_val": 0.245}
    text = analysis.pretraining_sentence(source, "cifar10-jpeg")
    assert "`tiny_imagenet_200` at 32 px for 10 epochs (best validation accuracy 25.0 %, test 24.5 %)" in text
    two = frame([run(), run(pretrained="results/s/p/ba9876543210/best.pt")])
    with pytest.raises(ValueError, match="more than one pretraining run"):
        analysis.pretraining_run_id(two)
