"""ConvNorm (Liu et al., NeurIPS 2021, arXiv:2103.00673), derived from the paper: ``convnorm[:<decay_steps>]``.

A convolution whose every output channel has unit energy at every frequency. With weight
W (C_out x C_in x k x k), per output channel o and frequency w of an n_h x n_w map:

    V_o(w) = ( sum_i |FFT2(W_o,i zero-padded to n_h x n_w)(w)|^2 + eps )^(-1/2)

computed from the weights without gradient. The layer convolves as usual (stride 1, the given
padding), multiplies each output channel's spectrum by V_o, transforms back, subsamples by the
stride (as the official layer did, so the output shape is the plain convolution's), and ends
with a learnable per-channel affine. A 1x1 convolution reduces to dividing each output
channel's weight vector by its norm.

The FFT size is the stride-1 output's own size (n = H + 2p - k + 1 per dimension); see
:meth:`PreconditionedConv2d._precondition` for what that makes exact and what stays the
paper's circular approximation.

Evaluation uses a running preconditioner R (a buffer), updated at each training forward with
the preconditioner V of the current weights:

    R <- (1 - a(t)) * R + a(t) * V,    a(t) = floor + (1 - floor) * (1 + cos(pi * min(t, T) / T)) / 2

where t is the number of optimizer steps done so far (the engine passes it to
:meth:`PreconditionedConv2d.after_optimizer_step`; 0 before the first step) and T is
``decay_steps``. So a(0) = 1 (R starts as the first V), a(T/2) = (1 + floor) / 2, and from T on
a(t) = floor: R then averages the last ~1/floor steps. The official defaults are T = 40,000
steps and floor 0.01; a reduced profile with ~1,000 steps needs ``convnorm:1000``. Without the
engine (no step ever passed) a = 1 and R is the last training forward's V. Before any training
forward, evaluation falls back to the preconditioner of the current weights.

R is defined per frequency of one map size, so a trained layer is tied to the resolution of
the feature maps it was trained on: evaluating, training or loading a state dict at another
one raises :class:`~normtest_lib.errors.ModelError` naming the layer and both resolutions.

Under bf16 autocast the convolution runs as autocast decides, the FFT, the multiplication and
the affine in float32 (bf16 FFTs lose the small spectral values V amplifies), and the output
has the convolution's dtype.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import ModelError
from ._moments import compute_dtype, per_channel
from .registry import register_conv

# The official code had no eps, so a frequency where every kernel of an output channel has
# (almost) no energy got an unbounded gain. 1e-5 bounds the gain at 1/sqrt(eps) ~ 316 and is
# negligible elsewhere: by Parseval the mean over frequencies of sum_i |FFT(W_o,i)|^2 is the
# squared norm of W_o, about 1/3 for Conv2d's default initialisation (weights uniform in
# +-1/sqrt(fan_in)), so eps is ~3e-5 of a typical frequency's energy.
DEFAULT_EPS = 1e-5
DEFAULT_DECAY_STEPS = 40_000  # the official default, ~100 CIFAR epochs at batch 128
DEFAULT_FLOOR = 0.01  # the official default


def fft_size(input_size: tuple[int, int], kernel_size: int, padding: int) -> tuple[int, int]:
    """The stride-1 output size for an input of ``input_size`` (H, W): the size the FFTs use."""
    height, width = input_size
    return height + 2 * padding - kernel_size + 1, width + 2 * padding - kernel_size + 1


def kernel_on_torus(weight: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The kernel wrapped onto a ``size`` torus: taps whose offsets differ by a multiple of the size add up.

    For a kernel no larger than the map this is the kernel itself (``rfft2`` zero-pads it). A kernel
    larger than the map (3x3 on a 2x2 output) would otherwise be cropped by ``rfft2(s=size)``;
    wrapped, its DFT at the map's frequencies is exactly that of the full kernel, as circular
    convolution on that torus sees it.
    """
    height, width = size
    kh, kw = weight.shape[-2:]
    if kh <= height and kw <= width:
        return weight
    padded = F.pad(weight, (0, -kw % width, 0, -kh % height))
    return padded.unflatten(-2, (-1, height)).sum(-3).unflatten(-1, (-1, width)).sum(-2)


