"""``normtest verify``: a run verifies with unchanged code, and a change to a normalization layer or to the
label-noise draw fails it, naming the first value that differs; the run folder is never written."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch

from normtest_lib.cli import main
from normtest_lib.config import make_config
from normtest_lib.engine import prepare, train
from normtest_lib.layers import batchnorm
from normtest_lib.verify import provenance, run as verify_module
from normtest_lib.verify.run import verify_run

# 120 training images in batches of 40 (3 steps an epoch); from-scratch bn, 20 % label noise.
TINY = dict(epochs=8, batch_size=40, train_subset=120, val_fraction=0.2, device="cpu", eval_batch_size=256,
            lr=0.05, num_threads=1, model="small", norm_layer="bn", label_noise=0.2)  # fmt: skip


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("trained") / "run"
    train(make_config(TINY), folder, progress=False)
    return folder


@pytest.fixture
def run_dir(trained, tmp_path) -> Path:
    """A copy of the trained run, so a test may damage it."""
    return Path(shutil.copytree(trained, tmp_path / "run"))


def hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*"))
            if p.is_file()}  # fmt: skip


def test_an_unchanged_run_verifies_and_its_folder_is_not_written(run_dir, capsys):
    before = hashes(run_dir)
    assert main(["verify", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "verified: 24 values within tolerance" in out  # initial loss and logit rms, 20 steps, the two after step 2
    assert "step 20" in out and "loss after 2 steps" in out
    assert hashes(run_dir) == before


def test_a_changed_normalization_layer_fails_naming_the_first_step_that_differs(run_dir, monkeypatch, capsys):
    init = batchnorm.BatchNorm.__init__
    monkeypatch.setattr(batchnorm.BatchNorm, "__init__", lambda self, n, eps=1e-5, momentum=0.1: init(self, n, 1e-2, momentum))
    before = hashes(run_dir)
    assert main(["verify", str(run_dir)]) == 1
    out = capsys.readouterr().out
    # eps acts from the first forward pass: the initial weights' logits already move, then every step.
    assert "differs: initial logit rms differs by" in out
    step_1 = next(line for line in out.splitlines() if line.startswith("step 1 "))
    assert step_1.endswith("<-- differs")
    assert hashes(run_dir) == before


def test_a_changed_running_statistic_shows_in_the_loss_after_the_second_step(tmp_path, monkeypatch):
    folder = tmp_path / "run"
    train(make_config({**TINY, "norm_layer": "torch_bn", "epochs": 1}), folder, progress=False)
    init = torch.nn.BatchNorm2d.__init__
    monkeypatch.setattr(torch.nn.BatchNorm2d, "__init__",
                        lambda self, n, *args, **kwargs: init(self, n, *args, **{**kwargs, "momentum": 0.2}))
    outcome = verify_run(folder)
    # Training normalizes with the batch's statistics: only the evaluation after step 2 sees the momentum.
    assert outcome.status == "differs" and outcome.first_difference in ("loss after 2 steps", "logit rms after 2 steps")


def test_a_changed_label_noise_draw_fails_at_step_1(run_dir, monkeypatch):
    draw = prepare.noisy_labels
    monkeypatch.setattr(prepare, "noisy_labels", lambda labels, classes, rate, kind, seed: draw(labels, classes, rate, kind, seed + 1))
    outcome = verify_run(run_dir)
    assert outcome.status == "differs" and outcome.exit_code == 1
    assert outcome.first_difference == "step 1"  # the initial loss is on the clean validation split: unchanged


def test_epochs_rerun_whole_epochs_and_expect_identical_history_rows(run_dir, capsys):
    assert main(["verify", str(run_dir), "--epochs", "2"]) == 0
    assert "--epochs 2: 2 history rows identical to the recorded ones" in capsys.readouterr().out
    history = run_dir / "history.csv"
    lines = history.read_text().splitlines()
    fields = lines[2].split(",")
    fields[2] = repr(float(fields[2]) + 1e-9)  # epoch 2's train_acc, as another code would have recorded it
    history.write_text("\n".join([*lines[:2], ",".join(fields), *lines[3:]]) + "\n")
    outcome = verify_run(run_dir, epochs=2)
    assert outcome.status == "differs" and outcome.detail.startswith("epoch 2: train_acc")


def test_epochs_are_skipped_on_another_processor(run_dir):
    record = json.loads((run_dir / "fingerprint.json").read_text())
    (run_dir / "fingerprint.json").write_text(json.dumps({**record, "device_name": "Another CPU"}))
    outcome = verify_run(run_dir, epochs=1)
    assert outcome.status == "verified"
    assert outcome.epochs_detail.startswith("--epochs 1 skipped: the run was recorded on Another CPU")


def test_a_run_made_before_fingerprints_existed_says_so_with_its_own_exit_code(run_dir, monkeypatch, capsys):
    (run_dir / "fingerprint.json").unlink()
    monkeypatch.setattr(verify_module, "commit_records_fingerprints", lambda commit: False)
    assert main(["verify", str(run_dir)]) == 3
    assert "no fingerprint: made before fingerprints existed; rerun it to verify" in capsys.readouterr().out
    monkeypatch.setattr(verify_module, "commit_records_fingerprints", lambda commit: True)
    assert main(["verify", str(run_dir)]) == 1  # its commit records one: it was lost
    assert "missing fingerprint" in capsys.readouterr().out


def test_the_commit_that_made_a_committed_run_predates_fingerprints():
    # 0de5806 is the last commit before fingerprints; this commit's own code records them.
    assert provenance.commit_records_fingerprints("0de5806") in (False, None)  # None in a shallow clone
    assert provenance.commit_records_fingerprints("not-a-commit") is None
    if provenance.current_commit() is not None and (provenance.PACKAGE / "engine" / "fingerprint.py").is_file():
        assert provenance.commit_records_fingerprints(provenance.current_commit()) in (True, False)


@pytest.mark.parametrize("setup, message", [
    (lambda folder: None, "holds no params.yaml: it is not a run folder"),
    (lambda folder: (folder / "params.yaml").write_text("- a list\n"), "does not hold run parameters"),
    (lambda folder: (folder / "params.yaml").write_text("epochs: [\n"), "cannot be read"),
])  # fmt: skip
def test_a_folder_that_is_not_a_run_is_an_error_naming_the_problem(tmp_path, capsys, setup, message):
    folder = tmp_path / "not-a-run"
    folder.mkdir()
    setup(folder)
    assert main(["verify", str(folder)]) == 2
    assert message in capsys.readouterr().err
    assert main(["verify", str(tmp_path / "absent")]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_a_run_from_a_source_run_verifies_the_source_when_its_weights_are_absent(tmp_path, capsys):
    source = tmp_path / "study" / "p" / "source"
    train(make_config({**TINY, "epochs": 2, "label_noise": 0.0}), source, progress=False)
    finetune = tmp_path / "study" / "p" / "finetune"
    train(make_config({**TINY, "epochs": 1, "pretrained": str(source / "best.pt"), "input_norm": "pretrain"}), finetune,
          progress=False)  # fmt: skip
    assert verify_run(finetune).status == "verified"  # the weights are here, with the recorded SHA-256
    (source / "best.pt").unlink()
    (source / "checkpoint.pt").unlink()
    before = hashes(tmp_path)
    outcome = verify_run(finetune)
    assert outcome.status == "source verified" and outcome.exit_code == 4
    assert outcome.source.status == "verified" and "--rebuild-source retrains the source" in outcome.detail
    rebuilt = verify_run(finetune, rebuild_source=True)
    assert rebuilt.status == "verified" and rebuilt.comparison is not None
    assert hashes(tmp_path) == before  # the source was rebuilt in a temporary folder


def test_the_recomputation_uses_the_memory_format_the_run_recorded_not_what_auto_gives_now(run_dir, monkeypatch):
    from normtest_lib.engine import environment

    recorded = json.loads((run_dir / "environment.json").read_text())["starts"][0]["channels_last"]
    assert isinstance(recorded, bool)
    # The default for this network changes after the run: verify still computes in the run's layout.
    monkeypatch.setattr(environment, "CPU_CHANNELS_LAST", {False: not recorded, True: not recorded})
    layouts = []
    recompute = verify_module.fp.recompute
    monkeypatch.setattr(verify_module.fp, "recompute",
                        lambda config, *args, **kwargs: layouts.append(config.channels_last) or recompute(config, *args, **kwargs))
    assert main(["verify", str(run_dir)]) == 0
    assert layouts == [recorded]
    compiled = json.loads((run_dir / "environment.json").read_text())["starts"][0]["compile"]
    assert verify_module.recorded_layout(run_dir, {}) == {"channels_last": recorded, "compile": compiled}
    # Set by the run: kept as set.
    assert verify_module.recorded_layout(run_dir, {"channels_last": not recorded}) == {"compile": compiled}
    assert verify_module.recorded_layout(run_dir, {"channels_last": True, "compile": False}) == {}
    assert verify_module.recorded_layout(run_dir.parent, {}) == {}  # nothing recorded: auto as today
