"""Study 1's figures (studies/input_normalization/figures.py): accuracy against set size."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.colors  # noqa: E402
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


def curves(ax) -> dict:
    """The errorbar curves of a panel by setting: ``(line, [(x, low, high), ...])`` (the bars' ends)."""
    found = {}
    for container in ax.containers:
        line, _, (bars,) = container.lines
        found[container.get_label()] = (line, [(x0, y0, y1) for (x0, y0), (_, y1) in bars.get_segments()])
    return found


def mean_and_half(values) -> tuple[float, float]:
    values = np.asarray(values, dtype=float)
    return values.mean(), stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))


@pytest.fixture
def by_size(points) -> pd.DataFrame:
    """Both settings at every fine-tuning set size (finetune's statistics from one sample size): the layout of the
    chapter's set-size figure, where the two settings' means nearly agree."""
    return points[(points["input_norm"] == "pretrain") | (points["stats_subset"] == 1000)]


def test_accuracy_vs_size_panels_log_axis_and_means(points):
    fig = figures.accuracy_vs_size(points, x="stats_subset", y="test_acc", hue="input_norm", col="train_subset")
    assert len(fig.axes) == 2
    assert [ax.get_title() for ax in fig.axes] == ["train_subset = 100", "train_subset = 4500"]
    # A "panel" column (analysis.group_panels) names its own columns: its value alone is the title.
    named = points.assign(panel="source network none, train_subset " + points["train_subset"].astype(str))
    fig_named = figures.accuracy_vs_size(named, x="stats_subset", y="test_acc", hue="input_norm", col="panel")
    assert [ax.get_title() for ax in fig_named.axes] == [
        "source network none, train_subset 100", "source network none, train_subset 4500"]
    ax = fig.axes[1]
    assert ax.get_xscale() == "log"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["10", "100", "1000"]
    assert ax.get_xlabel() == "stats_subset (log scale)"  # the axis says it is logarithmic
    assert ax.get_ylabel() == "test accuracy (%)"
    line, bars = curves(ax)["finetune"]
    assert matplotlib.colors.same_color(line.get_color(), legend_colours(fig)["finetune"])
    chosen = points[(points["train_subset"] == 4500) & (points["input_norm"] == "finetune")]
    expected = [mean_and_half(group * 100) for _, group in chosen.groupby("stats_subset")["test_acc"]]
    np.testing.assert_allclose(line.get_ydata(), [mean for mean, _ in expected])
    np.testing.assert_allclose([(low, high) for _, low, high in bars], [(m - h, m + h) for m, h in expected])
    # pretrain has no stats_subset, so finetune is the only curve: nothing to keep apart, no sideways shift.
    np.testing.assert_allclose(line.get_xdata(), [10, 100, 1000])


def test_accuracy_vs_size_keeps_agreeing_settings_apart_by_marker_and_position(by_size):
    # Study 1's finetune and pretrain agree within a tenth of a point: drawn at the same places with the same
    # marker, one hid the other.
    fig = figures.accuracy_vs_size(by_size, x="train_subset", y="test_acc", hue="input_norm")
    drawn = curves(fig.axes[0])
    assert set(drawn) == {"finetune", "pretrain"}
    (finetune, _), (pretrain, _) = drawn["finetune"], drawn["pretrain"]
    assert finetune.get_marker() != pretrain.get_marker()
    assert (finetune.get_xdata() < pretrain.get_xdata()).all()  # every size, each setting on its own side
    np.testing.assert_allclose(np.sqrt(finetune.get_xdata() * pretrain.get_xdata()), [100, 4500])  # centred on the size
    (legend,) = fig.legends
    assert [handle.get_marker() for handle in legend.legend_handles] == [finetune.get_marker(), pretrain.get_marker()]


