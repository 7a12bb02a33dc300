"""benchmarks/layers.py runs every variant and writes the figures it promises (not a timing test)."""

from __future__ import annotations

import json

import pytest
from torch import nn

from normtest_lib.layers.convnorm import PreconditionedConv2d
from normtest_lib.models import create_model

import script_loader


def load_benchmark():
    return script_loader.load_script("benchmarks/layers.py", "benchmark_layers")


def test_layers_benchmark_writes_one_figure_per_variant(tmp_path, capsys):
    benchmark = load_benchmark()
    out = tmp_path / "layers.json"
    args = ["--device", "cpu", "--batch", "4", "--steps", "1", "--repeats", "1", "--modes", "eager"]
    results = benchmark.main(args + ["--json", str(out)])
    written = json.loads(out.read_text())
    assert set(written["images_per_second"]) == set(benchmark.VARIANTS) == set(results["ratio_to_torch_bn"])
    assert all(value > 0 for value in written["images_per_second"].values())
    assert written["ratio_to_torch_bn"]["torch_bn"] == 1.0
    assert all(0 < share for share in written["forward_share"].values())
    assert written["memory_format"] == {"eager": "contiguous"}
    assert written["model"] == "cifar_resnet n=2"  # as report/speed.py names the network a study trains
    # Eager in the default layout is the engine's path for ConvNorm alone: the others' long runs train compiled.
    assert written["engine_mode"] == {"convnorm": "eager", "convnorm+bn": "eager"}
    assert written["engine_images_per_second"]["convnorm"] == written["images_per_second"]["convnorm"]
    printed = capsys.readouterr().out
    assert "gn:c/4" in printed and "convnorm+bn" in printed
    assert {"convnorm", "convnorm+bn"} <= set(written["ratio_to_torch_bn"])


@pytest.mark.compile
def test_compiled_figures_and_the_targets_they_are_checked_against(tmp_path):
    benchmark = load_benchmark()
    args = ["--device", "cpu", "--batch", "4", "--steps", "1", "--repeats", "1", "--variants", "torch_bn"]
    results = benchmark.main(args + ["--modes", "eager", "channels_last", "compiled"])  # one network compiled
    compiled, eager = results["compiled_images_per_second"]["torch_bn"], results["images_per_second"]["torch_bn"]
    assert compiled > 0 and results["channels_last_images_per_second"]["torch_bn"] > 0
    assert results["compiled_ratio_to_torch_bn_eager"]["torch_bn"] == pytest.approx(compiled / eager)
    # A long torch_bn run compiles on the CPU (engine/compiling.py): its target reads the compiled figure.
    assert results["engine_mode"] == {"torch_bn": "compiled"}
    (target,) = results["targets"]
    assert target == {
        "variant": "torch_bn",
        "engine_mode": "compiled",
        "engine_vs_torch_bn_eager": pytest.approx(compiled / eager),
        "compiled_vs_torch_bn_eager": pytest.approx(compiled / eager),
        "target": 1.4,
        "met": compiled / eager >= 1.4,
    }
    figures = {
        "engine_ratio_to_torch_bn_eager": {"bn": 1.1, "convnorm": 0.6},
        "engine_mode": {"bn": "compiled", "convnorm": "eager"},
        "compiled_ratio_to_torch_bn_eager": {"bn": 1.1},
    }
    assert benchmark.check_targets(figures) == [
        {"variant": "bn", "engine_mode": "compiled", "engine_vs_torch_bn_eager": 1.1,
         "compiled_vs_torch_bn_eager": 1.1, "target": 1.2, "met": False},
        {"variant": "convnorm", "engine_mode": "eager", "engine_vs_torch_bn_eager": 0.6,
         "compiled_vs_torch_bn_eager": None, "target": 0.5, "met": True},
    ]  # fmt: skip


def test_the_engines_mode_for_each_variant_on_the_cpu_is_what_the_engine_resolves():
    import torch

    benchmark = load_benchmark()
    cpu, every_mode = torch.device("cpu"), list(benchmark.MODES)
    assert benchmark.engine_mode("bn", cpu, every_mode) == "compiled"
    assert benchmark.engine_mode("gn:c/4", cpu, every_mode) == "compiled"
    assert benchmark.engine_mode("torch_bn", cpu, every_mode) == "compiled"  # a long run
    assert benchmark.engine_mode("none", cpu, every_mode) == "compiled"
    assert benchmark.engine_mode("convnorm", cpu, every_mode) == "eager"
    assert benchmark.engine_mode("bn", cpu, ["eager", "channels_last"]) is None  # its mode was not measured


def test_compiled_mode_runs_in_the_engines_default_memory_format():
    import torch

    from normtest_lib.engine.environment import CPU_CHANNELS_LAST

    benchmark = load_benchmark()
    cpu = torch.device("cpu")
    assert benchmark.mode_channels_last(benchmark.MODES["compiled"], cpu) is CPU_CHANNELS_LAST[True]
    assert benchmark.mode_channels_last(benchmark.MODES["eager"], cpu) is False  # the figure earlier versions gave
    assert benchmark.mode_channels_last(benchmark.MODES["eager"], torch.device("cuda")) is True  # as training runs


def test_throughput_times_enough_steps_per_pass_on_a_gpu():
    throughput = script_loader.load_script("benchmarks/throughput.py", "benchmark_throughput")
    assert throughput.default_epochs_per_pass("cpu", 512, 128) == 1
    assert throughput.default_epochs_per_pass("cuda", 512, 128) == 25  # 4 steps an epoch: 100 steps a pass
    assert throughput.default_epochs_per_pass("cuda", 4096, 128) == 4


def test_convnorm_variants_build_the_preconditioned_convolution_with_and_without_bn():
    benchmark = load_benchmark()
    assert benchmark.VARIANTS[:7] == ("torch_bn", "bn", "in", "bin", "ln", "gn:c/4", "none")  # unchanged
    assert benchmark.layers_of("bn") == ("bn", "conv")
    for variant, batch_norms in (("convnorm", 0), ("convnorm+bn", 9)):
        norm_layer, conv_layer = benchmark.layers_of(variant)
        model = create_model("cifar_resnet", 10, norm_layer=norm_layer, conv_layer=conv_layer, depth_n=1).module
        assert sum(isinstance(m, PreconditionedConv2d) for m in model.modules()) == 9
        assert not any(isinstance(m, nn.Conv2d) for m in model.modules())
        assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == batch_norms


def test_every_variants_network_is_built_and_timed_under_a_recompile_limit_that_holds_them_all(monkeypatch):
    import torch._dynamo

    benchmark = load_benchmark()
    limits = []

    def fake_timers(variant, batch, execution, steps, mode):
        limits.append(torch._dynamo.config.recompile_limit)
        return (lambda: 1.0, lambda: 0.5)

    monkeypatch.setattr(benchmark, "step_timers", fake_timers)
    variants = ["torch_bn", "bn", "in", "bin", "ln", "gn:c/4", "none", "convnorm", "convnorm+bn"]
    execution = type("Execution", (), {"device": __import__("torch").device("cpu")})()
    figures = benchmark.measure(variants, 4, 1, 1, execution, ("eager", "compiled"))
    # Nine variants compile the same forward code objects, a training and a no-grad graph each: dynamo's default
    # of 8 would send the later ones (gn:c/4, the ConvNorms) to eager or to partly compiled graphs.
    assert len(limits) == 18 and min(limits) >= 2 * len(variants)
    assert torch._dynamo.config.recompile_limit == 8  # restored after measuring
    assert figures["compiled_images_per_second"]["gn:c/4"] == 4.0
