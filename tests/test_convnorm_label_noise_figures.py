"""Study 3's figures (studies/convnorm_label_noise/figures.py): memorization curves and accuracy against noise."""

import matplotlib

matplotlib.use("Agg")

import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from normtest_lib.studies.convnorm_label_noise import figures  # noqa: E402
from normtest_lib.studies.convnorm_label_noise.analysis import add_variant  # noqa: E402
from test_findings import METRIC, noise_runs  # noqa: E402
from test_plots import close_figures  # noqa: E402, F401 (autouse fixture)


def test_memorization_curves_draw_a_panel_per_noise_level_above_zero():
    probes = []
    for variant_conv, norm in (("conv", "torch_bn"), ("convnorm", "none")):
        for noise in (0.0, 0.1, 0.2):
            for seed in (0, 1):
                for epoch in (1, 2, 3):
                    for name, value in (("flipped_fit_noisy", 0.1 * epoch), ("flipped_fit_true", 0.5), ("clean_acc", 0.9)):
                        probes.append({"conv_layer": variant_conv, "norm_layer": norm, "label_noise": noise, "seed": seed,
                                       "epoch": epoch, "probe": "memorization", "name": name, "value": value})  # fmt: skip
    fig = figures.memorization_curves(add_variant(pd.DataFrame(probes)))
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["10 % noise", "20 % noise"]
    noisy_line = fig.axes[0].lines[0]
    assert list(noisy_line.get_ydata()) == pytest.approx([10.0, 20.0, 30.0])  # percent, mean over seeds
    with pytest.raises(ValueError, match="memorization"):
        figures.memorization_curves(add_variant(pd.DataFrame(probes)).assign(label_noise=0.0))


def test_accuracy_vs_noise_names_each_variant_with_its_runs_per_level():
    fig = figures.accuracy_vs_noise(noise_runs(), METRIC, title="t", order=["bn", "convnorm"])
    assert fig.axes[0].get_legend() is None  # the legend sits outside the axes, where it hides no error bar
    legend = [text.get_text() for text in fig.legends[0].get_texts()]
    assert legend == ["bn (n=3 per level)", "convnorm (n=3 per level)"]


def test_accuracy_vs_noise_says_which_levels_a_variant_has_no_run_at_yet():
    runs = noise_runs()
    partial = runs[~((runs["variant"] == "convnorm") & (runs["label_noise"].astype(float) == 0.2))]
    assert len(partial) < len(runs)  # the fixture has convnorm runs at 20 %
    fig = figures.accuracy_vs_noise(partial, METRIC, title="t", order=["bn", "convnorm"])
    legend = [text.get_text() for text in fig.legends[0].get_texts()]
    assert legend == ["bn (n=3 per level)", "convnorm (n=3 per level; none yet at 20 %)"]
