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
    # Which of the measured modes the engine trains each variant in, for a long run.
    engine = {**compiled, "engine_mode": {"torch_bn": "compiled", "bin": "compiled", "none": "channels_last"}}
    assert speed.speed_table(engine)["a long run trains"].to_dict() == {
        "torch_bn": "compiled", "bin": "compiled", "none": "channels last"}
    assert "a long run trains" not in table.columns
    assert ">channels last<" in speed.style_speed_table(speed.speed_table(engine)).to_html()  # text, unformatted


def test_a_speed_table_shows_images_per_second_whole_ratios_with_two_decimals_and_ms_with_one():
    compiled = {**BENCH, "images_per_second": {"torch_bn": 541.24, "bin": 250.6, "none": 1000.0},
                "compiled_images_per_second": {"torch_bn": 1750.4, "bin": 650.0, "none": 1200.0}}
    html = speed.style_speed_table(speed.speed_table(compiled)).to_html()
    assert ">541<" in html and "541.24" not in html and ">1,750<" in html  # images per second, whole
    assert ">0.50<" in html  # bin's ratio to torch_bn
    assert ">300.0<" not in html and ">299.0<" in html  # bin's normalization ms per step (399 - 100)


# --- which network the figures are for, and what a profile costs ---------------------------------

MEASURED = {**BENCH, "model": "cifar_resnet n=2", "batch": 128}


def runs_of(count, **params):
    return [dict(params) for _ in range(count)]


def test_network_names_the_depth_only_for_a_model_that_reads_it():
    assert speed.network_name("cifar_resnet", 3) == "cifar_resnet n=3"
    assert speed.network_name("cifar_resnet18", 2) == "cifar_resnet18"  # depth_n is set for every run, read by one model
    # The grid's defaults fill what a run leaves out: the schema's depth_n 2 and batch 128.
    assert speed.trained_networks([{"model": "cifar_resnet"}]) == {("cifar_resnet n=2", 128): 1}


def test_the_network_sentence_says_when_every_run_trains_the_measured_network():
    params = runs_of(3, model="cifar_resnet", depth_n=2, batch_size=128)
    text = speed.network_sentence(MEASURED, params, "local")
    assert text == "The benchmark measured `cifar_resnet n=2` at batch 128: the network and batch that all 3 runs of the `local` profile train."


def test_the_network_sentence_names_another_depth_and_says_it_is_not_what_the_profile_trains():
    params = runs_of(4, model="cifar_resnet", depth_n=5, batch_size=128)
    text = speed.network_sentence(MEASURED, params, "deep")
    assert "which is not what the `deep` profile trains: its 4 runs train `cifar_resnet n=5` at batch 128." in text
    assert "the network and batch" not in text


def test_the_network_sentence_counts_the_runs_at_another_batch():
    params = runs_of(4, model="cifar_resnet", depth_n=2, batch_size=128) + runs_of(2, model="cifar_resnet", batch_size=8)
    text = speed.network_sentence(MEASURED, params, "local")
    assert "the network and batch of 4 of the 6 runs of the `local` profile" in text
    assert text.endswith("the other 2 train the same network at batch 8, which it did not measure.")
    other_model = runs_of(2, model="cifar_resnet18", batch_size=256) + runs_of(1, model="small", batch_size=256)
    assert speed.network_sentence(MEASURED, other_model, "paper").endswith(
        "its 3 runs train `cifar_resnet18` at batch 256 (2 runs); `small` at batch 256 (1 run)."
    )
    assert "could not be read" in speed.network_sentence(MEASURED, None, "local")


def test_profile_params_reads_the_grid_with_its_pretraining_runs_without_the_data(tmp_path):
    grid = tmp_path / "grid.yml"
    grid.write_text(
        "study: s\nbase: {model: cifar_resnet, depth_n: 3, dataset: imagefolder, data_root: nowhere}\n"
        "axes: {seed: [0, 1]}\n"
        "profiles:\n  local:\n    pretrain: {model: cifar_resnet, batch_size: 64, follow: [seed]}\n    base: {pretrained: '@pretrain'}\n"
    )
    params = speed.profile_params(grid, "local")  # data_root does not exist: validating would fail
    # One pretraining run per seed (follow), with its own parameters: depth_n left to the default.
    assert speed.trained_networks(params) == {("cifar_resnet n=3", 128): 2, ("cifar_resnet n=2", 64): 2}
    assert speed.profile_params(grid, "missing") is None and speed.profile_params(tmp_path / "none.yml", "local") is None


def variant(index, conv, norm, runs, first, steady, run_seconds):
    return {
        "variant": index, "example_run": f"run{index}",
        # seed and label_noise are the example run's; label_noise agrees here, seed does not: neither labels a row.
        "differs_by": {"label_noise": 0.2, "conv_layer": conv, "norm_layer": norm, "seed": index, "noise_seed": 0},
        "runs": runs, "first_epoch_seconds": first, "steady_epoch_seconds": steady,
        "train_images_per_second": 400.6 - 100 * index, "probe_seconds_per_epoch": 2.04, "run_seconds": run_seconds,
    }  # fmt: skip


