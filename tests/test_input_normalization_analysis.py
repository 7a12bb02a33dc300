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
    trained = {**source, "train_acc_final": 0.271, "convergence": "converged: training loss -2.2% over 5 epochs"}
    assert ("(best validation accuracy 25.0 %, test 24.5 %; training accuracy 27.1 % at its last epoch, "
            "converged: training loss -2.2% over 5 epochs)") in analysis.pretraining_sentence(trained, "cifar10-jpeg")
    two = frame([run(), run(pretrained="results/s/p/ba9876543210/best.pt")])
    with pytest.raises(ValueError, match="more than one pretraining run"):
        analysis.pretraining_run_id(two)


# --- two pretraining sources (a grid's pretrain: {follow: [norm_layer]}) -------------------

BN_ID, NONE_ID, ABSENT_ID = "aaaaaaaaaaaa", "bbbbbbbbbbbb", "cccccccccccc"


def source(run_id, norm_layer, acc):
    return {**run(pretrained="none", dataset="tiny_imagenet_200", data_root="data/tiny-imagenet-200", epochs=10,
                  input_size=32, summary_input_size=32, best_val_acc=acc + 0.01, test_acc_at_best_val=acc),
            "run_id": run_id, "norm_layer": norm_layer}


def from_source(run_id, norm_layer, setting="finetune", seed=0, acc=0.5, **params):
    record = run(setting, seed, acc, pretrained=f"results/s/p/{run_id}/best.pt", norm_layer=norm_layer, **params)
    return {**record, "run_id": f"{run_id}-{setting}-{seed}-{record['dataset']}"}


def two_sources(scratch=True):
    """Two pretrained networks (torch_bn, none), each fine-tuned on two sets (the JPEG copy and its dimmed
    copy) with finetune and pretrain, three seeds; pretrain gains 2 points from torch_bn and loses 2 from none,
    so pooling the two sources would give 0."""
    records = [source(BN_ID, "torch_bn", 0.25), source(NONE_ID, "none", 0.20)]
    for run_id, norm_layer, gain in ((BN_ID, "torch_bn", 0.02), (NONE_ID, "none", -0.02)):
        for dataset in ("imagefolder", "imagefolder+dim"):
            for seed in (0, 1, 2):
                base = 0.70 + seed / 100 - (0.05 if "+" in dataset else 0)
                records.append(from_source(run_id, norm_layer, "finetune", seed, base, dataset=dataset))
                records.append(from_source(run_id, norm_layer, "pretrain", seed, base + gain, dataset=dataset))
        if scratch:
            records.append({**run(pretrained="none", norm_layer=norm_layer), "run_id": f"scratch-{norm_layer}"})
    runs = frame(records)
    runs.attrs["param_columns"] = [*runs.attrs["param_columns"], "norm_layer"]
    return runs


def test_every_pretraining_run_is_found_and_each_run_labelled_with_its_source():
    runs = two_sources()
    assert analysis.pretraining_run_ids(runs) == [BN_ID, NONE_ID]
    with pytest.raises(ValueError, match="more than one pretraining run"):
        analysis.pretraining_run_id(runs)
    pretraining, finetuning = analysis.split_pretraining(runs)
    assert sorted(pretraining["run_id"]) == [BN_ID, NONE_ID] and len(finetuning) == len(runs) - 2
    labelled = analysis.add_sources(runs).set_index("run_id")[analysis.SOURCE]
    assert labelled[f"{BN_ID}-finetune-0-imagefolder"] == "torch_bn"
    assert labelled[f"{NONE_ID}-pretrain-2-imagefolder+dim"] == "none"
    # The from-scratch control of each network takes the source with its own norm layer; a source is its own.
    assert labelled["scratch-none"] == "none" and labelled["scratch-torch_bn"] == "torch_bn"
    assert labelled[BN_ID] == "torch_bn"
    # A source whose row is not here is named by its id.
    orphan = frame([from_source(ABSENT_ID, "bcn"), source(BN_ID, "torch_bn", 0.25), from_source(BN_ID, "torch_bn")])
    assert list(analysis.add_sources(orphan)[analysis.SOURCE]) == [ABSENT_ID, "torch_bn", "torch_bn"]
    # Two sources with one norm layer are still told apart.
    twins = frame([source(BN_ID, "bn", 0.2), source(NONE_ID, "bn", 0.2), from_source(BN_ID, "bn"), from_source(NONE_ID, "bn")])
    assert analysis.source_labels(twins) == {BN_ID: f"bn ({BN_ID})", NONE_ID: f"bn ({NONE_ID})"}


def test_comparisons_are_keyed_by_source_only_where_there_are_several():
    runs = analysis.add_sources(two_sources())
    assert analysis.comparison_keys(runs) == [analysis.SOURCE, "model", "data"]
    assert analysis.comparison_keys(three_seeds()) == ["model", "data"]  # one source: as before
    assert analysis.varying_keys(analysis.split_pretraining(runs)[1]) == [analysis.SOURCE, "data"]
    with pytest.raises(ValueError, match="add_sources"):
        analysis.comparison_keys(two_sources())


