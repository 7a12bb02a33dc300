import numpy as np
import pytest
import torch

from normtest_lib.input_norm import SETTINGS, make_normalizer
from normtest_lib.engine.loop import _trained_stats
from normtest_lib.stats.channel import ChannelStats, channel_stats
from normtest_lib.stats.normalized import normalized_stats

FINETUNE = ChannelStats((0.5, 0.4, 0.3), (0.2, 0.25, 0.3))
PRETRAIN = ChannelStats((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


@pytest.fixture
def images():
    gen = torch.Generator().manual_seed(3)
    return torch.randint(0, 256, (6, 3, 8, 5), generator=gen, dtype=torch.uint8)


def _unit(images):
    return images.numpy().astype(np.float64) / 255.0


def _apply(setting, images, **kwargs):
    kwargs.setdefault("finetune_stats", FINETUNE)
    kwargs.setdefault("pretrain_stats", PRETRAIN)
    out = make_normalizer(setting, **kwargs)(images)
    assert out.dtype == torch.float32 and out.shape == images.shape
    return out.numpy().astype(np.float64)


def test_center_subtracts_the_training_mean_only(images):
    """By hand: x - mean, so over the training set the mean is 0 per channel and the std unchanged."""
    own = channel_stats(images)
    x = _unit(images)
    expected = x - x.mean(axis=(0, 2, 3), keepdims=True)
    out = _apply("center", images, finetune_stats=own)
    np.testing.assert_allclose(out, expected, atol=1e-6)
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), 0, atol=1e-6)
    np.testing.assert_allclose(out.std(axis=(0, 2, 3)), x.std(axis=(0, 2, 3)), rtol=1e-5)
    after = normalized_stats(images, "center")
    np.testing.assert_allclose(after.mean, 0, atol=1e-6)
    np.testing.assert_allclose(after.std, own.std, rtol=1e-6)


def test_center_checkpoint_statistics_reproduce_its_input_through_pretrain(images):
    """A checkpoint trained with center records (mean, 1.0): 'pretrain' with them is bit for bit center."""
    recorded = _trained_stats("center", FINETUNE, PRETRAIN)
    assert recorded == {"mean": list(FINETUNE.mean), "std": [1.0, 1.0, 1.0]}
    as_pretrain = ChannelStats(tuple(recorded["mean"]), tuple(recorded["std"]))
    center = make_normalizer("center", finetune_stats=FINETUNE)(images)
    assert torch.equal(make_normalizer("pretrain", pretrain_stats=as_pretrain)(images), center)
    assert _trained_stats("instance", FINETUNE, PRETRAIN) == {"mean": None, "std": None}


def test_per_image_affine_parts_have_one_row_per_image(images):
    for setting in ("instance", "minmax"):
        shift, scale = make_normalizer(setting).affine(images)
        assert shift.shape == scale.shape == (len(images), 3, 1, 1)
    for setting in ("finetune", "pretrain", "center"):
        shift, scale = make_normalizer(setting, finetune_stats=FINETUNE, pretrain_stats=PRETRAIN).affine(images)
        assert shift.shape == scale.shape == (1, 3, 1, 1)
    assert make_normalizer("unit").affine(images) == (None, None)


@pytest.mark.parametrize("setting,stats", [("finetune", FINETUNE), ("pretrain", PRETRAIN)])
def test_standardizing_settings_use_their_statistics(images, setting, stats):
    expected = (_unit(images) - np.array(stats.mean).reshape(1, 3, 1, 1)) / np.array(stats.std).reshape(1, 3, 1, 1)
    np.testing.assert_allclose(_apply(setting, images), expected, atol=1e-5)


def test_instance_standardizes_each_image_and_channel_with_eps(images):
    x = _unit(images)
    mean = x.mean(axis=(2, 3), keepdims=True)
    var = x.var(axis=(2, 3), keepdims=True)
    expected = (x - mean) / np.sqrt(var + 1e-3)
    np.testing.assert_allclose(_apply("instance", images, eps=1e-3), expected, atol=1e-5)


def test_instance_of_a_constant_image_is_finite():
    flat = torch.full((1, 3, 4, 4), 77, dtype=torch.uint8)
    out = make_normalizer("instance")(flat)
    assert torch.isfinite(out).all() and out.abs().max() == 0


def test_minmax_maps_each_image_and_channel_to_unit_range(images):
    x = _unit(images)
    low, high = x.min(axis=(2, 3), keepdims=True), x.max(axis=(2, 3), keepdims=True)
    out = _apply("minmax", images)
    np.testing.assert_allclose(out, (x - low) / (high - low), atol=1e-6)
    assert out.min(axis=(2, 3)) == pytest.approx(0) and out.max(axis=(2, 3)) == pytest.approx(1)


def test_minmax_of_a_constant_channel_is_zero():
    images = torch.zeros(2, 3, 3, 3, dtype=torch.uint8)
    images[:, 1] = torch.arange(9, dtype=torch.uint8).view(3, 3)
    out = make_normalizer("minmax")(images)
    assert out[:, 0].abs().max() == 0 and out[:, 1].max() == 1


def test_unit_and_none(images):
    np.testing.assert_allclose(_apply("unit", images), _unit(images), atol=1e-7)
    np.testing.assert_allclose(_apply("none", images), images.numpy().astype(np.float64))


def test_every_setting_is_batched_and_device_agnostic(images):
    for setting in SETTINGS:
        normalizer = make_normalizer(setting, finetune_stats=FINETUNE, pretrain_stats=PRETRAIN)
        whole = normalizer(images)
        one_by_one = torch.cat([normalizer(images[i : i + 1]) for i in range(len(images))])
        torch.testing.assert_close(whole, one_by_one)
        assert normalizer(images.to("meta")).device.type == "meta"


def test_missing_statistics_and_unknown_setting_are_errors(images):
    with pytest.raises(ValueError, match="fine-tuning set's statistics"):
        make_normalizer("finetune")
    with pytest.raises(ValueError, match="'center' needs the fine-tuning set's statistics"):
        make_normalizer("center")
    with pytest.raises(ValueError, match="pretraining source"):
        make_normalizer("pretrain")
    with pytest.raises(ValueError, match="unknown input normalization 'zscore'"):
        make_normalizer("zscore")


def test_every_setting_has_one_sentence_for_the_glossary_and_the_schema_allows_exactly_them():
    from typing import get_args

    from normtest_lib.config import InputNorm
    from normtest_lib.input_norm import DESCRIPTIONS

    assert tuple(DESCRIPTIONS) == SETTINGS  # same keys, same order: the glossary lists them as the module does
    assert all(text.strip().endswith(".") and text.count(". ") == 0 for text in DESCRIPTIONS.values())
    assert set(get_args(InputNorm)) == set(SETTINGS)  # the run schema accepts exactly the settings described