COST = {
    "grid": "params/s.yml", "profile": "local", "workers": 2, "threads": 1, "epochs_measured": 2,
    "time": "2026-12-06T13:36:33Z", "load_average_before": 0.13, "load_average_after": 1.17,
    "variants": [variant(0, "conv", "torch_bn", 2, 11.58, 7.18, [3600.0, 3600.0]),
                 variant(1, "convnorm", "none", 1, 20.69, 18.54, [7200.0]),
                 variant(2, "convnorm", "torch_bn", 1, 22.71, 19.70, [9000.0])],
    "total_run_seconds": 23400.0, "wall_seconds": 12600.0,
}  # fmt: skip


def test_the_profile_cost_table_has_a_row_per_variant_labelled_by_what_tells_them_apart(tmp_path):
    path = speed.profile_cost_path("s", "local", tmp_path)
    assert path == tmp_path / "profile-cost-s-local.json" and speed.load_profile_cost("s", "local", tmp_path) is None
    path.write_text(json.dumps(COST))
    table = speed.profile_cost_table(speed.load_profile_cost("s", "local", tmp_path))
    assert list(table.index.names) == ["conv_layer", "norm_layer"]  # not label_noise (equal), seed nor noise_seed
    assert list(table.index) == [("conv", "torch_bn"), ("convnorm", "none"), ("convnorm", "torch_bn")]
    assert table["runs"].tolist() == [2, 1, 1]
    assert table["first epoch (s)"].tolist() == [11.58, 20.69, 22.71]
    assert table["steady epoch (s)"].tolist() == [7.18, 18.54, 19.70]
    assert table["hours of runs"].tolist() == pytest.approx([2.0, 2.0, 2.5])
    html = speed.style_profile_cost_table(table).to_html()
    assert ">401<" in html and ">11.6<" in html and ">2.0<" in html and ">2.50<" in html  # images/s whole, seconds .1
    assert "11.58" not in html and "400.6" not in html


def test_variants_nothing_tells_apart_are_numbered():
    same = {**COST, "variants": [variant(0, "conv", "bn", 1, 1.0, 1.0, [1.0]), variant(1, "conv", "bn", 1, 2.0, 2.0, [2.0])]}
    assert speed.profile_cost_table(same).index.name == "variant"


def test_the_profile_cost_sentence_gives_the_hours_or_the_command_that_measures_them():
    text = speed.profile_cost_sentence(COST, "params/s.yml", "local", "benchmarks/results/profile-cost-s-local.json", [{}] * 4)
    assert "2 epochs of each of 3 variants of the `local` profile" in text
    assert "its 4 runs take 6.5 hours one after another, about 3.5 hours of wall time on 2 workers." in text
    assert "load average 0.13 before, 1.17 after" in text and "does not size it" not in text
    assert "The profile has 6 runs now" in speed.profile_cost_sentence(COST, "params/s.yml", "local", "x.json", [{}] * 6)
    missing = speed.profile_cost_sentence(None, "params/s.yml", "local", "benchmarks/results/profile-cost-s-local.json")
    assert missing == (
        "The `local` profile's cost has not been measured: `python benchmarks/profile_cost.py params/s.yml --profile local "
        "--json benchmarks/results/profile-cost-s-local.json` measures it."
    )


def test_variants_read_from_the_grids_own_runs_are_said_and_shown():
    from_runs = {**COST, "variants_from_runs": 1,
                 "variants": [{**COST["variants"][0], "measured_from": "run abc (30 epochs)"},
                              *({**v, "measured_from": "2 epochs trained here"} for v in COST["variants"][1:])]}  # fmt: skip
    text = speed.profile_cost_sentence(from_runs, "params/s.yml", "local", "x.json", [{}] * 4)
    assert "1 of the 3 variants of the `local` profile read from the grid's own runs of them" in text
    assert "the other 2 trained for 2 epochs each" in text and "2 epochs of each of" not in text
    table = speed.profile_cost_table(from_runs)
    assert table["measured from"].tolist() == ["run abc (30 epochs)", "2 epochs trained here", "2 epochs trained here"]
    assert "measured from" not in speed.profile_cost_table(COST)


def test_a_cost_read_wholly_from_the_grids_runs_says_so_and_gives_no_load():
    # Nothing was trained while measuring: the load average then describes the machine, not the figures.
    all_runs = {**COST, "variants_from_runs": 3, "load_average_before": 3.77, "load_average_after": 3.77,
                "variants": [{**v, "measured_from": f"run r{i} (100 epochs)"} for i, v in enumerate(COST["variants"])]}  # fmt: skip
    text = speed.profile_cost_sentence(all_runs, "params/s.yml", "local", "x.json", [{}] * 4)
    assert "each of the 3 variants of the `local` profile read from the grid's own run of it" in text
    assert "as the grid trained it, 2 at a time with 1 thread each." in text
    assert "load average" not in text and "the other 0" not in text
    assert "its 4 runs take 6.5 hours one after another" in text


def test_the_rows_a_profile_trains_are_named_as_the_benchmark_names_them():
    bench = {"images_per_second": {"torch_bn": 1.0, "bn": 1.0, "none": 1.0, "convnorm": 1.0, "convnorm+bn": 1.0}}
    runs = [{"norm_layer": "none"}, {}, {"conv_layer": "convnorm:1600", "norm_layer": "none"}]  # {}: torch_bn, conv
    assert speed.benchmark_variants(runs, bench) == ["torch_bn", "none", "convnorm"]  # the benchmark's order
    assert speed.benchmark_variants([{"conv_layer": "convnorm"}], bench) == ["convnorm+bn"]
