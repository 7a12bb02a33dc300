"""ConvNorm's preconditioned convolution (``convnorm``): the preconditioner, its running average, resolution, models."""

import copy

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from normtest_lib.config import make_config
from normtest_lib.engine.optim import bind_step_hooks, build_optimizer, run_step_hooks
from normtest_lib.errors import ModelError
from normtest_lib.layers import check_conv_name, conv_names, convnorm, create_conv
from normtest_lib.layers.convnorm import (
    ChannelAffine,
    DepthwiseAffine,
    PreconditionedConv2d,
    fft_size,
    preconditioner,
    running_weight,
    same_window,
)
from normtest_lib.models import create_model


def layer(in_channels=3, out_channels=4, kernel_size=3, stride=1, padding=1, seed=0, dtype=torch.float64, **options):
    torch.manual_seed(seed)
    return PreconditionedConv2d(in_channels, out_channels, kernel_size, stride, padding, **options).to(dtype)


# --- the preconditioner -------------------------------------------------------------------------


@pytest.mark.parametrize("kernel_size,size", [(3, 8), (3, 7), (5, 6), (1, 5), (3, 3)])
def test_each_output_channel_has_unit_energy_at_every_frequency(kernel_size, size):
    module = layer(3, 4, kernel_size, padding=0, eps=0.0)
    kernel = module.weight.detach()
    torus = fft_size((size, size), kernel_size)
    assert torus == (size + kernel_size - 1,) * 2
    spectrum = torch.fft.rfft2(kernel, s=torus)
    v = preconditioner(kernel, torus, eps=0.0)
    assert v.shape == (4, torus[0], torus[1] // 2 + 1)
    energy = (v.unsqueeze(1) * spectrum).abs().square().sum(dim=1)
    torch.testing.assert_close(energy, torch.ones_like(energy), rtol=1e-9, atol=1e-9)
    # Without the preconditioner the energies are far from 1, so the check is not vacuous.
    assert (spectrum.abs().square().sum(dim=1) - 1).abs().max() > 0.1


def test_the_preconditioner_is_detached_float32_and_eps_bounds_it():
    weight = torch.zeros(2, 3, 3, 3, requires_grad=True)
    v = preconditioner(weight.to(torch.bfloat16), (4, 4), eps=1e-4)
    assert v.dtype == torch.float32 and not v.requires_grad
    torch.testing.assert_close(v, torch.full_like(v, 100.0))  # 1/sqrt(eps) where the filter has no energy


def test_scaling_one_output_channels_filter_changes_nothing():
    module = layer(eps=0.0)
    x = torch.randn(2, 3, 9, 9, dtype=torch.float64)
    before = module(x).detach()
    plain_before = F.conv2d(x, module.weight.detach(), padding=1)
    factors = torch.tensor([1.0, 7.5, 0.01, 1.0], dtype=torch.float64).view(-1, 1, 1, 1)
    with torch.no_grad():
        module.weight.mul_(factors)
    torch.testing.assert_close(module(x), before, rtol=1e-10, atol=1e-10)
    # A plain convolution's output changes by those factors, so the check is not vacuous.
    assert not torch.allclose(F.conv2d(x, module.weight.detach(), padding=1), plain_before)


@pytest.mark.parametrize("stride", [1, 2])
def test_1x1_is_a_1x1_convolution_with_each_output_channels_weights_divided_by_their_norm(stride):
    module = layer(5, 6, 1, stride=stride, padding=0, affine="channel")
    x = torch.randn(2, 5, 7, 6, dtype=torch.float64)
    weight = module.weight.detach()
    norms = torch.sqrt(weight.square().sum(dim=(1, 2, 3), keepdim=True) + module.eps)
    expected = F.conv2d(x, weight / norms, stride=stride)
    torch.testing.assert_close(module(x), expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("kernel_size", [3, 5])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("padding", [0, 1, 2])
@pytest.mark.parametrize("size", [(9, 9), (8, 10), (7, 8)])
def test_with_the_preconditioner_at_1_the_layer_is_conv2d(monkeypatch, kernel_size, stride, padding, size):
    monkeypatch.setattr(convnorm, "preconditioner", lambda w, s, eps: torch.ones(w.shape[0], s[0], s[1] // 2 + 1))
    module = layer(3, 4, kernel_size, stride, padding, affine="channel")
    x = torch.randn(2, 3, *size, dtype=torch.float64)
    expected = F.conv2d(x, module.weight.detach(), stride=stride, padding=padding)
    torch.testing.assert_close(module(x), expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(
    "kernel_size,stride,padding,size",
    [(3, 1, 1, 8), (3, 2, 1, 8), (3, 2, 1, 7), (3, 2, 0, 9), (1, 2, 0, 8), (1, 1, 1, 5), (5, 3, 2, 11),
     (5, 1, 2, 3), (3, 1, 1, 2), (4, 2, 1, 8), (5, 2, 0, 6)],
)  # fmt: skip
def test_output_shape_is_conv2ds(kernel_size, stride, padding, size):
    module = layer(3, 4, kernel_size, stride, padding, dtype=torch.float32)
    x = torch.randn(2, 3, size, size + 1)
    expected = nn.Conv2d(3, 4, kernel_size, stride, padding)(x).shape
    assert module(x).shape == expected
    module.eval()
    assert module(x).shape == expected


def test_gradients_reach_the_weights_and_the_affine():
    module = layer(dtype=torch.float32, stride=2)
    x = torch.randn(3, 3, 8, 8, requires_grad=True)
    (module(x) * torch.randn(3, 4, 4, 4)).sum().backward()
    for tensor in (module.weight, module.affine.weight, module.affine.bias, x):
        assert tensor.grad is not None and torch.isfinite(tensor.grad).all() and tensor.grad.abs().sum() > 0


def test_bf16_autocast_runs_the_fft_in_float32_and_keeps_the_convolutions_dtype(monkeypatch):
    module = layer(8, 16, 3, stride=2, padding=1, dtype=torch.float32)
    x = torch.randn(4, 8, 12, 12)
    reference = module(x).detach()
    seen = []
    rfft2 = torch.fft.rfft2

    def recording_rfft2(tensor, *args, **kwargs):
        seen.append(tensor.dtype)
        return rfft2(tensor, *args, **kwargs)

    monkeypatch.setattr(torch.fft, "rfft2", recording_rfft2)
    transformed = []
    fourier = convnorm.fourier_conv_window

    def recording_fourier(x, weight, *args):
        transformed.append((x.dtype, weight.dtype))
        return fourier(x, weight, *args)

    monkeypatch.setattr(convnorm, "fourier_conv_window", recording_fourier)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = module(x)
        conv_dtype = F.conv2d(x, module.weight).dtype
    assert conv_dtype == torch.bfloat16 and out.dtype == conv_dtype
    assert seen and set(seen) == {torch.float32}
    assert transformed == [(torch.float32, torch.float32)]  # the convolution's products too
    assert torch.isfinite(out).all()
    error = (out.float() - reference).norm() / reference.norm()
    assert error < 0.03


# --- the running preconditioner -----------------------------------------------------------------


def test_cosine_schedule_of_the_running_weight():
    assert running_weight(0, 1000, 0.01) == 1.0
    assert running_weight(1000, 1000, 0.01) == pytest.approx(0.01)
    assert running_weight(500, 1000, 0.01) == pytest.approx((1 + 0.01) / 2)
    assert running_weight(5000, 1000, 0.01) == pytest.approx(0.01)
    weights = [running_weight(t, 1000, 0.01) for t in range(0, 1001, 50)]
    assert all(a > b for a, b in zip(weights, weights[1:]))
    assert running_weight(20_000) == pytest.approx((1 + 0.01) / 2)  # the official 40,000 steps and floor 0.01


def test_eval_uses_the_running_preconditioner_updated_by_the_schedule():
    module = layer(decay_steps=100, floor=0.1, eps=0.0)
    x = torch.randn(2, 3, 6, 6, dtype=torch.float64)
    fft = fft_size((6, 6), 3)
    module.eval()
    untrained = module(x)  # before any training: the current weights' preconditioner, and no buffer yet
    assert module.running_preconditioner.numel() == 0 and module.input_size.tolist() == [0, 0]
    module.train()
    module(x)
    v0 = preconditioner(module.weight, fft, 0.0)
    torch.testing.assert_close(module.running_preconditioner, v0)
    assert module.input_size.tolist() == [6, 6]
    module.eval()
    torch.testing.assert_close(module(x), untrained)

    with torch.no_grad():
        module.weight.add_(torch.randn_like(module.weight))
    run_step_hooks(bind_step_hooks(module), 50)  # halfway: a = (1 + floor) / 2
    assert int(module.step) == 50
    module.train()
    trained_out = module(x)
    v1 = preconditioner(module.weight, fft, 0.0)
    a = (1 + 0.1) / 2
    expected_running = (1 - a) * v0 + a * v1
    torch.testing.assert_close(module.running_preconditioner, expected_running)
    module.eval()
    eval_out = module(x)
    assert not torch.allclose(eval_out, trained_out)  # training uses V of the current weights, eval the average
    spectrum = torch.fft.rfft2(F.conv2d(x, module.weight.detach(), padding=2))  # the full convolution, 8x8
    flat = same_window(torch.fft.irfft2(spectrum * expected_running, s=fft), 3, 1)
    torch.testing.assert_close(eval_out, module.affine(flat))


def test_the_builder_takes_the_decay_length_and_ignores_the_bias():
    default = create_conv("convnorm", 3, 8, 3, padding=1, bias=True)
    assert isinstance(default, PreconditionedConv2d) and isinstance(default.affine, DepthwiseAffine)
    assert (default.decay_steps, default.floor) == (40_000, 0.01)
    assert {name for name, _ in default.named_parameters()} == {"weight", "affine.weight", "affine.bias"}
    assert default.affine.weight.shape == (8, 1, 3, 3)
    channel = create_conv("convnorm_channel_affine:500", 3, 8, 3, padding=1, bias=True)
    assert isinstance(channel.affine, ChannelAffine) and channel.decay_steps == 500
    assert {name for name, _ in channel.named_parameters()} == {"weight", "affine.scale", "affine.shift"}
    assert (channel.affine.scale == 1).all() and (channel.affine.shift == 0).all()
    assert create_conv("convnorm:1000", 3, 8, 3).decay_steps == 1000
    assert {"convnorm", "convnorm_channel_affine"} <= set(conv_names())
    check_conv_name("convnorm:1000")
    for bad in ("convnorm:fast", "convnorm:0", "convnorm:-5", "convnorm:1.5"):
        with pytest.raises(ModelError, match=r"conv_layer 'convnorm:.*decay"):
            create_conv(bad, 3, 8, 3)
    with pytest.raises(ModelError, match="affine must be one of depthwise, channel"):
        PreconditionedConv2d(3, 8, 3, affine="batch")


def test_default_initialisation_is_conv2ds_and_the_affine_a_depthwise_conv2ds():
    torch.manual_seed(3)
    ours = create_conv("convnorm", 16, 32, 3)
    torch.manual_seed(3)
    plain = nn.Conv2d(16, 32, 3, bias=False)
    depthwise = nn.Conv2d(32, 32, 3, padding=1, groups=32, bias=True)
    torch.testing.assert_close(ours.weight, plain.weight)
    torch.testing.assert_close(ours.affine.weight, depthwise.weight)
    torch.testing.assert_close(ours.affine.bias, depthwise.bias)
    x = torch.randn(2, 32, 6, 6)
    torch.testing.assert_close(ours.affine(x), depthwise(x))


# --- resolution ---------------------------------------------------------------------------------


def test_a_trained_layer_refuses_another_resolution_in_evaluation_and_training():
    module = layer()
    module(torch.randn(2, 3, 8, 8, dtype=torch.float64))
    module.eval()
    module(torch.randn(1, 3, 8, 8, dtype=torch.float64))
    with pytest.raises(ModelError, match=r"convnorm layer \(3->4, 3x3.*8x8.*cannot evaluate.*10x10"):
        module(torch.randn(1, 3, 10, 10, dtype=torch.float64))
    module.train()
    with pytest.raises(ModelError, match=r"8x8.*cannot train on.*8x9"):
        module(torch.randn(1, 3, 8, 9, dtype=torch.float64))


def test_a_state_dict_of_another_resolution_is_refused_naming_the_layer_and_both():
    model = nn.Sequential(layer(), nn.ReLU())
    model(torch.randn(2, 3, 8, 8, dtype=torch.float64))
    trained_at_8 = copy.deepcopy(model.state_dict())
    other = nn.Sequential(layer(seed=1), nn.ReLU())
    other(torch.randn(2, 3, 12, 12, dtype=torch.float64))
    with pytest.raises(ModelError, match=r"convnorm layer '0' .*12x12.*cannot load a state dict trained on 8x8"):
        other.load_state_dict(trained_at_8)

    fresh = nn.Sequential(layer(seed=2), nn.ReLU())  # untrained: takes the state dict and its resolution
    fresh.load_state_dict(trained_at_8)
    assert fresh[0].running_preconditioner.shape == (4, 10, 6)  # the 10x10 torus of an 8x8 map and a 3x3 kernel
    model.eval(), fresh.eval()
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    torch.testing.assert_close(fresh(x), model(x))
    with pytest.raises(ModelError, match=r"'0'.*8x8.*cannot evaluate.*16x16"):
        fresh(torch.randn(1, 3, 16, 16, dtype=torch.float64))


def test_state_dict_round_trip_keeps_the_step_and_an_untrained_layer_loads_anywhere():
    module = layer()
    module.after_optimizer_step(123)
    module(torch.randn(2, 3, 8, 8, dtype=torch.float64))
    copy_ = layer(seed=5)
    copy_.load_state_dict(module.state_dict())
    assert int(copy_.step) == 123 and copy_._trained_size == (8, 8)
    untrained = layer(seed=6).state_dict()
    copy_.load_state_dict(untrained)  # an untrained state dict resets the layer's resolution
    assert copy_._trained_size is None and copy_.running_preconditioner.numel() == 0


# --- in a network -------------------------------------------------------------------------------


def test_cifar_resnet_with_convnorm_trains_and_with_bn_builds():
    torch.manual_seed(0)
    model = create_model("cifar_resnet", 10, depth_n=1, norm_layer="none", conv_layer="convnorm:100").module
    layers = [m for m in model.modules() if isinstance(m, PreconditionedConv2d)]
    assert len(layers) == 9  # stem, 3 x 2 block convolutions, 2 projection shortcuts
    assert not any(isinstance(m, nn.Conv2d) for m in model.modules())  # the depthwise affine is not one either
    optimizer = build_optimizer(model, make_config(lr=0.05, momentum=0.9, weight_decay=1e-4))
    hooks = bind_step_hooks(model)
    assert len(hooks) == len(layers)
    images, labels = torch.randn(8, 3, 16, 16), torch.randint(0, 10, (8,))
    model.train()
    losses = []
    for step in range(1, 4):
        loss = F.cross_entropy(model(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        run_step_hooks(hooks, step)
        losses.append(loss.item())
    assert all(torch.isfinite(torch.tensor(losses)))
    assert all(int(m.step) == 3 for m in layers)
    assert all(m._trained_size is not None for m in layers if m.kernel_size > 1)
    model.eval()
    assert torch.isfinite(model(images)).all()

    with_bn = create_model("cifar_resnet", 10, depth_n=1, norm_layer="torch_bn", conv_layer="convnorm").module
    assert sum(isinstance(m, PreconditionedConv2d) for m in with_bn.modules()) == 9
    assert sum(isinstance(m, nn.BatchNorm2d) for m in with_bn.modules()) == 9
    assert with_bn(images).shape == (8, 10)


def test_engine_trains_a_convnorm_run_and_reloads_its_checkpoint(tmp_path, monkeypatch):
    from normtest_lib.checkpoint import load_checkpoint
    from normtest_lib.data.synthetic import load_synthetic
    from normtest_lib.engine import prepare, train

    data = load_synthetic("source", n_train=160, n_test=40)
    monkeypatch.setattr(prepare, "load_dataset", lambda name, root=None, download=False: data)
    config = make_config(
        model="cifar_resnet", depth_n=1, norm_layer="none", conv_layer="convnorm:4", epochs=2, batch_size=40,
        train_subset=120, val_fraction=0.2, deterministic=True, device="cpu", lr=0.05,
    )  # fmt: skip
    summary = train(config, tmp_path)
    assert summary["status"] == "complete" and summary["test_acc_at_best_val"] is not None
    state = load_checkpoint(tmp_path / "checkpoint.pt")["state_dict"]
    assert int(state["stem.conv.step"]) == 2 * 3  # 120 training images, batch 40: 3 steps per epoch
    size = summary["input_size"]
    assert state["stem.conv.input_size"].tolist() == [size, size]
    assert state["stem.conv.running_preconditioner"].shape == (16, size + 2, (size + 2) // 2 + 1)
    rebuilt = create_model("cifar_resnet", 10, depth_n=1, norm_layer="none", conv_layer="convnorm:4").module
    rebuilt.load_state_dict(state)
    rebuilt.eval()
    assert torch.isfinite(rebuilt(torch.randn(2, 3, size, size))).all()


@pytest.mark.parametrize("kernel_size", [2, 3, 4])
def test_the_depthwise_affine_pads_as_torchs_same_padding(kernel_size):
    affine = DepthwiseAffine(5, kernel_size)
    x = torch.randn(2, 5, 7, 8)
    expected = F.conv2d(x, affine.weight, affine.bias, padding="same", groups=5)
    torch.testing.assert_close(affine(x), expected)


def test_a_compiled_layer_compiles_once_for_all_its_training_steps():
    """The decay weight a(t) comes from the ``step`` buffer, not a Python int: compiled code that read an int
    would be specialised to it and recompile at every optimizer step (then stop compiling after 8)."""
    torch._dynamo.reset()
    module = layer(dtype=torch.float32, decay_steps=10)
    compiled = torch.compile(module, backend="eager")  # dynamo's guards and recompiles, without inductor's cost
    x = torch.randn(2, 3, 8, 8)
    from torch._dynamo.utils import counters

    counters.clear()
    for step in range(1, 7):
        compiled(x).sum().backward()
        module.after_optimizer_step(step)
    frames = counters["stats"]["unique_graphs"]
    # The first forward creates the running buffer (its own graph); every later step reuses one graph.
    assert frames <= 3, f"{frames} graphs compiled for 6 steps"
    eager = layer(dtype=torch.float32, decay_steps=10)
    for step in range(1, 7):
        eager(x).sum().backward()
        eager.after_optimizer_step(step)
    torch.testing.assert_close(module.running_preconditioner, eager.running_preconditioner)


def test_the_preconditionings_own_backward_is_autograds():
    """_Precondition's backward (the same operation on the gradient) against autograd through the FFTs."""
    torch.manual_seed(0)
    weight = torch.randn(4, 3, 3, 3, dtype=torch.float64)
    v = preconditioner(weight, (10, 9), eps=1e-5)
    x = torch.randn(2, 4, 10, 9, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: convnorm.precondition(t, v), (x,))
    upstream = torch.randn(2, 4, 10, 9, dtype=torch.float64)
    (ours,) = torch.autograd.grad(convnorm.precondition(x, v), x, upstream)
    (autograd,) = torch.autograd.grad(torch.fft.irfft2(torch.fft.rfft2(x) * v, s=(10, 9)), x, upstream)
    torch.testing.assert_close(ours, autograd, rtol=1e-12, atol=1e-12)
