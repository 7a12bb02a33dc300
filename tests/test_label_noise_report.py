"""Study 3's tables and figures, on fabricated runs whose numbers are known."""

import matplotlib

matplotlib.use("Agg")

import pandas as pd
import pytest

from normtest_lib.report import label_noise as report
from normtest_lib.report.published import published_results
from normtest_lib.report.tables import check_only_seeds_vary


def _runs() -> pd.DataFrame:
    rows = []
    for conv, norm, base in (("conv", "torch_bn", 0.90), ("convnorm:1000", "none", 0.80), ("convnorm", "torch_bn", 0.85)):
        for noise in (0.0, 0.2):
            for seed in (0, 1, 2):
                rows.append({"conv_layer": conv, "norm_layer": norm, "label_noise": noise, "seed": seed, "noise_seed": seed,
                             "status": "complete", "acc": base - noise / 2 + 0.01 * seed})  # fmt: skip
    return report.add_variant(pd.DataFrame(rows))


def test_variants_are_named_from_the_two_layer_parameters():
    assert report.variant_label("conv", "torch_bn") == "bn"
    assert report.variant_label("convnorm:1000", "none") == "convnorm"  # the decay length is not a variant
    assert report.variant_label("convnorm", "torch_bn") == "convnorm+bn"
    assert report.variant_label("conv", "gn") == "conv + gn"
    with pytest.raises(KeyError, match="conv_layer"):
        report.add_variant(pd.DataFrame({"norm_layer": ["none"]}))


def test_accuracy_by_noise_shows_mean_std_per_level_and_the_published_values():
    runs = _runs()
    published = report.published_by_variant(published_results("convnorm_label_noise"))
    table = report.accuracy_by_noise(runs, "acc", published).data
    # bn at 20 % noise: 0.80, 0.81, 0.82 -> 81.0 ± 1.0 (n=3)
    assert table.loc["bn", ("ours", "20 % noise")] == "81.0 ± 1.0 (n=3)"
    assert table.loc["bn", ("published", "0 % noise")] == "94.5"
    assert table.loc["convnorm", ("published", "20 % noise")] == "≈63.0"  # "about" values are marked
    assert list(table.index) == ["bn", "convnorm", "convnorm+bn"]


def test_noise_seeds_pool_like_seeds_but_other_params_do_not():
    runs = _runs().assign(lr=0.1)
    runs.attrs["param_columns"] = ["conv_layer", "norm_layer", "label_noise", "lr", "noise_seed", "seed"]
    check_only_seeds_vary(runs, ["variant", "label_noise"])  # seed and noise_seed vary together: replicates
    runs.loc[0, "lr"] = 0.2
    with pytest.raises(ValueError, match="lr"):
        check_only_seeds_vary(runs, ["variant", "label_noise"])


def test_memorization_curves_draw_a_panel_per_noise_level_above_zero():
    probes = []
    for variant_conv, norm in (("conv", "torch_bn"), ("convnorm", "none")):
        for noise in (0.0, 0.1, 0.2):
            for seed in (0, 1):
                for epoch in (1, 2, 3):
                    for name, value in (("flipped_fit_noisy", 0.1 * epoch), ("flipped_fit_true", 0.5), ("clean_acc", 0.9)):
                        probes.append({"conv_layer": variant_conv, "norm_layer": norm, "label_noise": noise, "seed": seed,
                                       "epoch": epoch, "probe": "memorization", "name": name, "value": value})  # fmt: skip
    fig = report.memorization_curves(report.add_variant(pd.DataFrame(probes)))
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["10 % noise", "20 % noise"]
    noisy_line = fig.axes[0].lines[0]
    assert list(noisy_line.get_ydata()) == pytest.approx([10.0, 20.0, 30.0])  # percent, mean over seeds
    with pytest.raises(ValueError, match="memorization"):
        report.memorization_curves(report.add_variant(pd.DataFrame(probes)).assign(label_noise=0.0))


def test_noise_levels_read_as_percent_in_tables_and_the_stability_window_scales_with_the_run():
    frame = pd.DataFrame({"mean": [1.0]}, index=pd.MultiIndex.from_tuples([("convnorm", 0.2)], names=["variant", "label_noise"]))
    assert list(report.by_noise_level(frame).index) == [("convnorm", "20 %")]
    assert report.by_noise_level(frame).index.names == ["variant", "label noise"]
    assert report.stability_window(100) == 10 and report.stability_window(10) == 3 and report.stability_window(4) == 2
