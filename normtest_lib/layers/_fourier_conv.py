"""ConvNorm's steps 1-4 in the Fourier domain: the convolution where the preconditioner already is.

On the (H + k - 1) x (W + k - 1) torus the full convolution is circular, so per frequency w it is one
complex matrix product across channels: Y(w) = G(w) X(w), with X the input's spectrum (zero-padded to
the torus), G_o,i the spectrum of kernel W_o,i flipped (``conv2d`` correlates) and zero-padded. The
preconditioner multiplies output channel o by V_o(w), so it folds into the kernel: Z(w) = (V G)(w) X(w).
What :mod:`._windowed_dft` does to the full convolution's output then gives the window and the stride:
the inverse DFTs evaluated only at the kept rows and columns.

Per image, the transforms act on C_in channels (forward) and C_out (inverse) and the channel mixing
costs (H + k - 1)(W // 2 + 2) C_out C_in complex products, against (H + k - 1)(W + k - 1) k^2 C_out C_in
real ones for the full convolution, which also computes every position a stride discards. Measured on
this CPU (one thread, batch 128, forward and backward of convolution and preconditioning, 3x3): 16->32
channels at stride 2 on 32 x 32 maps 1.6x faster than the full convolution followed by the windowed
DFT, 32 and 64 channels on 16 and 8 px maps 1.1-1.2x, 16 channels on 32 px maps on par (two transposes
of the spectrum, needed to batch the mixing by frequency, cost what the fewer products save).

Every step is a matrix product with a constant matrix, a transpose or an elementwise product, so
autograd's backward is the adjoint, and the kernel's gradient flows through G (not through V, a
constant of each step as the official layer has it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import torch

from ._windowed_dft import kept_positions, mirror_counts


@dataclass(frozen=True)
class FourierMatrices:
    """The transforms of one (input size, kernel, window, stride) combination, in one dtype and on one device."""

    # Positions 0..max(W, k) - 1 of the torus, so that the same matrices transform the input and the kernel.
    along_w: torch.Tensor  # (max(W, k), 2m) real: the half-spectrum DFT of a zero-padded row, columns (frequency, re/im)
    along_h: torch.Tensor  # (n_h, max(H, k)) complex: the DFT of a zero-padded column
    inverse_h: torch.Tensor  # (out_h, n_h) complex: the inverse DFT at the kept rows (zero outside the torus)
    inverse_w: torch.Tensor  # (2m, out_w) real: the inverse real DFT from (frequency, re/im) at the kept columns


@lru_cache(maxsize=64)
def _matrices_float64(
    input_size: tuple[int, int], kernel_size: int, start: int, stride: int, out_size: tuple[int, int]
) -> FourierMatrices:
    height, width = input_size
    n_h, n_w = height + kernel_size - 1, width + kernel_size - 1
    out_h, out_w = out_size
    m = n_w // 2 + 1
    freq_w = torch.arange(m, dtype=torch.float64)
    positions_w = max(width, kernel_size)
    angle = 2 * math.pi * torch.outer(torch.arange(positions_w, dtype=torch.float64), freq_w) / n_w
    along_w = torch.stack([torch.cos(angle), -torch.sin(angle)], dim=-1).reshape(positions_w, 2 * m)

    freq_h = torch.arange(n_h, dtype=torch.float64)
    angle = 2 * math.pi * torch.outer(freq_h, torch.arange(max(height, kernel_size), dtype=torch.float64)) / n_h
    along_h = torch.polar(torch.ones_like(angle), -angle)

    kept_h = kept_positions(n_h, start, stride, out_h)
    inside = ((kept_h >= 0) & (kept_h < n_h)).to(torch.float64)[:, None] / n_h
    angle = 2 * math.pi * torch.outer(kept_h, freq_h) / n_h
    inverse_h = torch.polar(inside.expand_as(angle).contiguous(), angle)

    kept_w = kept_positions(n_w, start, stride, out_w)
    inside = ((kept_w >= 0) & (kept_w < n_w)).to(torch.float64)[None, :] / n_w
    angle = 2 * math.pi * torch.outer(freq_w, kept_w) / n_w
    scale = mirror_counts(n_w)[:, None] * inside
    inverse_w = torch.stack([scale * torch.cos(angle), -scale * torch.sin(angle)], dim=1).reshape(2 * m, out_w)
    return FourierMatrices(along_w, along_h, inverse_h, inverse_w)


# Under torch.compile the matrices are constants of the graph: dynamo calls the function once while tracing
# and bakes the result in. Dynamo traces through lru_cache into the function it wraps, so the marker goes on
# that function; unmarked, the graph would rebuild the matrices in float64 at every step, with complex
# ``polar`` calls inductor has no code for.
@lru_cache(maxsize=128)
@torch.compiler.assume_constant_result
def fourier_matrices(
    input_size: tuple[int, int],
    kernel_size: int,
    start: int,
    stride: int,
    out_size: tuple[int, int],
    dtype: torch.dtype,
    device: torch.device,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The :class:`FourierMatrices` fields for an ``input_size`` (H, W) map and a k x k kernel whose window keeps
    ``out_size`` rows and columns of the torus from ``start`` on, every ``stride``-th; built once in float64,
    cached per real ``dtype`` (complex ones in the matching complex dtype) and device, in field order."""
    exact = _matrices_float64(input_size, kernel_size, start, stride, out_size)
    complex_dtype = torch.complex128 if dtype == torch.float64 else torch.complex64
    return (
        exact.along_w.to(device=device, dtype=dtype),
        exact.along_h.to(device=device, dtype=complex_dtype),
        exact.inverse_h.to(device=device, dtype=complex_dtype),
        exact.inverse_w.to(device=device, dtype=dtype),
    )