def test_tables_keep_each_source_and_data_set_apart():
    runs = analysis.split_pretraining(analysis.add_sources(two_sources(scratch=False)))[1]
    table = analysis.settings_table(analysis.settings_summary(runs, "test_acc_at_best_val"), published_values(
        "input_normalization"), ["finetune", "pretrain"]).data
    assert table.index.names == [analysis.SOURCE, "model", "data"] and len(table) == 4
    assert table.loc[("torch_bn", "small", "cifar10-jpeg"), ("ours", "pretrain")] == "73.0 ± 1.0 (n=3)"
    assert table.loc[("none", "small", "cifar10-jpeg+dim"), ("ours", "pretrain")] == "64.0 ± 1.0 (n=3)"
    pair = analysis.finetune_pretrain_table(runs, None).data
    assert pair.loc[("torch_bn", "small", "cifar10-jpeg"), ("ours", "finetune − pretrain")].startswith("-2.0 [-2.0, -2.0]")
    assert pair.loc[("none", "small", "cifar10-jpeg+dim"), ("ours", "finetune − pretrain")].startswith("+2.0 [+2.0, +2.0]")


def test_two_sources_are_described_one_sentence_each():
    runs = analysis.add_sources(two_sources())
    pretraining, finetuning = analysis.split_pretraining(runs)
    text = analysis.pretraining_sentences(pretraining, finetuning)
    assert ("The `torch_bn` cells: cifar10-jpeg and cifar10-jpeg+dim fine-tuned from a `small` pretrained in this profile "
            "on `tiny_imagenet_200` at 32 px for 10 epochs (best validation accuracy 26.0 %, test 25.0 %).") in text
    assert "The `none` cells: cifar10-jpeg and cifar10-jpeg+dim fine-tuned from a `small` pretrained" in text
    assert "(best validation accuracy 21.0 %, test 20.0 %)" in text and "never pooled" in text
    missing = analysis.pretraining_sentences(pretraining[pretraining["run_id"] == BN_ID], finetuning)
    assert f"The `{NONE_ID}` cells: cifar10-jpeg and cifar10-jpeg+dim fine-tuned from pretraining run `{NONE_ID}`" in missing
    # One source: the one sentence as before.
    one = frame([{**source("0123456789ab", "torch_bn", 0.25)}, run(), run(seed=1)])
    pretraining, finetuning = analysis.split_pretraining(one)
    assert analysis.pretraining_sentences(pretraining, finetuning) == analysis.pretraining_sentence(
        pretraining.iloc[0].to_dict(), "cifar10-jpeg")


def test_panels_never_pool_sources_or_data_sets_and_stay_as_before_with_one_group():
    runs = analysis.split_pretraining(analysis.add_sources(two_sources(scratch=False)))[1].assign(train_images=450)
    panels, column = analysis.group_panels(runs, by="train_images")
    assert column == "panel" and set(panels["panel"]) == {
        f"source network {source}, data {data}, train_images 450"
        for source in ("torch_bn", "none") for data in ("cifar10-jpeg", "cifar10-jpeg+dim")}
    assert analysis.group_panels(three_seeds(), by="train_images")[1] == "train_images"
    assert analysis.group_panels(three_seeds())[1] is None
    rows, row = analysis.network_rows(runs)
    assert row == "network" and set(rows["network"]) == {"small, torch_bn", "small, none"}
    assert analysis.network_rows(three_seeds())[1] == "model"


def sweep_runs():
    """Two targets: the dimmed one fine-tuned at 500 and 2,000 images (the 500 with statistics from 10 too), the
    other at 2,000 only; the columns the chapter's sweep adds."""
    records = [run(setting, seed, dataset=dataset, data_root="data/cifar10-jpeg", train_subset=size,
                   stats_subset=stats)
               for seed in (0, 1)
               for dataset, size, setting, stats in [
                   ("imagefolder", 2000, "finetune", None), ("imagefolder", 2000, "pretrain", None),
                   ("imagefolder+dim", 2000, "finetune", None), ("imagefolder+dim", 2000, "pretrain", None),
                   ("imagefolder+dim", 500, "finetune", None), ("imagefolder+dim", 500, "finetune", 10.0),
                   ("imagefolder+dim", 500, "pretrain", None)]]
    runs = frame(records)
    return runs.assign(train_images=runs["train_subset"], stats_images=runs["stats_subset"].fillna(runs["train_subset"]))


def test_size_curves_keep_only_groups_measured_at_several_sizes():
    sweep = sweep_runs()
    by_size = analysis.with_several_sizes(sweep[sweep["stats_subset"].isna()])
    assert set(by_size["dataset"]) == {"imagefolder+dim"} and sorted(set(by_size["train_images"])) == [500, 2000]
    subsets = analysis.with_several_sizes(sweep, size="stats_images", within=["train_images"])
    assert set(subsets["train_images"]) == {500} and sorted(set(subsets["stats_images"])) == [10, 500]
    one_group = sweep[sweep["dataset"] == "imagefolder"]
    assert analysis.with_several_sizes(one_group).empty  # one data set, one size: no curve
    assert len(analysis.with_several_sizes(sweep[sweep["dataset"] == "imagefolder+dim"])) == 10


def test_small_data_design_says_the_sizes_the_figures_draw():
    sweep = sweep_runs()
    by_size = analysis.with_several_sizes(sweep[sweep["stats_subset"].isna()])
    subsets = analysis.with_several_sizes(sweep, size="stats_images", within=["train_images"])
    text = analysis.small_data_design(by_size, subsets)
    assert "fine-tunes on 500 and 2,000 images (cifar10-jpeg+dim)" in text
    assert "keeps the fine-tuning set at 500 images" in text and "from 10 and 500 of them" in text
    empty = analysis.small_data_design(by_size.iloc[0:0], subsets.iloc[0:0])
    assert "one size only" in empty and "No run of this profile" in empty
