"""Batch augmentation and the device-resident loader."""

import torch
import torch.nn.functional as F

from normtest_lib.data import Split
from normtest_lib.engine.augment import AugmentParams, crop_flip, draw_params
from normtest_lib.engine.loader import InputPipeline, TrainBatches, eval_batches, resize
from normtest_lib.input_norm import to_unit


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
        result = crop_flip(images, params, pad)
        assert result.dtype == torch.uint8 and result.shape == images.shape
        assert torch.equal(result, reference_crop_flip(images, params, pad))


def test_crop_flip_extremes_are_exact():
    images = random_images(2, size=6)
    # Offset 0 shifts the image down-right by pad; offset 2*pad up-left; pad-offset is identity.
    params = AugmentParams(torch.tensor([0, 4]), torch.tensor([2, 2]), torch.tensor([False, True]))
    out = crop_flip(images, params, pad=2)
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
    for images, labels in batches.epoch(0):
        center = images[:, 0, 8, 8]
        assert torch.equal(center.long(), 10 * (labels + 1))
        seen += labels.numel()
    assert seen == len(split)


def test_augmentation_differs_per_image_and_per_epoch_but_repeats_exactly():
    base = random_images(1, size=16).expand(64, 3, 16, 16).contiguous()
    split = Split(base, torch.zeros(64, dtype=torch.int64))
    batches = TrainBatches(split, batch_size=64, seed=1, augment=True, pad=4, flip=True)
    (first, _), = list(batches.epoch(0))
    distinct = {tuple(image.flatten().tolist()) for image in first}
    assert len(distinct) > 20  # 81 crops x 2 flips possible
    (again, _), = list(batches.epoch(0))
    (other, _), = list(batches.epoch(1))
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_shuffle_changes_with_epoch_and_seed():
    split = labelled_split(n=64, classes=64)
    order = lambda seed, epoch: torch.cat([labels for _, labels in TrainBatches(split, 16, seed, augment=False).epoch(epoch)])
    assert torch.equal(order(0, 0), order(0, 0))
    assert not torch.equal(order(0, 0), order(0, 1))
    assert not torch.equal(order(0, 0), order(1, 0))
    assert torch.equal(order(0, 0).sort().values, torch.arange(64))


def test_without_augmentation_batches_are_the_stored_images():
    split = Split(random_images(30), torch.arange(30))
    for images, labels in TrainBatches(split, 7, seed=0, augment=False).epoch(0):
        assert torch.equal(images, split.images[labels])


def test_eval_batches_are_in_order():
    split = Split(random_images(25), torch.arange(25))
    labels = torch.cat([labels for _, labels in eval_batches(split, 10)])
    assert torch.equal(labels, torch.arange(25))


def test_input_pipeline_normalizes_resizes_and_sets_memory_format():
    images = random_images(4, size=16)
    pipeline = InputPipeline(to_unit, resize_to=24, interpolation="bilinear", memory_format=torch.channels_last)
    out = pipeline(images)
    assert out.shape == (4, 3, 24, 24) and out.dtype == torch.float32
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(out, resize(to_unit(images), 24))
    native = InputPipeline(to_unit)(images)
    assert native.shape == (4, 3, 16, 16) and native.is_contiguous()
    assert torch.equal(native, to_unit(images))


def test_resize_commutes_with_channel_affine_normalization():
    images = random_images(3, size=16)
    mean = torch.tensor([0.4, 0.5, 0.6]).view(1, 3, 1, 1)
    std = torch.tensor([0.2, 0.25, 0.3]).view(1, 3, 1, 1)
    normalize_then_resize = resize((to_unit(images) - mean) / std, 8)
    resize_then_normalize = (resize(to_unit(images), 8) - mean) / std
    assert torch.allclose(normalize_then_resize, resize_then_normalize, atol=1e-5)
