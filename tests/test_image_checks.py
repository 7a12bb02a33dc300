"""The per-image checks a statistics record carries, on tiny hand-made images."""

from __future__ import annotations

import math

import pytest
import torch

from normtest_lib.stats.channel import ChannelStats
from normtest_lib.stats.image_checks import ImageChecks, compute_image_checks
from normtest_lib.stats.reference import IMAGENET


def images(red, green, blue) -> torch.Tensor:
    """One 2x2 image per entry; each channel given as its four pixel values."""
    return torch.tensor([[r, g, b] for r, g, b in zip(red, green, blue)], dtype=torch.uint8).view(-1, 3, 2, 2)


# Channels that differ: red all 255, green all 0, blue half 0 half 255 (mean 0.5, std 0.5).
DISTINCT = images([[255] * 4], [[0] * 4], [[0, 255, 0, 255]])


def test_unit_and_minmax_agree_on_images_spanning_the_full_range():
    full = [[0, 255, 0, 255], [255, 0, 10, 0]]
    checks = compute_image_checks(images(full, full, full), IMAGENET, chunk_size=1)
    assert checks.n_images == 2 and checks.spanning_full_range == 2
    assert checks.mean_channel_range == pytest.approx(1.0)
    assert checks.mean_abs_unit_minus_minmax == pytest.approx(0.0, abs=1e-7)


def test_unit_and_minmax_differ_on_a_narrow_range():
    narrow = [[51, 102, 51, 102]]  # 0.2 and 0.4: min-max maps them to 0 and 1
    checks = compute_image_checks(images(narrow, narrow, narrow), IMAGENET)
    assert checks.spanning_full_range == 0
    assert checks.mean_channel_range == pytest.approx(0.2)
    assert checks.mean_abs_unit_minus_minmax == pytest.approx((0.2 + 0.6) / 2)


def test_a_constant_channel_is_counted_and_instance_stays_finite_only_with_its_eps():
    varied = [[0, 1, 2, 3]] * 3
    green = [[0, 1, 2, 3], [7, 7, 7, 7], [0, 1, 2, 3]]
    checks = compute_image_checks(images(varied, green, varied), IMAGENET, chunk_size=2)
    assert checks.constant_channel == 1
    assert checks.instance_finite and not checks.instance_finite_without_eps  # 0 / 0 without eps
    assert checks.constant_checked_on == "the 1 image(s) found"


def test_without_a_constant_channel_a_synthetic_constant_image_is_checked():
    varied = [[0, 1, 2, 3]]
    checks = compute_image_checks(images(varied, varied, varied), IMAGENET)
    assert checks.constant_channel == 0
    assert checks.instance_finite and not checks.instance_finite_without_eps
    assert checks.constant_checked_on == "a synthetic constant image"


def test_padding_a_white_image_dilutes_its_mean_by_the_border_share():
    checks = compute_image_checks(torch.full((2, 3, 32, 32), 255, dtype=torch.uint8), IMAGENET, pad=4, chunk_size=1)
    share = 32 * 32 / (40 * 40)  # 0.64
    assert checks.own_mean == (1.0,) * 3 and checks.own_std == (0.0,) * 3
    assert checks.padded_mean == pytest.approx((share,) * 3, abs=1e-12)
    assert checks.padded_std == pytest.approx((math.sqrt(share - share**2),) * 3)
    assert checks.padded_mean_change == pytest.approx((share - 1,) * 3)
    assert all(math.isnan(v) for v in checks.padded_std_change)  # no image has a positive own std


def test_the_bgr_row_standardizes_blue_with_red_statistics():
    checks = compute_image_checks(DISTINCT, IMAGENET)
    # BGR order: blue (mean 0.5, std 0.5), green (0, 0), red (1, 0), each with R, G, B's ImageNet statistics.
    assert checks.bgr_pretrain.mean == pytest.approx(
        ((0.5 - 0.485) / 0.229, (0.0 - 0.456) / 0.224, (1.0 - 0.406) / 0.225), abs=1e-6
    )
    assert checks.bgr_pretrain.std == pytest.approx((0.5 / 0.229, 0.0, 0.0), abs=1e-6)


def test_checks_survive_a_round_trip_through_strict_json():
    import json

    checks = compute_image_checks(torch.full((1, 3, 4, 4), 9, dtype=torch.uint8), ChannelStats((0.5,) * 3, (0.25,) * 3))
    text = json.dumps(checks.to_dict(), allow_nan=False)  # NaN (no positive own std) is written as null
    back = ImageChecks.from_dict(json.loads(text))
    assert back.to_dict() == checks.to_dict()
    assert all(math.isnan(v) for v in back.padded_std_change)


def test_anything_but_a_batch_of_uint8_rgb_images_is_refused():
    with pytest.raises(ValueError, match="uint8"):
        compute_image_checks(torch.zeros(2, 3, 4, 4), IMAGENET)
    with pytest.raises(ValueError, match="non-empty"):
        compute_image_checks(torch.zeros(0, 3, 4, 4, dtype=torch.uint8), IMAGENET)


def test_crop_moments_equal_the_crops_cut_one_by_one():
    import torch.nn.functional as F

    from normtest_lib.stats.image_checks import crop_moments

    batch = torch.randint(0, 256, (2, 3, 5, 6), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    pad = 2
    mean, std = crop_moments(batch, pad)
    assert mean.shape == std.shape == (2, 3, 5, 5)  # every offset 0..2 pad, in each direction
    padded = F.pad(batch.double() / 255.0, (pad,) * 4)
    for dy in range(2 * pad + 1):
        for dx in range(2 * pad + 1):
            crop = padded[..., dy : dy + 5, dx : dx + 6]
            torch.testing.assert_close(mean[..., dy, dx], crop.mean(dim=(2, 3)))
            torch.testing.assert_close(std[..., dy, dx], crop.std(dim=(2, 3), unbiased=False))


def test_a_white_image_s_crops_are_as_dark_as_their_mean_black_share():
    # A white 2x2 image padded by 1: its 9 crops hold 0, 1 or 2 black rows and columns; per crop the mean is
    # its white share, averaged over the 9 offsets: (1 x 4 + 4 x 2 + 4 x 1) / 4 / 9 = 4/9 (counted by hand).
    checks = compute_image_checks(torch.full((1, 3, 2, 2), 255, dtype=torch.uint8), IMAGENET, pad=1)
    assert checks.has_crops
    assert checks.crop_mean == pytest.approx((4 / 9,) * 3)
    assert checks.crop_mean_change == pytest.approx((4 / 9 - 1,) * 3)
    # Crop stds: 0 (centre), sqrt(1/4) at 4 edge offsets (half black), sqrt(3/16) at 4 corners (one pixel white).
    assert checks.crop_std == pytest.approx(((4 * 0.5 + 4 * math.sqrt(3 / 16)) / 9,) * 3)


def test_a_record_written_before_the_crops_reads_without_them():
    checks = compute_image_checks(DISTINCT, IMAGENET)
    old = {key: value for key, value in checks.to_dict().items() if not key.startswith("crop_")}
    back = ImageChecks.from_dict(old)
    assert not back.has_crops and back.crop_mean is None and "crop_mean" not in back.to_dict()
    assert ImageChecks.from_dict(checks.to_dict()).crop_std == pytest.approx(checks.crop_std)
