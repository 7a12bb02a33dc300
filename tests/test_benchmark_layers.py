"""benchmarks/layers.py runs every variant and writes the figures it promises (not a timing test)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

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
    assert "gn:c/4" in capsys.readouterr().out