@torch.no_grad()
def preconditioner(weight: torch.Tensor, size: tuple[int, int], eps: float = DEFAULT_EPS) -> torch.Tensor:
    """V_o(w) = (sum_i |FFT2(W_o,i)(w)|^2 + eps)^(-1/2) on a ``size`` (n_h, n_w) map: (C_out, n_h, n_w // 2 + 1).

    The half spectrum of ``rfft2`` (what the layer multiplies), in float32 (float64 for float64
    weights), detached: ConvNorm's gradient does not flow through the preconditioner.
    """
    kernel = kernel_on_torus(weight.detach().to(compute_dtype(weight)), size)
    spectrum = torch.fft.rfft2(kernel, s=size)
    energy = (spectrum.real.square() + spectrum.imag.square()).sum(dim=1)
    return torch.rsqrt(energy + eps)


def precondition(out: torch.Tensor, multiplier: torch.Tensor) -> torch.Tensor:
    """Each output channel's spectrum times ``multiplier`` (a preconditioner), transformed back at ``out``'s own size.

    In float32 (float64 for float64 inputs) with autocast off, whatever the caller's precision:
    a bf16 FFT would lose the small spectral values the preconditioner amplifies.
    """
    size = (int(out.shape[-2]), int(out.shape[-1]))
    dtype = compute_dtype(out)
    with torch.autocast(device_type=out.device.type, enabled=False):
        spectrum = torch.fft.rfft2(out.to(dtype), s=size)
        return torch.fft.irfft2(spectrum * multiplier.to(dtype), s=size)


def running_weight(step: int, decay_steps: int = DEFAULT_DECAY_STEPS, floor: float = DEFAULT_FLOOR) -> float:
    """a(t): the weight of the current preconditioner in the running one after ``step`` optimizer steps.

    1 at step 0, ``floor`` from ``decay_steps`` on, along a cosine in between ((1 + floor) / 2 halfway).
    """
    progress = min(max(step, 0), decay_steps) / decay_steps
    return floor + (1 - floor) * (1 + math.cos(math.pi * progress)) / 2


