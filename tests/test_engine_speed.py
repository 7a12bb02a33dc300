"""The fastest correct path: compile and channels_last resolved per run, the eager fallback,
TF32 off, cuBLAS's workspace, the compile cache; compiled training against eager training."""

from __future__ import annotations

import copy
import json
import os
import warnings

import pytest
import torch
from torch import nn

from normtest_lib.config import make_config
from normtest_lib.data.synthetic import load_synthetic
from normtest_lib.engine import compiling, environment, loop, prepare, train
from normtest_lib.engine.compiling import (
    BREAK_EVEN_IMAGES,
    CPU_SMALL_GAIN_BREAK_EVEN,
    CompiledWithFallback,
    resolve_compile,
)
from normtest_lib.engine.environment import CPU_CHANNELS_LAST, execution_context, resolve_speed
from normtest_lib.grid.execute import kernel_env
from normtest_lib.layers import create_norm
from normtest_lib.models import create_model

CPU, CUDA = torch.device("cpu"), torch.device("cuda")
TINY = dict(epochs=1, batch_size=32, train_subset=80, val_fraction=0.2, deterministic=True, device="cpu")
_DATA = {}


@pytest.fixture(autouse=True)
def tiny_data(monkeypatch):
    def tiny_dataset(name, root=None, download=False):
        if "data" not in _DATA:
            _DATA["data"] = load_synthetic("source", n_train=100, n_test=40)
        return _DATA["data"]

    monkeypatch.setattr(prepare, "load_dataset", tiny_dataset)


def test_compile_auto_compiles_only_runs_long_enough_to_repay_it():
    cpu = BREAK_EVEN_IMAGES["cpu"]
    assert resolve_compile("auto", CPU, cpu - 1)[0] is False
    assert resolve_compile("auto", CPU, cpu)[0] is True
    assert resolve_compile("auto", CUDA, cpu)[0] is False  # a GPU step is short: compiling repays later
    assert resolve_compile("auto", CUDA, BREAK_EVEN_IMAGES["cuda"])[0] is True
    assert resolve_compile("auto", torch.device("mps"), 10**9)[0] is False
    decided, reason = resolve_compile("auto", CPU, 9_000)
    assert not decided and "9000 training images, fewer than the 150000" in reason
    assert resolve_compile(True, CPU, 1) == (True, "compile: true in the run's parameters")
    assert resolve_compile(False, CUDA, 10**9)[0] is False
    # ConvNorm stays eager under auto, whatever the length, and compiles when asked.
    for conv_layer in ("convnorm", "convnorm:240", "convnorm_channel_affine"):
        decided, reason = resolve_compile("auto", CUDA, 10**9, conv_layer)
        assert decided is False and "ConvNorm" in reason
    assert resolve_compile("auto", CPU, 10**9, "conv")[0] is True
    # On the CPU, networks with torch's batch norm or no normalization gain ~5 % a step: compiled from 10^6 images on.
    for norm_layer in ("torch_bn", "none"):
        decided, reason = resolve_compile("auto", CPU, 300_000, "conv", norm_layer)
        assert decided is False and f"fewer than the 1000000 that repay compiling a norm_layer {norm_layer}" in reason
        assert resolve_compile("auto", CPU, CPU_SMALL_GAIN_BREAK_EVEN, "conv", norm_layer)[0] is True
        assert resolve_compile("auto", CUDA, BREAK_EVEN_IMAGES["cuda"], "conv", norm_layer)[0] is True  # by size
        assert resolve_compile(True, CPU, 1, "conv", norm_layer)[0] is True
    assert resolve_compile("auto", CPU, 300_000, "conv", "bn")[0] is True
    assert resolve_compile(True, CPU, 1, "convnorm")[0] is True


@pytest.mark.parametrize("images", [10, 10**7])
def test_channels_last_auto_is_the_measured_default_for_the_compile_decision(images):
    with execution_context(make_config(device="cpu")) as execution:
        resolved = resolve_speed(execution, make_config(device="cpu", norm_layer="bn"), images)
        assert resolved.compile is (images >= BREAK_EVEN_IMAGES["cpu"])
        assert resolved.channels_last is CPU_CHANNELS_LAST[resolved.compile]
        kept = resolve_speed(execution, make_config(device="cpu", norm_layer="bn", channels_last=False), images)
        assert kept.channels_last is False and kept.compile is resolved.compile
        torch_bn = resolve_speed(execution, make_config(device="cpu", norm_layer="torch_bn"), images)
        assert torch_bn.compile is (images >= CPU_SMALL_GAIN_BREAK_EVEN)
        assert torch_bn.channels_last is CPU_CHANNELS_LAST[torch_bn.compile]
    assert environment.default_channels_last(CUDA, compiled=False) is True


