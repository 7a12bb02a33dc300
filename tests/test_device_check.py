"""benchmarks/device_check.py (make device-check) runs all its steps on the CPU with --tiny."""

from __future__ import annotations

import json

import pytest

from normtest_lib.engine.rundir import RunFolder

import script_loader


def load_script():
    return script_loader.load_script("benchmarks/device_check.py", "device_check")


@pytest.mark.slow
def test_every_step_runs_tiny_on_the_cpu_and_writes_where_the_gpu_check_will(tmp_path):
    check = load_script()
    record = check.main(["--device", "cpu", "--tiny", "--root", str(tmp_path)])
    assert list(record["steps"]) == list(check.STEPS)
    assert all(entry["status"] == "ok" for entry in record["steps"].values()), record
    results = tmp_path / "benchmarks" / "results"
    assert json.loads((results / "device-check-cpu-tiny.json").read_text()) == record
    assert "skipped" in (results / "device-check-tests.txt").read_text()  # no CUDA here: the CUDA tests skip
    assert set(json.loads((results / "layers-cpu.json").read_text())["images_per_second"]) == {"torch_bn", "bn"}
    for model in ("small", "resnet18"):
        assert json.loads((results / f"throughput-cpu-{model}.json").read_text())["engine_ips"] > 0
    for study in check.STUDIES:
        (folder,) = (tmp_path / "results" / study / "gpu-tiny").iterdir()
        assert RunFolder(folder).read_summary()["status"] == "complete"


def test_the_short_runs_are_each_studys_local_runs_cut_short_on_the_device(tmp_path):
    check = load_script()
    (tmp_path / "data" / "cifar10-jpeg").mkdir(parents=True)  # the run schema checks that the data root exists
    for study in check.STUDIES:
        config = check.short_run_config(study, "cpu", tiny=False, base=tmp_path)
        assert (config.device, config.epochs, config.dataset) == ("cpu", 3, "imagefolder")
        assert config.pretrained == "none" and config.train_subset <= 10_000
        assert str(config.data_root).endswith("data/cifar10-jpeg")
    assert check.short_run_config("convnorm_label_noise", "cpu", tiny=False, base=tmp_path).train_subset == 2_000
