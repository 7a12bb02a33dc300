"""ConvNorm's steps 1-4 in the Fourier domain against the full convolution, FFT pair, crop and stride."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from normtest_lib.layers._fourier_conv import fourier_conv_window
from normtest_lib.layers.convnorm import precondition, preconditioner, same_window


def reference(x: torch.Tensor, weight: torch.Tensor, multiplier: torch.Tensor, padding: int, stride: int) -> torch.Tensor:
    k = weight.shape[-1]
    full = F.conv2d(x, weight, None, 1, k - 1)
    return same_window(precondition(full, multiplier), k, padding)[..., ::stride, ::stride]


# (H, W, kernel, padding, stride): square and not, odd and even tori, the "same" window, a smaller one
# (p = 0), a larger one (p > k - 1), strides 2 and 3, an even kernel, a kernel wider than the map.
CASES = [
    (8, 8, 3, 1, 1), (7, 9, 3, 1, 2), (16, 16, 3, 1, 2), (6, 5, 3, 0, 1), (5, 6, 3, 3, 1), (9, 9, 5, 2, 3),
    (4, 4, 2, 1, 1), (3, 4, 5, 2, 1),
]  # fmt: skip


def _inputs(height, width, kernel, batch=3, c_in=2, c_out=4):
    torch.manual_seed(0)
    x = torch.randn(batch, c_in, height, width, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(c_out, c_in, kernel, kernel, dtype=torch.float64, requires_grad=True)
    multiplier = preconditioner(weight, (height + kernel - 1, width + kernel - 1), 1e-5)
    return x, weight, multiplier


@pytest.mark.parametrize("height, width, kernel, padding, stride", CASES)
def test_equals_the_full_convolution_then_the_fft_pair_and_window(height, width, kernel, padding, stride):
    x, weight, multiplier = _inputs(height, width, kernel)
    out_size = tuple((size + 2 * padding - kernel) // stride + 1 for size in (height, width))
    ours = fourier_conv_window(x, weight, multiplier, kernel - 1 - padding, stride, out_size)
    expected = reference(x, weight, multiplier, padding, stride)
    assert ours.shape == expected.shape and ours.is_contiguous()
    torch.testing.assert_close(ours, expected, rtol=1e-12, atol=1e-12)
    # The same gradients, for the input and the kernel (the preconditioner is a constant in both).
    upstream = torch.randn_like(expected)
    ours_grad = torch.autograd.grad(ours, (x, weight), upstream)
    expected_grad = torch.autograd.grad(expected, (x, weight), upstream)
    for got, want in zip(ours_grad, expected_grad):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


def test_gradcheck_on_a_small_map():
    x, weight, multiplier = _inputs(4, 5, 3, batch=1, c_in=2, c_out=2)
    assert torch.autograd.gradcheck(lambda a, b: fourier_conv_window(a, b, multiplier, 1, 2, (2, 3)), (x, weight))


def test_float32_agrees_with_float64_to_float_rounding():
    x, weight, multiplier = _inputs(32, 32, 3, batch=4, c_in=16, c_out=16)
    exact = fourier_conv_window(x, weight, multiplier, 1, 1, (32, 32))
    single = fourier_conv_window(x.float(), weight.float(), multiplier.float(), 1, 1, (32, 32))
    assert single.dtype == torch.float32
    assert (single.double() - exact).abs().max() < 1e-5 * exact.abs().max()


def test_a_compiled_graph_holds_the_matrices_as_constants():
    """Dynamo traces through ``lru_cache``: unmarked, the float64 DFT matrices (cos, sin, complex ``polar``)
    would be rebuilt inside the compiled graph at every call. The graph has them as constants instead."""
    torch._dynamo.reset()
    graphs = []

    def recording_backend(gm: torch.fx.GraphModule, example_inputs):
        graphs.append(gm)
        return gm.forward

    x, weight, multiplier = _inputs(6, 5, 3)
    compiled = torch.compile(fourier_conv_window, backend=recording_backend, fullgraph=True)
    ours = compiled(x, weight, multiplier, 1, 2, (3, 3))
    torch.testing.assert_close(ours, fourier_conv_window(x, weight, multiplier, 1, 2, (3, 3)), rtol=1e-12, atol=1e-12)
    targets = {str(node.target) for gm in graphs for node in gm.graph.nodes if node.op == "call_function"}
    assert graphs and not any(name in target for target in targets for name in ("polar", "cos", "sin", "outer"))
    assert any("bmm" in target for target in targets)  # the graph is the layer's, not an empty one


def test_the_parallel_corner_turns_change_no_bit(monkeypatch):
    """The transposes between the transforms are copied in parallel: the output and both gradients are the
    ones torch's own 2-D transpose gives, to the bit (so fingerprints recorded before still verify)."""
    from normtest_lib.layers import _fourier_conv

    torch.manual_seed(0)
    x = torch.randn(4, 3, 9, 8, requires_grad=True)
    weight = torch.randn(5, 3, 3, 3, requires_grad=True)
    multiplier = preconditioner(weight, (11, 10), 1e-5)
    upstream = torch.randn(4, 5, 5, 4)

    def run():
        out = fourier_conv_window(x, weight, multiplier, 1, 2, (5, 4))
        return (out, *torch.autograd.grad(out, (x, weight), upstream))

    ours = run()
    monkeypatch.setattr(_fourier_conv, "_transpose_copy", lambda matrix: matrix.t().contiguous())
    for got, plain in zip(ours, run()):
        assert torch.equal(got, plain)
