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
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import RunConfig
from ..data import Split, load_dataset
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


def prepare_data(config: RunConfig) -> PreparedData:
    """Load ``config.dataset`` and cut it as described in the module docstring."""
    dataset = load_dataset(config.dataset, config.data_root, download=config.download)
    full = dataset.train
    val = None
    pool = full
    if config.val_fraction > 0:
        keep, held = stratified_split(full.labels, config.val_fraction, generator(config.seed, "val_split"))
        if held.numel() == 0 or keep.numel() == 0:
            raise ConfigError(
                f"val_fraction: {config.val_fraction} of {len(full)} training images leaves "
                f"{held.numel()} for validation and {keep.numel()} for training; choose a fraction that leaves both"
            )
        pool, val = full.subset(keep), full.subset(held)

    train = pool
    if config.train_subset is not None:
        if config.train_subset > len(pool):
            raise ConfigError(
                f"train_subset: {config.train_subset} images requested, but {config.dataset!r} has only "
                f"{len(pool)} training images after holding out the validation split"
            )
        train = pool.subset(stratified_select(pool.labels, config.train_subset, generator(config.seed, "train_subset")))

    stats_images = train.images
    if config.stats_subset is not None:
        if config.stats_subset > len(train):
            raise ConfigError(
                f"stats_subset: statistics from {config.stats_subset} images requested, "
                f"but the run trains on only {len(train)} images"
            )
        index = stratified_select(train.labels, config.stats_subset, generator(config.seed, "stats_subset"))
        stats_images = train.images[index]

    return PreparedData(
        dataset=config.dataset,
        train=train,
        val=val,
        test=dataset.test,
        num_classes=dataset.num_classes,
        native_size=tuple(dataset.native_size),
        finetune_stats=channel_stats(stats_images),
    )

