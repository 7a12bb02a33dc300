import torch

from normtest_lib.data import load_dataset
from normtest_lib.data.synthetic import CLASSES, DOMAINS, generate_split, load_synthetic
from normtest_lib.stats.channel import channel_stats


def test_generation_is_deterministic_and_seed_dependent():
    a = generate_split(64, "source", "train", seed=0)
    b = generate_split(64, "source", "train", seed=0)
    c = generate_split(64, "source", "train", seed=1)
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    assert not torch.equal(a.images, c.images)


def test_splits_and_domains_do_not_share_images():
    train = generate_split(64, "source", "train")
    test = generate_split(64, "source", "test")
    dim = generate_split(64, "dim", "train")
    assert not torch.equal(train.images, test.images)
    assert not torch.equal(train.labels, dim.labels) or not torch.equal(train.images, dim.images)


def test_dataset_is_balanced_and_shaped_like_cifar():
    data = load_dataset("synthetic")
    assert data.train.images.shape[1:] == (3, 32, 32) and data.num_classes == len(CLASSES) == 10
    counts = torch.bincount(data.train.labels, minlength=10)
    assert counts.max() - counts.min() <= 1
    assert data.source == "generated"


def test_domains_hit_their_design_statistics():
    for domain, target in DOMAINS.items():
        stats = channel_stats(generate_split(2000, domain, "train").images)
        for got, want in zip(stats.mean, target.mean):
            assert abs(got - want) < 0.02, (domain, stats.mean, target.mean)
        for got, want in zip(stats.std, target.std):
            assert abs(got - want) < 0.02, (domain, stats.std, target.std)


def test_target_domains_differ_from_the_source_by_design():
    source = channel_stats(generate_split(1000, "source", "train").images)
    for domain in ("dim", "lowcontrast", "tinted"):
        target = channel_stats(generate_split(1000, domain, "train").images)
        shift = max(abs(a - b) for a, b in zip(source.mean + source.std, target.mean + target.std))
        assert shift > 0.1, domain


def test_the_registered_synthetic_sets_are_generated_once_then_read_from_the_cache(tmp_path, monkeypatch):
    from normtest_lib.data import load_dataset

    monkeypatch.setenv("NORMTEST_CACHE_DIR", str(tmp_path))
    first = load_dataset("synthetic-dim")
    second = load_dataset("synthetic-dim")
    assert (first.extra["cache"], second.extra["cache"]) == ("miss", "hit")
    assert torch.equal(first.train.images, second.train.images) and torch.equal(first.test.labels, second.test.labels)
    assert torch.equal(second.train.images, load_synthetic("dim").train.images)  # the cache holds what the generator makes
