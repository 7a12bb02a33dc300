"""Errata evidence of study 1, on tiny hand-made images and run tables."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
import torch

from normtest_lib.studies.input_normalization.errata import (
    bgr_table1_rows,
    closest_row_sentence,
    constant_channel_images,
    crop_black_sentence,
    crop_black_shares,
    crop_black_table,
    earlier_setting_table,
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
from normtest_lib.stats.reference import IMAGENET, PUBLISHED, PUBLISHED_TABLE1


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


def test_padding_table_rows_are_own_crops_and_relative_change():
    checks = compute_image_checks(torch.full((2, 3, 32, 32), 255, dtype=torch.uint8), IMAGENET, pad=4)
    frame = padding_bias(checks)
    white = 1.0 - crop_black_shares((32, 32), 4).mean()  # a white image's crop mean is its crop's white share
    crops = "over its crops (padded by 4, cropped back to its size; mean over the offsets)"
    assert frame.loc["over the image", "mean"].tolist() == [1.0] * 3
    assert frame.loc[crops, "mean"].tolist() == pytest.approx([white] * 3)
    assert white == pytest.approx(1 - 0.134, abs=1e-3)  # not the whole padded image's 0.64
    change = frame.loc["mean relative change (crop / own - 1)"]
    assert change["mean"].tolist() == pytest.approx([white - 1] * 3)
    assert change["std"].isna().all()  # no image has a positive own std
    old = dataclasses.replace(checks, crop_mean=None, crop_std=None, crop_mean_change=None, crop_std_change=None)
    with pytest.raises(ValueError, match="regenerate"):
        padding_bias(old)


def test_crop_black_shares_by_hand_for_a_2x2_image_padded_by_1():
    # Offsets 0..2 each way: the centre crop holds no padding, the 4 edge crops one padded row or column
    # (2 of 4 pixels), the 4 corner crops one row and one column (3 of 4 pixels).
    shares = crop_black_shares((2, 2), 1)
    expected = np.array([[0.75, 0.5, 0.75], [0.5, 0.0, 0.5], [0.75, 0.5, 0.75]])
    np.testing.assert_allclose(shares, expected)
    assert shares.mean() == pytest.approx((4 * 0.75 + 4 * 0.5) / 9)


def test_crop_black_shares_of_cifar_crops_against_counted_rows_and_columns():
    # A crop at offset (dy, dx) of a 32 px image padded by 4 holds |dy - 4| black rows and |dx - 4| black columns:
    # 32 r + 32 c - r c black pixels of 1024, counted here independently of the mask the function pads and cuts.
    shares = crop_black_shares((32, 32), 4)
    counted = np.array([[(32 * abs(dy - 4) + 32 * abs(dx - 4) - abs(dy - 4) * abs(dx - 4)) / 1024 for dx in range(9)]
                        for dy in range(9)])
    np.testing.assert_allclose(shares, counted)
    table = crop_black_table({"CIFAR-10 (32 x 32)": (32, 32)}, pad=4)
    row = table.loc["CIFAR-10 (32 x 32)"]
    assert row["crop: most (a corner)"] == pytest.approx(240 / 1024)  # about 23 %
    assert row["crop: mean over the offsets"] == pytest.approx((2 * 32 * 20 / 9 - (20 / 9) ** 2) / 1024)  # about 13 %
    assert row["the whole padded image"] == pytest.approx(1 - 1024 / 1600)  # 36 %: what the entry once measured
    assert row["crop: least (centred)"] == 0.0 and row["offsets"] == 81
    sentence = crop_black_sentence(table, "CIFAR-10 (32 x 32)")
    assert "13.4 % black on average and at most 23.4 %" in sentence and "36.0 %" in sentence


def _numbers(text: str) -> list[float]:
    """The mean and std of an "output on the example image" cell ("mean 0.123, std 0.456")."""
    mean, std = text.removeprefix("mean ").split(", std ")
    return [float(mean), float(std)]


def test_the_earlier_dispatch_sends_instance_to_a_normalize_without_statistics():
    image = torch.randint(0, 256, (3, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    table = earlier_setting_table(image)
    assert table.loc["instance", "statistics given"] == "none"
    assert table.loc["instance", "output on the example image"].startswith("TypeError")  # torchvision refuses None
    x = image.double() / 255
    assert _numbers(table.loc["minmax", "output on the example image"]) == pytest.approx(
        [float(x.mean()), float(x.std(unbiased=False))], abs=1e-3)
    mean, std = torch.tensor(PUBLISHED["cifar10"].mean).view(3, 1, 1), torch.tensor(PUBLISHED["cifar10"].std).view(3, 1, 1)
    finetune = (x - mean) / std
    assert _numbers(table.loc["finetune", "output on the example image"]) == pytest.approx(
        [float(finetune.mean()), float(finetune.std(unbiased=False))], abs=1e-3)
    # The branch the typo skipped: per image and channel, standardized with the unbiased std and no eps.
    skipped = table.loc["instnace (the misspelt name)"]
    assert skipped["branch reached"] == "its per-image standardization"
    per_image = (x - x.mean(dim=(1, 2), keepdim=True)) / x.std(dim=(1, 2), keepdim=True)
    assert _numbers(skipped["output on the example image"]) == pytest.approx(
        [float(per_image.mean()), float(per_image.std(unbiased=False))], abs=1e-3)
    flat = earlier_setting_table(torch.full((3, 8, 8), 9, dtype=torch.uint8))
    assert "nan" in flat.loc["instnace (the misspelt name)", "output on the example image"]  # 0 / 0 without an eps


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


def test_farthest_ranks_published_and_computed_rows_each_among_their_own():
    published = farthest_from_imagenet({})
    assert published["rank among published rows"].idxmin() == "tiny_imagenet_200"
    assert published["computed here (RGB)"].isna().all() and published["rank among rows computed here"].isna().all()
    assert "cannot be recomputed" in farthest_sentence(published)
    # Tiny ImageNet exactly standardized, CIFAR-10 as published: among the two computed, CIFAR-10 is the farther,
    # whatever the published rows of the data sets not computed here say (svhn's is the largest of those).
    computed = {"tiny_imagenet_200": _stats_after_pretrain((0.0,) * 3, (1.0,) * 3), "cifar10": PUBLISHED_TABLE1["cifar10"]}
    table = farthest_from_imagenet(computed)
    assert table.loc["tiny_imagenet_200", "computed here (RGB)"] == 0.0
    assert table["rank among rows computed here"].dropna().to_dict() == {"cifar10": 1, "tiny_imagenet_200": 2}
    assert table["rank among rows computed here"].isna().sum() == 2  # cifar100 and svhn: no rank, no stand-in
    assert table.loc["tiny_imagenet_200", "rank among published rows"] == 1
    sentence = farthest_sentence(table)
    assert sentence == (
        "Among the published rows the farthest is `tiny_imagenet_200`. Among the 2 rows computed here in RGB "
        "(`cifar10` and `tiny_imagenet_200`), `tiny_imagenet_200` ranks 2 of 2; `cifar100` and `svhn` are not on this "
        "machine, and no published row is ranked among the computed ones."
    )
    assert "svhn` is the farthest" not in sentence and "farthest is `svhn`" not in sentence
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
