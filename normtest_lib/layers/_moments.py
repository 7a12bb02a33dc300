"""Plain-tensor arithmetic shared by the from-scratch normalization layers.

Statistics are computed in at least float32 (float64 stays float64), so a bf16 autocast
forward pass normalizes with float32 moments as torch's own layers do; the layers cast
their output back to the input's dtype. The variance used for normalizing is the biased
(population) one, as in every normalization paper and in torch.
"""

from __future__ import annotations

import torch
from torch import nn


def compute_dtype(x: torch.Tensor) -> torch.dtype:
    """float32 for half/bfloat16/float32 inputs, float64 for float64."""
    return torch.promote_types(x.dtype, torch.float32)


def moments(x: torch.Tensor, dims: tuple[int, ...] | int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and biased variance of ``x`` over ``dims`` (kept as size-1 dimensions)."""
    var, mean = torch.var_mean(x, dim=dims, correction=0, keepdim=True)
    return mean, var


def normalize_affine(
    x: torch.Tensor, mean: torch.Tensor, var: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float
) -> torch.Tensor:
    """``weight * (x - mean) / sqrt(var + eps) + bias`` with one weight and bias per channel and
    ``mean``/``var`` broadcasting per channel or per sample and channel (shape (1 or N, C, 1, ...)).

    Folded into one scale and shift per row of statistics, so the full-size work is a single
    fused multiply-add instead of four passes (subtract, scale, weight, bias): on the CPU this
    is most of a from-scratch layer's cost, and autograd saves fewer full-size tensors."""
    scale = per_channel(weight, x.ndim).to(x.dtype) * torch.rsqrt(var + eps)
    shift = per_channel(bias, x.ndim).to(x.dtype) - mean * scale
    return torch.addcmul(shift, x, scale)


def per_channel(values: torch.Tensor, ndim: int) -> torch.Tensor:
    """Per-channel ``values`` (C,) shaped to broadcast over an ``ndim``-dimensional input (N, C, ...)."""
    return values.reshape((1, *values.shape) + (1,) * (ndim - 1 - values.ndim))


def check_input(module: nn.Module, x: torch.Tensor, num_channels: int) -> None:
    """Refuse an input that is not (N, C, ...) with the layer's channel count."""
    if x.ndim < 2 or x.shape[1] != num_channels:
        raise ValueError(
            f"{type(module).__name__} expects an input of shape (N, {num_channels}, ...), got {tuple(x.shape)}"
        )


def affine_parameters(num_channels: int) -> tuple[nn.Parameter, nn.Parameter]:
    """A per-channel scale (ones) and shift (zeros), torch's initialisation."""
    return nn.Parameter(torch.ones(num_channels)), nn.Parameter(torch.zeros(num_channels))