def test_a_convnorm_network_keeps_the_default_layout_on_the_cpu():
    # Its transforms read (N * C * H, W) rows, a copy of a channels_last input: measured slower.
    for conv_layer in ("convnorm", "convnorm:240", "convnorm_channel_affine"):
        config = make_config(device="cpu", conv_layer=conv_layer)
        with execution_context(config) as execution:
            assert execution.channels_last is False
            assert resolve_speed(execution, config, 10).channels_last is False
    assert environment.default_channels_last(CPU, compiled=False, conv_layer="conv") is True
    assert environment.default_channels_last(CUDA, compiled=False, conv_layer="convnorm") is True


def test_a_short_run_records_what_auto_resolved_to(tmp_path):
    train(make_config(TINY, norm_layer="bn"), tmp_path)  # a from-scratch layer: compiled when the run is long
    (start,) = json.loads((tmp_path / "environment.json").read_text())["starts"]
    assert (start["compile"], start["compile_setting"]) == (False, "auto")
    assert "80 training images, fewer than" in start["compile_reason"]
    assert start["channels_last"] is CPU_CHANNELS_LAST[False] and start["channels_last_setting"] == "auto"
    assert start["tf32"] is False


def test_tf32_is_off_during_a_run_and_restored_afterwards():
    saved = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    # Both allowed before (cuDNN's default, and a caller's matmul setting): a float32 run must not use TF32.
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = True
    try:
        with execution_context(make_config(device="cpu")):
            assert not torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32
        assert torch.backends.cudnn.allow_tf32 and torch.backends.cuda.matmul.allow_tf32
        with pytest.raises(RuntimeError), execution_context(make_config(device="cpu")):
            raise RuntimeError("boom")
        assert torch.backends.cudnn.allow_tf32 and torch.backends.cuda.matmul.allow_tf32
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


