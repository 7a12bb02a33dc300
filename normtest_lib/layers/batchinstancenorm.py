"""Batch-Instance Normalization (Nam and Kim, 2018), written from scratch: ``bin``.

``y = gamma * (rho * x_bn + (1 - rho) * x_in) + beta``, where ``x_bn`` is the input batch
normalized (batch statistics in training, running ones in evaluation: the statistics code
of :class:`~normtest_lib.layers.batchnorm.BatchNorm`, same momentum 0.1, eps 1e-5 and
buffers) and ``x_in`` the input instance normalized, both without an affine of their own;
one ``gamma`` (``weight``) and ``beta`` (``bias``) per channel. The batch moments are derived
from the instance moments, and the whole mix is one scale and shift per sample and channel,
so the layer reads its input once for statistics and once for the output.

The gate ``rho`` has one value per channel, starts at 1 (pure batch norm) and carries
``optim_overrides = {"lr_scale": 10.0, "weight_decay": 0.0}``: the engine gives it its own
optimizer group with 10x the learning rate and no weight decay (the paper's setting). After
every optimizer step, :meth:`BatchInstanceNorm.after_optimizer_step` clips it to [0, 1].
"""

from __future__ import annotations

import torch
from torch import nn

from ._moments import compute_dtype, per_channel
from .batchnorm import BatchNorm
from .instancenorm import instance_moments
from .registry import no_argument, register_norm

RHO_OPTIM_OVERRIDES = {"lr_scale": 10.0, "weight_decay": 0.0}


def batch_moments_from_instances(mean: torch.Tensor, var: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The batch's per-channel mean and biased variance from the per-instance ones (N, C, 1, 1):
    every instance has as many elements, so the batch mean is the mean of the instance means
    and the batch variance the mean instance variance plus the variance of the instance means
    (the law of total variance). Saves a second pass over the activations."""
    batch_mean = mean.mean(0, keepdim=True)
    batch_var = var.mean(0, keepdim=True) + (mean - batch_mean).square().mean(0, keepdim=True)
    return batch_mean, batch_var


class BatchInstanceNorm(BatchNorm):
    """Batch norm and instance norm mixed per channel by a learned gate ``rho`` in [0, 1]."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1) -> None:
        super().__init__(num_features, eps, momentum)
        self.rho = nn.Parameter(torch.ones(num_features))
        self._mark_rho()

    def _mark_rho(self) -> None:
        # An attribute of the Parameter object: kept by .to()/.double(), lost by deepcopy and
        # pickling (torch copies the tensor only), hence also re-set in __setstate__.
        self.rho.optim_overrides = dict(RHO_OPTIM_OVERRIDES)

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        self._mark_rho()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        with torch.no_grad():
            self.rho.fill_(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xc = x.to(compute_dtype(x))
        in_mean, in_var = instance_moments(xc)
        bn_mean, bn_var = self.statistics(x, lambda: batch_moments_from_instances(in_mean, in_var))
        bn_scale = torch.rsqrt(bn_var + self.eps)
        in_scale = torch.rsqrt(in_var + self.eps)
        rho = per_channel(self.rho, x.ndim).to(xc.dtype)
        gamma = per_channel(self.weight, x.ndim).to(xc.dtype)
        beta = per_channel(self.bias, x.ndim).to(xc.dtype)
        # gamma * (rho * (x - mu_b) * s_b + (1 - rho) * (x - mu_i) * s_i) + beta is one
        # per-sample, per-channel scale and shift: a single full-size multiply-add.
        scale = gamma * (rho * bn_scale + (1 - rho) * in_scale)
        shift = beta - gamma * (rho * bn_mean * bn_scale + (1 - rho) * in_mean * in_scale)
        return torch.addcmul(shift, xc, scale).to(x.dtype)

    @torch.no_grad()
    def after_optimizer_step(self) -> None:
        """Clip the gate to [0, 1], in place (the engine calls this after every optimizer step)."""
        self.rho.clamp_(0.0, 1.0)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, rho_lr_scale={RHO_OPTIM_OVERRIDES['lr_scale']}"


@register_norm("bin")
def build_bin(num_channels: int, arg: str | None) -> nn.Module:
    """From-scratch Batch-Instance Norm with its gate in its own optimizer group, clipped to [0, 1]."""
    no_argument(arg)
    return BatchInstanceNorm(num_channels)
