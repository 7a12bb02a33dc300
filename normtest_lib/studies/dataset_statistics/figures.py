"""The data chapter's figures: the same images under each input setting, and pixel histograms.

Same conventions as :mod:`normtest_lib.report.plots`: each function returns a
matplotlib Figure made through pyplot, shows nothing and never selects a backend.
They draw images and channel statistics, never runs, so only the dataset
statistics chapter (``notebooks/dataset_statistics.ipynb``) uses them.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from ...report.findings import and_list
from ...input_norm import make_normalizer
from ...stats.channel import ChannelStats, channel_stats, level_counts
from ...stats.reference import IMAGENET

CHANNEL_COLOURS = {"R": "tab:red", "G": "tab:green", "B": "tab:blue"}
GALLERY_NOTE = "each image rescaled to [0, 1] on its own for display"


def display_range(batch: torch.Tensor) -> np.ndarray:
    """(N, 3, H, W) values to (N, H, W, 3) in [0, 1], each image rescaled by its own min and max.

    All three channels share one scale per image, so colour relations within an
    image survive; a constant image maps to 0.
    """
    flat = batch.detach().to(torch.float64).reshape(batch.shape[0], -1)
    low = flat.min(dim=1).values.view(-1, 1, 1, 1)
    span = (flat.max(dim=1).values.view(-1, 1, 1, 1) - low).clamp_min(1e-12)
    return ((batch.to(torch.float64) - low) / span).clamp(0, 1).permute(0, 2, 3, 1).numpy()


def normalization_gallery(
    images_by_dataset: Mapping[str, torch.Tensor],
    settings: Sequence[str],
    finetune_stats: Mapping[str, ChannelStats],
    pretrain_stats: ChannelStats = IMAGENET,
    data: str | None = None,
) -> Figure:
    """The same images under each setting: one row per setting, a group of columns per data set.

    ``images_by_dataset`` maps a name to the few uint8 images (N x 3 x H x W) to
    show; ``finetune_stats`` maps it to the statistics of its whole training
    split (what ``finetune`` standardizes with and ``center`` subtracts). For
    display every output is mapped to [0, 1] per image (:func:`display_range`);
    the figure's title says so, and so should any caption. ``data`` (``real
    data``, ``synthetic data``) starts the title.
    """
    columns = [(name, i) for name, images in images_by_dataset.items() for i in range(images.shape[0])]
    fig, axes = plt.subplots(
        len(settings), len(columns), figsize=(1.1 * len(columns) + 1.2, 1.15 * len(settings) + 0.6), squeeze=False, layout="constrained"
    )
    for row, setting in enumerate(settings):
        for name, images in images_by_dataset.items():
            normalize = make_normalizer(setting, finetune_stats=finetune_stats[name], pretrain_stats=pretrain_stats)
            shown = display_range(normalize(images))
            for i in range(images.shape[0]):
                ax = axes[row][columns.index((name, i))]
                ax.imshow(shown[i], interpolation="nearest")
                ax.set_xticks([])
                ax.set_yticks([])
                if row == 0 and i == 0:
                    ax.set_title(name, loc="left", fontsize="small")
        axes[row][0].set_ylabel(setting, rotation=0, ha="right", va="center")
    fig.suptitle(_titled(data, f"input normalization settings ({GALLERY_NOTE})"), fontsize="medium")
    return fig


# A displayed difference below one grey level of an 8-bit screen cannot be seen.
INVISIBLE = 1.0 / 255.0


def display_differences(
    images_by_dataset: Mapping[str, torch.Tensor],
    settings: Sequence[str],
    finetune_stats: Mapping[str, ChannelStats],
    pretrain_stats: ChannelStats = IMAGENET,
    reference: str = "unit",
) -> pd.Series:
    """Per setting: the largest difference, over every displayed pixel of every image, between how the gallery
    shows the images under that setting and under ``reference`` (both through :func:`display_range`).

    0 means the gallery shows the two settings identically; a setting that shifts or scales each channel
    by its own amount (``pretrain``, ``finetune``, ``center``) changes the colour balance, which the
    per-image display cannot undo, so its difference shows as a tint.
    """
    largest = {}
    for setting in settings:
        gaps = []
        for name, images in images_by_dataset.items():
            def shown(which: str) -> np.ndarray:
                normalize = make_normalizer(which, finetune_stats=finetune_stats[name], pretrain_stats=pretrain_stats)
                return display_range(normalize(images))

            gaps.append(float(np.abs(shown(setting) - shown(reference)).max()))
        largest[setting] = max(gaps) if gaps else float("nan")
    return pd.Series(largest, name=f"largest displayed difference to {reference}")


def gallery_sentence(differences: pd.Series, reference: str = "unit") -> str:
    """Which settings the gallery shows like ``reference`` and which it shows visibly different (tinted or
    re-contrasted), from :func:`display_differences`, with the largest difference of each group."""
    others = differences.drop(reference, errors="ignore")
    same = others[others < INVISIBLE]
    differ = others[others >= INVISIBLE]
    parts = []
    if len(same):
        parts.append(f"{_names(same.index)} {'looks' if len(same) == 1 else 'look'} exactly like `{reference}` "
                     f"(largest difference {same.max():.3f} of the display range)")
    if len(differ):
        parts.append(f"{_names(differ.index)} {'differs' if len(differ) == 1 else 'differ'} from it visibly "
                     f"({', '.join(f'`{name}` {value:.2f}' for name, value in differ.items())})")
    return "Displayed this way, " + "; ".join(parts) + "." if parts else ""


def _names(names: Sequence[str]) -> str:
    return and_list(names, quote=True)


# Settings that send every pixel through one function of its value per channel
# (input_norm.py). Their histograms are drawn level by level: binning the 256
# quantized levels into equal bins of another width would draw a comb (aliasing).
POINTWISE_SETTINGS = ("finetune", "pretrain", "center", "unit", "none")


def channel_densities(images: torch.Tensor, setting: str, normalize, bins: int, value_range: tuple[float, float]) -> pd.DataFrame:
    """Tidy (value, density, channel) of each channel of uint8 ``images`` after ``normalize``.

    A pointwise ``setting`` gets the exact density of each of the 256 levels
    (:func:`level_densities`); any other gets ``bins`` equal bins over
    ``value_range``. Either way the density integrates to 1 over the values.
    """
    if setting in POINTWISE_SETTINGS:
        return level_densities(level_counts(images), normalize)
    total = images.shape[0] * images.shape[2] * images.shape[3]
    low, high = value_range
    width = (high - low) / bins
    values = normalize(images).transpose(0, 1).reshape(3, -1)
    # histc (equal bins) is far faster than histogram with explicit edges.
    counts = torch.stack([torch.histc(channel, bins=bins, min=low, max=high) for channel in values])
    centres = low + width * (np.arange(bins) + 0.5)
    x, density = np.tile(centres, (3, 1)), (counts.to(torch.float64) / (total * width)).numpy()
    return _tidy_densities(x, density)


def level_densities(counts: torch.Tensor, normalize) -> pd.DataFrame:
    """Tidy (value, density, channel) from level counts (3, 256) through a pointwise ``normalize``.

    Each of the 256 levels is drawn where ``normalize`` sends it, with density
    count / (pixels x level spacing). Counts are all a pointwise setting's
    histogram needs, so a committed record draws it without its images.
    """
    counts = torch.as_tensor(counts, dtype=torch.float64)
    probe = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16).expand(1, 3, 16, 16).contiguous()
    level_values = normalize(probe).reshape(3, 256).to(torch.float64)
    spacing = (level_values[:, 1] - level_values[:, 0]).view(3, 1)
    total = counts.sum(dim=1, keepdim=True)
    return _tidy_densities(level_values.numpy(), (counts / (total * spacing)).numpy())


def _tidy_densities(x: np.ndarray, density: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"value": x.ravel(), "density": density.ravel(), "channel": np.repeat(list(CHANNEL_COLOURS), x.shape[1])})


def pixel_histograms(
    images_by_dataset: Mapping[str, torch.Tensor],
    setting: str = "unit",
    finetune_stats: Mapping[str, ChannelStats] | None = None,
    pretrain_stats: ChannelStats = IMAGENET,
    bins: int = 64,
    data: str | None = None,
) -> Figure:
    """Per-channel pixel histograms, one panel per data set, after ``setting``.

    ``images_by_dataset`` maps a name to uint8 images (a sample is plenty).
    ``finetune`` and ``center`` use ``finetune_stats[name]``, by default the
    statistics of the images given. Panels share their x axis, so the sets
    compare at a glance. ``data`` (``real data``, ``synthetic data``) is the
    figure's title.
    """
    normalizers = {}
    for name, images in images_by_dataset.items():
        own = None
        if setting in ("finetune", "center"):
            own = finetune_stats[name] if finetune_stats is not None else channel_stats(images)
        normalizers[name] = make_normalizer(setting, finetune_stats=own, pretrain_stats=pretrain_stats)
    value_range = (0.0, 1.0)
    if setting not in POINTWISE_SETTINGS:
        extremes = [normalizers[n](x).aminmax() for n, x in images_by_dataset.items()]
        value_range = (min(float(e.min) for e in extremes), max(float(e.max) for e in extremes))
    tidies = {
        name: channel_densities(images, setting, normalizers[name], bins, value_range)
        for name, images in images_by_dataset.items()
    }
    return _histogram_panels(tidies, setting, data)


def level_histograms(
    counts_by_dataset: Mapping[str, torch.Tensor],
    setting: str,
    finetune_stats: Mapping[str, ChannelStats],
    pretrain_stats: ChannelStats = IMAGENET,
    data: str | None = None,
) -> Figure:
    """:func:`pixel_histograms` from level counts (3, 256) per data set, for a pointwise ``setting``.

    What the book draws from committed records (``normtest_lib.stats.record``),
    whose images a fresh clone does not have. ``finetune_stats[name]`` is the
    set's own statistics (``finetune``, ``center``).
    """
    if setting not in POINTWISE_SETTINGS:
        raise ValueError(f"setting {setting!r} is not pointwise; level counts draw only {', '.join(POINTWISE_SETTINGS)}")
    tidies = {
        name: level_densities(
            counts, make_normalizer(setting, finetune_stats=finetune_stats.get(name), pretrain_stats=pretrain_stats)
        )
        for name, counts in counts_by_dataset.items()
    }
    return _histogram_panels(tidies, setting, data)


def _histogram_panels(tidies: Mapping[str, pd.DataFrame], setting: str, data: str | None) -> Figure:
    import seaborn as sns

    with sns.axes_style("whitegrid"):
        fig, axes = plt.subplots(
            1, len(tidies), figsize=(3.6 * len(tidies), 2.8 + (0.3 if data else 0)), sharex=True, squeeze=False,
            layout="constrained",
        )
        for ax, (name, tidy) in zip(axes[0], tidies.items()):
            sns.lineplot(data=tidy, x="value", y="density", hue="channel", palette=CHANNEL_COLOURS, ax=ax, errorbar=None)
            ax.set_title(name)
            ax.set_xlabel(f"pixel value after {setting}")
            if ax is not axes[0][-1] and ax.get_legend() is not None:
                ax.get_legend().remove()
        if data:
            fig.suptitle(_titled(data, f"pixel values after {setting}"), fontsize="medium")
    return fig


def _titled(data: str | None, title: str) -> str:
    """``title`` led by its data label (``Real data: ...``), so real and synthetic never look alike."""
    return f"{data[:1].upper()}{data[1:]}: {title}" if data else title
