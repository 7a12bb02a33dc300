"""The from-scratch normalization layers (bn, in, ln, gn, bin) against torch's own modules."""

import copy
import inspect

import pytest
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from normtest_lib.config import make_config
from normtest_lib.engine.optim import bind_step_hooks, build_optimizer, run_step_hooks
from normtest_lib.engine.probes import norm_layers
from normtest_lib.errors import ModelError
from normtest_lib.layers import (
    _moments,
    batchinstancenorm,
    batchnorm,
    check_norm_name,
    create_norm,
    groupnorm,
    has_learned_shift,
    instancenorm,
    is_norm_layer,
    layernorm,
)
from normtest_lib.layers.batchinstancenorm import BatchInstanceNorm
from normtest_lib.layers.batchnorm import BatchNorm
from normtest_lib.layers.groupnorm import GroupNorm
from normtest_lib.layers.instancenorm import InstanceNorm
from normtest_lib.models import create_model

C = 8
SHAPE = (4, C, 5, 5)
SCRATCH_MODULES = [_moments, batchnorm, instancenorm, groupnorm, layernorm, batchinstancenorm]
FORBIDDEN = (
    "batch_norm",
    "instance_norm",
    "group_norm",
    "layer_norm",
    "nn.BatchNorm",
    "nn.GroupNorm",
    "nn.InstanceNorm",
    "nn.LayerNorm",
)
ALL_NAMES = ["bn", "in", "ln", "gn", "gn:2", "gn:c/2", "bin"]

