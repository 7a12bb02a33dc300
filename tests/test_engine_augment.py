"""Batch augmentation and the device-resident loader."""

import pytest
import torch
import torch.nn.functional as F

from normtest_lib.data import Split
from normtest_lib.engine.augment import AugmentParams, crop_flip, draw_params
from normtest_lib.engine.loader import InputPipeline, TrainBatches, eval_batches, resize
from normtest_lib.input_norm import make_normalizer, to_unit
from normtest_lib.stats.channel import ChannelStats


def reference_crop_flip(images, params, pad):
    """One image at a time, the way torchvision's RandomCrop(padding=pad) + RandomHorizontalFlip do it."""
    _, _, height, width = images.shape
    out = []
    for b in range(images.shape[0]):
        padded = F.pad(images[b : b + 1], (pad, pad, pad, pad))[0]
        y, x = int(params.dy[b]), int(params.dx[b])
        crop = padded[:, y : y + height, x : x + width]
        out.append(crop.flip(-1) if params.flip[b] else crop)
    return torch.stack(out)


def random_images(n, size=12, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, size, size), generator=gen, dtype=torch.uint8)


def test_crop_flip_matches_per_image_reference():
    images = random_images(64)
    for pad in (0, 1, 4):
        params = draw_params(64, pad, True, torch.Generator().manual_seed(pad))
        assert params.flip.any() and not params.flip.all()
        result = crop_flip(images, params)
        assert result.dtype == torch.uint8 and result.shape == images.shape
        assert torch.equal(result, reference_crop_flip(images, params, pad))


def test_crop_flip_extremes_are_exact():
    images = random_images(2, size=6)
    # Offset 0 shifts the image down-right by pad; offset 2*pad up-left; pad-offset is identity.
    params = AugmentParams(torch.tensor([0, 4]), torch.tensor([2, 2]), torch.tensor([False, True]), pad=2)
    out = crop_flip(images, params)
    assert torch.equal(out[0, :, :, 2:], images[0, :, :, :4])
    assert (out[0, :, :, :2] == 0).all()  # zero (black) padding
    # Image 1: rows unshifted; window = original columns 2..5 then two padding columns; then mirrored.
    assert torch.equal(out[1, :, :, 2:], images[1, :, :, 2:].flip(-1))
    assert (out[1, :, :, :2] == 0).all()


def test_no_flip_requested_means_no_flip():
    params = draw_params(500, 4, False, torch.Generator().manual_seed(0))
    assert not params.flip.any()
    assert params.dx.min() == 0 and params.dx.max() == 8


def labelled_split(n=96, size=16, classes=8):
    """Images whose pixels all equal 10 * (label + 1): any crop keeps its center pixel."""
    labels = torch.arange(n) % classes
    images = (10 * (labels + 1)).to(torch.uint8).view(n, 1, 1, 1).expand(n, 3, size, size).contiguous()
    return Split(images, labels)


def test_batches_keep_labels_aligned_and_cover_each_image_once():
    split = labelled_split()
    batches = TrainBatches(split, batch_size=20, seed=3, augment=True, pad=4, flip=True)
    assert len(batches) == 5
    seen = 0
    for images, labels, augment in batches.epoch(0):
        center = crop_flip(images, augment)[:, 0, 8, 8]
        assert torch.equal(center.long(), 10 * (labels + 1))
        seen += labels.numel()
    assert seen == len(split)


def test_augmentation_differs_per_image_and_per_epoch_but_repeats_exactly():
    base = random_images(1, size=16).expand(64, 3, 16, 16).contiguous()
    split = Split(base, torch.zeros(64, dtype=torch.int64))
    batches = TrainBatches(split, batch_size=64, seed=1, augment=True, pad=4, flip=True)
    pipeline = InputPipeline(make_normalizer("unit"))
    crops = lambda epoch: [pipeline(images, augment) for images, _, augment in batches.epoch(epoch)][0]
    first = crops(0)
    distinct = {tuple(image.flatten().tolist()) for image in first}
    assert len(distinct) > 20  # 81 crops x 2 flips possible
    again, other = crops(0), crops(1)
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_shuffle_changes_with_epoch_and_seed():
    split = labelled_split(n=64, classes=64)
    order = lambda seed, epoch: torch.cat([labels for _, labels, _ in TrainBatches(split, 16, seed, augment=False).epoch(epoch)])
    assert torch.equal(order(0, 0), order(0, 0))
    assert not torch.equal(order(0, 0), order(0, 1))
    assert not torch.equal(order(0, 0), order(1, 0))
    assert torch.equal(order(0, 0).sort().values, torch.arange(64))


def test_without_augmentation_batches_are_the_stored_images():
    split = Split(random_images(30), torch.arange(30))
    for images, labels, augment in TrainBatches(split, 7, seed=0, augment=False).epoch(0):
        assert torch.equal(images, split.images[labels]) and augment is None


def test_eval_batches_are_in_order():
    split = Split(random_images(25), torch.arange(25))
    labels = torch.cat([labels for _, labels in eval_batches(split, 10)])
    assert torch.equal(labels, torch.arange(25))


def test_input_pipeline_normalizes_resizes_and_sets_memory_format():
    images = random_images(4, size=16)
    pipeline = InputPipeline(make_normalizer("unit"), resize_to=24, interpolation="bilinear", memory_format=torch.channels_last)
    out = pipeline(images)
    assert out.shape == (4, 3, 24, 24) and out.dtype == torch.float32
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(out, resize(to_unit(images), 24))
    native = InputPipeline(make_normalizer("unit"))(images)
    assert native.shape == (4, 3, 16, 16) and native.is_contiguous()
    assert torch.equal(native, to_unit(images))