def _transpose_copy(matrix: torch.Tensor) -> torch.Tensor:
    """A 2-D tensor's transpose, contiguous: the same values as ``matrix.t().contiguous()``, copied as a 3-D
    tensor. Torch copies a 2-D transpose with a single-threaded blocked kernel and any other strided copy in
    parallel: measured at 2 threads on this network's spectra (complex64, 2048 x 576), 0.6 ms against 1.5 ms,
    and a ConvNorm network's training step 5 % faster. A copy changes no value: the layer computes the same
    numbers, to the bit, as with torch's own transpose."""
    return matrix.t().unsqueeze(0).contiguous().squeeze(0)


class _Transposed(torch.autograd.Function):
    """``x`` read as ``rows`` rows and transposed (contiguous), with the same parallel copy as its backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, rows: int) -> torch.Tensor:  # type: ignore[override]
        ctx.shape = x.shape
        return _transpose_copy(x.reshape(rows, -1))

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        return _transpose_copy(grad).view(ctx.shape), None


def _transposed(x: torch.Tensor, rows: int) -> torch.Tensor:
    """``x`` read as ``rows`` rows, transposed and made contiguous (one transpose copy each way)."""
    return _Transposed.apply(x, rows)


def fourier_conv_window(
    x: torch.Tensor, weight: torch.Tensor, multiplier: torch.Tensor, start: int, stride: int, out_size: tuple[int, int]
) -> torch.Tensor:
    """The full convolution of ``x`` (N, C_in, H, W) with ``weight`` (C_out, C_in, k, k), preconditioned by
    ``multiplier`` (C_out, H + k - 1, (W + k - 1) // 2 + 1), at rows and columns ``start + stride * t`` of its
    torus (t < ``out_size``; zero outside it): ConvNorm's steps 1-4. All in one real dtype (float32 or
    float64); differentiable in ``x`` and ``weight``, the preconditioner a constant."""
    n, c_in, height, width = x.shape
    c_out, _, k, _ = weight.shape
    n_h, m = height + k - 1, (width + k - 1) // 2 + 1
    out_h, out_w = out_size
    mats = FourierMatrices(*fourier_matrices((height, width), k, start, stride, out_size, x.dtype, x.device))

    # The input's spectrum, frequencies first: (n_h * m, N, C_in).
    rows = torch.view_as_complex((x.reshape(-1, width) @ mats.along_w[:width]).view(n * c_in, height, m, 2))
    spectrum = (mats.along_h[:, :height] @ _transposed(rows, n * c_in).view(height, -1)).view(n_h * m, n, c_in)

    # The flipped kernels' spectra on the same torus, times the preconditioner: (n_h * m, C_out, C_in).
    flipped = weight.flip((-2, -1))
    kernel_rows = torch.view_as_complex((flipped.reshape(-1, k) @ mats.along_w[:k]).view(c_out * c_in, k, m, 2))
    kernel = (mats.along_h[:, :k] @ _transposed(kernel_rows, c_out * c_in).view(k, -1)).view(n_h, m, c_out, c_in)
    kernel = (kernel * multiplier.permute(1, 2, 0).unsqueeze(-1)).view(n_h * m, c_out, c_in)

    mixed = torch.bmm(spectrum, kernel.transpose(1, 2))  # (n_h * m, N, C_out)
    kept_rows = (mats.inverse_h @ mixed.view(n_h, -1)).view(out_h * m, n * c_out)
    kept_rows = torch.view_as_real(_transposed(kept_rows, out_h * m))  # (N * C_out, out_h * m, 2)
    return (kept_rows.reshape(-1, 2 * m) @ mats.inverse_w).view(n, c_out, out_h, out_w)