# name -> torch's module with the same semantics, for C channels
REFERENCES = {
    "bn": lambda c: nn.BatchNorm2d(c),
    "in": lambda c: nn.InstanceNorm2d(c, affine=True),
    "ln": lambda c: nn.GroupNorm(1, c),
    "gn": lambda c: nn.GroupNorm(c // 4, c),
    "gn:2": lambda c: nn.GroupNorm(2, c),
    "gn:c/2": lambda c: nn.GroupNorm(c // 2, c),
}


def pair(name, dtype=torch.float64, seed=0):
    """Our layer and torch's, with the same random affine parameters."""
    torch.manual_seed(seed)
    ours = create_norm(name, C).to(dtype)
    with torch.no_grad():
        ours.weight.uniform_(0.5, 1.5)
        ours.bias.uniform_(-0.5, 0.5)
    reference = REFERENCES[name](C).to(dtype)
    reference.load_state_dict(ours.state_dict())  # same keys as torch's (strict)
    return ours, reference


def forward_backward(module, x, target):
    x = x.clone().requires_grad_(True)
    out = module(x)
    (out * target).sum().backward()
    return out.detach(), x.grad


def assert_same_pass(ours, reference, x, target, atol):
    out, x_grad = forward_backward(ours, x, target)
    ref_out, ref_x_grad = forward_backward(reference, x, target)
    torch.testing.assert_close(out, ref_out, atol=atol, rtol=atol)
    torch.testing.assert_close(x_grad, ref_x_grad, atol=atol, rtol=atol)
    for name in ("weight", "bias"):
        torch.testing.assert_close(getattr(ours, name).grad, getattr(reference, name).grad, atol=atol, rtol=atol)


@pytest.mark.parametrize("name", list(REFERENCES))
def test_training_steps_and_evaluation_match_torch(name):
    """Outputs, input and parameter gradients equal torch's through 5 SGD steps on random
    inputs, then in evaluation mode; parameters and running statistics stay equal."""
    ours, reference = pair(name)
    optimizers = [torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9) for m in (ours, reference)]
    generator = torch.Generator().manual_seed(1)
    for _ in range(5):
        x = torch.randn(SHAPE, generator=generator, dtype=torch.float64) * 3 + 1
        target = torch.randn(SHAPE, generator=generator, dtype=torch.float64)
        for optimizer in optimizers:
            optimizer.zero_grad()
        assert_same_pass(ours, reference, x, target, atol=1e-10)
        for optimizer in optimizers:
            optimizer.step()
    ours_state, reference_state = ours.state_dict(), reference.state_dict()
    assert list(ours_state) == list(reference_state)
    for key in reference_state:
        torch.testing.assert_close(ours_state[key], reference_state[key], atol=1e-10, rtol=1e-10)
    if name == "bn":
        assert int(ours.num_batches_tracked) == 5
        assert not torch.allclose(ours.running_var, torch.ones(C, dtype=torch.float64))

    ours.eval()
    reference.eval()
    for module in (ours, reference):
        module.zero_grad()
    x = torch.randn(SHAPE, generator=generator, dtype=torch.float64) * 2 - 1
    target = torch.randn(SHAPE, generator=generator, dtype=torch.float64)
    assert_same_pass(ours, reference, x, target, atol=1e-10)
    if name == "bn":  # evaluation leaves the running statistics alone
        torch.testing.assert_close(ours.running_mean, reference_state["running_mean"])
        assert int(ours.num_batches_tracked) == 5


@pytest.mark.parametrize("name", list(REFERENCES))
def test_float32_matches_torch_within_1e_5(name):
    ours, reference = pair(name, dtype=torch.float32)
    generator = torch.Generator().manual_seed(2)
    x = torch.randn(SHAPE, generator=generator) * 3 + 1
    target = torch.randn(SHAPE, generator=generator)
    assert_same_pass(ours, reference, x, target, atol=1e-5)
    for key, value in reference.state_dict().items():
        torch.testing.assert_close(ours.state_dict()[key], value, atol=1e-5, rtol=1e-5)


def test_bn_running_statistics_use_the_unbiased_variance_without_autograd_history():
    bn = BatchNorm(3).double()
    x = (torch.randn(2, 3, 2, 2, dtype=torch.float64) * 2 + 5).requires_grad_(True)
    bn(x).sum().backward()
    n = 2 * 2 * 2
    mean = x.detach().mean(dim=(0, 2, 3))
    var = x.detach().var(dim=(0, 2, 3), unbiased=False) * n / (n - 1)
    torch.testing.assert_close(bn.running_mean, 0.1 * mean)
    torch.testing.assert_close(bn.running_var, 0.9 + 0.1 * var)
    for buffer in (bn.running_mean, bn.running_var):
        assert not buffer.requires_grad and buffer.grad_fn is None
    assert bn.num_batches_tracked.dtype == torch.long and int(bn.num_batches_tracked) == 1
    assert (bn.eps, bn.momentum) == (1e-5, 0.1)


def test_bn_cumulative_average_matches_torch_with_momentum_none():
    ours, reference = BatchNorm(C, momentum=None).double(), nn.BatchNorm2d(C, momentum=None).double()
    for _ in range(3):
        x = torch.randn(SHAPE, dtype=torch.float64)
        ours(x), reference(x)
    torch.testing.assert_close(ours.running_mean, reference.running_mean)
    torch.testing.assert_close(ours.running_var, reference.running_var)


def test_bn_reads_a_torch_batchnorm_checkpoint_and_refuses_one_value_per_channel():
    reference = nn.BatchNorm2d(C)
    reference(torch.randn(SHAPE) * 2 + 3)
    ours = create_norm("bn", C)
    ours.load_state_dict(reference.state_dict())
    ours.eval(), reference.eval()
    x = torch.randn(SHAPE)
    torch.testing.assert_close(ours(x), reference(x), atol=1e-5, rtol=1e-5)
    ours.train()
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        ours(torch.randn(1, C, 1, 1))


def test_instance_norm_has_no_running_statistics_and_normalizes_alike_in_evaluation():
    layer = create_norm("in", C).double()
    assert set(layer.state_dict()) == {"weight", "bias"}
    x = torch.randn(SHAPE, dtype=torch.float64)
    torch.testing.assert_close(layer(x), layer.eval()(x))


# --- group-norm arguments ---------------------------------------------------------------


@pytest.mark.parametrize(
    "name, channels, groups", [("gn", 64, 16), ("gn", 16, 4), ("gn:8", 64, 8), ("gn:c/2", 16, 8), ("ln", 12, 1)]
)
def test_group_counts(name, channels, groups):
    assert create_norm(name, channels).num_groups == groups
    assert create_norm("torch_gn", 64).num_groups == 32  # torch_gn keeps its own default


@pytest.mark.parametrize(
    "name, channels, message",
    [
        ("gn:3", 16, "3 groups do not divide 16 channels"),
        ("gn:c/3", 16, "channel count 16 to be divisible by 3"),
        ("gn", 6, "C/4 groups.*channel count 6 to be divisible by 4"),
        ("gn:x", 16, "neither a group count"),
    ],
)
def test_groups_that_do_not_divide_the_channels_are_a_model_error(name, channels, message):
    with pytest.raises(ModelError, match=message) as info:
        create_norm(name, channels)
    assert repr(name) in str(info.value)


def test_the_group_norm_class_checks_its_groups_too():
    with pytest.raises(ModelError, match="5 groups do not divide 12 channels"):
        GroupNorm(5, 12)


@pytest.mark.parametrize("name", ["bn", "in", "ln", "bin"])
def test_names_without_an_argument_refuse_one(name):
    with pytest.raises(ModelError, match="takes no argument"):
        create_norm(f"{name}:2", C)


# --- Batch-Instance Norm ------------------------------------------------------------------


def bin_with(rho, seed=0):
    torch.manual_seed(seed)
    layer = create_norm("bin", C).double()
    with torch.no_grad():
        layer.weight.uniform_(0.5, 1.5)
        layer.bias.uniform_(-0.5, 0.5)
        layer.rho.copy_(rho if torch.is_tensor(rho) else torch.full((C,), float(rho)))
    return layer


@pytest.mark.parametrize("rho, other_name", [(1.0, "bn"), (0.0, "in")])
def test_bin_is_bn_at_rho_1_and_in_at_rho_0(rho, other_name):
    layer = bin_with(rho)
    other = create_norm(other_name, C).double()
    other.load_state_dict(layer.state_dict(), strict=False)  # same weight and bias (and buffers)
    generator = torch.Generator().manual_seed(3)
    for mode in ("train", "train", "eval"):
        layer.train(mode == "train"), other.train(mode == "train")
        layer.zero_grad(), other.zero_grad()
        x = torch.randn(SHAPE, generator=generator, dtype=torch.float64) * 2 + 1
        target = torch.randn(SHAPE, generator=generator, dtype=torch.float64)
        assert_same_pass(layer, other, x, target, atol=1e-10)
    if other_name == "bn":
        torch.testing.assert_close(layer.running_var, other.running_var)
        assert int(layer.num_batches_tracked) == 2


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_bin_mixes_torch_batch_and_instance_norm_with_one_affine(mode):
    rho = torch.linspace(0, 1, C, dtype=torch.float64)
    layer = bin_with(rho)
    bn_part = nn.BatchNorm2d(C, affine=False).double()
    in_part = nn.InstanceNorm2d(C, affine=False).double()
    weight = layer.weight.detach().clone().requires_grad_(True)
    bias = layer.bias.detach().clone().requires_grad_(True)
    ref_rho = rho.clone().requires_grad_(True)
    if mode == "eval":  # some running statistics first
        warm = torch.randn(SHAPE, dtype=torch.float64) * 3 + 2
        layer(warm), bn_part(warm)
        layer.eval(), bn_part.eval()

    def reference(x):
        view = lambda t: t.view(1, -1, 1, 1)  # noqa: E731
        mixed = view(ref_rho) * bn_part(x) + (1 - view(ref_rho)) * in_part(x)
        return view(weight) * mixed + view(bias)

    x = torch.randn(SHAPE, dtype=torch.float64) * 2 + 1
    target = torch.randn(SHAPE, dtype=torch.float64)
    out, x_grad = forward_backward(layer, x, target)
    ref_out, ref_x_grad = forward_backward(reference, x, target)
    torch.testing.assert_close(out, ref_out)
    torch.testing.assert_close(x_grad, ref_x_grad)
    for ours, theirs in ((layer.weight, weight), (layer.bias, bias), (layer.rho, ref_rho)):
        torch.testing.assert_close(ours.grad, theirs.grad)
    torch.testing.assert_close(layer.running_mean, bn_part.running_mean)
    torch.testing.assert_close(layer.running_var, bn_part.running_var)


def test_bin_rho_starts_at_1_and_gets_a_gradient():
    layer = create_norm("bin", C)
    assert torch.equal(layer.rho.detach(), torch.ones(C))
    x = torch.randn(SHAPE) * 2 + 1
    (layer(x) * torch.randn(SHAPE)).sum().backward()
    assert layer.rho.grad is not None and layer.rho.grad.abs().min() > 0
    assert set(layer.state_dict()) == {"weight", "bias", "rho", "running_mean", "running_var", "num_batches_tracked"}


def test_bin_rho_has_its_own_optimizer_group_through_build_optimizer():
    model = create_model("small", 10, norm_layer="bin").module
    config = make_config(model="small", norm_layer="bin", lr=0.05, weight_decay=5e-4)
    optimizer = build_optimizer(model, config)
    rhos = [m.rho for m in model.modules() if isinstance(m, BatchInstanceNorm)]
    assert len(rhos) == 4
    assert len(optimizer.param_groups) == 2
    ordinary, gate = optimizer.param_groups
    assert [id(p) for p in gate["params"]] == [id(p) for p in rhos]
    assert gate["lr"] == pytest.approx(0.5) and gate["base_lr"] == pytest.approx(0.5)
    assert gate["weight_decay"] == 0.0
    assert ordinary["lr"] == pytest.approx(0.05) and ordinary["weight_decay"] == 5e-4
    assert not any(p is rho for p in ordinary["params"] for rho in rhos)


def test_bin_rho_keeps_its_overrides_through_conversion_and_copies():
    layer = create_norm("bin", C)
    expected = {"lr_scale": 10.0, "weight_decay": 0.0}
    assert layer.rho.optim_overrides == expected
    assert layer.double().rho.optim_overrides == expected
    assert copy.deepcopy(layer).rho.optim_overrides == expected


def test_bin_rho_is_clipped_to_0_1_after_every_step_with_a_large_learning_rate():
    torch.manual_seed(4)
    model = nn.Sequential(nn.Conv2d(3, C, 3, padding=1), create_norm("bin", C))
    layer = model[1]
    config = make_config(lr=5.0, momentum=0.0, weight_decay=0.0)
    optimizer = build_optimizer(model, config)
    hooks = bind_step_hooks(model)
    assert len(hooks) == 1
    left_the_range = False
    for step in range(1, 5):
        optimizer.zero_grad()
        x = torch.randn(4, 3, 6, 6)
        (model(x) * torch.randn(4, C, 6, 6)).sum().backward()
        optimizer.step()
        left_the_range |= bool((layer.rho < 0).any() or (layer.rho > 1).any())
        run_step_hooks(hooks, step)
        assert layer.rho.min() >= 0 and layer.rho.max() <= 1
        assert layer.rho.grad_fn is None and layer.rho.requires_grad
    assert left_the_range  # the clip was exercised, not vacuous
    assert ((layer.rho == 0) | (layer.rho == 1)).any()


# --- every layer --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL_NAMES)
def test_marked_described_and_shifted(name):
    layer = create_norm(name, C)
    assert type(layer).is_norm_layer is True and is_norm_layer(layer)
    assert has_learned_shift(layer)
    assert layer.extra_repr() and f"{C}" in repr(layer) and "eps=1e-05" in repr(layer)
    check_norm_name(name)


def test_reprs_read_like_torch():
    assert repr(create_norm("bn", 16)) == "BatchNorm(16, eps=1e-05, momentum=0.1)"
    assert repr(create_norm("gn", 16)) == "GroupNorm(4, 16, eps=1e-05)"
    assert repr(create_norm("ln", 16)) == "LayerNorm(16, eps=1e-05)"
    assert repr(create_norm("in", 16)) == "InstanceNorm(16, eps=1e-05)"
    assert "rho_lr_scale=10.0" in repr(create_norm("bin", 16))


@pytest.mark.parametrize("name", ["bn", "in", "gn", "bin"])
def test_bfloat16_inputs_are_normalized_with_float32_statistics(name):
    layer = create_norm(name, C)
    x = (torch.randn(SHAPE) * 4 + 100).to(torch.bfloat16)  # a large mean: bf16 moments would lose it
    out = layer(x)
    assert out.dtype == torch.bfloat16
    expected = create_norm(name, C)(x.float())  # the same (rounded) input in float32
    torch.testing.assert_close(out.float(), expected, atol=0.02, rtol=0.01)


def test_the_sources_call_none_of_torchs_normalizations():
    for module in SCRATCH_MODULES:
        source = inspect.getsource(module)
        for word in FORBIDDEN:
            assert word not in source, f"{module.__name__} mentions {word}"


class _AtenOps(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.names = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.names.add(str(func.overloadpacket.__name__))
        return func(*args, **(kwargs or {}))


def norm_ops(module, x):
    with _AtenOps() as ops:
        module(x.clone().requires_grad_(True)).sum().backward()
    return {name for name in ops.names if "norm" in name}


@pytest.mark.parametrize("name", ALL_NAMES)
def test_no_normalization_kernel_runs_forward_or_backward(name):
    x = torch.randn(SHAPE)
    assert norm_ops(nn.BatchNorm2d(C), x)  # the detector sees torch's kernels
    layer = create_norm(name, C)
    assert norm_ops(layer, x) == set()
    assert norm_ops(layer.eval(), x) == set()


@pytest.mark.parametrize("name", ALL_NAMES)
def test_cifar_resnet_and_small_build_and_train_with_each(name):
    torch.manual_seed(0)
    make_config(model="cifar_resnet", norm_layer=name, depth_n=1)  # validation on the meta device
    make_config(model="small", norm_layer=name)
    for model_name, kwargs in (("cifar_resnet", {"depth_n": 1}), ("small", {})):
        module = create_model(model_name, 10, norm_layer=name, **kwargs).module
        ours = [m for m in module.modules() if type(m).__module__.startswith("normtest_lib.layers")]
        assert ours and [m for _, m in norm_layers(module)] == ours
        logits = module(torch.randn(2, 3, 32, 32))
        assert logits.shape == (2, 10)
        logits.logsumexp(1).sum().backward()
        for param_name, param in module.named_parameters():
            assert param.grad is not None and torch.isfinite(param.grad).all(), param_name


def forward_op_names(module, x):
    with _AtenOps() as ops:
        module(x)
    return ops.names


@pytest.mark.parametrize("memory_format", [torch.channels_last, torch.contiguous_format])
@pytest.mark.parametrize("name", ["ln", "gn", "gn:2"])
def test_group_norms_view_either_memory_format_without_copying_it(name, memory_format):
    """Per-channel moments combined per group, and one scale and shift per sample and channel: no clone, copy
    or gather of the activation in the forward pass, in either memory format; the output keeps the input's
    format and equals torch's, values and gradients."""
    ours, reference = pair(name, dtype=torch.float32)
    x = torch.randn(SHAPE).contiguous(memory_format=memory_format)
    copies = {"clone", "copy_", "_unsafe_view", "repeat_interleave", "index_select", "contiguous"}
    assert forward_op_names(ours, x) & copies == set()
    x_ours, x_reference = x.clone().requires_grad_(), x.clone().requires_grad_()
    out = ours(x_ours)
    assert out.is_contiguous(memory_format=memory_format)
    torch.testing.assert_close(out, reference(x_reference), atol=1e-5, rtol=1e-5)
    upstream = torch.randn_like(out)
    out.backward(upstream)
    reference(x_reference).backward(upstream)
    torch.testing.assert_close(x_ours.grad, x_reference.grad, atol=1e-5, rtol=1e-5)


def test_group_moments_combine_channel_moments_exactly_even_far_from_zero():
    """The law of total variance over a group's equal-sized channels gives the moments of the group at once, in
    float64 to rounding, and in float32 without the cancellation E[x^2] - E[x]^2 would suffer at a mean of 1e3."""
    from normtest_lib.layers.groupnorm import group_moments

    x = torch.randn(3, 8, 5, 7, dtype=torch.float64) * torch.linspace(0.1, 3, 8).view(1, 8, 1, 1) + 1e3
    mean, var = group_moments(x, 2)
    grouped = x.reshape(3, 2, -1)
    torch.testing.assert_close(mean, grouped.mean(dim=2, keepdim=True), atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(var, grouped.var(dim=2, correction=0, keepdim=True), atol=1e-10, rtol=1e-10)
    mean32, var32 = group_moments(x.float(), 2)
    torch.testing.assert_close(var32.double(), grouped.var(dim=2, correction=0, keepdim=True), rtol=1e-4, atol=1e-6)
