"""The benchmark's figures turned into a table and a sentence, checked against hand computations."""

import json

import pytest

from normtest_lib.report import speed

BENCH = {
    "device_name": "cpu",
    "threads": 2,
    "batch": 100,
    "images_per_second": {"torch_bn": 500.0, "bin": 250.0, "none": 1000.0},
    "ratio_to_torch_bn": {"torch_bn": 1.0, "bin": 0.5, "none": 2.0},
    "forward_share": {"torch_bn": 0.4, "bin": 0.45, "none": 0.3},
}


def test_normalization_cost_is_the_time_added_over_the_network_without_normalization():
    cost = speed.normalization_ms_per_step(BENCH)
    # 100 images at 500/s = 200 ms, at 1000/s = 100 ms: torch_bn adds 100 ms; bin 400 - 100 = 300 ms.
    assert cost["torch_bn"] == pytest.approx(100.0)
    assert cost["bin"] == pytest.approx(300.0)
    assert cost["none"] == pytest.approx(0.0)


def test_speed_sentence_names_the_slowest_and_its_cost_against_torch_bn():
    text = speed.speed_sentence(BENCH, ["bin"], target=0.5)
    assert "`bin` at 0.50x" in text and "meets the target of 0.50x" in text
    assert "adds 300 ms per step and `torch_bn` 100 ms (3.0x)" in text
    assert "misses" in speed.speed_sentence(BENCH, ["bin"], target=0.6)


def test_speed_table_and_loading(tmp_path):
    table = speed.speed_table(BENCH)
    assert table.loc["bin", "ratio to torch_bn"] == 0.5 and table.loc["bin", "forward share of the step"] == 0.45
    assert speed.load_benchmark(tmp_path / "missing.json") is None
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(BENCH))
    assert speed.load_benchmark(path)["batch"] == 100


def test_compiled_figures_get_their_columns_and_sentence():
    compiled = {**BENCH, "compiled_images_per_second": {"torch_bn": 750.0, "bin": 650.0, "none": 1200.0}}
    table = speed.speed_table(compiled)
    assert table.loc["bin", "compiled images/s"] == 650.0
    assert table.loc["bin", "compiled, ratio to torch_bn eager"] == pytest.approx(1.3)
    assert "compiled images/s" not in speed.speed_table(BENCH).columns  # an older file: eager only
    text = speed.compiled_sentence(compiled, ["bin"], target=1.2)
    assert "`bin` at 1.30x `torch_bn`'s eager images per second" in text and "meets the target of 1.20x" in text
    assert "misses" in speed.compiled_sentence(compiled, ["bin"], target=1.4)
    assert speed.compiled_sentence(BENCH, ["bin"], target=1.2) == ""


def test_a_speed_table_shows_images_per_second_whole_ratios_with_two_decimals_and_ms_with_one():
    compiled = {**BENCH, "images_per_second": {"torch_bn": 541.24, "bin": 250.6, "none": 1000.0},
                "compiled_images_per_second": {"torch_bn": 1750.4, "bin": 650.0, "none": 1200.0}}
    html = speed.style_speed_table(speed.speed_table(compiled)).to_html()
    assert ">541<" in html and "541.24" not in html and ">1,750<" in html  # images per second, whole
    assert ">0.50<" in html  # bin's ratio to torch_bn
    assert ">300.0<" not in html and ">299.0<" in html  # bin's normalization ms per step (399 - 100)
