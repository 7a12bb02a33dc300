"""The figures every chapter shares (report/plots.py): training curves, a run's curves, the history grid."""

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure

from normtest_lib.report import plots
from normtest_lib.report.colours import FIXED


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def drawn_lines(ax):
    """Lines with data (seaborn also adds empty lines that only serve as legend handles)."""
    return [line for line in ax.get_lines() if len(line.get_xdata())]


@pytest.fixture
def histories() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = [
        {"input_norm": setting, "seed": seed, "epoch": epoch, "train_acc": base + 0.05 * epoch + rng.normal(0, 0.01), "val_acc": base}
        for setting, base in (("finetune", 0.5), ("pretrain", 0.4))
        for seed in range(3)
        for epoch in range(1, 6)
    ]
    return pd.DataFrame(rows)


def test_training_curves_one_panel_per_metric_one_line_and_band_per_group(histories):
    fig = plots.training_curves(histories, metrics=("train_acc", "val_acc"), hue="input_norm")
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    for ax in fig.axes:
        assert len(drawn_lines(ax)) == 2
        assert sum(isinstance(c, PolyCollection) for c in ax.collections) == 2  # confidence bands over seeds
    # The curve of a group (the first, finetune, in order of appearance) is the mean over its seeds.
    first = drawn_lines(fig.axes[0])[0]
    expected = histories[histories["input_norm"] == "finetune"].groupby("epoch")["train_acc"].mean()
    np.testing.assert_allclose(first.get_ydata(), 100 * expected.to_numpy())  # accuracy drawn in percent
    assert matplotlib.colors.to_hex(first.get_color()) == FIXED["finetune"]  # the book's colour for the setting
    # One legend, outside the panels (inside, it hid the curves of study 2's validation panel)
    assert len(fig.legends) == 1 and all(ax.get_legend() is None for ax in fig.axes)
    assert [text.get_text() for text in fig.legends[0].get_texts()] == ["finetune", "pretrain"]


def test_training_curves_name_a_missing_column(histories):
    with pytest.raises(KeyError, match="norm_layer"):
        plots.training_curves(histories, hue="norm_layer")


def test_run_curves_one_line_per_split_and_the_best_epoch():
    history = pd.DataFrame(
        {
            "epoch": [1, 2, 3],
            "train_loss": [2.0, 1.5, 1.0], "val_loss": [2.1, 1.7, 1.6], "test_loss": [2.2, 1.8, 1.7],
            "train_acc": [0.3, 0.5, 0.7], "val_acc": [0.3, 0.45, 0.44], "test_acc": [0.28, 0.4, 0.41],
        }
    )
    fig = plots.run_curves(history, best_epoch=2)
    loss, accuracy = fig.axes
    assert len(drawn_lines(accuracy)) == 4  # train, val, test and the best-epoch marker
    np.testing.assert_allclose(drawn_lines(accuracy)[1].get_ydata(), history["val_acc"])
    assert list(drawn_lines(accuracy)[-1].get_xdata()) == [2, 2]
    no_val = history.assign(val_loss=np.nan, val_acc=np.nan)
    assert len(drawn_lines(plots.run_curves(no_val).axes[0])) == 2  # without a validation split


def legend_colours(fig):
    (legend,) = fig.legends
    return {text.get_text(): handle.get_color() for handle, text in zip(legend.legend_handles, legend.texts)}


def line_of(ax, colour):
    (line,) = [line for line in drawn_lines(ax) if matplotlib.colors.same_color(line.get_color(), colour)]
    return line


@pytest.fixture
def grid_histories() -> pd.DataFrame:
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


def test_history_grid_one_panel_per_row_and_column_value_with_titles(grid_histories):
    fig = plots.history_grid(grid_histories)
    assert isinstance(fig, Figure) and len(fig.axes) == 2 * 3
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[0] == "model = resnet18 | dataset = cifar10"
    assert titles[5] == "model = vit | dataset = pets"
    assert len({ax.get_ylim() for ax in fig.axes}) == 1  # shared y axis
    assert len(fig.legends) == 1 and all(ax.get_legend() is None for ax in fig.axes)
    assert set(legend_colours(fig)) == {"finetune", "pretrain"}


def test_history_grid_lines_are_means_over_seeds_in_percent(grid_histories):
    fig = plots.history_grid(grid_histories, hue_order=["pretrain", "finetune"])
    ax = fig.axes[4]  # vit, flowers
    assert fig.axes[0].get_ylabel() == "test accuracy (%)"
    line = line_of(ax, legend_colours(fig)["finetune"])
    chosen = grid_histories[(grid_histories["model"] == "vit") & (grid_histories["dataset"] == "flowers")]
    expected = chosen[chosen["input_norm"] == "finetune"].groupby("epoch")["test_acc"].mean() * 100
    np.testing.assert_allclose(line.get_xdata(), expected.index)
    np.testing.assert_allclose(line.get_ydata(), expected.to_numpy())