@pytest.mark.parametrize("cuda_in_use", [False, True])
def test_cublas_workspace_set_after_cuda_started_is_warned_and_recorded(monkeypatch, cuda_in_use):
    """cuBLAS reads CUBLAS_WORKSPACE_CONFIG once, at its first handle: a process that already used
    CUDA cannot make it deterministic any more, and the run says so."""
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    monkeypatch.setattr(environment, "resolve_device", lambda name: CUDA)
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: cuda_in_use)
    monkeypatch.setattr(environment, "device_name", lambda device: "fake GPU")
    config = make_config(device="cpu", deterministic=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with execution_context(config) as execution:
            assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
            info = environment.environment_info(execution, config)
    assert any("already initialised" in str(w.message) for w in caught) is cuda_in_use
    assert execution.cublas_workspace_config_late is cuda_in_use
    assert info["cublas_workspace_config_late"] is cuda_in_use and info["cublas_workspace_config"] == ":4096:8"
    assert "CUBLAS_WORKSPACE_CONFIG" not in os.environ


def test_every_grid_run_starts_with_cublas_deterministic_and_the_profiles_compile_cache(tmp_path, monkeypatch):
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    env = kernel_env(tmp_path / "study" / "profile" / "abc123")
    assert env["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    assert env["TORCHINDUCTOR_CACHE_DIR"] == str((tmp_path / "study" / "profile" / ".compile-cache").resolve())
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", "/elsewhere")  # the user's own cache wins
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":16:8")
    assert kernel_env(tmp_path / "run") == {}


def test_a_compiler_that_fails_leaves_the_run_eager_with_the_reason_recorded(tmp_path, monkeypatch):
    def broken_compile(*args, **kwargs):
        raise RuntimeError("no C compiler found\nmore lines of compiler output")

    monkeypatch.setattr(torch, "compile", broken_compile)
    with pytest.warns(RuntimeWarning, match=r"torch.compile failed, training eagerly instead \(RuntimeError: no C"):
        summary = train(make_config(TINY, compile=True), tmp_path / "fallback")
    assert summary["status"] == "complete"
    (start,) = json.loads((tmp_path / "fallback" / "environment.json").read_text())["starts"]
    assert start["compile"] is False and start["compile_setting"] is True
    assert start["compile_reason"] == "torch.compile failed, eager: RuntimeError: no C compiler found"
    eager = train(make_config(TINY, compile=False), tmp_path / "eager")
    assert summary["final_test_acc"] == eager["final_test_acc"]
    assert summary["best_val_acc"] == eager["best_val_acc"]


def test_a_failing_first_compiled_call_falls_back_and_a_later_failure_propagates():
    module = nn.Linear(3, 2)
    x = torch.randn(4, 3)
    calls = []

    def failing_compile(x):
        calls.append(x)
        raise RuntimeError("inductor: unsupported operation\npages of generated code")

    wrapper = CompiledWithFallback(module, failing_compile)
    with pytest.warns(RuntimeWarning, match="unsupported operation"):
        assert torch.equal(wrapper(x), module(x))
    assert wrapper.fallback_reason == "RuntimeError: inductor: unsupported operation"
    assert torch.equal(wrapper(x), module(x)) and len(calls) == 1  # eager from then on
    assert wrapper.weight is module.weight  # attributes read through

    broken = {"now": False}

    def compiled_then_broken(x):
        if broken["now"]:
            raise ValueError("a real error after compiled calls worked")
        return module(x)

    working = CompiledWithFallback(module, compiled_then_broken)
    working(x)
    broken["now"] = True
    with pytest.raises(ValueError, match="a real error"):
        working(x)
    assert working.fallback_reason is None


# --- compiled against eager (each compiles one tiny network: a few seconds) ---


def _one_epoch(config):
    with execution_context(config) as execution:
        session = loop.build_session(config, execution)
        loss, accuracy, _ = loop.train_one_epoch(session, 0)
        return session, loss, {k: v.detach().clone() for k, v in session.model.state_dict().items()}


@pytest.mark.compile
def test_compiled_and_eager_training_agree_to_float_tolerance():
    """Two optimizer steps of the engine, compiled and eager, from the same seed: same loss and weights."""
    config = dict(TINY, model="small", norm_layer="bn", channels_last=False, deterministic=False, augment=False)
    compiled_session, compiled_loss, compiled_state = _one_epoch(make_config(config, compile=True))
    assert isinstance(compiled_session.step_model, CompiledWithFallback)
    assert compiled_session.step_model.fallback_reason is None  # it really ran compiled
    _, eager_loss, eager_state = _one_epoch(make_config(config, compile=False))
    assert compiled_loss == pytest.approx(eager_loss, rel=1e-5)
    for name, value in eager_state.items():
        torch.testing.assert_close(compiled_state[name], value, rtol=1e-4, atol=1e-5, msg=name)


class _AllNorms(nn.Module):
    """Every from-scratch layer on its own copy of the input, so one compilation covers them all."""

    NAMES = ("bn", "in", "ln", "gn", "bin")

    def __init__(self, channels):
        super().__init__()
        self.norms = nn.ModuleList(create_norm(name, channels) for name in self.NAMES)

    def forward(self, xs):
        return [norm(x) for norm, x in zip(self.norms, xs)]


@pytest.mark.compile
def test_from_scratch_layers_keep_their_numbers_under_compile():
    """Outputs, input gradients, parameter gradients and running statistics of the compiled layers
    equal the eager ones (which the parity tests hold against torch's) through two training steps,
    in both memory formats."""
    torch.manual_seed(0)
    eager = _AllNorms(8)
    with torch.no_grad():
        for norm in eager.norms:
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.uniform_(-0.5, 0.5)
    compiled_module = copy.deepcopy(eager)
    compiled = torch.compile(compiled_module)
    for step, memory_format in enumerate((torch.contiguous_format, torch.channels_last)):
        x = (torch.randn(4, 8, 5, 5) * 3 + 1).contiguous(memory_format=memory_format)
        target = torch.randn(4, 8, 5, 5)
        results = []
        for model, module in ((eager, eager), (compiled, compiled_module)):
            module.zero_grad()
            xs = [x.clone().requires_grad_(True) for _ in _AllNorms.NAMES]
            outs = model(xs)
            sum((out * target).sum() for out in outs).backward()
            results.append((outs, [xi.grad for xi in xs]))
        for name, out, ref, grad, ref_grad in zip(_AllNorms.NAMES, results[1][0], results[0][0], results[1][1], results[0][1]):
            torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5, msg=f"{name} output, step {step}")
            torch.testing.assert_close(grad, ref_grad, atol=1e-5, rtol=1e-5, msg=f"{name} input gradient")
        for (name, param), ref in zip(compiled_module.named_parameters(), eager.parameters()):
            torch.testing.assert_close(param.grad, ref.grad, atol=1e-5, rtol=1e-5, msg=name)
    for (name, buffer), ref in zip(compiled_module.named_buffers(), eager.buffers()):
        assert torch.equal(buffer, ref) if buffer.dtype == torch.long else torch.allclose(buffer, ref, atol=1e-6), name


@pytest.mark.compile
def test_group_norm_network_compiles_into_one_graph():
    model = create_model("cifar_resnet", 10, norm_layer="gn:c/4", depth_n=1).module
    explained = torch._dynamo.explain(model)(torch.randn(2, 3, 32, 32))
    assert (explained.graph_count, explained.graph_break_count) == (1, 0)
