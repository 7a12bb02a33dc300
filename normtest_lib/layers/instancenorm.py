"""Instance normalization (Ulyanov et al., 2016), written from scratch: ``in``.

Each sample's channel is normalized over (H, W) with its own mean and biased variance, in
training and evaluation alike; no running statistics; per-channel affine (ones, zeros);
eps 1e-5. The semantics of torch's ``InstanceNorm2d(C, affine=True)`` (whose
``track_running_stats`` is False by default).
"""

from __future__ import annotations

import torch
from torch import nn

from ._moments import affine_parameters, channel_affine, check_input, compute_dtype, standardize_over
from .registry import no_argument, register_norm


def instance_standardize(x: torch.Tensor, eps: float) -> torch.Tensor:
    """``x`` (N, C, ...) standardized per sample and channel over its spatial dimensions, in
    the compute dtype (at least float32), without affine. One spatial element is refused
    (its output would be 0 whatever the input), as torch refuses it."""
    spatial = x.shape[2:]
    if x.ndim < 3 or torch.Size(spatial).numel() < 2:
        raise ValueError(f"instance normalization needs more than 1 spatial element, got input {tuple(x.shape)}")
    return standardize_over(x.to(compute_dtype(x)), tuple(range(2, x.ndim)), eps)


class InstanceNorm(nn.Module):
    """Instance normalization with a per-channel affine."""

    is_norm_layer = True

    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.weight, self.bias = affine_parameters(num_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(self, x, self.num_features)
        return channel_affine(instance_standardize(x, self.eps), self.weight, self.bias).to(x.dtype)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}"


@register_norm("in")
def build_in(num_channels: int, arg: str | None) -> nn.Module:
    """From-scratch instance norm with affine, no running statistics."""
    no_argument(arg)
    return InstanceNorm(num_channels)