def test_accuracy_vs_size_draws_paired_differences_to_a_reference_below(by_size):
    fig = figures.accuracy_vs_size(by_size, x="train_subset", y="test_acc", hue="input_norm", reference="pretrain",
                                   xlabel="fine-tuning images")
    above, below = fig.axes
    assert above.get_xlabel() == "" and below.get_xlabel() == "fine-tuning images (log scale)"
    assert below.get_ylabel() == "minus pretrain (points,\npaired by seed)"
    assert set(curves(below)) == {"finetune"}  # the reference is the line at 0
    line, bars = curves(below)["finetune"]
    wide = by_size.pivot_table(index=["train_subset", "seed"], columns="input_norm", values="test_acc") * 100
    paired = (wide["finetune"] - wide["pretrain"]).dropna()  # pretrain's fourth seed has no partner
    expected = [mean_and_half(group) for _, group in paired.groupby(level="train_subset")]
    np.testing.assert_allclose(line.get_ydata(), [mean for mean, _ in expected])
    np.testing.assert_allclose([(low, high) for _, low, high in bars], [(m - h, m + h) for m, h in expected])
    (zero,) = [line for line in drawn_lines(below) if list(line.get_ydata()) == [0, 0]]
    assert matplotlib.colors.same_color(zero.get_color(), legend_colours(fig)["pretrain"])


def test_accuracy_vs_size_draws_the_baseline_as_a_line_and_the_paired_differences_below(points):
    fig = figures.accuracy_vs_size(
        points, x="stats_subset", y="test_acc", hue="input_norm", col="train_subset",
        baseline="pretrain", baseline_label="pretrain statistics", xlabel="images behind the statistics",
    )  # fmt: skip
    assert set(legend_colours(fig)) == {"finetune", "pretrain statistics"}
    assert len(fig.axes) == 4  # two panels, each with its differences below
    above, below = fig.axes[0], fig.axes[2]
    assert below.get_xlabel() == "images behind the statistics (log scale)"
    values = points[(points["train_subset"] == 100) & (points["input_norm"] == "pretrain")]["test_acc"] * 100
    (base,) = [line for line in drawn_lines(above) if line.get_linestyle() == "--"]
    np.testing.assert_allclose(base.get_ydata(), [values.mean()] * 2)
    # No band around the baseline: the interval of its mean alone is unpaired and, with a few seeds, filled the panel.
    assert not [patch for patch in above.patches if isinstance(patch, Rectangle)]
    # Below, each finetune point minus the baseline run of the same seed, at every sample size of the statistics.
    chosen = points[points["train_subset"] == 100]
    pretrain = chosen[chosen["input_norm"] == "pretrain"].set_index("seed")["test_acc"]
    finetune = chosen[chosen["input_norm"] == "finetune"]
    paired = (finetune["test_acc"] - finetune["seed"].map(pretrain)) * 100
    expected = [mean_and_half(group) for _, group in paired.groupby(finetune["stats_subset"])]
    line, bars = curves(below)["finetune"]
    np.testing.assert_allclose(line.get_ydata(), [mean for mean, _ in expected])
    np.testing.assert_allclose([(low, high) for _, low, high in bars], [(m - h, m + h) for m, h in expected])
    assert below.get_ylabel() == "minus pretrain statistics (points,\npaired by seed)"


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
    with pytest.raises(ValueError, match="reference 'center'"):
        figures.accuracy_vs_size(points, x="stats_subset", y="test_acc", hue="input_norm", reference="center")
    with pytest.raises(ValueError, match="not both"):
        figures.accuracy_vs_size(points, x="stats_subset", y="test_acc", hue="input_norm", baseline="pretrain",
                                 reference="finetune")
    with pytest.raises(KeyError, match="seed"):
        figures.accuracy_vs_size(points.drop(columns="seed"), x="stats_subset", y="test_acc", hue="input_norm",
                                 baseline="pretrain")
    with pytest.raises(ValueError, match="positive"):
        figures.accuracy_vs_size(points.assign(stats_subset=0), x="stats_subset", y="test_acc", hue="input_norm")
    with pytest.raises(ValueError, match="nothing to plot"):
        figures.accuracy_vs_size(points.assign(test_acc=np.nan), x="stats_subset", y="test_acc", hue="input_norm")
