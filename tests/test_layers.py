import pytest
import torch
from torch import nn

from normtest_lib.errors import ModelError
from normtest_lib.layers import (
    check_norm_name,
    conv_names,
    create_conv,
    create_norm,
    has_learned_shift,
    norm_names,
    register_norm,
)
from normtest_lib.layers.groups import resolve_num_groups
from normtest_lib.layers.registry import NORMS
from normtest_lib.models import create_model


def test_the_framework_layers_are_registered():
    assert {"torch_bn", "torch_gn", "none"} <= set(norm_names())
    assert "conv" in conv_names()


@pytest.mark.parametrize("name", norm_names())
def test_every_norm_builds_and_keeps_the_shape(name):
    torch.manual_seed(0)
    norm = create_norm(name, 64)
    x = torch.randn(4, 64, 6, 6)
    assert norm(x).shape == x.shape


def test_names_map_to_the_intended_layers():
    assert isinstance(create_norm("torch_bn", 16), nn.BatchNorm2d)
    assert isinstance(create_norm("torch_gn", 16), nn.GroupNorm)
    assert isinstance(create_norm("none", 16), nn.Identity)
    bn = create_norm("torch_bn", 16)
    assert bn.eps == 1e-5 and bn.num_features == 16


def test_conv_takes_the_usual_arguments():
    conv = create_conv("conv", 3, 8, 3, stride=2, padding=1, bias=True)
    assert isinstance(conv, nn.Conv2d)
    assert conv.bias is not None and conv.stride == (2, 2)
    assert conv(torch.randn(1, 3, 32, 32)).shape == (1, 8, 16, 16)
    assert create_conv("conv", 3, 8, 1).bias is None


def test_unknown_names_list_the_known_ones():
    with pytest.raises(ModelError, match=r"unknown normalization 'batchnorm' \(norm_layer='batchnorm'\).*torch_bn"):
        create_norm("batchnorm", 8)
    with pytest.raises(ModelError, match=r"unknown convolution 'conv2d'.*known: conv"):
        create_conv("conv2d", 3, 8, 3)
    with pytest.raises(ModelError, match="unknown normalization"):
        check_norm_name("gn32")
    check_norm_name("torch_gn:c/4")  # a known base passes, whatever the channel count


@pytest.mark.parametrize(
    "arg, channels, groups",
    [(None, 64, 32), (None, 16, 16), (None, 48, 24), ("8", 64, 8), ("c/4", 64, 16), ("C/4", 16, 4), ("1", 7, 1),
     ("32", 16, 16), ("32", 64, 32)],  # fewer channels than groups: one channel per group
)
def test_group_count_argument(arg, channels, groups):
    assert resolve_num_groups(arg, channels) == groups
    name = "torch_gn" if arg is None else f"torch_gn:{arg}"
    assert create_norm(name, channels).num_groups == groups


@pytest.mark.parametrize(
    "name, message",
    [
        ("torch_gn:5", "5 groups do not divide 64 channels"),
        ("torch_gn:c/3", "divisible by 3"),
        ("torch_gn:0", "0 groups do not divide"),
        ("torch_gn:eight", "neither a group count"),
        ("torch_gn:", "no argument after it"),
        ("torch_bn:8", "takes no argument"),
        ("none:1", "takes no argument"),
    ],
)
def test_bad_arguments_are_refused_with_the_layer_name(name, message):
    with pytest.raises(ModelError, match=message) as info:
        create_norm(name, 64)
    assert repr(name) in str(info.value)


def test_only_norms_without_a_shift_report_none():
    assert has_learned_shift(create_norm("torch_bn", 8))
    assert has_learned_shift(create_norm("torch_gn", 8))
    assert not has_learned_shift(create_norm("none", 8))


class _Scale(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.full((channels,), 2.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight.view(1, -1, 1, 1)


@pytest.fixture
def scale_norm():
    @register_norm("test_scale")
    def build(num_channels, arg):
        return _Scale(num_channels)

    yield "test_scale"
    del NORMS.builders["test_scale"]


def test_a_registered_norm_reaches_every_model_without_model_changes(scale_norm):
    module = create_model("small", 10, norm_layer=scale_norm).module
    scales = [m for m in module.modules() if isinstance(m, _Scale)]
    assert len(scales) == 4
    # It has no shift of its own, so the convolutions before it get a bias.
    assert all(layer.conv.bias is not None for layer in module.layers)


def test_registering_twice_or_with_a_colon_is_a_programming_error(scale_norm):
    with pytest.raises(ValueError, match="twice"):
        register_norm(scale_norm)(lambda c, a: nn.Identity())
    with pytest.raises(ValueError, match="must not contain ':'"):
        register_norm("gn:8")
