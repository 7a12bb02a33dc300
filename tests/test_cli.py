import json

import pytest

from normtest_lib.cli import main
from normtest_lib.input_norm import SETTINGS


def _stats_json(capsys, *argv):
    assert main(["stats", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_stats_json_has_the_documented_keys(capsys):
    report = _stats_json(capsys, "synthetic-dim")
    assert set(report) == {"dataset", "split", "n_images", "mean", "std", "normalized"}
    assert report["dataset"] == "synthetic-dim" and report["split"] == "train" and report["n_images"] == 6000
    assert set(report["normalized"]) == set(SETTINGS)
    finetune = report["normalized"]["finetune"]
    assert finetune["mean"] == pytest.approx([0, 0, 0], abs=1e-6)
    assert finetune["std"] == pytest.approx([1, 1, 1], abs=1e-6)
    unit = report["normalized"]["unit"]
    assert unit["mean"] == pytest.approx(report["mean"]) and unit["std"] == pytest.approx(report["std"])
    # A dim, low-contrast domain standardized with ImageNet statistics lands far below zero.
    assert all(m < -1 for m in report["normalized"]["pretrain"]["mean"])


def test_stats_text_output_names_every_setting(capsys):
    assert main(["stats", "synthetic"]) == 0
    out = capsys.readouterr().out
    assert "6000 images" in out
    for setting in SETTINGS:
        assert setting in out


def test_stats_bad_input_is_one_clear_error(capsys, tmp_path):
    assert main(["stats", "cifar11"]) == 2
    assert "unknown data set 'cifar11'" in capsys.readouterr().err
    assert main(["stats", "imagefolder", "--root", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "missing" in err


@pytest.mark.realdata
def test_stats_reproduces_the_real_cifar10_jpeg_statistics(capsys, cifar10_jpeg_root):
    report = _stats_json(capsys, "imagefolder", "--root", str(cifar10_jpeg_root))
    assert report["n_images"] == 50_000
    assert report["mean"] == pytest.approx([0.4913, 0.4821, 0.4465], abs=5e-4)
    assert report["std"] == pytest.approx([0.2454, 0.2429, 0.2607], abs=5e-4)


@pytest.mark.realdata
def test_stats_reproduces_the_real_tiny_imagenet_statistics(capsys, tiny_imagenet_root):
    report = _stats_json(capsys, "tiny_imagenet_200", "--root", str(tiny_imagenet_root))
    assert report["n_images"] == 100_000
    assert report["mean"] == pytest.approx([0.4802, 0.4481, 0.3975], abs=5e-4)
    assert report["std"] == pytest.approx([0.2764, 0.2689, 0.2816], abs=5e-4)
    # In RGB, Tiny ImageNet standardized with ImageNet statistics is close to zero mean,
    # unlike the earlier work's BGR-loaded row (-0.38, -0.04, 0.33).
    assert max(abs(m) for m in report["normalized"]["pretrain"]["mean"]) < 0.1


def test_train_bad_inputs_are_one_line_errors_before_training(capsys, tmp_path):
    bad_yaml = tmp_path / "p.yml"
    bad_yaml.write_text("epochs: [1\n")
    assert main(["train", "--out", str(tmp_path / "r"), "-f", str(bad_yaml)]) == 2
    assert "not valid YAML" in capsys.readouterr().err
    assert main(["train", "--out", str(tmp_path / "r"), "--set", "foo=1"]) == 2
    assert "foo: unknown parameter" in capsys.readouterr().err
    assert main(["run", "params/quickstart.yml", "--profile", "smoke", "--gpus", "a,b", "--dry-run"]) == 2
    assert "--gpus" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
def test_pretrain_then_fine_tune_with_the_pretraining_statistics(capsys, tmp_path):
    tiny = ["--set", "epochs=1", "--set", "train_subset=200", "--set", "deterministic=true"]
    assert main(["pretrain", "--out", str(tmp_path / "source"), *tiny]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["source"]["dataset"] == "synthetic" and len(report["source"]["mean"]) == 3
    fine_tune = ["--set", f"pretrained={report['checkpoint']}", "--set", "input_norm=pretrain", "--set", "dataset=synthetic-dim"]
    assert main(["train", "--out", str(tmp_path / "target"), *tiny, *fine_tune]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["status"] == "complete"
    assert summary["pretrain_stats"]["mean"] == pytest.approx(report["source"]["mean"])


def test_pretrain_refuses_a_setting_that_records_no_statistics(capsys, tmp_path):
    assert main(["pretrain", "--out", str(tmp_path / "s"), "--set", "input_norm=instance"]) == 2
    assert "records no statistics" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()
