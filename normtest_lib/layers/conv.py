"""The plain convolution."""

from __future__ import annotations

from torch import nn

from .registry import no_argument, register_conv


@register_conv("conv")
def plain_conv(
    in_channels: int, out_channels: int, kernel_size: int, stride: int, padding: int, bias: bool, arg: str | None
) -> nn.Module:
    """torch.nn.Conv2d, default-initialised."""
    no_argument(arg)
    return nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=bias)
