"""ConvNorm against an independent float64 reference written from the published construction.

The reference follows the five steps of ``../shared/STUDIES.md`` (study 3) with NumPy and SciPy
only, none of the layer's code: the full linear convolution (scipy's ``correlate2d``, mode
``full``), full complex 2-D FFTs on its (H + k - 1) x (W + k - 1) torus, the preconditioner from
each kernel slice zero-padded to that size, the inverse FFT, the "same" window (k - 1 - p rows and
columns cropped from each side) and the stride. The layer's affine is set to the identity for the
comparison, since the reference stops before it.
"""

import numpy as np
import pytest
import torch
from scipy.signal import correlate2d
from torch import nn

from normtest_lib.layers.convnorm import PreconditionedConv2d


def reference_convnorm(x: np.ndarray, weight: np.ndarray, padding: int, stride: int) -> np.ndarray:
    """ConvNorm without its affine, in float64: x (N, C_in, H, W), weight (C_out, C_in, k, k)."""
    batch, in_channels, height, width = x.shape
    out_channels, _, k, _ = weight.shape
    torus = (height + k - 1, width + k - 1)
    # 1. the full linear convolution (torch's convolution is a cross-correlation, as correlate2d)
    full = np.zeros((batch, out_channels, *torus))
    for n in range(batch):
        for o in range(out_channels):
            for i in range(in_channels):
                full[n, o] += correlate2d(x[n, i], weight[o, i], mode="full")
    # 2. its spectrum, and V_o(w) = (sum_i |FFT(W_o,i zero-padded to the torus)(w)|^2)^(-1/2)
    padded = np.zeros((out_channels, in_channels, *torus))
    padded[..., :k, :k] = weight
    energy = (np.abs(np.fft.fft2(padded)) ** 2).sum(axis=1)
    v = energy**-0.5
    # 3. each output channel's spectrum times V_o, transformed back
    flat = np.real(np.fft.ifft2(np.fft.fft2(full) * v[None]))
    # 4. the window of a padding-p convolution, then the stride
    crop = k - 1 - padding
    window = flat[..., crop : torus[0] - crop, crop : torus[1] - crop]
    return window[..., ::stride, ::stride]


def identity_affine_layer(weight: torch.Tensor, padding: int, stride: int) -> PreconditionedConv2d:
    out_channels, in_channels, k, _ = weight.shape
    module = PreconditionedConv2d(in_channels, out_channels, k, stride, padding, eps=0.0).double()
    with torch.no_grad():
        module.weight.copy_(weight)
        module.affine.weight.zero_()
        module.affine.weight[:, :, (k - 1) // 2, (k - 1) // 2] = 1  # a centred unit impulse
        module.affine.bias.zero_()
    return module


def filters(kind: str, out_channels: int, in_channels: int, k: int, generator: torch.Generator) -> torch.Tensor:
    """Random filters (Conv2d's initialisation scale), smooth ones (box blurs) or edge filters (a horizontal
    difference): the last two are where a wrong FFT size shows most. Each slice of the last two gets a random
    gain and a 5 % random perturbation, so that no frequency has exactly zero energy (V would be infinite)."""
    noise = torch.rand(out_channels, in_channels, k, k, generator=generator, dtype=torch.float64) * 2 - 1
    if kind == "random":
        return noise
    gains = torch.rand(out_channels, in_channels, 1, 1, generator=generator, dtype=torch.float64) + 0.5
    if kind == "smooth":
        shape = torch.ones(k, k, dtype=torch.float64) / k**2
    else:
        shape = torch.zeros(k, k, dtype=torch.float64)
        shape[:, 0], shape[:, -1] = -1.0, 1.0
    return gains * shape + 0.05 * noise * shape.abs().max()


CASES = [
    (k, stride, size, kind)
    for k in (1, 3)
    for stride in (1, 2)
    for size in (4, 7, 16, 32)
    for kind in ("random", "smooth", "edge")
    if not (k == 1 and kind == "edge")
]


@pytest.mark.parametrize("kernel_size,stride,size,kind", CASES)
def test_the_layer_computes_the_published_construction(kernel_size, stride, size, kind):
    generator = torch.Generator().manual_seed(size * 10 + stride)
    weight = filters(kind, 3, 2, kernel_size, generator)
    padding = (kernel_size - 1) // 2
    x = torch.randn(2, 2, size, size + 1, generator=generator, dtype=torch.float64)
    expected = reference_convnorm(x.numpy(), weight.numpy(), padding, stride)
    module = identity_affine_layer(weight, padding, stride)
    for training in (True, False):  # in evaluation the running preconditioner is the one training set
        module.train(training)
        with torch.no_grad():
            out = module(x)
        assert out.shape == expected.shape == nn.Conv2d(2, 3, kernel_size, stride, padding)(x.float()).shape
        np.testing.assert_allclose(out.numpy(), expected, rtol=1e-9, atol=1e-9)


def operator_matrix(module: nn.Module, channel: int, in_channels: int, size: int) -> torch.Tensor:
    """Output channel ``channel``'s operator as an explicit matrix: one column per input pixel."""
    basis = torch.eye(in_channels * size * size, dtype=torch.float64).view(-1, in_channels, size, size)
    with torch.no_grad():
        out = module(basis)[:, channel]
    return out.reshape(out.shape[0], -1).T


@pytest.mark.parametrize("kind", ["random", "smooth", "edge"])
@pytest.mark.parametrize("kernel_size,stride,size", [(3, 1, 8), (3, 2, 8), (3, 1, 5), (1, 1, 6), (5, 1, 8)])
def test_each_output_channels_operator_is_a_contraction(kind, kernel_size, stride, size):
    generator = torch.Generator().manual_seed(7)
    in_channels = 3
    weight = filters(kind, 4, in_channels, kernel_size, generator)
    module = identity_affine_layer(weight, (kernel_size - 1) // 2, stride)
    for channel in range(4):
        norm = torch.linalg.matrix_norm(operator_matrix(module, channel, in_channels, size), ord=2)
        assert norm <= 1 + 1e-6, f"output channel {channel}: operator norm {float(norm):.4f}"
    # Without padding the window is the whole torus at stride 1, where the operator has orthonormal
    # rows: its norm is exactly 1, so the bound above is tight rather than vacuous.
    if kernel_size > 1 and stride == 1:
        module.padding = kernel_size - 1
        norm = torch.linalg.matrix_norm(operator_matrix(module, 0, in_channels, size), ord=2)
        assert abs(float(norm) - 1) < 1e-9
