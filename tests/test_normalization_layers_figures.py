"""The normalization-layer study's figures: probes over training, layer statistics, batch size."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from normtest_lib.studies.normalization_layers import figures  # noqa: E402
from test_plots import close_figures, drawn_lines  # noqa: E402, F401 (close_figures: autouse fixture)

LAYERS = ("stem.norm", "stages.0.0.norm1", "stages.0.0.norm2")


def legend_colours(fig):
    (legend,) = fig.legends
    return {text.get_text(): handle.get_color() for handle, text in zip(legend.legend_handles, legend.texts)}


def line_of(ax, colour, **style):
    lines = [line for line in drawn_lines(ax) if matplotlib.colors.same_color(line.get_color(), colour)]
    (line,) = [line for line in lines if all(getattr(line, f"get_{k}")() == v for k, v in style.items())]
    return line


def probe_rows(probe, names, norm_layers=("bn", "gn:c/4"), seeds=(0, 1, 2), epochs=(1, 2, 3)):
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        [
            {"run_id": f"{norm}-{seed}", "norm_layer": norm, "seed": seed, "epoch": epoch, "probe": probe, "name": name,
             "value": float(rng.uniform(0, 1))}
            for norm in norm_layers for seed in seeds for epoch in epochs for name in names
        ]
    )  # fmt: skip


@pytest.fixture
def features():
    other = probe_rows("layer_stats", ["stem.norm/mean"])
    return pd.concat([probe_rows("features", ["p99", "p01", "p80", "p20"]), other], ignore_index=True)


def test_feature_evolution_one_panel_per_percentile_lines_are_means_over_seeds(features):
    fig = figures.feature_evolution(features, hue_order=["gn:c/4", "bn"])
    assert isinstance(fig, Figure) and [ax.get_title() for ax in fig.axes] == ["p01", "p20", "p80", "p99"]
    assert len(fig.legends) == 1 and list(legend_colours(fig)) == ["gn:c/4", "bn"]
    assert all(len(drawn_lines(ax)) == 2 for ax in fig.axes)  # the layer_stats rows are ignored
    line = line_of(fig.axes[2], legend_colours(fig)["bn"])
    chosen = features[(features["name"] == "p80") & (features["norm_layer"] == "bn")]
    np.testing.assert_allclose(line.get_ydata(), chosen.groupby("epoch")["value"].mean().to_numpy())


def test_feature_evolution_errors(features):
    with pytest.raises(KeyError, match=r"no column\(s\) \['batch_size'\]; available: \['run_id'"):
        figures.feature_evolution(features, hue="batch_size")
    with pytest.raises(ValueError, match="no 'features' probe rows; probes present: \\['layer_stats'\\]"):
        figures.feature_evolution(features[features["probe"] != "features"])


@pytest.fixture
def layer_stats():
    names = [f"{layer}/{stat}" for layer in LAYERS for stat in ("mean", "std")]
    return probe_rows("layer_stats", names)


def test_layer_output_stats_module_order_and_last_epoch_means(layer_stats):
    fig = figures.layer_output_stats(layer_stats)
    mean_ax, std_ax = fig.axes
    assert mean_ax.get_title() == "output mean (last epoch)" and std_ax.get_title() == "output std (last epoch)"
    assert [t.get_text() for t in std_ax.get_xticklabels()] == list(LAYERS)
    assert list(std_ax.get_xticks()) == [1, 2, 3]
    line = line_of(std_ax, legend_colours(fig)["gn:c/4"])
    chosen = layer_stats[(layer_stats["epoch"] == 3) & (layer_stats["norm_layer"] == "gn:c/4")]
    expected = [chosen.loc[chosen["name"] == f"{layer}/std", "value"].mean() for layer in LAYERS]
    np.testing.assert_allclose(line.get_xdata(), [1, 2, 3])
    np.testing.assert_allclose(line.get_ydata(), expected)


def test_layer_output_stats_at_an_epoch_and_runs_of_different_depth(layer_stats):
    # A run stopped early: its last epoch is 2, where the others' is 3.
    early = layer_stats[~((layer_stats["run_id"] == "bn-0") & (layer_stats["epoch"] == 3))]
    fig = figures.layer_output_stats(early, hue_order=["bn"])
    chosen = early[(early["norm_layer"] == "bn") & (early["name"] == "stem.norm/mean")]
    last = chosen[chosen["epoch"] == chosen.groupby("run_id")["epoch"].transform("max")]
    assert line_of(fig.axes[0], legend_colours(fig)["bn"]).get_ydata()[0] == pytest.approx(last["value"].mean())
    # A run with one more layer: its extra position takes its own path as tick label.
    deeper = probe_rows("layer_stats", [f"{layer}/{s}" for layer in [*LAYERS, "head.norm"] for s in ("mean", "std")], ("ln",))
    fig = figures.layer_output_stats(pd.concat([layer_stats, deeper]), epoch=1)
    assert fig.axes[0].get_title() == "output mean (epoch 1)"
    assert [t.get_text() for t in fig.axes[1].get_xticklabels()] == [*LAYERS, "head.norm"]
    with pytest.raises(ValueError, match=r"no 'layer_stats' rows at epoch 9; epochs: \[1, 2, 3\]"):
        figures.layer_output_stats(layer_stats, epoch=9)


@pytest.fixture
def gates():
    names = [f"{layer}/{stat}" for layer in LAYERS[:2] for stat in ("mean", "min", "max")]
    return probe_rows("bin_gate", names, norm_layers=("bin",))


def test_gate_over_training_is_a_heat_map_of_layers_by_epoch_beside_each_layers_last_gate(gates):
    fig = figures.gate_over_training(gates)
    heat, ends = fig.axes[:2]
    (image,) = heat.get_images()
    # A row per layer in module order, a column per epoch: the mean over the runs of the layer's mean gate
    expected = gates[gates["name"].str.endswith("/mean")].pivot_table(index="name", columns="epoch", values="value")
    np.testing.assert_allclose(image.get_array(), expected.loc[[f"{layer}/mean" for layer in LAYERS[:2]]].to_numpy())
    assert [t.get_text() for t in heat.get_yticklabels()] == list(LAYERS[:2])
    assert image.get_clim() == (0.0, 1.0)
    # The last epoch: the mean gate as a filled dot, the channels' minimum as a hollow one, rho = 1 dotted
    last = gates[gates["epoch"] == 3]
    filled = [line for line in ends.get_lines() if line.get_marker() == "o" and line.get_markerfacecolor() != "white"]
    hollow = [line for line in ends.get_lines() if line.get_markerfacecolor() == "white"]
    np.testing.assert_allclose([line.get_xdata()[0] for line in filled],
                               [last[last["name"] == f"{layer}/mean"]["value"].mean() for layer in LAYERS[:2]])
    np.testing.assert_allclose([line.get_xdata()[0] for line in hollow],
                               [last[last["name"] == f"{layer}/min"]["value"].mean() for layer in LAYERS[:2]])
    (one,) = [line for line in ends.get_lines() if line.get_linestyle() == ":"]
    assert list(one.get_xdata()) == [1, 1]
    assert [text.get_text() for text in fig.legends[0].get_texts()][-1] == "rho = 1 (batch norm only)"
    only_min = figures.gate_over_training(gates, "min").axes[1]
    assert not [line for line in only_min.get_lines() if line.get_markerfacecolor() == "white"]


def test_gate_over_training_errors(gates):
    with pytest.raises(ValueError, match="stat must be one of"):
        figures.gate_over_training(gates, stat="median")
    with pytest.raises(ValueError, match="no 'bin_gate' probe rows"):
        figures.gate_over_training(gates.assign(probe="features"))
    with pytest.raises(KeyError, match=r"\['value'\]"):
        figures.gate_over_training(gates.drop(columns="value"))


@pytest.fixture
def points():
    rng = np.random.default_rng(1)
    return pd.DataFrame(
        [
            {"norm_layer": norm, "seed": seed, "batch_size": size, "test_acc_at_best_val": base - 0.01 * np.log2(size) + rng.normal(0, 0.01)}
            for norm, base in (("bn", 0.9), ("gn:c/4", 0.85)) for seed in range(3) for size in (2, 16, 128)
        ]
    )  # fmt: skip


def test_metric_vs_batch_size_log2_axis_percent_and_means(points):
    fig = figures.metric_vs_batch_size(points)
    (ax,) = fig.axes
    assert ax.get_xscale() == "log" and ax.xaxis.get_transform().base == 2
    assert [t.get_text() for t in ax.get_xticklabels()] == ["2", "16", "128"]
    assert ax.get_xlabel() == "batch size (log scale)"  # the axis says it is logarithmic
    assert ax.get_ylabel() == "test accuracy at best val (%)"
    line = line_of(ax, legend_colours(fig)["gn:c/4"], marker="o")  # not the error bar caps
    expected = 100 * points[points["norm_layer"] == "gn:c/4"].groupby("batch_size")["test_acc_at_best_val"].mean()
    np.testing.assert_allclose(line.get_xdata(), [2, 16, 128])
    np.testing.assert_allclose(line.get_ydata(), expected.to_numpy())
    loss = figures.metric_vs_batch_size(points.assign(loss=points["test_acc_at_best_val"]), y="loss")
    assert line_of(loss.axes[0], legend_colours(loss)["bn"], marker="o").get_ydata().max() < 1  # not an accuracy: no percent


def test_metric_vs_batch_size_errors(points):
    with pytest.raises(KeyError, match=r"points have no column\(s\) \['val_acc'\]"):
        figures.metric_vs_batch_size(points, y="val_acc")
    with pytest.raises(ValueError, match="must be positive"):
        figures.metric_vs_batch_size(points.assign(batch_size=0))
    with pytest.raises(ValueError, match="nothing to plot"):
        figures.metric_vs_batch_size(points.assign(test_acc_at_best_val=np.nan))