def test_history_grid_titles_leave_out_a_dimension_with_one_value(grid_histories):
    one_model = grid_histories[grid_histories["model"] == "vit"]
    fig = plots.history_grid(one_model)
    assert [ax.get_title() for ax in fig.axes] == ["dataset = cifar10", "dataset = flowers", "dataset = pets"]


def test_history_grid_drops_missing_values_and_draws_a_single_panel(grid_histories):
    one = grid_histories[(grid_histories["model"] == "vit") & (grid_histories["dataset"] == "pets")].copy()
    one.loc[one["epoch"] < 4, "test_acc"] = np.nan  # a run tested only at the end
    fig = plots.history_grid(one)
    assert len(fig.axes) == 1 and fig.axes[0].get_title() == "model = vit | dataset = pets"
    line = line_of(fig.axes[0], legend_colours(fig)["pretrain"])
    expected = one[(one["input_norm"] == "pretrain") & (one["epoch"] == 4)]["test_acc"].mean() * 100
    np.testing.assert_allclose(line.get_xdata(), [4])
    np.testing.assert_allclose(line.get_ydata(), [expected])


def test_history_grid_names_missing_columns_and_refuses_an_empty_frame(grid_histories):
    with pytest.raises(KeyError, match=r"norm_layer.*available.*input_norm"):
        plots.history_grid(grid_histories, hue="norm_layer")
    with pytest.raises(ValueError, match="nothing to plot"):
        plots.history_grid(grid_histories.assign(test_acc=np.nan))


def test_history_grid_draws_a_dashed_metric_beside_the_solid_one(grid_histories):
    # Test accuracy alone cannot say whether the runs had stopped learning; training accuracy beside it can.
    rng = np.random.default_rng(1)
    histories = grid_histories.assign(train_acc=grid_histories["test_acc"] + 0.1 + rng.normal(0, 0.01, len(grid_histories)))
    histories.loc[histories["epoch"] < 4, "test_acc"] = np.nan  # tested only at the end: training accuracy still per epoch
    fig = plots.history_grid(histories, dashed_metric="train_acc")
    ax = fig.axes[4]  # vit, flowers
    assert ax.get_ylabel() == "" and fig.axes[3].get_ylabel() == "accuracy (%)"  # one label for both, outer panels only
    colour = legend_colours(fig)["finetune"]
    lines = [line for line in drawn_lines(ax) if matplotlib.colors.same_color(line.get_color(), colour)]
    solid, dashed = sorted(lines, key=lambda line: line.get_linestyle() == "--")
    assert (solid.get_linestyle(), dashed.get_linestyle()) == ("-", "--")
    chosen = histories[(histories["model"] == "vit") & (histories["dataset"] == "flowers") & (histories["input_norm"] == "finetune")]
    expected = chosen.groupby("epoch")["train_acc"].mean() * 100
    np.testing.assert_allclose(dashed.get_xdata(), expected.index)  # every epoch, though test accuracy has one
    np.testing.assert_allclose(dashed.get_ydata(), expected.to_numpy())
    np.testing.assert_allclose(solid.get_xdata(), [4])
    (legend,) = fig.legends
    styles = {text.get_text(): handle.get_linestyle() for handle, text in zip(legend.legend_handles, legend.texts)}
    assert styles["test accuracy"] == "-" and styles["train accuracy"] == "--"


def test_history_grid_names_a_missing_dashed_metric(grid_histories):
    with pytest.raises(KeyError, match="train_acc"):
        plots.history_grid(grid_histories, dashed_metric="train_acc")


def test_shared_metric_label():
    assert plots.shared_metric_label(["test_acc", "train_acc"]) == "accuracy (%)"
    assert plots.shared_metric_label(["test_acc"]) == "test accuracy (%)"
    assert plots.shared_metric_label(["test_acc", "train_loss"]) == "test accuracy (%) / train loss"


def test_history_grid_ticks_whole_epochs_only(grid_histories):
    fig = plots.history_grid(grid_histories.assign(train_acc=grid_histories["test_acc"]), dashed_metric="train_acc")
    fig.canvas.draw()
    ticks = [tick for tick in fig.axes[0].get_xticks() if 1 <= tick <= 4]
    assert ticks and all(float(tick).is_integer() for tick in ticks)
