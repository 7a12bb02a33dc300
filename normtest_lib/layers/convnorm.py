"""ConvNorm (Liu et al., NeurIPS 2021, arXiv:2103.00673), re-derived from the paper and the construction
``../shared/STUDIES.md`` states: ``convnorm[:<decay_steps>]`` and ``convnorm_channel_affine[:<decay_steps>]``.

A convolution whose every output channel has unit energy at every frequency. Per k x k layer with
weight W (C_out x C_in x k x k), padding p and stride s, on an H x W map:

1. convolve with padding k - 1: the full linear convolution, (H + k - 1) x (W + k - 1). On that
   torus it is exactly a circular convolution, which makes the next step exact;
2. per output channel o and frequency w of that torus,

       V_o(w) = ( sum_i |FFT2(W_o,i zero-padded to the torus)(w)|^2 + eps )^(-1/2),

   from the weights without gradient;
3. multiply each output channel's spectrum by V_o and transform back: each output channel's
   operator now has orthonormal rows on the torus, so it is a contraction (norm <= 1);
4. crop k - 1 - p rows and columns from each side (the window a padding-p convolution gives),
   then subsample by the stride: the output shape is the plain convolution's;
5. an affine. ``convnorm``: the official layer's depthwise k x k convolution with bias,
   default-initialised (Conv2d's initialisation, "same" padding), which can also filter each
   channel spatially. ``convnorm_channel_affine``: the paper's description instead, a
   per-channel scale (ones) and shift (zeros) as in batch norm.

Steps 1-4 are computed in the Fourier domain (``_fourier_conv.py``): the input's spectrum on the
torus, times each frequency's kernel matrix (the flipped kernels' spectra, already multiplied by
V), and the inverse transforms evaluated only at the rows and columns the window and the stride
keep, all as dense matrix products. The same numbers as the full convolution followed by
``rfft2``, ``irfft2``, crop and subsample (tested to 1e-12 in float64); no position a stride
discards is computed. :meth:`PreconditionedConv2d.normalized` keeps steps 2-4 on a given full
convolution (``_windowed_dft.py``), which the errata chapter measures operators with.

A 1x1 convolution reduces to dividing each output channel's weight vector by its norm, which the
layer computes directly (no FFT, and its preconditioner is not tied to a resolution).

Taking the FFT at the "same" output's size instead (convolving with padding p, as this project's
first edition did) applies a circular inverse to an output that is not circular: that is not
ConvNorm, and its per-channel operator norm reaches 1.4 to 2.3 at random initialisation and
tens for an edge filter (the errata chapter's "Corrections to this book").

Evaluation uses a running preconditioner R (a buffer), updated at each training forward with
the preconditioner V of the current weights:

    R <- (1 - a(t)) * R + a(t) * V,    a(t) = floor + (1 - floor) * (1 + cos(pi * min(t, T) / T)) / 2

where t is the number of optimizer steps done so far (the engine passes it to
:meth:`PreconditionedConv2d.after_optimizer_step`; 0 before the first step) and T is
``decay_steps``. So a(0) = 1 (R starts as the first V), a(T/2) = (1 + floor) / 2, and from T on
a(t) = floor: R then averages the last ~1/floor steps. The official defaults are T = 40,000
steps and floor 0.01; a reduced profile with ~1,000 steps needs ``convnorm:1000``. Without the
engine (no step ever passed) a = 1 and R is the last training forward's V. Before any training
forward, evaluation falls back to the preconditioner of the current weights. The step lives in a
tensor buffer and a(t) is computed from it with tensor operations, so a compiled model does not
recompile at every step (compiled code treats a module's Python ints as constants).

R is defined per frequency of one torus, so a trained k > 1 layer is tied to the resolution of
the feature maps it was trained on: evaluating, training or loading a state dict at another
one raises :class:`~normtest_lib.errors.ModelError` naming the layer and both resolutions.

Under bf16 autocast the transforms, the products and the affine run in float32 (in bf16 the
small spectral values V amplifies would be lost), and the output has the dtype autocast gives
a convolution.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import ModelError
from ._fourier_conv import fourier_conv_window
from ._moments import compute_dtype, per_channel
from ._windowed_dft import precondition_window
from .registry import ArgumentForm, register_conv

# The official code had no eps, so a frequency where every kernel of an output channel has
# (almost) no energy got an unbounded gain. 1e-5 bounds the gain at 1/sqrt(eps) ~ 316 and is
# negligible elsewhere: by Parseval the mean over frequencies of sum_i |FFT(W_o,i)|^2 is the
# squared norm of W_o, about 1/3 for Conv2d's default initialisation (weights uniform in
# +-1/sqrt(fan_in)), so eps is ~3e-5 of a typical frequency's energy.
DEFAULT_EPS = 1e-5
DEFAULT_DECAY_STEPS = 40_000  # the official default, ~100 CIFAR epochs at batch 128
DEFAULT_FLOOR = 0.01  # the official default
AFFINES = ("depthwise", "channel")


def fft_size(input_size: tuple[int, int], kernel_size: int) -> tuple[int, int]:
    """The torus the FFTs use for an input of ``input_size`` (H, W): the full convolution's (H + k - 1, W + k - 1)."""
    height, width = input_size
    return height + kernel_size - 1, width + kernel_size - 1


