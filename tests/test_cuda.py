"""What only a CUDA device can show (marker ``cuda``: skipped without one; ``make device-check`` runs them).

Each checks a defect CPU tests cannot catch: TF32 in "fp32" runs, a bf16 run's predictions
against its recorded test accuracy, the RNG state of the run's own device, compiled training
on the device, channels_last and bf16 kept through a real training run.
"""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from normtest_lib.config import make_config
from normtest_lib.data.synthetic import load_synthetic
from normtest_lib.engine import loop, prepare, train
from normtest_lib.engine.environment import execution_context
from normtest_lib.engine.seeding import capture_rng_state, restore_rng_state
from normtest_lib.predict import predict

pytestmark = pytest.mark.cuda

TINY = dict(
    model="cifar_resnet", depth_n=1, epochs=2, batch_size=64, train_subset=512, val_fraction=0.2, device="cuda"
)


@pytest.fixture(autouse=True)
def tiny_data(monkeypatch):
    data = load_synthetic("source", n_train=700, n_test=256)
    monkeypatch.setattr(prepare, "load_dataset", lambda name, root=None, download=False: data)
    return data


def test_fp32_convolutions_are_float32_not_tf32():
    """With TF32 a 3x3 convolution over 256 channels is off by ~1e-3 relative; in float32 by ~1e-6."""
    torch.backends.cudnn.allow_tf32 = True  # cuDNN's default, which a run must override
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(8, 256, 16, 16, generator=generator)
    w = torch.randn(256, 256, 3, 3, generator=generator)
    exact = F.conv2d(x.double(), w.double(), padding=1)
    with execution_context(make_config(device="cuda", amp=False)) as execution:
        assert execution.precision == "fp32"
        out = F.conv2d(x.cuda(), w.cuda(), padding=1).double().cpu()
    assert ((out - exact).abs().max() / exact.abs().max()).item() < 1e-5
    assert torch.backends.cudnn.allow_tf32  # restored


def test_a_bf16_run_is_channels_last_and_predict_reproduces_its_test_accuracy(tmp_path, tiny_data):
    summary = train(make_config(TINY), tmp_path)
    assert summary["status"] == "complete" and summary["precision"] == "bf16"
    (start,) = json.loads((tmp_path / "environment.json").read_text())["starts"]
    assert start["channels_last"] is True and start["amp_bf16"] is True and start["tf32"] is False
    test = tiny_data.test
    predictions = predict(tmp_path, test.images, device="cuda", batch_size=512)
    accuracy = (predictions == test.labels).float().mean().item()
    assert accuracy == pytest.approx(summary["test_acc_at_best_val"], abs=1e-9)


def test_rng_state_is_saved_and_restored_on_the_runs_device():
    device = torch.device(f"cuda:{torch.cuda.device_count() - 1}")
    torch.rand(1, device=device)  # initialise the device's generator
    state = capture_rng_state(device)
    first = torch.rand(4, device=device)
    restore_rng_state(state, device)
    assert torch.equal(torch.rand(4, device=device), first)


def test_compiled_training_on_the_device_matches_eager():
    config = dict(TINY, epochs=1, augment=False, amp=False)
    losses = []
    for compiled in (False, True):
        with execution_context(make_config(config, compile=compiled)) as execution:
            session = loop.build_session(make_config(config, compile=compiled), execution)
            losses.append(loop.train_one_epoch(session, 0)[0])
            if compiled:
                assert session.step_model.fallback_reason is None
    assert losses[1] == pytest.approx(losses[0], rel=1e-3)
