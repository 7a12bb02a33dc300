"""From a config to the run's data: validation hold-out, training subset, fine-tuning statistics.

Order of selection, each stratified and drawn from its own seeded stream:

1. ``val_fraction`` of the official training split is held out for model
   selection (``round(val_fraction * N)`` images). The hold-out depends on the
   seed only, so runs that differ in other settings but share a seed are
   compared on the same validation images, and the validation set does not
   change when ``train_subset`` does.
2. ``train_subset`` images are kept of the rest (all of it when None).
3. ``stats_subset`` images of those give the ``finetune`` statistics (all
   training images when None). Validation and test images never enter them.

Label noise (``label_noise`` > 0, :mod:`normtest_lib.data.label_noise`) is drawn
over the whole official training split, keyed by each image's index in it and
seeded by ``noise_seed`` alone, then the training split takes its images' noisy
labels (the validation split too with ``noisy_val``; the test split never). All
selections above stratify on the original labels, so a noisy run holds out,
trains on and takes its statistics from exactly the images of the clean run
with the same seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..config import RunConfig
from ..data import Split, load_dataset
from ..data.label_noise import check_asymmetric_classes, flip_rate, noisy_labels
from ..errors import ConfigError
from ..stats.channel import ChannelStats, channel_stats
from .seeding import generator
from .splits import stratified_select, stratified_split


@dataclass(frozen=True)
class PreparedData:
    """The splits a run trains, selects and reports on, on the CPU."""

    dataset: str
    train: Split
    val: Split | None
    test: Split
    num_classes: int
    native_size: tuple[int, int]
    finetune_stats: ChannelStats
    # Each training (validation) image's index in the official training split as loaded.
    train_index: torch.Tensor | None = None
    val_index: torch.Tensor | None = None
    # The labels before label noise; None when the split's labels are the originals.
    train_labels_original: torch.Tensor | None = None
    val_labels_original: torch.Tensor | None = None

    @property
    def noise_rate_actual(self) -> float:
        """The fraction of the training split's labels that differ from the originals."""
        if self.train_labels_original is None:
            return 0.0
        return flip_rate(self.train_labels_original, self.train.labels)

    @property
    def noise_rate_actual_val(self) -> float | None:
        """The same for the validation split (0.0 unless ``noisy_val``; None without one)."""
        if self.val is None:
            return None
        if self.val_labels_original is None:
            return 0.0
        return flip_rate(self.val_labels_original, self.val.labels)


def prepare_data(config: RunConfig) -> PreparedData:
    """Load ``config.dataset`` and cut it as described in the module docstring."""
    dataset = load_dataset(config.dataset, config.data_root, download=config.download)
    full = dataset.train
    clean_labels = full.labels
    noisy = _noisy_training_labels(config, clean_labels, dataset.classes)
    val_index = None
    pool_index = torch.arange(len(full))
    if config.val_fraction > 0:
        keep, held = stratified_split(clean_labels, config.val_fraction, generator(config.seed, "val_split"))
        if held.numel() == 0 or keep.numel() == 0:
            raise ConfigError(
                f"val_fraction: {config.val_fraction} of {len(full)} training images leaves "
                f"{held.numel()} for validation and {keep.numel()} for training; choose a fraction that leaves both"
            )
        pool_index, val_index = keep, held

    train_index = pool_index
    if config.train_subset is not None:
        if config.train_subset > len(pool_index):
            raise ConfigError(
                f"train_subset: {config.train_subset} images requested, but {config.dataset!r} has only "
                f"{len(pool_index)} training images after holding out the validation split"
            )
        gen = generator(config.seed, "train_subset")
        train_index = pool_index[stratified_select(clean_labels[pool_index], config.train_subset, gen)]

    # Without a hold-out or a subset the run trains on the whole split: no copy of its images.
    train = full if val_index is None and config.train_subset is None else full.subset(train_index)
    val = full.subset(val_index) if val_index is not None else None
    train_original = val_original = None
    if noisy is not None:
        train_original = train.labels
        train = Split(train.images, noisy[train_index])
        if val is not None and config.noisy_val:
            val_original = val.labels
            val = Split(val.images, noisy[val_index])

    stats_images = train.images
    if config.stats_subset is not None:
        if config.stats_subset > len(train):
            raise ConfigError(
                f"stats_subset: statistics from {config.stats_subset} images requested, "
                f"but the run trains on only {len(train)} images"
            )
        gen = generator(config.seed, "stats_subset")
        stats_images = train.images[stratified_select(clean_labels[train_index], config.stats_subset, gen)]

    return PreparedData(
        dataset=config.dataset,
        train=train,
        val=val,
        test=dataset.test,
        num_classes=dataset.num_classes,
        native_size=tuple(dataset.native_size),
        finetune_stats=channel_stats(stats_images),
        train_index=train_index,
        val_index=val_index,
        train_labels_original=train_original,
        val_labels_original=val_original,
    )


def _noisy_training_labels(config: RunConfig, labels: torch.Tensor, classes: tuple[str, ...]) -> torch.Tensor | None:
    """The whole official training split's labels after ``config``'s label noise; None without noise.

    The asymmetric map is checked against the loaded class names here: the run
    schema can only check data sets whose names are known before loading.
    """
    if config.label_noise == 0:
        return None
    if config.label_noise_kind == "asymmetric":
        try:
            check_asymmetric_classes(classes, config.dataset)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    return noisy_labels(labels, classes, config.label_noise, config.label_noise_kind, config.noise_seed)