@torch.no_grad()
def preconditioner(weight: torch.Tensor, size: tuple[int, int], eps: float = DEFAULT_EPS) -> torch.Tensor:
    """V_o(w) = (sum_i |FFT2(W_o,i)(w)|^2 + eps)^(-1/2) on a ``size`` (n_h, n_w) torus: (C_out, n_h, n_w // 2 + 1).

    The half spectrum of ``rfft2`` (what the layer multiplies), in float32 (float64 for float64
    weights), detached: ConvNorm's gradient does not flow through the preconditioner. ``rfft2``
    zero-pads each k x k slice to the torus, which is never smaller than the kernel.
    """
    spectrum = torch.fft.rfft2(weight.detach().to(compute_dtype(weight)), s=size)
    energy = (spectrum.real.square() + spectrum.imag.square()).sum(dim=1)
    return torch.rsqrt(energy + eps)


@torch.no_grad()
def pointwise_preconditioner(weight: torch.Tensor, eps: float = DEFAULT_EPS) -> torch.Tensor:
    """The 1x1 case: V_o = (sum_i W_o,i^2 + eps)^(-1/2), the same at every frequency: (C_out, 1, 1)."""
    weight = weight.detach().to(compute_dtype(weight))
    return torch.rsqrt(weight.square().sum(dim=(1, 2, 3)) + eps).view(-1, 1, 1)


def precondition(out: torch.Tensor, multiplier: torch.Tensor) -> torch.Tensor:
    """Each output channel's spectrum times ``multiplier`` (a preconditioner), transformed back at ``out``'s own size.

    The FFT form over the whole torus, without the window: what the errata chapter measures operators with and
    the tests check the layer's matrix-product form (:func:`~._windowed_dft.precondition_window`) against.

    In float32 (float64 for float64 inputs) with autocast off, whatever the caller's precision:
    a bf16 FFT would lose the small spectral values the preconditioner amplifies. Differentiable in
    ``out`` (the preconditioner is a constant), through :class:`_Precondition`.
    """
    dtype = compute_dtype(out)
    with torch.autocast(device_type=out.device.type, enabled=False):
        return _Precondition.apply(out.to(dtype), multiplier.detach().to(dtype))


def _apply_spectrum(x: torch.Tensor, multiplier: torch.Tensor) -> torch.Tensor:
    size = (int(x.shape[-2]), int(x.shape[-1]))
    return torch.fft.irfft2(torch.fft.rfft2(x, s=size) * multiplier, s=size)


class _Precondition(torch.autograd.Function):
    """x -> irfft2(rfft2(x) * V) with its own backward, which is the same operation on the gradient.

    The operation is a circular convolution whose spectrum V is real and even (V(-w) = V(w): the
    filters are real, so |FFT(W)(-w)| = |FFT(W)(w)|), so its matrix is symmetric and its adjoint is
    itself. Autograd through rfft2 and irfft2 would reach the same gradient with a complex-to-complex
    FFT, zero fills and copies instead: measured on the CPU, this backward is one real FFT pair.
    """

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: torch.Tensor, multiplier: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(multiplier)
        return _apply_spectrum(x, multiplier)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (multiplier,) = ctx.saved_tensors
        return _apply_spectrum(grad.contiguous(), multiplier), None


