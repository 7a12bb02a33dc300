"""Study chapters' figures: the history grid and accuracy against set size."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402
from scipy import stats  # noqa: E402

from normtest_lib.report import study_plots  # noqa: E402
from test_plots import close_figures, drawn_lines  # noqa: E402, F401 (close_figures: autouse fixture)


def legend_colours(fig):
    (legend,) = fig.legends
    return {text.get_text(): handle.get_color() for handle, text in zip(legend.legend_handles, legend.texts)}


def line_of(ax, colour):
    (line,) = [line for line in drawn_lines(ax) if matplotlib.colors.same_color(line.get_color(), colour)]
    return line


@pytest.fixture
def histories() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = [
        {"model": model, "dataset": dataset, "input_norm": setting, "seed": seed, "epoch": epoch,
         "test_acc": base + 0.05 * epoch + rng.normal(0, 0.02)}
        for model in ("resnet18", "vit")
        for dataset in ("cifar10", "flowers", "pets")
        for setting, base in (("finetune", 0.5), ("pretrain", 0.4))
        for seed in range(3)
        for epoch in range(1, 5)
    ]  # fmt: skip
    return pd.DataFrame(rows)


def test_history_grid_one_panel_per_row_and_column_value_with_titles(histories):
    fig = study_plots.history_grid(histories)
    assert isinstance(fig, Figure) and len(fig.axes) == 2 * 3
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[0] == "model = resnet18 | dataset = cifar10"
    assert titles[5] == "model = vit | dataset = pets"
    assert len({ax.get_ylim() for ax in fig.axes}) == 1  # shared y axis
    assert len(fig.legends) == 1 and all(ax.get_legend() is None for ax in fig.axes)
    assert set(legend_colours(fig)) == {"finetune", "pretrain"}


def test_history_grid_lines_are_means_over_seeds_in_percent(histories):
    fig = study_plots.history_grid(histories, hue_order=["pretrain", "finetune"])
    ax = fig.axes[4]  # vit, flowers
    assert fig.axes[0].get_ylabel() == "test accuracy (%)"
    line = line_of(ax, legend_colours(fig)["finetune"])
    chosen = histories[(histories["model"] == "vit") & (histories["dataset"] == "flowers")]
    expected = chosen[chosen["input_norm"] == "finetune"].groupby("epoch")["test_acc"].mean() * 100
    np.testing.assert_allclose(line.get_xdata(), expected.index)
    np.testing.assert_allclose(line.get_ydata(), expected.to_numpy())


def test_history_grid_titles_leave_out_a_dimension_with_one_value(histories):
    one_model = histories[histories["model"] == "vit"]
    fig = study_plots.history_grid(one_model)
    assert [ax.get_title() for ax in fig.axes] == ["dataset = cifar10", "dataset = flowers", "dataset = pets"]


def test_history_grid_drops_missing_values_and_draws_a_single_panel(histories):
    one = histories[(histories["model"] == "vit") & (histories["dataset"] == "pets")].copy()
    one.loc[one["epoch"] < 4, "test_acc"] = np.nan  # a run tested only at the end
    fig = study_plots.history_grid(one)
    assert len(fig.axes) == 1 and fig.axes[0].get_title() == "model = vit | dataset = pets"
    line = line_of(fig.axes[0], legend_colours(fig)["pretrain"])
    expected = one[(one["input_norm"] == "pretrain") & (one["epoch"] == 4)]["test_acc"].mean() * 100
    np.testing.assert_allclose(line.get_xdata(), [4])
    np.testing.assert_allclose(line.get_ydata(), [expected])


def test_history_grid_names_missing_columns_and_refuses_an_empty_frame(histories):
    with pytest.raises(KeyError, match=r"norm_layer.*available.*input_norm"):
        study_plots.history_grid(histories, hue="norm_layer")
    with pytest.raises(ValueError, match="nothing to plot"):
        study_plots.history_grid(histories.assign(test_acc=np.nan))


@pytest.fixture
def points() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    rows = [
        {"train_subset": n_train, "input_norm": "finetune", "stats_subset": n_stats, "seed": seed,
         "test_acc": 0.3 + 0.1 * np.log10(n_stats) + rng.normal(0, 0.02)}
        for n_train in (100, 4500)
        for n_stats in (10, 100, 1000)
        for seed in range(3)
    ] + [
        {"train_subset": n_train, "input_norm": "pretrain", "stats_subset": np.nan, "seed": seed,
         "test_acc": 0.55 + rng.normal(0, 0.03)}
        for n_train in (100, 4500)
        for seed in range(4)
    ]  # fmt: skip
    return pd.DataFrame(rows)


def test_accuracy_vs_size_panels_log_axis_and_means(points):
    fig = study_plots.accuracy_vs_size(points, x="stats_subset", y="test_acc", hue="input_norm", col="train_subset")
    assert len(fig.axes) == 2
    assert [ax.get_title() for ax in fig.axes] == ["train_subset = 100", "train_subset = 4500"]
    ax = fig.axes[1]
    assert ax.get_xscale() == "log"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["10", "100", "1000"]
    assert ax.get_ylabel() == "test accuracy (%)"
    line = line_of(ax, legend_colours(fig)["finetune"])
    chosen = points[(points["train_subset"] == 4500) & (points["input_norm"] == "finetune")]
    expected = chosen.groupby("stats_subset")["test_acc"].mean() * 100
    np.testing.assert_allclose(line.get_xdata(), expected.index)
    np.testing.assert_allclose(line.get_ydata(), expected.to_numpy())


def test_accuracy_vs_size_draws_the_baseline_as_a_line_with_a_t_band(points):
    fig = study_plots.accuracy_vs_size(
        points, x="stats_subset", y="test_acc", hue="input_norm", col="train_subset",
        baseline="pretrain", baseline_label="pretrain statistics", xlabel="images behind the statistics",
    )  # fmt: skip
    assert set(legend_colours(fig)) == {"finetune", "pretrain statistics"}
    ax = fig.axes[0]
    assert ax.get_xlabel() == "images behind the statistics"
    values = points[(points["train_subset"] == 100) & (points["input_norm"] == "pretrain")]["test_acc"] * 100
    mean = values.mean()
    half = stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    (base,) = [line for line in drawn_lines(ax) if line.get_linestyle() == "--"]
    np.testing.assert_allclose(base.get_ydata(), [mean, mean])
    (band,) = [p for p in ax.patches if isinstance(p, Rectangle) and p.get_alpha() == study_plots.BAND_ALPHA]
    np.testing.assert_allclose([band.get_y(), band.get_y() + band.get_height()], [mean - half, mean + half])
    assert len(drawn_lines(ax)) == 2  # the finetune curve and the baseline


def test_accuracy_vs_size_without_panels_or_baseline(points):
    finetune = points[(points["input_norm"] == "finetune") & (points["train_subset"] == 100)]
    fig = study_plots.accuracy_vs_size(finetune, x="stats_subset", y="test_acc", hue="input_norm")
    assert len(fig.axes) == 1 and fig.axes[0].get_title() == ""
    assert fig.axes[0].get_xscale() == "log"


def test_accuracy_vs_size_errors(points):
    with pytest.raises(KeyError, match=r"n_stats.*available"):
        study_plots.accuracy_vs_size(points, x="n_stats", y="test_acc", hue="input_norm")
    with pytest.raises(ValueError, match="baseline 'center'"):
        study_plots.accuracy_vs_size(points, x="stats_subset", y="test_acc", hue="input_norm", baseline="center")
    with pytest.raises(ValueError, match="positive"):
        study_plots.accuracy_vs_size(points.assign(stats_subset=0), x="stats_subset", y="test_acc", hue="input_norm")
    with pytest.raises(ValueError, match="nothing to plot"):
        study_plots.accuracy_vs_size(points.assign(test_acc=np.nan), x="stats_subset", y="test_acc", hue="input_norm")
