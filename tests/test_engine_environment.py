"""Device resolution, the execution settings and their restoration, progress defaults."""

import io

import pytest
import torch

from normtest_lib.config import make_config
from normtest_lib.engine.environment import environment_info, execution_context, resolve_device, show_progress
from normtest_lib.engine.seeding import capture_rng_state, restore_rng_state
from normtest_lib.errors import ConfigError


def test_auto_device_and_unavailable_cuda():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            resolve_device("cuda:0")


def test_execution_settings_apply_and_are_restored():
    threads = torch.get_num_threads()
    assert not torch.are_deterministic_algorithms_enabled()
    config = make_config(device="cpu", deterministic=True, num_threads=1, amp=True, channels_last=False)
    with execution_context(config) as execution:
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.get_num_threads() == 1 and execution.threads == 1
        # bf16 autocast is CUDA-only: a CPU run keeps float32; the memory format is as asked.
        assert not execution.amp and not execution.channels_last
        assert execution.memory_format == torch.contiguous_format
        info = environment_info(execution, config)
        assert info["device"] == "cpu" and info["threads"] == 1 and info["deterministic"] is True
    assert not torch.are_deterministic_algorithms_enabled()
    assert torch.get_num_threads() == threads


def test_cpu_runs_flush_denormals_and_restore_the_default():
    tiny = torch.tensor([1e-39])
    assert (tiny * 1.0).item() != 0
    with execution_context(make_config(device="cpu")) as execution:
        if execution.flush_denormal:  # False only on CPUs without the flush-to-zero mode
            assert (tiny * 1.0).item() == 0
    assert (tiny * 1.0).item() != 0


def test_settings_are_restored_after_an_error():
    threads = torch.get_num_threads()
    with pytest.raises(RuntimeError):
        with execution_context(make_config(device="cpu", deterministic=True, num_threads=1)):
            raise RuntimeError("boom")
    assert not torch.are_deterministic_algorithms_enabled() and torch.get_num_threads() == threads


def test_progress_default_follows_the_terminal(monkeypatch):
    assert show_progress(True) and not show_progress(False)
    monkeypatch.setattr("sys.stderr", io.StringIO())
    assert not show_progress(None)

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr("sys.stderr", Terminal())
    assert show_progress(None)


def test_rng_state_round_trips():
    import random

    import numpy as np

    state = capture_rng_state()
    first = (torch.rand(3), np.random.rand(2), random.random())
    restore_rng_state(state)
    second = (torch.rand(3), np.random.rand(2), random.random())
    assert torch.equal(first[0], second[0]) and (first[1] == second[1]).all() and first[2] == second[2]
