"""The readers on the real archives in ../shared/data: counts, classes, sizes, statistics, cache.

The published statistics (../shared/data/README.md) are in RGB order, so a
reader that returned BGR (the earlier work's Tiny ImageNet bug) fails them.
Each data set is decoded once per session (conftest's session fixtures); the
cache tests load it a second time with the decoder disabled.
"""

from __future__ import annotations

import pytest
import torch

from normtest_lib.data import decode, load_dataset
from normtest_lib.stats.channel import channel_stats

pytestmark = pytest.mark.realdata

STATS_TOLERANCE = 5e-4


def _assert_stats(images: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
    stats = channel_stats(images)
    assert stats.mean == pytest.approx(mean, abs=STATS_TOLERANCE)
    assert stats.std == pytest.approx(std, abs=STATS_TOLERANCE)


def _forbid_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args, **kwargs):
        raise AssertionError("images were decoded again instead of read from the cache")

    monkeypatch.setattr(decode, "decode_bytes", fail)


def test_cifar10_jpeg_reads_as_an_image_folder(cifar10_jpeg):
    assert cifar10_jpeg.classes == (
        "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
    )  # fmt: skip
    assert cifar10_jpeg.native_size == (32, 32)
    assert tuple(cifar10_jpeg.train.images.shape) == (50_000, 3, 32, 32)
    assert tuple(cifar10_jpeg.test.images.shape) == (10_000, 3, 32, 32)
    assert torch.bincount(cifar10_jpeg.train.labels).tolist() == [5_000] * 10
    assert torch.bincount(cifar10_jpeg.test.labels).tolist() == [1_000] * 10


def test_cifar10_jpeg_statistics_match_the_published_ones(cifar10_jpeg):
    _assert_stats(cifar10_jpeg.train.images, (0.4913, 0.4821, 0.4465), (0.2454, 0.2429, 0.2607))


def test_cifar10_jpeg_second_load_comes_from_the_cache(cifar10_jpeg, cifar10_jpeg_root, monkeypatch):
    _forbid_decoding(monkeypatch)
    again = load_dataset("imagefolder", cifar10_jpeg_root)
    assert again.extra["cache"] == "hit"
    assert torch.equal(again.train.images, cifar10_jpeg.train.images)
    assert torch.equal(again.test.labels, cifar10_jpeg.test.labels)


def test_tiny_imagenet_counts_sizes_and_class_names(tiny_imagenet):
    assert tiny_imagenet.num_classes == 200
    assert tiny_imagenet.native_size == (64, 64)
    assert tuple(tiny_imagenet.train.images.shape) == (100_000, 3, 64, 64)
    assert tuple(tiny_imagenet.test.images.shape) == (10_000, 3, 64, 64)
    assert torch.bincount(tiny_imagenet.train.labels).tolist() == [500] * 200
    assert torch.bincount(tiny_imagenet.test.labels).tolist() == [50] * 200
    wnids = tiny_imagenet.extra["wnids"]
    assert wnids == sorted(wnids)
    assert tiny_imagenet.classes[wnids.index("n01443537")] == "goldfish, Carassius auratus"


def test_tiny_imagenet_statistics_match_the_published_ones_in_rgb(tiny_imagenet):
    _assert_stats(tiny_imagenet.train.images, (0.4802, 0.4481, 0.3975), (0.2764, 0.2689, 0.2816))


def test_tiny_imagenet_val_labels_follow_the_annotations(tiny_imagenet, tiny_imagenet_root):
    wnids = tiny_imagenet.extra["wnids"]
    first_lines = (tiny_imagenet_root / "val" / "val_annotations.txt").read_text().splitlines()[:3]
    for index, line in enumerate(first_lines):
        assert tiny_imagenet.test.labels[index].item() == wnids.index(line.split("\t")[1])


def test_tiny_imagenet_second_load_comes_from_the_cache(tiny_imagenet, tiny_imagenet_root, monkeypatch):
    _forbid_decoding(monkeypatch)
    again = load_dataset("tiny_imagenet_200", tiny_imagenet_root)
    assert again.extra["cache"] == "hit"
    assert torch.equal(again.train.images, tiny_imagenet.train.images)
    assert torch.equal(again.test.labels, tiny_imagenet.test.labels)