def same_window(full: torch.Tensor, kernel_size: int, padding: int) -> torch.Tensor:
    """The window of the full convolution's output that a padding-p convolution gives.

    k - 1 - p rows and columns come off each side. With p > k - 1 a padding-p convolution sees only
    zeros beyond the full output, so the window is the full output with p - (k - 1) zeros around it.
    """
    crop = kernel_size - 1 - padding
    if crop > 0:
        return full[..., crop:-crop, crop:-crop]
    return F.pad(full, (-crop,) * 4) if crop < 0 else full


def running_weight(
    step: int | torch.Tensor, decay_steps: int = DEFAULT_DECAY_STEPS, floor: float = DEFAULT_FLOOR
) -> float | torch.Tensor:
    """a(t): the weight of the current preconditioner in the running one after ``step`` optimizer steps.

    1 at step 0, ``floor`` from ``decay_steps`` on, along a cosine in between ((1 + floor) / 2 halfway).
    A tensor step gives a tensor (computed on its device, so a compiled forward reads no Python int).
    """
    if isinstance(step, torch.Tensor):
        progress = step.clamp(0, decay_steps).to(torch.float64) / decay_steps
        return floor + (1 - floor) * (1 + torch.cos(math.pi * progress)) / 2
    progress = min(max(step, 0), decay_steps) / decay_steps
    return floor + (1 - floor) * (1 + math.cos(math.pi * progress)) / 2


