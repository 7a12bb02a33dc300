"""The data chapter's figures (studies/dataset_statistics/figures.py): the settings' gallery and pixel histograms."""

import numpy as np
import pytest
import torch

from normtest_lib.input_norm import SETTINGS, make_normalizer
from normtest_lib.stats.channel import ChannelStats, channel_stats, level_counts
from normtest_lib.stats.normalized import normalized_stats
from normtest_lib.stats.reference import IMAGENET
from normtest_lib.studies.dataset_statistics import figures
from test_plots import close_figures, drawn_lines  # noqa: F401 (close_figures: autouse fixture)


def random_images(n: int, seed: int, low: int = 0, high: int = 256) -> torch.Tensor:
    return torch.randint(low, high, (n, 3, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def test_display_range_maps_each_image_to_zero_one():
    batch = torch.tensor([[[[-3.0, 1.0]], [[0.0, 5.0]], [[2.0, 2.0]]], [[[7.0, 7.0]], [[7.0, 7.0]], [[7.0, 7.0]]]])
    shown = figures.display_range(batch)
    assert shown.shape == (2, 1, 2, 3)
    assert shown[0].min() == 0 and shown[0].max() == 1
    assert shown[0, 0, 1, 1] == pytest.approx(1.0)  # channel G's 5 is the image's maximum
    assert (shown[1] == 0).all()  # a constant image


def test_gallery_has_one_row_per_setting_and_a_column_per_image():
    images = {"a": random_images(2, 0), "b": random_images(3, 1, 0, 100)}
    stats = {name: channel_stats(x) for name, x in images.items()}
    fig = figures.normalization_gallery(images, SETTINGS, finetune_stats=stats)
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
    tidy = figures.channel_densities(images, setting, normalize, 200, (float(values.min()), float(values.max())))
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
        fig = figures.pixel_histograms(images, setting)
        assert len(fig.axes) == 3
        for ax in fig.axes:
            assert len(drawn_lines(ax)) == 3
            assert "after " + setting in ax.get_xlabel()


@pytest.mark.parametrize("setting", ["unit", "pretrain", "finetune"])
def test_level_histograms_draw_from_counts_what_pixel_histograms_draw_from_pixels(setting):
    images = {"a": random_images(20, 6), "b": random_images(20, 7, 30, 220)}
    own = {name: channel_stats(x) for name, x in images.items()}
    from_pixels = figures.pixel_histograms(images, setting, finetune_stats=own)
    from_counts = figures.level_histograms({n: level_counts(x) for n, x in images.items()}, setting, own, data="real data")
    assert from_counts._suptitle.get_text() == f"Real data: pixel values after {setting}"
    assert len(from_counts.axes) == 2
    for ax_pixels, ax_counts in zip(from_pixels.axes, from_counts.axes):
        assert len(drawn_lines(ax_counts)) == len(drawn_lines(ax_pixels)) == 3
        for line_pixels, line_counts in zip(drawn_lines(ax_pixels), drawn_lines(ax_counts)):
            np.testing.assert_allclose(line_counts.get_xydata(), line_pixels.get_xydata())
    with pytest.raises(ValueError, match="not pointwise"):
        figures.level_histograms({"a": level_counts(images["a"])}, "instance", own)


def test_figure_titles_say_which_data_they_show():
    images = {"a": random_images(2, 8)}
    stats = {"a": channel_stats(images["a"])}
    gallery = figures.normalization_gallery(images, ["unit"], finetune_stats=stats, data="synthetic data")
    assert gallery._suptitle.get_text().startswith("Synthetic data: input normalization settings")
    histograms = figures.pixel_histograms(images, "unit", data="synthetic data")
    assert histograms._suptitle.get_text() == "Synthetic data: pixel values after unit"


def test_display_differences_tell_a_tint_from_a_uniform_rescale():
    images = {"a": random_images(3, 9, 20, 230)}
    stats = {"a": channel_stats(images["a"])}
    differences = figures.display_differences(images, ["unit", "none", "pretrain", "center", "minmax"], stats)
    # `none` is `unit` times 255 on every channel alike: rescaled per image they display identically.
    assert differences["unit"] == 0.0 and differences["none"] < 1e-6
    # `pretrain` shifts and scales each channel by its own amount: the displayed colours change.
    assert differences["pretrain"] > 0.05 and differences["center"] > figures.INVISIBLE
    sentence = figures.gallery_sentence(differences)
    assert "`none` looks exactly like `unit`" in sentence
    assert f"`pretrain` {differences['pretrain']:.2f}" in sentence and "differ from it visibly" in sentence
    # A per-channel shift that happens to be equal on every channel is no tint: it displays as `unit` does.
    grey = ChannelStats((0.5,) * 3, (0.25,) * 3)
    assert figures.display_differences(images, ["pretrain"], stats, pretrain_stats=grey)["pretrain"] < 1e-6
