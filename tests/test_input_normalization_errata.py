"""Errata evidence of study 1, on tiny hand-made images and run tables."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from normtest_lib.studies.input_normalization.errata import (
    bgr_table1_rows,
    closest_row_sentence,
    constant_channel_images,
    farthest_from_imagenet,
    farthest_sentence,
    grid_input_sizes,
    lowest_in_published,
    model_source_table,
    padding_bias,
    pretraining_sizes_table,
    selection_bias,
    seed_spread_vs_published,
    trained_input_sizes,
    unit_vs_minmax,
)
from normtest_lib.stats.channel import ChannelStats
from normtest_lib.stats.image_checks import compute_image_checks
from normtest_lib.stats.normalized import normalized_stats
from normtest_lib.stats.reference import IMAGENET, PUBLISHED_TABLE1


def _images(red, green, blue) -> torch.Tensor:
    """One 2x2 image per entry; each channel given as its four pixel values."""
    return torch.tensor([[r, g, b] for r, g, b in zip(red, green, blue)], dtype=torch.uint8).view(-1, 3, 2, 2)


# Channels that differ: red all 255, green all 0, blue half 0 half 255 (mean 0.5, std 0.5).
DISTINCT = _images([[255] * 4], [[0] * 4], [[0, 255, 0, 255]])


def _bgr_rows(images: torch.Tensor, pretrain_stats: ChannelStats = IMAGENET, **published) -> pd.DataFrame:
    checks = compute_image_checks(images, pretrain_stats)
    return bgr_table1_rows(normalized_stats(images, "pretrain", pretrain_stats=pretrain_stats), checks.bgr_pretrain,
                           **published)


def test_bgr_row_is_rgb_reversed_under_channel_symmetric_stats():
    symmetric = ChannelStats((0.5,) * 3, (0.25,) * 3)
    frame = _bgr_rows(DISTINCT, symmetric, published=None)
    rgb, bgr = frame.loc["RGB (correct)"], frame.loc["BGR (the earlier work's loading)"]
    assert rgb["mean"].tolist() == pytest.approx([2.0, -2.0, 0.0])
    assert bgr["mean"].tolist() == pytest.approx(rgb["mean"].tolist()[::-1])
    assert bgr["std"].tolist() == pytest.approx(rgb["std"].tolist()[::-1])
    assert "published" not in frame.index


def test_bgr_row_standardizes_blue_with_red_statistics_and_is_compared_to_published():
    bgr_values = ((0.5 - 0.485) / 0.229, (0.0 - 0.456) / 0.224, (1.0 - 0.406) / 0.225)
    published = ChannelStats(bgr_values, (0.5 / 0.229, 0.0, 0.0))
    frame = _bgr_rows(DISTINCT, IMAGENET, published=published)
    assert frame.loc["RGB (correct)", ("mean", "R")] == pytest.approx((1.0 - 0.485) / 0.229)
    assert frame.loc["BGR (the earlier work's loading)", "mean"].tolist() == pytest.approx(bgr_values)
    diff = frame[("max |diff| to published", "")]
    assert diff["BGR (the earlier work's loading)"] == pytest.approx(0.0, abs=1e-6)  # float32 normalizer
    # RGB's blue mean (0.5 - 0.406) / 0.225 and std 0.5 / 0.225 both miss the published by 0.5 / 0.225.
    assert diff["RGB (correct)"] == pytest.approx(0.5 / 0.225)
    assert math.isnan(diff["published"])


def test_unit_vs_minmax_has_a_row_per_data_set_in_shares_and_means():
    full = [[0, 255, 0, 255], [255, 0, 10, 0]]
    narrow = [[51, 102, 51, 102]]
    frame = unit_vs_minmax({
        "full": compute_image_checks(_images(full, full, full), IMAGENET),
        "narrow": compute_image_checks(_images(narrow, narrow, narrow), IMAGENET),
    })
    assert list(frame.index) == ["full", "narrow"] and frame.index.name == "dataset"
    assert frame.loc["full", "images"] == 2 and frame.loc["full", "share spanning 0..255"] == 1.0
    assert frame.loc["narrow", "share spanning 0..255"] == 0.0
    assert frame.loc["narrow", "mean channel range"] == pytest.approx(0.2)
    assert frame.loc["narrow", "mean |unit - minmax| per pixel"] == pytest.approx((0.2 + 0.6) / 2)


def test_constant_channel_table_gives_count_share_and_what_the_checks_ran_on():
    varied = [[0, 1, 2, 3]] * 3
    green = [[0, 1, 2, 3], [7, 7, 7, 7], [0, 1, 2, 3]]
    frame = constant_channel_images({
        "one of three": compute_image_checks(_images(varied, green, varied), IMAGENET),
        "none": compute_image_checks(_images(varied[:1], varied[:1], varied[:1]), IMAGENET),
    })
    row = frame.loc["one of three"]
    assert row["with a constant channel"] == 1 and row["share"] == pytest.approx(1 / 3)
    assert row["instance output finite"] and not row["finite without eps"]
    assert row["checked on"] == "the 1 image(s) found"
    assert frame.loc["none", "share"] == 0.0 and frame.loc["none", "checked on"] == "a synthetic constant image"


def test_padding_table_rows_are_own_padded_and_relative_change():
    checks = compute_image_checks(torch.full((2, 3, 32, 32), 255, dtype=torch.uint8), IMAGENET, pad=4)
    frame = padding_bias(checks)
    share = 32 * 32 / (40 * 40)  # 0.64
    assert frame.loc["over the image", "mean"].tolist() == [1.0] * 3
    assert frame.loc["over the image zero-padded by 4", "mean"].tolist() == pytest.approx([share] * 3)
    change = frame.loc["mean relative change (padded / own - 1)"]
    assert change["mean"].tolist() == pytest.approx([share - 1] * 3)
    assert change["std"].isna().all()  # no image has a positive own std


def test_selection_bias_is_best_test_minus_test_at_best_val():
    runs = pd.DataFrame({
        "run_id": ["a", "b", "c", "d"],
        "status": ["complete", "complete", "failed", "complete"],
        "test_acc_at_best_val": [0.80, 0.70, 0.10, 0.50],
        "model": ["x", "x", "x", "y"],
    })
    histories = pd.DataFrame({
        "run_id": ["a", "a", "b", "b", "c", "d", "d"],
        "epoch": [1, 2, 1, 2, 1, 1, 2],
        "test_acc": [0.83, 0.80, 0.71, np.nan, 0.99, np.nan, np.nan],
    })
    frame = selection_bias(runs, histories, ["model"])
    assert list(frame.index) == ["x"]  # c failed, d never tested per epoch
    assert frame.loc["x", "mean (pp)"] == pytest.approx(2.0)  # gaps 3 and 1
    assert frame.loc["x", "std (pp)"] == pytest.approx(math.sqrt(2))
    assert frame.loc["x", "n"] == 2


def test_seed_spread_vs_published():
    published = pd.DataFrame({
        "model": ["m"] * 5, "dataset": ["d"] * 5,
        "setting": ["finetune", "pretrain", "unit", "instance", "finetune"],
        "metric": ["test_acc"] * 4 + ["other"],
        "value": [0.90, 0.91, 0.895, 0.88, 0.5],
    })
    runs = pd.DataFrame({
        "run_id": list("abcdef"), "model": ["m"] * 6, "seed": [1, 2, 1, 2, 3, 1],
        "input_norm": ["finetune", "finetune", "pretrain", "pretrain", "pretrain", "instance"],
        "status": ["complete"] * 4 + ["failed", "complete"],
        "test_acc": [0.90, 0.92, 0.91, 0.91, 0.10, 0.88],
    })
    frame = seed_spread_vs_published(runs, "test_acc", "input_norm", ["model"], published)
    differences = frame.loc["published |difference to finetune| (pp)"]
    assert differences[["median", "max"]].tolist() == pytest.approx([1.0, 2.0])  # of 1, 0.5, 2
    assert differences["n"] == 3
    spread = frame.loc["our seed-to-seed std (pp)"]  # stds sqrt(2) and 0; instance has one seed
    assert spread[["median", "max"]].tolist() == pytest.approx([math.sqrt(2) / 2, math.sqrt(2)])
    assert spread["n"] == 2
    assert differences["share below our median seed std"] == pytest.approx(1 / 3)  # only 0.5 < 0.707


def test_selection_sentence_reports_the_gain_and_where_validation_chose():
    from normtest_lib.studies.input_normalization.errata import selection_sentence

    runs = pd.DataFrame({"run_id": ["a", "b"], "status": "complete", "test_acc_at_best_val": [0.50, 0.60],
                         "best_epoch": [2, 3]})
    histories = pd.DataFrame({"run_id": ["a"] * 3 + ["b"] * 3, "epoch": [1, 2, 3] * 2,
                              "test_acc": [0.40, 0.50, 0.52, 0.55, 0.58, 0.60]})
    text = selection_sentence(runs, histories)
    assert "Over 2 runs" in text and "added 1.00 points on average (at most 2.00)" in text
    assert "last epoch in 1 of them" in text and "coincide" not in text
    assert "cannot be compared" in selection_sentence(runs, histories.assign(test_acc=float("nan")))


def test_grid_input_sizes_count_pretrained_runs_by_size_and_the_checkpoints_whole_preprocessing():
    runs = [
        {"pretrained": "imagenet", "input_size": None, "input_norm": "pretrain"},
        {"pretrained": "imagenet", "input_size": "pretrained", "input_norm": "pretrain"},
        {"pretrained": "imagenet", "input_size": "pretrained", "input_norm": "finetune"},
        {"pretrained": "none", "input_size": None, "input_norm": "finetune"},  # from scratch: left out
    ]
    table = grid_input_sizes({"extended": runs, "paper": runs[:1]})
    assert table.loc["extended"].tolist() == [1, 2, 1]
    assert table.loc["paper"].tolist() == [1, 0, 0]


def test_trained_input_size_prefers_the_summary_and_falls_back_to_the_parameter():
    runs = pd.DataFrame({"summary_input_size": [32, np.nan, np.nan], "input_size": [64, 48, None]})
    assert trained_input_sizes(runs).tolist()[:2] == [32.0, 48.0] and math.isnan(trained_input_sizes(runs).iloc[2])
    table = pretraining_sizes_table(runs.iloc[:1], runs.iloc[1:])
    assert table.loc["pretraining run"].tolist() == ["32", 1] and table.loc["fine-tuning runs"].tolist() == ["48", 2]


def _stats_after_pretrain(mean, std) -> ChannelStats:
    return ChannelStats(tuple(mean), tuple(std))


def test_farthest_ranks_the_published_rows_and_replaces_those_computed_here():
    published = farthest_from_imagenet({})
    assert published["rank, published rows"].idxmin() == "tiny_imagenet_200"
    assert published["computed here (RGB)"].isna().all()
    assert "cannot be recomputed" in farthest_sentence(published)
    # A Tiny ImageNet row exactly standardized: it moves to the last rank.
    table = farthest_from_imagenet({"tiny_imagenet_200": _stats_after_pretrain((0.0,) * 3, (1.0,) * 3)})
    assert table.loc["tiny_imagenet_200", "computed here (RGB)"] == 0.0
    assert table.loc["tiny_imagenet_200", "rank, computed rows where here"] == 4
    assert table.loc["tiny_imagenet_200", "rank, published rows"] == 1
    sentence = farthest_sentence(table)
    assert sentence == (
        "By the published rows the farthest is `tiny_imagenet_200`; by the rows computed here where the data is "
        "the farthest is `svhn`, and `tiny_imagenet_200` ranks 4 of 4."
    )
    same = farthest_from_imagenet({"cifar10": PUBLISHED_TABLE1["cifar10"]})
    assert same.loc["cifar10", "computed here (RGB)"] == pytest.approx(same.loc["cifar10", "published row"])


def test_closest_row_sentence_names_the_row_nearest_the_published_one():
    frame = _bgr_rows(DISTINCT, IMAGENET, published=ChannelStats((0.0,) * 3, (1.0,) * 3))
    sentence = closest_row_sentence(frame)
    column = frame[("max |diff| to published", "")].drop("published")
    assert f"**{column.idxmin()}**" in sentence and f"{column.min():.3f}" in sentence
    assert "no published row" in closest_row_sentence(_bgr_rows(DISTINCT, published=None))


def test_model_source_table_counts_runs_and_distinct_file_hashes_per_source():
    runs = pd.DataFrame({
        "model_source": ["checkpoint:a.pt", "checkpoint:a.pt", "scratch"],
        "model_source_sha256": ["ab" * 32, "ab" * 32, None],
    })  # fmt: skip
    table = model_source_table(runs)
    assert table.loc["checkpoint:a.pt"].tolist() == [2, 1, "ab" * 6]
    assert table.loc["scratch"].tolist() == [1, 0, "–"]
    assert model_source_table(pd.DataFrame({"seed": [0]})).loc["not recorded", "runs"] == 1


def test_lowest_in_published_counts_the_cells_where_a_setting_is_last():
    published = pd.DataFrame({
        "model": ["m", "m", "m", "m"], "dataset": ["a", "a", "b", "b"], "setting": ["instance", "finetune"] * 2,
        "metric": ["test_acc"] * 4, "value": [0.5, 0.6, 0.7, 0.6],
    })  # fmt: skip
    assert lowest_in_published(published, "instance") == (1, 2)