class DepthwiseAffine(nn.Module):
    """The official layer's affine: a depthwise k x k convolution with bias and "same" padding, initialised as
    torch's Conv2d initialises itself (weights and bias uniform in +-1/sqrt(k * k)).

    Not a Conv2d subclass, so code that walks a model's Conv2d modules (to initialise or count them) never
    mistakes it for a convolution of the network."""

    def __init__(self, channels: int, kernel_size: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(channels, 1, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.empty(channels))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        bound = 1 / math.sqrt(self.weight[0].numel())
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight, bias = self.weight.to(x.dtype), self.bias.to(x.dtype)
        k = self.weight.shape[-1]
        if k % 2 == 0:  # "same" for an even kernel: one more row and column after than before, as torch pads
            x = F.pad(x, ((k - 1) // 2, k // 2, (k - 1) // 2, k // 2))
        return F.conv2d(x, weight, bias, padding=(k - 1) // 2 if k % 2 else 0, groups=self.weight.shape[0])


class ChannelAffine(nn.Module):
    """The paper's description of the affine: a per-channel scale (ones) and shift (zeros), as in batch norm."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(channels))
        self.shift = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addcmul(per_channel(self.shift, 4).to(x.dtype), x, per_channel(self.scale, 4).to(x.dtype))


class PreconditionedConv2d(nn.Module):
    """ConvNorm's convolution: full convolution, per-frequency unit-energy preconditioner, window, affine.

    Parameters: ``weight`` (C_out, C_in, k, k; Conv2d's default initialisation, no bias) and the
    affine's: ``affine.weight`` (C_out, 1, k, k) and ``affine.bias`` for ``affine="depthwise"``
    (the official layer's, the default), ``affine.scale`` and ``affine.shift`` for ``"channel"``.

    Buffers: ``running_preconditioner`` (C_out, n_h, n_w // 2 + 1 on the (H + k - 1, W + k - 1)
    torus, or C_out, 1, 1 for a 1x1 layer; empty until the first training forward), ``input_size``
    (the (H, W) of the feature maps a k > 1 layer was trained on; zeros before, and always for
    1x1) and ``step`` (the optimizer steps done, as last passed by the engine).
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
        affine: str = "depthwise",
    ) -> None:
        super().__init__()
        _check_options(kernel_size, stride, padding, eps, decay_steps, floor, affine)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.eps, self.decay_steps, self.floor = eps, decay_steps, floor
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        # Conv2d's own default initialisation (kaiming uniform with a = sqrt(5)), drawn before the affine's,
        # so a seeded layer has a seeded Conv2d's weights.
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        self.affine = DepthwiseAffine(out_channels, kernel_size) if affine == "depthwise" else ChannelAffine(out_channels)
        self.register_buffer("running_preconditioner", torch.empty(out_channels, 0, 0))
        self.register_buffer("input_size", torch.zeros(2, dtype=torch.long))
        self.register_buffer("step", torch.tensor(0, dtype=torch.long))
        # A Python mirror of input_size, so a forward pass never waits for the device to read it.
        self._trained_size: tuple[int, int] | None = None
        # The module path, once known (a state dict load tells it); only for error messages.
        self.layer_name: str | None = None

    @property
    def pointwise(self) -> bool:
        return self.kernel_size == 1

    def reset_parameters(self) -> None:
        """Both initialisations again, in the constructor's order."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if isinstance(self.affine, DepthwiseAffine):
            self.affine.reset_parameters()
        else:
            with torch.no_grad():
                self.affine.scale.fill_(1)
                self.affine.shift.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"{self.describe()} expects an input of shape (N, {self.in_channels}, H, W), got {tuple(x.shape)}"
            )
        if self.pointwise:  # the window and the stride commute with a per-channel gain: convolve as Conv2d does
            out = F.conv2d(x, self.weight, None, self.stride, self.padding)
            flat, out_dtype = self.normalized(out, None), out.dtype
        else:
            flat, out_dtype = self._convolve_normalized(x), _conv_output_dtype(x)
        with torch.autocast(device_type=x.device.type, enabled=False):  # the affine in the FFT's precision too
            result = self.affine(flat)
        return result.to(out_dtype)

    def _convolve_normalized(self, x: torch.Tensor) -> torch.Tensor:
        """Steps 1-4 for k > 1 in the Fourier domain (``_fourier_conv``), in float32 (float64 for float64)."""
        dtype = compute_dtype(x)
        input_size = (int(x.shape[-2]), int(x.shape[-1]))
        torus = fft_size(input_size, self.kernel_size)
        multiplier = self._multiplier(input_size, lambda: preconditioner(self.weight, torus, self.eps))
        start, out_size = self._window(input_size)
        with torch.autocast(device_type=x.device.type, enabled=False):
            return fourier_conv_window(
                x.to(dtype), self.weight.to(dtype), multiplier.to(dtype), start, self.stride, out_size
            )

    def _window(self, input_size: tuple[int, int]) -> tuple[int, tuple[int, int]]:
        """The window's first row and column on the torus, and how many rows and columns the stride keeps."""
        out_size = tuple((size + 2 * self.padding - self.kernel_size) // self.stride + 1 for size in input_size)
        return self.kernel_size - 1 - self.padding, (out_size[0], out_size[1])

    def normalized(self, out: torch.Tensor, input_size: tuple[int, int] | None) -> torch.Tensor:
        """Steps 2-4 on the convolution ``out`` of an ``input_size`` map (the full one for k > 1, the plain one
        for 1x1): the preconditioned output before the affine, in float32 (float64 for float64).

        The layer's forward computes k > 1 from the input in the Fourier domain instead (the same map); this
        form, from a given full convolution, is what the errata chapter measures operators with."""
        dtype = compute_dtype(out)
        if self.pointwise:
            multiplier = self._multiplier(None, lambda: pointwise_preconditioner(self.weight, self.eps))
            return out.to(dtype) * multiplier.to(dtype)
        torus = (int(out.shape[-2]), int(out.shape[-1]))
        multiplier = self._multiplier(input_size, lambda: preconditioner(self.weight, torus, self.eps))
        if input_size is None:
            raise ValueError(f"{self.describe()}: a k > 1 layer's window needs the input's (H, W)")
        start, out_size = self._window(input_size)
        with torch.autocast(device_type=out.device.type, enabled=False):
            return precondition_window(out.to(dtype), multiplier.to(dtype), start, self.stride, out_size)

    def _multiplier(self, size: tuple[int, int] | None, current_weights: Callable[[], torch.Tensor]) -> torch.Tensor:
        """The preconditioner: the current weights' in training (updating the running one), the running one in
        evaluation, the current weights' in evaluation before any training forward. ``size`` is the input's
        (H, W) for a layer tied to a resolution, None for a 1x1 layer."""
        if size is not None and self._trained_size is not None and self._trained_size != size:
            action = "train on" if self.training else "evaluate"
            raise ModelError(self._resolution_message(self._trained_size, size, f"cannot {action}"))
        trained = self.running_preconditioner.numel() > 0
        if not self.training and trained:
            return self.running_preconditioner
        current = current_weights()
        if self.training:
            self._update_running(current, size, trained)
        return current

    @torch.no_grad()
    def _update_running(self, current: torch.Tensor, size: tuple[int, int] | None, trained: bool) -> None:
        """R <- (1 - a(t)) R + a(t) V; the first update sets R = V (what a(0) = 1 gives from step 0)."""
        if not trained:
            self.running_preconditioner = current.clone()
            if size is not None:
                self.input_size.copy_(torch.tensor(size))
                self._trained_size = size
            return
        weight = running_weight(self.step, self.decay_steps, self.floor).to(self.running_preconditioner.dtype)
        self.running_preconditioner.mul_(1 - weight).add_(current.to(self.running_preconditioner.dtype) * weight)

    def after_optimizer_step(self, step: int) -> None:
        """Record the global optimizer step count (the engine calls this after each step), which sets a(t)."""
        self.step.fill_(int(step))

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


def _conv_output_dtype(x: torch.Tensor) -> torch.dtype:
    """The dtype ``conv2d`` would return for ``x``: autocast's lower precision where it is on, else x's own."""
    device_type = x.device.type
    if torch.is_autocast_enabled(device_type):
        return torch.get_autocast_dtype(device_type)
    return x.dtype


def _size_or_none(size: torch.Tensor) -> tuple[int, int] | None:
    """An ``input_size`` buffer as (H, W), or None for an untrained or 1x1 layer (zeros)."""
    height, width = (int(v) for v in size.tolist())
    return None if height == 0 and width == 0 else (height, width)


def _check_options(
    kernel_size: int, stride: int, padding: int, eps: float, decay_steps: int, floor: float, affine: str
) -> None:
    if kernel_size < 1 or stride < 1 or padding < 0:
        raise ModelError(f"needs kernel_size >= 1, stride >= 1, padding >= 0 (got {kernel_size}, {stride}, {padding})")
    if eps < 0:
        raise ModelError(f"eps must be >= 0, got {eps}")
    if decay_steps < 1:
        raise ModelError(f"decay_steps must be a positive number of optimizer steps, got {decay_steps}")
    if not 0 <= floor <= 1:
        raise ModelError(f"floor must be in [0, 1], got {floor}")
    if affine not in AFFINES:
        raise ModelError(f"affine must be one of {', '.join(AFFINES)}, got {affine!r}")


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


# ``bias`` is ignored by both builders: a bias before the preconditioner would be filtered by it (and
# scaled per frequency), and the affine after it already carries the per-channel shift that
# models/blocks.py asks a convolution's bias for when the norm is ``none``.


def _builder(affine: str, doc: str) -> Callable[..., nn.Module]:
    """A conv builder for ConvNorm with the given affine (``bias`` ignored: see the comment above)."""
    def build(
        in_channels: int, out_channels: int, kernel_size: int, stride: int, padding: int, bias: bool, arg: str | None
    ) -> nn.Module:
        del bias
        return PreconditionedConv2d(
            in_channels, out_channels, kernel_size, stride=stride, padding=padding,
            decay_steps=parse_decay_steps(arg), affine=affine,
        )  # fmt: skip

    build.__doc__ = doc
    return build


# What ``convnorm:<steps>`` means, for the glossary (the numbers are the constants above, so it cannot drift).
DECAY_ARGUMENTS = (
    ArgumentForm(
        "<steps>", "1000",
        f"T (decay_steps): the span, in optimizer steps, of the running average of the preconditioner that "
        f"evaluation uses: the weight each step's new preconditioner gets falls along a cosine from 1 at the "
        f"first step to {DEFAULT_FLOOR:g} at step T; from then on the average spans about the last "
        f"{1 / DEFAULT_FLOOR:.0f} steps; "
        f"without an argument T = {DEFAULT_DECAY_STEPS:,} (the official default), and `convnorm:1000` "
        "suits a profile of about 1,000 steps",
    ),
)  # fmt: skip

build_convnorm = register_conv("convnorm", DECAY_ARGUMENTS)(
    _builder("depthwise", "ConvNorm as the official layer computes it (depthwise affine); ``convnorm:<steps>``.")
)
build_convnorm_channel_affine = register_conv("convnorm_channel_affine", DECAY_ARGUMENTS)(
    _builder("channel", "ConvNorm with the paper's per-channel scale and shift in place of the depthwise affine.")
)
