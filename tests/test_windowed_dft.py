"""The windowed preconditioning by matrix products against the FFT pair, crop and stride it replaces."""

from __future__ import annotations

import pytest
import torch

from normtest_lib.layers._windowed_dft import precondition_window, windowed_dft
from normtest_lib.layers.convnorm import precondition, same_window


def fft_then_window(full: torch.Tensor, multiplier: torch.Tensor, kernel: int, padding: int, stride: int) -> torch.Tensor:
    return same_window(precondition(full, multiplier), kernel, padding)[..., ::stride, ::stride]


# (input H, W, kernel, padding, stride): square and not, odd and even tori, the "same" window (p = 1 for
# k = 3), a smaller window (p = 0), a larger one (p > k - 1: zeros beyond the torus), stride 2.
CASES = [(8, 8, 3, 1, 1), (7, 9, 3, 1, 2), (16, 16, 3, 1, 2), (6, 5, 3, 0, 1), (5, 6, 3, 3, 1), (9, 9, 5, 2, 3), (4, 4, 2, 1, 1)]


@pytest.mark.parametrize("height, width, kernel, padding, stride", CASES)
def test_matrix_products_equal_the_fft_pair_then_the_window(height, width, kernel, padding, stride):
    torch.manual_seed(0)
    torus = (height + kernel - 1, width + kernel - 1)
    full = torch.randn(3, 4, *torus, dtype=torch.float64)
    multiplier = torch.rand(4, torus[0], torus[1] // 2 + 1, dtype=torch.float64) + 0.5
    expected = fft_then_window(full, multiplier, kernel, padding, stride)
    out_size = tuple((size + 2 * padding - kernel) // stride + 1 for size in (height, width))
    ours = precondition_window(full, multiplier, kernel - 1 - padding, stride, out_size)
    assert ours.shape == expected.shape and ours.is_contiguous()
    torch.testing.assert_close(ours, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("height, width, kernel, padding, stride", CASES)
def test_backward_is_the_adjoint(height, width, kernel, padding, stride):
    torus = (height + kernel - 1, width + kernel - 1)
    full = torch.randn(2, 3, *torus, dtype=torch.float64, requires_grad=True)
    multiplier = torch.rand(3, torus[0], torus[1] // 2 + 1, dtype=torch.float64) + 0.5
    out_size = tuple((size + 2 * padding - kernel) // stride + 1 for size in (height, width))
    if height < 8:  # gradcheck differentiates numerically, one input element at a time: small maps only
        window = (full[:1, :1].detach().clone().requires_grad_(), multiplier[:1])
        assert torch.autograd.gradcheck(
            lambda t: precondition_window(t, window[1], kernel - 1 - padding, stride, out_size), (window[0],)
        )
    # The same gradient as autograd through the FFTs, the crop and the stride.
    upstream = torch.randn(2, 3, *out_size, dtype=torch.float64)
    (ours,) = torch.autograd.grad(precondition_window(full, multiplier, kernel - 1 - padding, stride, out_size), full, upstream)
    (theirs,) = torch.autograd.grad(fft_then_window(full, multiplier, kernel, padding, stride), full, upstream)
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-10)


def test_float32_agrees_with_float64_to_float_rounding():
    full = torch.randn(8, 16, 34, 34, dtype=torch.float64)
    multiplier = torch.rand(16, 34, 18, dtype=torch.float64) * 3
    exact = precondition_window(full, multiplier, 1, 1, (32, 32))
    single = precondition_window(full.float(), multiplier.float(), 1, 1, (32, 32))
    assert single.dtype == torch.float32
    assert (single.double() - exact).abs().max() < 1e-5 * exact.abs().max()


def test_matrices_are_built_once_per_size_dtype_and_device():
    first = windowed_dft((10, 10), 1, 1, (8, 8), torch.float32, torch.device("cpu"))
    assert windowed_dft((10, 10), 1, 1, (8, 8), torch.float32, torch.device("cpu")) is first
    assert windowed_dft((10, 10), 1, 1, (8, 8), torch.float64, torch.device("cpu")) is not first
