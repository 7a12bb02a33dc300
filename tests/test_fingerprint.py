"""The fingerprint the engine records (engine/fingerprint.py): its content, that recording changes
no number of the run, and that a resumed run completes it as an uninterrupted one would."""

from __future__ import annotations

import json

import pytest
import torch

from normtest_lib.config import make_config
from normtest_lib.engine import fingerprint as fp
from normtest_lib.engine import loop, train
from normtest_lib.engine.history import COLUMNS, read_history

EXACT_COLUMNS = [column for column in COLUMNS if column not in ("seconds", "images_per_second", "probe_seconds")]

# 120 training images in batches of 40: 3 steps an epoch, so the 20 steps span 7 epochs.
TINY = dict(epochs=8, batch_size=40, train_subset=120, val_fraction=0.2, device="cpu", eval_batch_size=256,
            lr=0.05, num_threads=1, model="small", norm_layer="bn", label_noise=0.2)  # fmt: skip


def rows(run_dir):
    return [{column: row[column] for column in EXACT_COLUMNS} for row in read_history(run_dir / "history.csv")]


def test_the_fingerprint_holds_the_first_steps_and_two_evaluation_losses(tmp_path):
    train(make_config(TINY), tmp_path / "run", progress=False)
    recorded = json.loads((tmp_path / "run" / "fingerprint.json").read_text())
    assert len(recorded["steps"]) == recorded["target_steps"] == fp.STEPS
    assert recorded["eval_after"] == fp.EVAL_AFTER and recorded["eval_split"] == "val"
    assert recorded["eval_images"] == 1200  # val_fraction 0.2 of the synthetic set's 6,000, under EVAL_IMAGES
    assert recorded["threads"] == 1 and recorded["device"] == "cpu" and recorded["precision"] == "fp32"
    assert all(isinstance(value, float) for value in [*recorded["steps"], recorded["initial_loss"],
                                                      recorded["loss_after_steps"]])  # fmt: skip
    # The first step's loss is the one the run trained on: a fresh computation gives it bit for bit.
    assert fp.recompute(make_config(TINY), 1).steps == recorded["steps"][:1]


def test_a_run_with_fewer_steps_records_them_all_and_without_validation_uses_the_training_split(tmp_path):
    train(make_config({**TINY, "epochs": 2, "val_fraction": 0.0}), tmp_path / "run", progress=False)
    recorded = fp.read_fingerprint(tmp_path / "run" / "fingerprint.json")
    assert len(recorded.steps) == recorded.target_steps == 6 and recorded.complete
    assert recorded.eval_split == "train" and recorded.eval_images == 120


@pytest.mark.parametrize("layers", [dict(norm_layer="bn"),
                                    dict(model="cifar_resnet", depth_n=1, conv_layer="convnorm", norm_layer="torch_bn")])
def test_recording_the_fingerprint_changes_no_number_of_the_run(tmp_path, monkeypatch, layers):
    config = make_config({**TINY, "epochs": 2, **layers})
    train(config, tmp_path / "with", progress=False)
    monkeypatch.setattr(loop, "_fingerprint_recorder", lambda session, folder: None)
    train(config, tmp_path / "without", progress=False)
    assert not (tmp_path / "without" / "fingerprint.json").exists()
    assert rows(tmp_path / "with") == rows(tmp_path / "without")
    with_weights = torch.load(tmp_path / "with" / "checkpoint.pt", weights_only=True)["state_dict"]
    without_weights = torch.load(tmp_path / "without" / "checkpoint.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(with_weights[key], without_weights[key]) for key in with_weights)


def test_a_resumed_run_completes_the_fingerprint_an_uninterrupted_run_records(tmp_path):
    config = make_config(TINY)
    train(config, tmp_path / "whole", progress=False)

    class Killed(Exception):
        pass

    def kill_after_epoch_2(row):
        if row["epoch"] == 2:
            raise Killed

    with pytest.raises(Killed):
        train(config, tmp_path / "resumed", progress=False, on_epoch_end=kill_after_epoch_2)
    partial = fp.read_fingerprint(tmp_path / "resumed" / "fingerprint.json")
    assert len(partial.steps) == 6 and not partial.complete
    train(config, tmp_path / "resumed", progress=False)
    whole = (tmp_path / "whole" / "fingerprint.json").read_text()
    assert (tmp_path / "resumed" / "fingerprint.json").read_text() == whole


def test_the_tolerance_widens_with_the_step_from_the_base():
    assert fp.tolerance_at(0) == fp.tolerance_at(1) == fp.RELATIVE_TOLERANCE
    assert fp.tolerance_at(4) == fp.RELATIVE_TOLERANCE * fp.GROWTH**3
    assert fp.tolerance_at(40) == fp.MAX_TOLERANCE


def _fingerprint(device_name: str, step_values: list[float], logit_rms_after: float) -> fp.Fingerprint:
    return fp.Fingerprint(steps=step_values, target_steps=len(step_values), initial_loss=2.3, loss_after_steps=2.2,
                          eval_after=2, eval_split="val", eval_images=1000, device="cpu", device_name=device_name,
                          threads=1, precision="fp32", initial_logit_rms=0.23, logit_rms_after_steps=logit_rms_after)


def test_another_processor_widens_the_tolerance_from_the_second_step_only():
    """Study 3's Intel-made ConvNorm+BN run recomputed on an AMD EPYC: 2.4e-4 in the logit RMS after 2 steps."""
    recorded = _fingerprint("Intel(R) Xeon(R) Processor", [2.3679, 2.2743, 2.3166], 0.26640)
    drifted = [2.3679, 2.2743, 2.3166 * (1 + 2.2e-4)]
    same_model = fp.compare(recorded, _fingerprint("Intel(R) Xeon(R) Processor", drifted, 0.26640 * (1 + 2.4e-4)))
    assert same_model.first_failure is not None and same_model.first_failure.name == "logit rms after 2 steps"
    other_model = fp.compare(recorded, _fingerprint("AMD EPYC", drifted, 0.26640 * (1 + 2.4e-4)))
    assert other_model.first_failure is None
    # A real change still shows at step 1 on another processor (another label-noise draw: 2.7e-4 there).
    changed = fp.compare(recorded, _fingerprint("AMD EPYC", [2.3679 * (1 + 2.7e-4), 2.2743, 2.3166], 0.26640))
    assert changed.first_failure is not None and changed.first_failure.name == "step 1"
    assert fp.tolerance_at(2, other_processor=True) == fp.CROSS_PROCESSOR_TOLERANCE
    assert fp.tolerance_at(1, other_processor=True) == fp.tolerance_at(1)
    assert fp.tolerance_at(40, other_processor=True) == fp.MAX_TOLERANCE
