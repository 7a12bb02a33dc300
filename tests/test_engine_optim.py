"""Optimizers, per-epoch schedules and the parameter-group / step hooks."""

import math

import pytest
import torch
from torch import nn

from normtest_lib.config import make_config
from normtest_lib.engine.optim import build_optimizer, lr_factor, parameter_groups, set_epoch_lr, step_hooks
from normtest_lib.errors import ConfigError, ModelError


def torch_schedule_rates(scheduler_factory, epochs, lr=1.0):
    """The rate of each epoch from a torch scheduler stepped once per epoch."""
    param = nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=lr)
    scheduler = scheduler_factory(optimizer)
    rates = []
    for _ in range(epochs):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return rates


def test_cosine_matches_torch_stepped_per_epoch():
    config = make_config(epochs=10, schedule="cosine", lr=0.1)
    expected = torch_schedule_rates(lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10), 10, 0.1)
    assert [0.1 * lr_factor(e, config) for e in range(10)] == pytest.approx(expected, rel=1e-12)
    assert lr_factor(0, config) == 1.0
    assert lr_factor(5, config) == pytest.approx(0.5)


def test_multistep_matches_torch_stepped_per_epoch():
    config = make_config(epochs=12, schedule="multistep", milestones=[4, 9], gamma=0.1, lr=0.1)
    expected = torch_schedule_rates(lambda opt: torch.optim.lr_scheduler.MultiStepLR(opt, [4, 9], 0.1), 12, 0.1)
    assert [0.1 * lr_factor(e, config) for e in range(12)] == pytest.approx(expected, rel=1e-12)
    assert lr_factor(3, config) == 1.0 and lr_factor(4, config) == pytest.approx(0.1)


def test_warmup_ramps_linearly_then_cosine_runs_over_the_rest():
    config = make_config(epochs=10, warmup_epochs=4, schedule="cosine")
    assert [lr_factor(e, config) for e in range(4)] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    for e in range(4, 10):
        assert lr_factor(e, config) == pytest.approx((1 + math.cos(math.pi * (e - 4) / 6)) / 2)


def test_warmup_with_constant_and_multistep():
    constant = make_config(epochs=5, warmup_epochs=2, schedule="constant")
    assert [lr_factor(e, constant) for e in range(5)] == pytest.approx([0.5, 1, 1, 1, 1])
    steps = make_config(epochs=6, warmup_epochs=2, schedule="multistep", milestones=[4], gamma=0.5)
    assert [lr_factor(e, steps) for e in range(6)] == pytest.approx([0.5, 1, 1, 1, 0.5, 0.5])


class Gated(nn.Module):
    """A BIN-like layer: a gate with its own optimizer options, clipped after every step."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 4)
        self.gate = nn.Parameter(torch.ones(4))
        self.gate.optim_overrides = {"lr_scale": 10.0, "weight_decay": 0.0}
        self.calls = 0

    def forward(self, x):
        return self.linear(x) * self.gate

    def after_optimizer_step(self):
        self.calls += 1
        self.gate.clamp_(0, 1)


def test_overridden_parameters_get_their_own_group():
    model = nn.Sequential(nn.Linear(4, 4), Gated())
    groups = parameter_groups(model, lr=0.1, weight_decay=5e-4)
    assert len(groups) == 2
    ordinary, gate = groups
    assert ordinary["lr"] == 0.1 and ordinary["weight_decay"] == 5e-4
    assert len(ordinary["params"]) == 4  # weights and biases of both linears: decay on everything
    assert gate["params"] == [model[1].gate]
    assert gate["lr"] == pytest.approx(1.0) and gate["weight_decay"] == 0.0


def test_schedule_scales_every_group_and_hooks_are_found():
    model = nn.Sequential(nn.Linear(4, 4), Gated())
    config = make_config(epochs=4, lr=0.2, schedule="cosine", weight_decay=0.0)
    optimizer = build_optimizer(model, config)
    main = set_epoch_lr(optimizer, 2, config)
    assert main == pytest.approx(0.1)
    assert [group["lr"] for group in optimizer.param_groups] == pytest.approx([0.1, 1.0])
    assert step_hooks(model) == [model[1]]


@pytest.mark.parametrize("name, kind", [("sgd", torch.optim.SGD), ("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW)])
def test_optimizer_kinds(name, kind):
    config = make_config(optimizer=name, momentum=0.8, nesterov=name == "sgd", weight_decay=1e-3)
    optimizer = build_optimizer(nn.Linear(2, 2), config)
    assert type(optimizer) is kind
    assert optimizer.param_groups[0]["weight_decay"] == 1e-3
    if name == "sgd":
        assert optimizer.param_groups[0]["momentum"] == 0.8 and optimizer.param_groups[0]["nesterov"]


def test_bad_options_are_named():
    with pytest.raises(ConfigError, match="nesterov"):
        build_optimizer(nn.Linear(2, 2), make_config(nesterov=True, momentum=0.0))
    layer = nn.Linear(2, 2)
    layer.weight.optim_overrides = {"lr_mult": 2}
    with pytest.raises(ModelError, match="lr_mult"):
        build_optimizer(layer, make_config())