class PreconditionedConv2d(nn.Module):
    """ConvNorm's convolution: plain convolution, per-frequency unit-energy preconditioner, per-channel affine.

    Parameters: ``weight`` (C_out, C_in, k, k; Conv2d's default initialisation, no bias), and the
    affine ``scale`` (ones) and ``shift`` (zeros), one of each per output channel. The paper
    describes this affine as a per-channel scale and shift after the normalization, as in BN.
    The official code implemented it as a depthwise k x k convolution with bias, which also
    filters each channel spatially: that re-introduces a per-channel frequency response right
    after the step that flattened it, so we keep the paper's description.

    Buffers: ``running_preconditioner`` (C_out, n_h, n_w // 2 + 1; empty until the first training
    forward), ``input_size`` (the (H, W) of the feature maps it was trained on; zeros before) and
    ``step`` (the optimizer steps done, as last passed by the engine).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        eps: float = DEFAULT_EPS,
        decay_steps: int = DEFAULT_DECAY_STEPS,
        floor: float = DEFAULT_FLOOR,
    ) -> None:
        super().__init__()
        _check_options(kernel_size, stride, padding, eps, decay_steps, floor)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.eps, self.decay_steps, self.floor = eps, decay_steps, floor
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        self.scale = nn.Parameter(torch.ones(out_channels))
        self.shift = nn.Parameter(torch.zeros(out_channels))
        self.register_buffer("running_preconditioner", torch.empty(out_channels, 0, 0))
        self.register_buffer("input_size", torch.zeros(2, dtype=torch.long))
        self.register_buffer("step", torch.tensor(0, dtype=torch.long))
        # Python mirrors of input_size and step, so a forward pass never waits for the device to read them.
        self._trained_size: tuple[int, int] | None = None
        self._step = 0
        # The module path, once known (a state dict load tells it); only for error messages.
        self.layer_name: str | None = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # Conv2d's own default initialisation (kaiming uniform with a = sqrt(5)).
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        with torch.no_grad():
            self.scale.fill_(1)
            self.shift.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"{self.describe()} expects an input of shape (N, {self.in_channels}, H, W), got {tuple(x.shape)}"
            )
        size = (int(x.shape[-2]), int(x.shape[-1]))
        out = F.conv2d(x, self.weight, None, 1, self.padding)
        multiplier = self._multiplier(size, (int(out.shape[-2]), int(out.shape[-1])))
        return self._precondition(out, multiplier)

    def _multiplier(self, size: tuple[int, int], fft: tuple[int, int]) -> torch.Tensor:
        """The preconditioner for input maps of ``size``: the current weights' in training (updating the running
        one), the running one in evaluation, the current weights' in evaluation before any training forward."""
        if self._trained_size is not None and self._trained_size != size:
            action = "train on" if self.training else "evaluate"
            raise ModelError(self._resolution_message(self._trained_size, size, f"cannot {action}"))
        if not self.training and self._trained_size is not None:
            return self.running_preconditioner
        current = preconditioner(self.weight, fft, self.eps)
        if self.training:
            self._update_running(current, size)
        return current

    @torch.no_grad()
    def _update_running(self, current: torch.Tensor, size: tuple[int, int]) -> None:
        """R <- (1 - a(t)) R + a(t) V; the first update sets R = V (what a(0) = 1 gives from step 0)."""
        current = current.to(self.running_preconditioner.dtype)
        if self._trained_size is None:
            self.running_preconditioner = current.clone()
            self.input_size.copy_(torch.tensor(size))
            self._trained_size = size
            return
        weight = running_weight(self._step, self.decay_steps, self.floor)
        self.running_preconditioner.mul_(1 - weight).add_(current, alpha=weight)

    def _precondition(self, out: torch.Tensor, multiplier: torch.Tensor) -> torch.Tensor:
        """Multiply the stride-1 output's spectrum by the preconditioner, subsample by the stride, apply the affine.

        The FFT size is the stride-1 output's own size n (per dimension). What is exact: let A_o be
        output channel o's convolution as a circular one on an n-periodic map; A_o A_o^T is circulant
        with eigenvalues sum_i |FFT_n(W_o,i)|^2 = V_o^-2 (less eps), so multiplying the output's n-point
        spectrum by V_o applies exactly (A_o A_o^T)^(-1/2) to it: P_o A_o has orthonormal rows, each
        output channel's effective filter has unit energy at each of the n frequencies, and for
        n-periodic inputs (circular padding) the layer is exactly the paper's ConvNorm. Any other FFT
        size, such as the padded input's (n + k - 1), would zero-pad or crop the output before the
        multiplication: the result is then not a circulant operator on the output, and its gain at the
        output's frequencies is no longer the inverse square root of the filters' energy there. The
        subsampling after it is exact too: a strided convolution is the stride-1 one subsampled.
        The (paper's) circular approximation: the input is not n-periodic (it is zero-padded, or larger
        than n without padding), so the output is not a circular convolution's (with "same" padding it
        differs from one in k - 1 border rows and columns), yet the deconvolution treats it as
        periodic and mixes the opposite borders of the map.
        """
        flat = precondition(out, multiplier)[..., :: self.stride, :: self.stride]
        with torch.autocast(device_type=out.device.type, enabled=False):  # the affine in the FFT's precision too
            dtype = flat.dtype
            result = torch.addcmul(per_channel(self.shift, 4).to(dtype), flat, per_channel(self.scale, 4).to(dtype))
        return result.to(out.dtype)

    def after_optimizer_step(self, step: int) -> None:
        """Record the global optimizer step count (the engine calls this after each step), which sets a(t)."""
        self._step = int(step)
        self.step.fill_(self._step)

    def _load_from_state_dict(
        self,
        state_dict: dict,
        prefix: str,
        local_metadata: dict,
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        """Refuse a running preconditioner of another resolution; adopt the state dict's shape otherwise.

        An untrained layer (no resolution yet) takes any; its empty buffer is resized first, since
        torch's loader copies only into a buffer of the same shape.
        """
        if prefix:
            self.layer_name = prefix[:-1]
        size_key, running_key = prefix + "input_size", prefix + "running_preconditioner"
        if size_key in state_dict:
            incoming = _size_or_none(state_dict[size_key])
            if incoming is not None and self._trained_size is not None and incoming != self._trained_size:
                raise ModelError(
                    self._resolution_message(self._trained_size, incoming, "cannot load a state dict trained")
                )
        if running_key in state_dict:
            shape = tuple(state_dict[running_key].shape)
            own = self.running_preconditioner
            if len(shape) == 3 and shape[0] == self.out_channels and shape != tuple(own.shape):
                self.running_preconditioner = own.new_empty(shape)
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )
        self._trained_size = _size_or_none(self.input_size)
        self._step = int(self.step)

    def describe(self) -> str:
        """The layer for error messages: its module path when known, and its shape."""
        name = f" {self.layer_name!r}" if self.layer_name else ""
        return (
            f"convnorm layer{name} ({self.in_channels}->{self.out_channels}, {self.kernel_size}x{self.kernel_size}, "
            f"stride {self.stride}, padding {self.padding})"
        )

    def _resolution_message(self, trained: tuple[int, int], other: tuple[int, int], action: str) -> str:
        return (
            f"{self.describe()} was trained on {trained[0]}x{trained[1]} feature maps and {action} on "
            f"{other[0]}x{other[1]} ones: its running preconditioner is defined per frequency of one map size, "
            "so a trained ConvNorm layer works only at the resolution it was trained at"
        )

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
            f"padding={self.padding}, eps={self.eps}, decay_steps={self.decay_steps}, floor={self.floor}"
        )