def test_resize_commutes_with_channel_affine_normalization():
    images = random_images(3, size=16)
    mean = torch.tensor([0.4, 0.5, 0.6]).view(1, 3, 1, 1)
    std = torch.tensor([0.2, 0.25, 0.3]).view(1, 3, 1, 1)
    normalize_then_resize = resize((to_unit(images) - mean) / std, 8)
    resize_then_normalize = (resize(to_unit(images), 8) - mean) / std
    assert torch.allclose(normalize_then_resize, resize_then_normalize, atol=1e-5)


# --- augmentation and input normalization: the padded border never enters a statistic -------------

FINETUNE = ChannelStats((0.5, 0.4, 0.3), (0.2, 0.25, 0.3))


def expected_training_input(normalizer, images, params):
    """One image at a time: normalize the un-augmented image, pad it with *normalized black*, crop, flip."""
    shift, scale = normalizer.affine(images)
    pick = lambda t, b: t if t is None or t.shape[0] == 1 else t[b : b + 1]
    pad = params.pad
    out = []
    for b in range(images.shape[0]):
        image = images[b : b + 1]
        normalized = normalizer.apply(image, pick(shift, b), pick(scale, b))[0]
        black = normalizer.apply(torch.zeros(1, 3, 1, 1, dtype=torch.uint8), pick(shift, b), pick(scale, b))[0]
        _, height, width = normalized.shape
        padded = black.expand(3, height + 2 * pad, width + 2 * pad).clone()
        padded[:, pad : pad + height, pad : pad + width] = normalized
        y, x = int(params.dy[b]), int(params.dx[b])
        crop = padded[:, y : y + height, x : x + width]
        out.append(crop.flip(-1) if params.flip[b] else crop)
    return torch.stack(out)


@pytest.mark.parametrize("setting", ["instance", "minmax", "finetune", "center", "unit", "none"])
def test_crop_pixels_equal_the_normalized_image_and_the_border_is_normalized_black(setting):
    images = random_images(32, size=10, seed=5)
    images[3, 1] = 90  # a constant channel: minmax maps its own pixels to 0
    params = draw_params(32, 3, True, torch.Generator().manual_seed(7))
    assert (params.dx != 3).any() and params.flip.any()  # some crops do carry a border
    normalizer = make_normalizer(setting, finetune_stats=FINETUNE)
    out = InputPipeline(normalizer)(images, params)
    assert out.dtype == torch.float32 and out.shape == images.shape
    # Same elementwise operations on the same values: equal bit for bit.
    assert torch.equal(out, expected_training_input(normalizer, images, params))
    if setting == "minmax":
        uncropped = AugmentParams(torch.full((32,), 3), torch.full((32,), 3), params.flip, 3)
        assert InputPipeline(normalizer)(images, uncropped)[3, 1].abs().max() == 0


def test_data_set_settings_are_random_crop_then_normalize():
    """finetune/pretrain: exactly torchvision's RandomCrop(padding) + flip, then Normalize, as before."""
    images = random_images(16, size=8, seed=2)
    params = draw_params(16, 4, True, torch.Generator().manual_seed(1))
    out = InputPipeline(make_normalizer("finetune", finetune_stats=FINETUNE))(images, params)
    mean, std = FINETUNE.as_tensors()
    torch.testing.assert_close(out, (to_unit(reference_crop_flip(images, params, 4)) - mean) / std, rtol=0, atol=0)


def test_instance_statistics_ignore_the_padded_border():
    """A checkerboard keeps its mean and variance in any even-sized window: the crop's image pixels
    standardize to exactly +-1/sqrt(1 + eps/var), mean 0, whatever black border the crop carries."""
    size, pad = 8, 2
    board = (torch.arange(size).view(-1, 1) + torch.arange(size)) % 2
    images = (60 + 120 * board).to(torch.uint8).expand(4, 3, size, size).contiguous()
    # Offsets 0 and 2*pad shift by pad: a 6 x 6 window of the image and a 2-pixel black border.
    params = AugmentParams(torch.tensor([0, 4, 0, 4]), torch.tensor([0, 0, 4, 4]), torch.tensor([False, True, True, False]), pad)
    normalizer = make_normalizer("instance")
    out = InputPipeline(normalizer)(images, params)
    image_part = (crop_flip(torch.ones_like(images), params) == 1).expand_as(out)
    interior = out[image_part].view(4, 3, -1)
    assert interior.mean(dim=2).abs().max() < 1e-6
    torch.testing.assert_close(interior.abs(), torch.full_like(interior, (0.2352941 ** 2 / (0.2352941 ** 2 + 1e-5)) ** 0.5))
    # The old order (crop first, then statistics of the crop, border included) shifts the mean.
    old = normalizer(crop_flip(images, params))
    assert old[image_part].view(4, 3, -1).mean(dim=2).min() > 0.4


def test_per_image_statistics_are_those_of_the_native_size_image():
    images = random_images(3, size=16, seed=4)
    params = draw_params(3, 4, True, torch.Generator().manual_seed(0))
    normalizer = make_normalizer("instance")
    resized = InputPipeline(normalizer, resize_to=24)(images, params)
    native = InputPipeline(normalizer)(images, params)
    torch.testing.assert_close(resized, resize(native, 24))


def test_augmented_training_batches_repeat_exactly_per_seed_and_epoch():
    split = Split(random_images(50, seed=8), torch.arange(50))
    pipeline = InputPipeline(make_normalizer("instance"))
    inputs = lambda: torch.cat([pipeline(images, augment) for images, _, augment in TrainBatches(split, 16, seed=2).epoch(3)])
    assert torch.equal(inputs(), inputs())
