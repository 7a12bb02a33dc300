"""benchmarks/layers.py runs every variant and writes the figures it promises (not a timing test)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from torch import nn

from normtest_lib.layers.convnorm import PreconditionedConv2d
from normtest_lib.models import create_model

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "layers.py"


def load_benchmark():
    spec = importlib.util.spec_from_file_location("benchmark_layers", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_layers_benchmark_writes_one_figure_per_variant(tmp_path, capsys):
    benchmark = load_benchmark()
    out = tmp_path / "layers.json"
    results = benchmark.main(["--device", "cpu", "--batch", "4", "--steps", "1", "--repeats", "1", "--json", str(out)])
    written = json.loads(out.read_text())
    assert set(written["images_per_second"]) == set(benchmark.VARIANTS) == set(results["ratio_to_torch_bn"])
    assert all(value > 0 for value in written["images_per_second"].values())
    assert written["ratio_to_torch_bn"]["torch_bn"] == 1.0
    assert all(0 < share for share in written["forward_share"].values())
    printed = capsys.readouterr().out
    assert "gn:c/4" in printed and "convnorm+bn" in printed
    assert {"convnorm", "convnorm+bn"} <= set(written["ratio_to_torch_bn"])


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
