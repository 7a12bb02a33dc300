"""Instance normalization (Ulyanov et al., 2016), written from scratch: ``in``.

Each sample's channel is normalized over (H, W) with its own mean and biased variance, in
training and evaluation alike; no running statistics; per-channel affine (ones, zeros);
eps 1e-5. The semantics of torch's ``InstanceNorm2d(C, affine=True)`` (whose
``track_running_stats`` is False by default).
"""

from __future__ import annotations

import torch
from torch import nn

from ._moments import affine_parameters, check_input, compute_dtype, moments, normalize_affine
from .registry import no_argument, register_norm


def instance_moments(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The mean and biased variance of ``x`` (N, C, ...) per sample and channel over its
    spatial dimensions, shaped (N, C, 1, ...). One spatial element is refused (its normalized
    output would be 0 whatever the input), as torch refuses it."""
    spatial = x.shape[2:]
    if x.ndim < 3 or torch.Size(spatial).numel() < 2:
        raise ValueError(f"instance normalization needs more than 1 spatial element, got input {tuple(x.shape)}")
    return moments(x, tuple(range(2, x.ndim)))


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
        xc = x.to(compute_dtype(x))
        mean, var = instance_moments(xc)
        return normalize_affine(xc, mean, var, self.weight, self.bias, self.eps).to(x.dtype)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}"


@register_norm("in")
def build_in(num_channels: int, arg: str | None) -> nn.Module:
    """From-scratch instance norm with affine, no running statistics."""
    no_argument(arg)
    return InstanceNorm(num_channels)
