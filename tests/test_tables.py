import re

import numpy as np
import pandas as pd
import pytest
import torch

from normtest_lib.report import paired, stats_tables, tables
from normtest_lib.data.synthetic import load_synthetic
from normtest_lib.input_norm import SETTINGS
from normtest_lib.stats.normalized import normalized_stats, sample_images
from normtest_lib.stats.reference import IMAGENET, PUBLISHED, PUBLISHED_TABLE1
from normtest_lib.stats.channel import ChannelStats, channel_stats


def bold_cells(styler) -> set[tuple[int, int]]:
    """(row, column) positions the Styler's HTML sets in bold."""
    html = styler.set_uuid("t").to_html()
    cells = set()
    for selectors, body in re.findall(r"([^{}]+)\{([^}]*)\}", html):
        if "font-weight: bold" in body:
            cells |= {(int(r), int(c)) for r, c in re.findall(r"#T_t_row(\d+)_col(\d+)", selectors)}
    return cells


def styled_cells(styler, css: str) -> set[tuple[int, int]]:
    html = styler.set_uuid("t").to_html()
    cells = set()
    for selectors, body in re.findall(r"([^{}]+)\{([^}]*)\}", html):
        if css.split(";")[0] in body:
            cells |= {(int(r), int(c)) for r, c in re.findall(r"#T_t_row(\d+)_col(\d+)", selectors)}
    return cells


# --- emphasis ---------------------------------------------------------------

FRAME = pd.DataFrame({"a": [0.1, 0.9, 0.5], "b": [0.7, 0.2, 0.7]}, index=["x", "y", "z"])


def test_best_per_column_is_bold_in_the_html():
    assert bold_cells(tables.bold_best(FRAME.style, axis=0)) == {(1, 0), (0, 1), (2, 1)}  # ties are all best


def test_best_per_row_and_lowest_when_lower_is_better():
    assert bold_cells(tables.bold_best(FRAME.style, axis=1)) == {(0, 1), (1, 0), (2, 1)}
    assert bold_cells(tables.bold_best(FRAME.style, axis=0, higher_is_better=False)) == {(0, 0), (1, 1)}
    assert bold_cells(tables.bold_best(FRAME.style, axis=None)) == {(1, 0)}


def test_differences_against_a_baseline_are_green_when_better_and_red_when_worse():
    diff = tables.difference_frame(FRAME, "a")
    assert diff["a"].eq(0).all()
    assert diff.loc["y", "b"] == pytest.approx(-0.7)
    styler = tables.style_differences(diff)
    assert styled_cells(styler, tables.BETTER) == {(0, 1), (2, 1)}
    assert styled_cells(styler, tables.WORSE) == {(1, 1)}
    flipped = tables.style_differences(diff, higher_is_better=False)
    assert styled_cells(flipped, tables.WORSE) == {(0, 1), (2, 1)}
    assert "+0.60" in styler.to_html()
    with pytest.raises(KeyError, match="baseline"):
        tables.difference_frame(FRAME, "c")


# --- results over seeds -------------------------------------------------------


@pytest.fixture
def seed_runs() -> pd.DataFrame:
    rows = []
    for setting, accs in {"finetune": [0.87, 0.88, 0.89], "pretrain": [0.90, 0.92, 0.94]}.items():
        rows += [{"input_norm": setting, "model": "small", "seed": s, "status": "complete", "acc": a} for s, a in enumerate(accs)]
    rows.append({"input_norm": "pretrain", "model": "small", "seed": 3, "status": "failed", "acc": 0.1})
    rows.append({"input_norm": "instance", "model": "small", "seed": 0, "status": "complete", "acc": 0.5})
    return pd.DataFrame(rows)


def test_mean_std_over_seeds_with_n(seed_runs):
    stats = tables.aggregate_seeds(seed_runs, "acc", ["input_norm"])
    assert stats.loc["finetune", "mean"] == pytest.approx(0.88)
    assert stats.loc["finetune", "std"] == pytest.approx(np.std([0.87, 0.88, 0.89], ddof=1))
    assert stats.loc["pretrain", "n"] == 3  # the failed run is left out
    assert np.isnan(stats.loc["instance", "std"])


