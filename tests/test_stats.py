import numpy as np
import pytest
import torch

from normtest_lib.stats.channel import ChannelStats, channel_stats, transformed_stats


def _random_images(n=37, h=9, w=11, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, h, w), generator=gen, dtype=torch.uint8)


@pytest.mark.parametrize("chunk_size", [1, 5, 37, 1000])
def test_channel_stats_match_numpy(chunk_size):
    images = _random_images()
    stats = channel_stats(images, chunk_size=chunk_size)
    as_float = images.numpy().astype(np.float64) / 255.0
    np.testing.assert_allclose(stats.mean, as_float.mean(axis=(0, 2, 3)), rtol=0, atol=1e-12)
    np.testing.assert_allclose(stats.std, as_float.std(axis=(0, 2, 3)), rtol=0, atol=1e-12)
    assert stats.n_images == 37


def test_channels_are_not_mixed():
    images = torch.zeros(4, 3, 2, 2, dtype=torch.uint8)
    images[:, 0] = 255
    images[:, 2, 0] = 255
    stats = channel_stats(images)
    assert stats.mean == pytest.approx((1.0, 0.0, 0.5))
    assert stats.std == pytest.approx((0.0, 0.0, 0.5))


def test_transformed_stats_sees_the_transform():
    images = _random_images(seed=1)
    stats = transformed_stats(images, lambda x: x.double() * 2.0 + 1.0)
    raw = images.numpy().astype(np.float64) * 2.0 + 1.0
    np.testing.assert_allclose(stats.mean, raw.mean(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(stats.std, raw.std(axis=(0, 2, 3)), rtol=1e-12)


def test_bad_shapes_and_empty_inputs_are_errors():
    with pytest.raises(ValueError, match="N, 3, H, W"):
        channel_stats(torch.zeros(2, 1, 4, 4, dtype=torch.uint8))
    with pytest.raises(ValueError, match="zero images"):
        channel_stats(torch.zeros(0, 3, 4, 4, dtype=torch.uint8))


def test_stats_round_trip_through_dict():
    stats = ChannelStats((0.1, 0.2, 0.3), (0.4, 0.5, 0.6), 7)
    assert ChannelStats.from_dict(stats.to_dict()) == stats
    mean, std = stats.as_tensors()
    assert mean.shape == (1, 3, 1, 1) and std[0, 2, 0, 0].item() == pytest.approx(0.6)


def test_uint8_fast_path_equals_the_float64_sums():
    images = _random_images(n=50, seed=4)
    fast = channel_stats(images, chunk_size=7)
    slow = transformed_stats(images, lambda x: x.double() / 255.0, chunk_size=7)
    assert fast.mean == pytest.approx(slow.mean, abs=1e-12) and fast.std == pytest.approx(slow.std, abs=1e-12)
