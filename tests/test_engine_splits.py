"""Stratified, seeded selections and the data preparation built on them."""

import pytest
import torch

from normtest_lib.config import make_config
from normtest_lib.data.synthetic import load_synthetic
from normtest_lib.engine import prepare
from normtest_lib.engine.prepare import prepare_data
from normtest_lib.engine.seeding import derive_seed, generator
from normtest_lib.engine.splits import stratified_counts, stratified_select, stratified_split
from normtest_lib.errors import ConfigError
from normtest_lib.stats.channel import channel_stats


def unbalanced_labels():
    # 5 classes of sizes 100, 50, 30, 13, 7, shuffled.
    labels = torch.cat([torch.full((n,), c) for c, n in enumerate([100, 50, 30, 13, 7])])
    return labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))]


def test_counts_are_proportional_and_sum_exactly():
    counts = torch.tensor([100, 50, 30, 13, 7])
    for total in (0, 1, 7, 20, 99, 200):
        quota = stratified_counts(counts, total)
        assert int(quota.sum()) == total
        assert (quota <= counts).all()
        exact = counts * total / counts.sum()
        assert ((quota - exact).abs() < 1).all()  # each class within one image of its share
    assert stratified_counts(counts, 20).tolist() == [10, 5, 3, 1, 1]


def test_split_is_stratified_disjoint_complete_and_seeded():
    labels = unbalanced_labels()
    keep, held = stratified_split(labels, 0.2, generator(7, "val"))
    assert len(held) == 40 and len(keep) == 160
    assert not set(keep.tolist()) & set(held.tolist())
    assert sorted(keep.tolist() + held.tolist()) == list(range(200))
    assert torch.bincount(labels[held], minlength=5).tolist() == [20, 10, 6, 3, 1]
    again_keep, again_held = stratified_split(labels, 0.2, generator(7, "val"))
    assert torch.equal(held, again_held) and torch.equal(keep, again_keep)
    _, other = stratified_split(labels, 0.2, generator(8, "val"))
    assert not torch.equal(held, other)


def test_selection_takes_the_front_of_one_seeded_order():
    labels = unbalanced_labels()
    small = stratified_select(labels, 20, generator(1, "subset"))
    large = stratified_select(labels, 100, generator(1, "subset"))
    assert set(small.tolist()) <= set(large.tolist())
    assert torch.bincount(labels[large], minlength=5).tolist() == [50, 25, 15, 7, 3]


def test_derived_seeds_are_stable_and_distinct():
    assert derive_seed(0, "epoch", 3) == derive_seed(0, "epoch", 3)
    assert len({derive_seed(0, "epoch", e) for e in range(100)}) == 100
    assert derive_seed(0, "val_split") != derive_seed(1, "val_split")


@pytest.fixture
def small_synthetic(monkeypatch):
    dataset = load_synthetic(n_train=400, n_test=100)
    monkeypatch.setattr(prepare, "load_dataset", lambda name, root=None, download=False: dataset)
    return dataset


def test_prepare_holds_out_validation_then_subsets_training(small_synthetic):
    config = make_config(val_fraction=0.25, train_subset=150, stats_subset=50, seed=3)
    data = prepare_data(config)
    assert len(data.val) == 100 and len(data.train) == 150 and len(data.test) == 100
    assert torch.bincount(data.val.labels, minlength=10).tolist() == [10] * 10
    assert torch.bincount(data.train.labels, minlength=10).tolist() == [15] * 10
    # Validation images are never training images (rows of the uint8 tensor compared).
    train_rows = {bytes(image.numpy().tobytes()) for image in data.train.images}
    assert not any(bytes(image.numpy().tobytes()) in train_rows for image in data.val.images)
    # The finetune statistics come from 50 of the training images, not from val or test.
    assert data.finetune_stats.n_images == 50
    assert data.finetune_stats != channel_stats(data.train.images)
    index = stratified_select(data.train.labels, 50, generator(3, "stats_subset"))
    assert data.finetune_stats == channel_stats(data.train.images[index])
    # The validation split does not depend on the training subset size.
    assert torch.equal(prepare_data(make_config(val_fraction=0.25, seed=3)).val.images, data.val.images)


def test_prepare_without_validation_keeps_all_training_images(small_synthetic):
    data = prepare_data(make_config(val_fraction=0.0))
    assert data.val is None and len(data.train) == 400
    assert data.finetune_stats == channel_stats(small_synthetic.train.images)


def test_prepare_rejects_subsets_larger_than_the_data(small_synthetic):
    with pytest.raises(ConfigError, match="train_subset: 1000 images requested"):
        prepare_data(make_config(train_subset=1000))
    with pytest.raises(ConfigError, match="stats_subset"):
        prepare_data(make_config(train_subset=100, stats_subset=101))


def test_tiny_validation_fraction_is_refused(monkeypatch):
    tiny = load_synthetic(n_train=20, n_test=10)
    monkeypatch.setattr(prepare, "load_dataset", lambda name, root=None, download=False: tiny)
    with pytest.raises(ConfigError, match="val_fraction"):
        prepare_data(make_config(val_fraction=0.01))

