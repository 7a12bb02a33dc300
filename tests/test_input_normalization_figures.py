"""Study 1's figures (studies/input_normalization/figures.py): accuracy against set size."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402
from scipy import stats  # noqa: E402

from normtest_lib.studies.input_normalization import figures  # noqa: E402
from test_plots import close_figures, drawn_lines, legend_colours, line_of  # noqa: E402, F401 (close_figures: autouse fixture)


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
    fig = figures.accuracy_vs_size(points, x="stats_subset", y="test_acc", hue="input_norm", col="train_subset")
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
    fig = figures.accuracy_vs_size(
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
    (band,) = [p for p in ax.patches if isinstance(p, Rectangle) and p.get_alpha() == figures.BAND_ALPHA]
    np.testing.assert_allclose([band.get_y(), band.get_y() + band.get_height()], [mean - half, mean + half])
    assert len(drawn_lines(ax)) == 2  # the finetune curve and the baseline


def test_accuracy_vs_size_without_panels_or_baseline(points):
    finetune = points[(points["input_norm"] == "finetune") & (points["train_subset"] == 100)]
    fig = figures.accuracy_vs_size(finetune, x="stats_subset", y="test_acc", hue="input_norm")
    assert len(fig.axes) == 1 and fig.axes[0].get_title() == ""
    assert fig.axes[0].get_xscale() == "log"


def test_accuracy_vs_size_errors(points):
    with pytest.raises(KeyError, match=r"n_stats.*available"):
        figures.accuracy_vs_size(points, x="n_stats", y="test_acc", hue="input_norm")
    with pytest.raises(ValueError, match="baseline 'center'"):
        figures.accuracy_vs_size(points, x="stats_subset", y="test_acc", hue="input_norm", baseline="center")
    with pytest.raises(ValueError, match="positive"):
        figures.accuracy_vs_size(points.assign(stats_subset=0), x="stats_subset", y="test_acc", hue="input_norm")
    with pytest.raises(ValueError, match="nothing to plot"):
        figures.accuracy_vs_size(points.assign(test_acc=np.nan), x="stats_subset", y="test_acc", hue="input_norm")