def _size_or_none(size: torch.Tensor) -> tuple[int, int] | None:
    """An ``input_size`` buffer as (H, W), or None for an untrained layer (zeros)."""
    height, width = (int(v) for v in size.tolist())
    return None if height == 0 and width == 0 else (height, width)


def _check_options(kernel_size: int, stride: int, padding: int, eps: float, decay_steps: int, floor: float) -> None:
    if kernel_size < 1 or stride < 1 or padding < 0:
        raise ModelError(f"needs kernel_size >= 1, stride >= 1, padding >= 0 (got {kernel_size}, {stride}, {padding})")
    if eps < 0:
        raise ModelError(f"eps must be >= 0, got {eps}")
    if decay_steps < 1:
        raise ModelError(f"decay_steps must be a positive number of optimizer steps, got {decay_steps}")
    if not 0 <= floor <= 1:
        raise ModelError(f"floor must be in [0, 1], got {floor}")


def parse_decay_steps(arg: str | None) -> int:
    """``convnorm`` -> the official 40,000 steps; ``convnorm:<decay_steps>`` -> that positive integer."""
    if arg is None:
        return DEFAULT_DECAY_STEPS
    try:
        steps = int(arg)
    except ValueError:
        raise ModelError(
            f"the argument after 'convnorm:' is the running preconditioner's decay length in optimizer steps, "
            f"a positive integer (e.g. convnorm:1000); got {arg!r}"
        ) from None
    if steps < 1:
        raise ModelError(f"convnorm:<decay_steps> needs a positive number of steps, got {steps}")
    return steps


@register_conv("convnorm")
def build_convnorm(
    in_channels: int, out_channels: int, kernel_size: int, stride: int, padding: int, bias: bool, arg: str | None
) -> nn.Module:
    """ConvNorm's preconditioned convolution with its affine; ``convnorm:<decay_steps>`` shortens the decay."""
    # ``bias`` is ignored: a bias before the preconditioner would be filtered by it (and scaled per
    # frequency), and the affine after it already carries the per-channel shift that models/blocks.py
    # asks a convolution's bias for when the norm is ``none``.
    del bias
    return PreconditionedConv2d(
        in_channels, out_channels, kernel_size, stride=stride, padding=padding, decay_steps=parse_decay_steps(arg)
    )
