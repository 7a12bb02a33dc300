import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure

from normtest_lib.report import plots
from normtest_lib.report.colours import FIXED
from normtest_lib.input_norm import SETTINGS, make_normalizer
from normtest_lib.stats.normalized import normalized_stats
from normtest_lib.stats.reference import IMAGENET
from normtest_lib.stats.channel import channel_stats, level_counts


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def drawn_lines(ax):
    """Lines with data (seaborn also adds empty lines that only serve as legend handles)."""
    return [line for line in ax.get_lines() if len(line.get_xdata())]


def random_images(n: int, seed: int, low: int = 0, high: int = 256) -> torch.Tensor:
    return torch.randint(low, high, (n, 3, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


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


def test_display_range_maps_each_image_to_zero_one():
    batch = torch.tensor([[[[-3.0, 1.0]], [[0.0, 5.0]], [[2.0, 2.0]]], [[[7.0, 7.0]], [[7.0, 7.0]], [[7.0, 7.0]]]])
    shown = plots.display_range(batch)
    assert shown.shape == (2, 1, 2, 3)
    assert shown[0].min() == 0 and shown[0].max() == 1
    assert shown[0, 0, 1, 1] == pytest.approx(1.0)  # channel G's 5 is the image's maximum
    assert (shown[1] == 0).all()  # a constant image


def test_gallery_has_one_row_per_setting_and_a_column_per_image():
    images = {"a": random_images(2, 0), "b": random_images(3, 1, 0, 100)}
    stats = {name: channel_stats(x) for name, x in images.items()}
    fig = plots.normalization_gallery(images, SETTINGS, finetune_stats=stats)
    assert len(fig.axes) == len(SETTINGS) * 5
    for ax in fig.axes:
        (image,) = ax.get_images()
        data = np.asarray(image.get_array())
        assert data.shape == (8, 8, 3) and data.min() >= 0 and data.max() <= 1
    assert "rescaled to [0, 1]" in fig._suptitle.get_text()
    # Row "none", first image: raw pixels rescaled on their own equal that image's min-max view.
    raw = images["a"][0].double()
    expected = ((raw - raw.min()) / (raw.max() - raw.min())).permute(1, 2, 0).numpy()
    none_row = SETTINGS.index("none")
    np.testing.assert_allclose(np.asarray(fig.axes[none_row * 5].get_images()[0].get_array()), expected)


@pytest.mark.parametrize("setting", ["unit", "pretrain", "finetune", "center", "instance", "minmax"])
def test_channel_densities_integrate_to_one_with_the_right_mean(setting):
    images = random_images(50, 2, 20, 200)
    normalize = make_normalizer(setting, finetune_stats=channel_stats(images), pretrain_stats=IMAGENET)
    values = normalize(images)
    tidy = plots.channel_densities(images, setting, normalize, 200, (float(values.min()), float(values.max())))
    expected = normalized_stats(images, setting, pretrain_stats=IMAGENET)
    for c, channel in enumerate("RGB"):
        part = tidy[tidy["channel"] == channel]
        spacing = np.diff(part["value"].to_numpy()).mean()
        assert (part["density"] * spacing).sum() == pytest.approx(1.0, abs=1e-3)
        mean = (part["value"] * part["density"] * spacing).sum()
        # Exact for pointwise settings (level by level); within half a bin for binned ones.
        assert mean == pytest.approx(expected.mean[c], abs=spacing)


def test_pixel_histograms_one_panel_per_data_set_three_channel_lines():
    images = {"a": random_images(20, 3), "b": random_images(20, 4, 50, 150), "c": random_images(20, 5)}
    for setting in ("unit", "instance"):
        fig = plots.pixel_histograms(images, setting)
        assert len(fig.axes) == 3
        for ax in fig.axes:
            assert len(drawn_lines(ax)) == 3
            assert "after " + setting in ax.get_xlabel()


@pytest.mark.parametrize("setting", ["unit", "pretrain", "finetune"])
def test_level_histograms_draw_from_counts_what_pixel_histograms_draw_from_pixels(setting):
    images = {"a": random_images(20, 6), "b": random_images(20, 7, 30, 220)}
    own = {name: channel_stats(x) for name, x in images.items()}
    from_pixels = plots.pixel_histograms(images, setting, finetune_stats=own)
    from_counts = plots.level_histograms({n: level_counts(x) for n, x in images.items()}, setting, own, data="real data")
    assert from_counts._suptitle.get_text() == f"Real data: pixel values after {setting}"
    assert len(from_counts.axes) == 2
    for ax_pixels, ax_counts in zip(from_pixels.axes, from_counts.axes):
        assert len(drawn_lines(ax_counts)) == len(drawn_lines(ax_pixels)) == 3
        for line_pixels, line_counts in zip(drawn_lines(ax_pixels), drawn_lines(ax_counts)):
            np.testing.assert_allclose(line_counts.get_xydata(), line_pixels.get_xydata())
    with pytest.raises(ValueError, match="not pointwise"):
        plots.level_histograms({"a": level_counts(images["a"])}, "instance", own)


def test_figure_titles_say_which_data_they_show():
    images = {"a": random_images(2, 8)}
    stats = {"a": channel_stats(images["a"])}
    gallery = plots.normalization_gallery(images, ["unit"], finetune_stats=stats, data="synthetic data")
    assert gallery._suptitle.get_text().startswith("Synthetic data: input normalization settings")
    histograms = plots.pixel_histograms(images, "unit", data="synthetic data")
    assert histograms._suptitle.get_text() == "Synthetic data: pixel values after unit"
