"""ConvNorm's steps 2-4 (transform, preconditioner, inverse transform, "same" window, stride) as matrix products.

The preconditioning is a circular convolution on the full convolution's (H + k - 1) x (W + k - 1)
torus, diagonal in the Fourier basis. :func:`~normtest_lib.layers.convnorm.precondition` computes it
with ``rfft2``/``irfft2`` over the whole torus and the layer then crops the window and subsamples it.
Here the same linear map is four real matrix products per feature map, each a dense GEMM:

1. along W, the real DFT: (n_h, n_w) @ (n_w, 2m) -> real and imaginary parts of the m = n_w // 2 + 1
   half-spectrum frequencies;
2. along H, the complex DFT written as one real (2 n_h, 2 n_h) matrix on the (real, imaginary) rows;
3. times the preconditioner (real, per channel and frequency);
4. along H, the inverse DFT evaluated only at the rows the window and the stride keep;
5. along W, the inverse real DFT (each half-spectrum frequency counted twice but DC and Nyquist)
   evaluated only at the kept columns.

Why: the tori of a CIFAR network are 34, 18 and 10 wide, and 34 = 2 x 17 is a slow length for an FFT;
``irfft2`` also copies its input and the crop and stride copy the output. Measured on this CPU (one
thread, 128 x 16 maps of 34 x 34): 57 ms for the products against 84 ms for the FFT pair with the crop.
The matrices depend only on the sizes, so they are built once (in float64, then cast) and cached.

The backward pass is the transpose of each product in reverse order (the adjoint of the map), with no
zero-filled full-size gradient: what the crop's backward would otherwise allocate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import torch


@dataclass(frozen=True)
class WindowedDFT:
    """The four matrices of one (torus, window, stride) combination, in one dtype and on one device."""

    w_forward: torch.Tensor  # (n_w, 2m): columns [real parts | imaginary parts] of the half spectrum
    h_forward: torch.Tensor  # (2 n_h, 2 n_h): rows [real (n_h) ; imaginary (n_h)], columns (row h, part)
    h_inverse: torch.Tensor  # (2 out_h, 2 n_h): rows (kept row t, part), columns [real ; imaginary]
    w_inverse: torch.Tensor  # (2m, out_w): rows [real parts ; imaginary parts], columns the kept columns


def kept_positions(torus: int, start: int, stride: int, count: int) -> torch.Tensor:
    """The torus positions the window keeps: ``start + stride * t`` for t < ``count`` (float64).

    A position outside [0, torus) is a zero the padded convolution sees beyond the full output (padding
    larger than k - 1); its row or column of the inverse matrices is zero."""
    return (start + stride * torch.arange(count)).to(torch.float64)


def mirror_counts(n: int) -> torch.Tensor:
    """How many frequencies of a length-``n`` real signal each of the n // 2 + 1 half-spectrum ones stands for in
    irfft: itself and its mirror (2), except DC and, for even n, Nyquist (1). Float64."""
    counts = torch.full((n // 2 + 1,), 2.0, dtype=torch.float64)
    counts[0] = 1.0
    if n % 2 == 0:
        counts[-1] = 1.0
    return counts


@lru_cache(maxsize=64)
def _matrices_float64(torus: tuple[int, int], start: int, stride: int, out_size: tuple[int, int]) -> WindowedDFT:
    n_h, n_w = torus
    out_h, out_w = out_size
    m = n_w // 2 + 1
    freq_w = torch.arange(m, dtype=torch.float64)
    angle = 2 * math.pi * torch.outer(torch.arange(n_w, dtype=torch.float64), freq_w) / n_w
    w_forward = torch.cat([torch.cos(angle), -torch.sin(angle)], dim=1)

    # (C - iS)(A + iB) = (CA + SB) + i(CB - SA), the input rows interleaved as (h, part).
    rows_h = torch.arange(n_h, dtype=torch.float64)
    angle = 2 * math.pi * torch.outer(rows_h, rows_h) / n_h
    cos, sin = torch.cos(angle), torch.sin(angle)
    h_forward = torch.stack([torch.stack([cos, sin], dim=-1), torch.stack([-sin, cos], dim=-1)]).reshape(2 * n_h, 2 * n_h)

    # (1/n)(C + iS)(R + iI) = (1/n)(CR - SI) + i (1/n)(CI + SR), at the kept rows only, output rows (t, part).
    kept_h = kept_positions(n_h, start, stride, out_h)
    angle = 2 * math.pi * torch.outer(kept_h, rows_h) / n_h
    inside = ((kept_h >= 0) & (kept_h < n_h)).to(torch.float64)[:, None] / n_h
    cos, sin = torch.cos(angle) * inside, torch.sin(angle) * inside
    h_inverse = torch.stack([torch.cat([cos, -sin], dim=1), torch.cat([sin, cos], dim=1)], dim=1).reshape(2 * out_h, 2 * n_h)

    weight = mirror_counts(n_w)
    kept_w = kept_positions(n_w, start, stride, out_w)
    angle = 2 * math.pi * torch.outer(freq_w, kept_w) / n_w
    inside = ((kept_w >= 0) & (kept_w < n_w)).to(torch.float64)[None, :] / n_w
    w_inverse = torch.cat([weight[:, None] * torch.cos(angle), -weight[:, None] * torch.sin(angle)]) * inside
    return WindowedDFT(w_forward, h_forward, h_inverse, w_inverse)


@lru_cache(maxsize=128)
def windowed_dft(
    torus: tuple[int, int], start: int, stride: int, out_size: tuple[int, int], dtype: torch.dtype, device: torch.device
) -> WindowedDFT:
    """The matrices for a ``torus`` (n_h, n_w) whose window keeps ``out_size`` rows and columns from ``start``
    on, every ``stride``-th; built once in float64, cached per dtype and device."""
    exact = _matrices_float64(torus, start, stride, out_size)
    return WindowedDFT(*(t.to(device=device, dtype=dtype).contiguous() for t in vars(exact).values()))


def _forward(x: torch.Tensor, multiplier: torch.Tensor, mats: WindowedDFT) -> torch.Tensor:
    n, c, n_h, n_w = x.shape
    m = multiplier.shape[-1]
    half = (x.reshape(-1, n_w) @ mats.w_forward).view(n * c, 2 * n_h, m)  # rows (h, part)
    spectrum = torch.matmul(mats.h_forward, half).view(n, c, 2, n_h, m).mul_(multiplier.unsqueeze(1))
    kept_rows = torch.matmul(mats.h_inverse, spectrum.view(n * c, 2 * n_h, m))  # rows (t, part)
    out_h = mats.h_inverse.shape[0] // 2
    return (kept_rows.view(-1, 2 * m) @ mats.w_inverse).view(n, c, out_h, -1)


def _adjoint(grad: torch.Tensor, multiplier: torch.Tensor, mats: WindowedDFT) -> torch.Tensor:
    n, c, out_h, out_w = grad.shape
    m = multiplier.shape[-1]
    n_h = mats.h_forward.shape[0] // 2
    kept_rows = (grad.reshape(-1, out_w) @ mats.w_inverse.T).view(n * c, 2 * out_h, m)
    spectrum = torch.matmul(mats.h_inverse.T, kept_rows).view(n, c, 2, n_h, m).mul_(multiplier.unsqueeze(1))
    half = torch.matmul(mats.h_forward.T, spectrum.view(n * c, 2 * n_h, m))
    return (half.view(-1, 2 * m) @ mats.w_forward.T).view(n, c, n_h, -1)


class _PreconditionWindow(torch.autograd.Function):
    """The windowed preconditioning with the adjoint as its backward (the preconditioner is a constant)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, multiplier: torch.Tensor, mats: WindowedDFT) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(multiplier)
        ctx.mats = mats
        return _forward(x.contiguous(), multiplier, mats)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:  # type: ignore[override]
        (multiplier,) = ctx.saved_tensors
        return _adjoint(grad.contiguous(), multiplier, ctx.mats), None, None


def precondition_window(
    full: torch.Tensor, multiplier: torch.Tensor, start: int, stride: int, out_size: tuple[int, int]
) -> torch.Tensor:
    """``irfft2(rfft2(full) * multiplier)`` on ``full``'s own torus, at rows and columns ``start + stride * t``
    (t < ``out_size``; zero outside the torus): ConvNorm's steps 2-4 on a full convolution ``full`` (N, C,
    n_h, n_w) with a preconditioner ``multiplier`` (C, n_h, n_w // 2 + 1). ``full`` and ``multiplier`` in one
    dtype (the caller's compute dtype); differentiable in ``full``."""
    torus = (int(full.shape[-2]), int(full.shape[-1]))
    mats = windowed_dft(torus, start, stride, out_size, full.dtype, full.device)
    return _PreconditionWindow.apply(full, multiplier.detach(), mats)
