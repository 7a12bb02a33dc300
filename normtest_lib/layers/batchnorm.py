"""Batch normalization (Ioffe and Szegedy, 2015), written from scratch: ``bn``.

Normalizes each channel over (N, H, W) with the batch's mean and biased variance in
training, and with the running estimates in evaluation. Follows the defaults and the state
dict of torch's ``BatchNorm2d`` exactly (``weight``, ``bias``, ``running_mean``, ``running_var``,
``num_batches_tracked``), so checkpoints and the ``layer_stats`` probe treat both alike:

- running statistics: ``r <- (1 - momentum) * r + momentum * s`` with momentum 0.1, where
  ``s`` is the batch mean, or the batch variance made unbiased (times n / (n - 1), n = N*H*W);
  ``momentum=None`` gives the cumulative average (factor 1 / num_batches_tracked);
- updated outside autograd (no_grad, detached statistics); eps 1e-5;
- per-channel affine weight (ones) and bias (zeros).

The statistics code (:meth:`BatchNorm.statistics`) is shared with Batch-Instance Norm.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ._moments import affine_parameters, check_input, compute_dtype, moments, normalize_affine, per_channel
from .registry import no_argument, register_norm


class BatchNorm(nn.Module):
    """Batch normalization of (N, C, ...) inputs over every dimension but the channel one."""

    is_norm_layer = True

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1) -> None:
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.weight, self.bias = affine_parameters(num_features)
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def reset_running_stats(self) -> None:
        with torch.no_grad():
            self.running_mean.zero_()
            self.running_var.fill_(1)
            self.num_batches_tracked.zero_()

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        with torch.no_grad():
            self.weight.fill_(1)
            self.bias.zero_()

    def statistics(
        self, x: torch.Tensor, batch_moments: Callable[[], tuple[torch.Tensor, torch.Tensor]]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The per-channel mean and biased variance to normalize ``x`` with, shaped to broadcast:
        ``batch_moments()`` in training (updating the running statistics), the running
        statistics in evaluation. ``batch_moments`` lets Batch-Instance Norm derive the batch
        moments from the instance ones it needs anyway."""
        check_input(self, x, self.num_features)
        if not self.training:
            dtype = compute_dtype(x)
            return per_channel(self.running_mean, x.ndim).to(dtype), per_channel(self.running_var, x.ndim).to(dtype)
        count = x.numel() // self.num_features
        if count < 2:
            raise ValueError(
                f"{type(self).__name__} needs more than 1 value per channel when training, got input {tuple(x.shape)}"
            )
        mean, var = batch_moments()
        self._update_running_stats(mean.detach().flatten(), var.detach().flatten(), count)
        return mean, var

    @torch.no_grad()
    def _update_running_stats(self, mean: torch.Tensor, var: torch.Tensor, count: int) -> None:
        self.num_batches_tracked.add_(1)
        unbiased = var * (count / (count - 1))
        if self.momentum is None:  # cumulative moving average, as torch's momentum=None
            factor = 1.0 / self.num_batches_tracked.to(self.running_mean.dtype)
        else:
            factor = self.momentum
        for running, batch in ((self.running_mean, mean), (self.running_var, unbiased)):
            running.mul_(1 - factor).add_(batch.to(running.dtype) * factor)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xc = x.to(compute_dtype(x))
        mean, var = self.statistics(x, lambda: moments(xc, (0,) + tuple(range(2, x.ndim))))
        return normalize_affine(xc, mean, var, self.weight, self.bias, self.eps).to(x.dtype)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"


@register_norm("bn")
def build_bn(num_channels: int, arg: str | None) -> nn.Module:
    """From-scratch batch norm (torch's BatchNorm2d defaults)."""
    no_argument(arg)
    return BatchNorm(num_channels)