def test_mean_std_table_text_and_best_mean_in_bold(seed_runs):
    styler = tables.mean_std_table(seed_runs, "acc", index="model", columns="input_norm")
    text = styler.data
    assert list(text.columns) == ["finetune", "instance", "pretrain"]
    assert text.loc["small", "finetune"] == "88.0 ± 1.0 (n=3)"
    assert text.loc["small", "pretrain"] == "92.0 ± 2.0 (n=3)"
    assert text.loc["small", "instance"] == "50.0 (n=1)"
    assert bold_cells(tables.mean_std_table(seed_runs, "acc", index="model", columns="input_norm", best_axis=1)) == {(0, 2)}
    assert "92.0 ± 2.0 (n=3)" in styler.to_html()


def test_unknown_columns_are_named(seed_runs):
    with pytest.raises(KeyError, match="lr"):
        tables.aggregate_seeds(seed_runs, "acc", ["lr"])


# --- data set statistics --------------------------------------------------------


def numpy_after(x: np.ndarray, setting: str, own: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Each setting written out in numpy, independently of input_norm.py."""
    unit = x / 255.0
    shape = (1, 3, 1, 1)
    if setting == "finetune":
        return (unit - own[0].reshape(shape)) / own[1].reshape(shape)
    if setting == "pretrain":
        return (unit - np.array(IMAGENET.mean).reshape(shape)) / np.array(IMAGENET.std).reshape(shape)
    if setting == "center":
        return unit - own[0].reshape(shape)
    if setting == "instance":
        return (unit - unit.mean(axis=(2, 3), keepdims=True)) / np.sqrt(unit.var(axis=(2, 3), keepdims=True) + 1e-5)
    if setting == "minmax":
        low, high = unit.min(axis=(2, 3), keepdims=True), unit.max(axis=(2, 3), keepdims=True)
        return (unit - low) / (high - low)
    if setting == "unit":
        return unit
    return x


def test_table1_matches_numpy_for_every_setting():
    generator = torch.Generator().manual_seed(0)
    images = {
        "bright": torch.randint(60, 256, (40, 3, 9, 7), dtype=torch.uint8, generator=generator),
        "dark": torch.randint(0, 120, (30, 3, 9, 7), dtype=torch.uint8, generator=generator),
    }
    table = stats_tables.table1_frame(images)
    assert list(table.index) == [(name, s) for name in images for s in SETTINGS]
    for name, tensor in images.items():
        x = tensor.numpy().astype(np.float64)
        own = ((x / 255).mean(axis=(0, 2, 3)), (x / 255).std(axis=(0, 2, 3)))
        for setting in SETTINGS:
            expected = numpy_after(x, setting, own)
            row = table.loc[(name, setting)]
            np.testing.assert_allclose(row["mean"].to_numpy(), expected.mean(axis=(0, 2, 3)), rtol=1e-5, atol=1e-5)
            np.testing.assert_allclose(row["std"].to_numpy(), expected.std(axis=(0, 2, 3)), rtol=1e-5, atol=1e-5)


def test_normalized_stats_uses_the_images_own_statistics_for_finetune():
    images = torch.randint(0, 256, (20, 3, 5, 5), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    stats = normalized_stats(images, "finetune")
    np.testing.assert_allclose(stats.mean, 0, atol=1e-6)
    np.testing.assert_allclose(stats.std, 1, atol=1e-5)
    other = ChannelStats((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    shifted = normalized_stats(images, "finetune", finetune_stats=other)
    unit = channel_stats(images)
    np.testing.assert_allclose(shifted.mean, (np.array(unit.mean) - 0.5) / 0.25, atol=1e-5)
    with pytest.raises(ValueError, match="pretrain"):
        normalized_stats(images, "pretrain")


def test_table1_comparison_sets_published_rows_below_computed_ones():
    images = torch.randint(0, 256, (10, 3, 4, 4), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))
    computed = stats_tables.table1_frame({"cifar10": images, "mine": images})
    comparison = stats_tables.table1_comparison(computed)
    assert comparison.index.names == ["dataset", "setting", "source"]
    # Our pretrain row, then the published one, then ours minus it; every other setting has ours only.
    assert [source for *key, source in comparison.index if key == ["cifar10", "pretrain"]] == ["computed", "published", "difference"]
    assert tuple(comparison.loc[("cifar10", "pretrain", "published"), "mean"]) == PUBLISHED_TABLE1["cifar10"].mean
    np.testing.assert_allclose(
        comparison.loc[("cifar10", "pretrain", "difference"), "std"].to_numpy(),
        computed.loc[("cifar10", "pretrain"), "std"].to_numpy() - np.array(PUBLISHED_TABLE1["cifar10"].std),
    )
    assert list(comparison.loc["mine"].index) == [(s, "computed") for s in SETTINGS]
    only_unpublished = stats_tables.table1_comparison(stats_tables.table1_frame({"mine": images}))
    pd.testing.assert_frame_equal(only_unpublished, stats_tables.table1_frame({"mine": images}))


def test_table1_is_long_six_numbers_a_row_and_no_cell_is_empty():
    """One row per data set x setting (and published/difference rows), mean and std of R, G, B: no dash to skip."""
    images = torch.randint(0, 256, (10, 3, 4, 4), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))
    comparison = stats_tables.label_data(
        stats_tables.table1_comparison(stats_tables.table1_frame({"cifar10": images, "mine": images})), "real data"
    )
    assert list(comparison.columns) == [(statistic, channel) for statistic in ("mean", "std") for channel in "RGB"]
    assert comparison.notna().all().all()
    html = tables.style_numbers(comparison, digits=3).to_html()
    cells = re.findall(r"<td [^>]*>([^<]*)</td>", html)
    assert len(cells) == comparison.size and tables.MISSING_TEXT not in cells


def test_table1_legend_defines_every_setting_in_the_librarys_words():
    from normtest_lib.input_norm import DESCRIPTIONS

    images = torch.randint(0, 256, (10, 3, 4, 4), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))
    comparison = stats_tables.table1_comparison(stats_tables.table1_frame({"cifar10": images, "mine": images}))
    legend = stats_tables.table1_settings_legend(comparison)
    for setting in SETTINGS:
        assert legend.count(f"`{setting}`: {DESCRIPTIONS[setting]}") == 1  # once, though two data sets have the row
    # `center` is defined, and `none`'s rows say their scale (raw pixel values, not [0, 1]).
    assert "`center`: Subtract" in legend and "0..255" in DESCRIPTIONS["none"]
    row = comparison.loc[("mine", "none", "computed")]
    assert row["mean"].max() > 1  # the none rows really are on the 0..255 scale the legend gives


def test_distance_from_standard():
    images = torch.randint(0, 256, (10, 3, 4, 4), dtype=torch.uint8, generator=torch.Generator().manual_seed(3))
    table = stats_tables.table1_frame({"a": images})
    assert stats_tables.distance_from_standard(table, "finetune")["a"] == pytest.approx(0, abs=1e-5)
    row = table.loc[("a", "none")]
    expected = np.sqrt((np.sum(row["mean"] ** 2) + np.sum((row["std"] - 1) ** 2)) / 6)
    assert stats_tables.distance_from_standard(table, "none")["a"] == pytest.approx(expected)


def test_channel_stats_frame_and_references():
    synthetic = load_synthetic("dim", n_train=20, n_test=10)
    label, target = stats_tables.reference_for(synthetic)
    assert label == "design target" and target.mean == tuple(synthetic.extra["design_mean"])

    class Named:
        name, extra = "cifar10", {}

    assert stats_tables.reference_for(Named()) == ("published", PUBLISHED["cifar10"])
    computed = {"synthetic-dim": channel_stats(synthetic.train.images)}
    frame = stats_tables.channel_stats_frame(computed, {"synthetic-dim": (label, target)})
    assert list(frame.index) == [("synthetic-dim", "computed"), ("synthetic-dim", "design target")]
    assert frame.loc[("synthetic-dim", "computed"), ("images", "")] == 20
    assert frame.loc[("synthetic-dim", "design target"), ("std", "G")] == target.std[1]
    html = tables.style_numbers(frame, digits=3).to_html()
    assert tables.MISSING_TEXT in html  # the reference row has no image count


def test_style_numbers_never_prints_negative_zero():
    html = tables.style_numbers(pd.DataFrame({"x": [-1e-9, 0.5]}), digits=3).to_html()
    assert "-0.000" not in html and "0.000" in html


def test_sample_images_is_a_fixed_subset():
    images = torch.arange(10, dtype=torch.uint8).view(10, 1, 1, 1).expand(10, 3, 2, 2)
    sample = sample_images(images, 4, seed=5)
    assert sample.shape[0] == 4
    assert torch.equal(sample, sample_images(images, 4, seed=5))
    firsts = sample[:, 0, 0, 0].tolist()
    assert firsts == sorted(set(firsts))  # distinct images, in their original order
    assert sample_images(images, None) is images and sample_images(images, 50) is images
    with pytest.raises(ValueError):
        sample_images(images, 0)


T_975_2 = 4.302652729911275  # t_{0.975, 2}: the two-sided 95 % t value for n = 3 pairs, from a t table


def paired_rows(unit_offsets, instance_offset=-0.20, bases=(0.80, 0.84, 0.88)) -> pd.DataFrame:
    rows = []
    for seed, (base, offset) in enumerate(zip(bases, unit_offsets)):
        rows.append({"dataset": "a", "input_norm": "finetune", "seed": seed, "acc": base, "status": "complete"})
        rows.append({"dataset": "a", "input_norm": "unit", "seed": seed, "acc": base + offset, "status": "complete"})
        rows.append({"dataset": "a", "input_norm": "instance", "seed": seed, "acc": base + instance_offset, "status": "complete"})
    rows.append({"dataset": "a", "input_norm": "unit", "seed": 9, "acc": 0.0, "status": "failed"})
    return pd.DataFrame(rows)


def test_paired_differences_pair_by_seed_with_a_t_interval_computed_by_hand():
    # unit - finetune per seed, in points: +1, +3, +2 -> mean 2, s = 1, n = 3.
    diffs = paired.paired_differences(paired_rows([0.01, 0.03, 0.02]), "acc", "input_norm", "finetune", ["dataset"])
    unit, instance = diffs.loc[("a", "unit")], diffs.loc[("a", "instance")]
    assert unit["n"] == 3  # the failed run is left out
    assert unit["mean"] == pytest.approx(2.0) and unit["std"] == pytest.approx(1.0)
    half_width = T_975_2 * 1.0 / np.sqrt(3)  # t_{0.975, n-1} * s / sqrt(n) = 2.484...
    assert unit["ci_low"] == pytest.approx(2.0 - half_width, rel=1e-9)
    assert unit["ci_high"] == pytest.approx(2.0 + half_width, rel=1e-9)
    assert instance["mean"] == pytest.approx(-20.0)
    assert instance["ci_low"] == pytest.approx(-20.0, abs=1e-6) and instance["ci_high"] == pytest.approx(-20.0, abs=1e-6)
    # The interval of unit, [-0.48, 4.48], contains 0: within noise, though the mean (2 points)
    # is smaller than the baseline's unpaired seed-to-seed std (4 points) either way.
    assert paired.within_noise(diffs).to_dict() == {("a", "instance"): False, ("a", "unit"): True}
    assert paired.significant(diffs).to_dict() == {("a", "instance"): True, ("a", "unit"): False}


def test_a_consistent_paired_effect_is_significant_although_seeds_spread_more():
    # +1 point every seed, while the baseline itself spreads 4 points over seeds: the pairing
    # cancels that spread, so the effect is real (the old unpaired rule called it noise).
    diffs = paired.paired_differences(paired_rows([0.010, 0.011, 0.009]), "acc", "input_norm", "finetune", ["dataset"])
    unit = diffs.loc[("a", "unit")]
    assert 0 < unit["ci_low"] < 1.0 < unit["ci_high"]
    assert bool(paired.significant(diffs).loc[("a", "unit")]) and not bool(paired.within_noise(diffs).loc[("a", "unit")])


def test_one_pair_has_no_interval_and_is_neither_within_noise_nor_significant():
    diffs = paired.paired_differences(paired_rows([0.01], bases=(0.80,)), "acc", "input_norm", "finetune", ["dataset"])
    unit = diffs.loc[("a", "unit")]
    assert unit["n"] == 1 and unit["mean"] == pytest.approx(1.0)
    assert np.isnan(unit["ci_low"]) and np.isnan(unit["ci_high"])
    assert not paired.within_noise(diffs).any() and not paired.significant(diffs).any()
    assert np.isnan(paired.confidence_interval([0.5])).all() and np.isnan(paired.confidence_interval([])).all()


def test_paired_difference_table_shows_the_interval_and_colours_only_significant_cells():
    diffs = paired.paired_differences(paired_rows([0.01, 0.03, 0.02]), "acc", "input_norm", "finetune", ["dataset"])
    styler = paired.paired_difference_table(diffs, "input_norm")
    assert list(styler.data.columns) == ["instance", "unit"]
    assert styler.data.loc["a", "unit"] == "+2.00 [-0.48, +4.48] (n=3)"
    assert styler.data.loc["a", "instance"] == "-20.00 [-20.00, -20.00] (n=3)"
    assert styled_cells(styler, tables.WORSE) == {(0, 0)} and styled_cells(styler, tables.BETTER) == set()
    flipped = paired.paired_difference_table(diffs, "input_norm", higher_is_better=False)
    assert styled_cells(flipped, tables.BETTER) == {(0, 0)}
    assert "+2.00 [-0.48, +4.48] (n=3)" in styler.to_html()
    assert paired.format_difference(1.0, float("nan"), float("nan"), 1) == "+1.00 (n=1, no CI)"


def runs_with_params(tmp_path, lrs_by_seed: dict[int, float], copy_to_results: bool = False) -> pd.DataFrame:
    """Run folders of one setting, one per seed, with the given lr each (read back with collect_runs)."""
    import json

    import yaml

    from normtest_lib.report.results import collect_runs

    for seed, lr in lrs_by_seed.items():
        for root in ("runs", "results") if copy_to_results else ("runs",):
            folder = tmp_path / root / "s" / "smoke" / f"run{seed}"
            folder.mkdir(parents=True)
            params = {"dataset": "a", "input_norm": "finetune", "seed": seed, "lr": lr, "data_root": f"/d{seed}", "device": "cpu"}
            (folder / "params.yaml").write_text(yaml.safe_dump(params))
            (folder / "summary.json").write_text(json.dumps({"status": "complete", "acc": 0.5 + seed / 10}))
    return collect_runs(tmp_path / "runs", tmp_path / "results")


def test_runs_differing_in_more_than_the_seed_are_not_pooled(tmp_path):
    runs = runs_with_params(tmp_path, {0: 0.1, 1: 0.1, 2: 0.01})
    with pytest.raises(ValueError, match=r"differ in \['lr'\].*dataset=a, input_norm=finetune"):
        tables.aggregate_seeds(runs, "acc", ["dataset", "input_norm"])
    with pytest.raises(ValueError, match=r"differ in \['lr'\]"):
        paired.paired_differences(runs, "acc", "input_norm", "finetune", ["dataset"])
    # lr as a key: each group holds one lr, so seeds are all that vary.
    assert list(tables.aggregate_seeds(runs, "acc", ["dataset", "lr"])["n"]) == [1, 2]


def test_seeds_pool_although_execution_only_params_differ_and_a_committed_copy_counts_once(tmp_path):
    runs = runs_with_params(tmp_path, {0: 0.1, 1: 0.1}, copy_to_results=True)  # data_root differs per seed
    stats = tables.aggregate_seeds(runs, "acc", ["dataset", "input_norm"])
    assert stats["n"].tolist() == [2] and stats["mean"].tolist() == [pytest.approx(0.55)]
    doubled = pd.concat([runs, runs], ignore_index=True)  # a frame built by hand, duplicates and all
    doubled.attrs = runs.attrs
    assert tables.aggregate_seeds(doubled, "acc", ["dataset"])["n"].tolist() == [2]
