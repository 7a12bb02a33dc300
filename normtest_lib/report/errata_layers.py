"""Evidence for the errata of study 2 (normalization layers in a CIFAR ResNet), computed here.

The earlier work's batch-instance norm re-created its gate ``rho`` inside
``forward``, so the optimizer never saw it: every forward started from a fresh
gate at 1, and "bin" was a second batch norm. :func:`recreated_gate_demo`
trains the same small network twice, once with that defect and once with our
layer, and reports where the gates end; :func:`final_gates` reads where the
gates of real runs ended from their ``bin_gate`` probe.
"""

from __future__ import annotations

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from ..layers.batchinstancenorm import RHO_OPTIM_OVERRIDES, BatchInstanceNorm


class RecreatedGateBIN(BatchInstanceNorm):
    """The earlier work's defect, reproduced: a new gate at 1 on every forward, never the one being optimized."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.rho = nn.Parameter(torch.ones_like(self.rho))
        return super().forward(x)


def _network(norm: type[BatchInstanceNorm], channels: int = 8) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, channels, 3, padding=1, bias=False), norm(channels), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, 2),
    )  # fmt: skip


def _train(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, steps: int, lr: float) -> None:
    norm = model[1]
    gate = [norm.rho]
    others = [p for p in model.parameters() if p is not norm.rho]
    optimizer = torch.optim.SGD(
        [{"params": others}, {"params": gate, "lr": lr * RHO_OPTIM_OVERRIDES["lr_scale"], "weight_decay": 0.0}], lr=lr
    )
    for _ in range(steps):
        loss = F.cross_entropy(model(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        norm.after_optimizer_step()


def recreated_gate_demo(steps: int = 30, lr: float = 0.1, seed: int = 0) -> pd.DataFrame:
    """Where the gate ends after ``steps`` SGD steps, with the earlier work's defect and with ours.

    The task is one in which instance statistics matter: two classes of random
    images that differ only in their contrast, which per-image normalization
    would erase, so the gate has a reason to move either way. Each row: the gate's
    mean, min and max over channels after training, and whether the optimizer
    ever held the gate the forward pass used.
    """
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 2, (64,), generator=generator)
    contrast = 0.5 + labels.float().view(-1, 1, 1, 1)
    images = torch.randn(64, 3, 16, 16, generator=generator) * contrast
    rows = {}
    for name, norm in (("the earlier work's BIN (gate re-created in forward)", RecreatedGateBIN), ("ours", BatchInstanceNorm)):
        torch.manual_seed(seed)
        model = _network(norm)
        _train(model, images, labels, steps, lr)
        rho = model[1].rho.detach()
        rows[name] = {"rho mean": float(rho.mean()), "rho min": float(rho.min()), "rho max": float(rho.max())}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis(f"after {steps} steps")


def final_gates(probes: pd.DataFrame) -> pd.DataFrame:
    """Per BIN layer: the mean over runs of its gate's mean and min at each run's last epoch (``bin_gate`` probe)."""
    gates = probes[probes["probe"] == "bin_gate"]
    if gates.empty:
        raise ValueError("no bin_gate probe rows: run norm_layer 'bin' with probes [bin_gate]")
    last = gates[gates["epoch"] == gates.groupby("run_id")["epoch"].transform("max")]
    split = last["name"].str.rsplit("/", n=1, expand=True)
    last = last.assign(layer=split[0], statistic=split[1])
    order = list(dict.fromkeys(last["layer"]))
    table = last.pivot_table(index="layer", columns="statistic", values="value", aggfunc="mean").reindex(order)
    table["runs"] = last.groupby("layer")["run_id"].nunique().reindex(order)
    return table[["mean", "min", "max", "runs"]]
