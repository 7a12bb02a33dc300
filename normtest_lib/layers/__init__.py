"""Normalization layers and convolutions, built by name.

``create_norm("torch_gn:c/4", 64)`` and ``create_conv("conv", 16, 32, 3, stride=2, padding=1)``
are the only way models obtain these layers, so a run's ``norm_layer`` / ``conv_layer``
parameter selects them everywhere at once.

Families: torch's own layers (``torch_bn``, ``torch_gn[:<groups>]``, ``none``; torch_norms.py) and
the from-scratch ones, plain tensor arithmetic with torch's semantics: ``bn`` (batchnorm.py),
``in`` (instancenorm.py), ``ln`` (layernorm.py), ``gn[:<groups>]`` (groupnorm.py; plain ``gn`` is
C/4 groups) and ``bin`` (batchinstancenorm.py, Batch-Instance Norm with its gate ``rho``).
Convolutions: ``conv`` (torch's Conv2d; conv.py) and ``convnorm[:<decay_steps>]`` (convnorm.py, ConvNorm's
preconditioned convolution as the published layer computes it, with its depthwise affine, from scratch with
torch.fft; ``convnorm_channel_affine[:<decay_steps>]`` with a per-channel scale and shift instead).

To add a family: write one module with a builder decorated by ``@register_norm("name")``
(or ``@register_conv("name")``) and add it to the import list below.
"""

from __future__ import annotations

from torch import nn

from .registry import (
    ArgumentForm,
    check_conv_name,
    check_norm_name,
    conv_arguments,
    conv_builder,
    conv_names,
    create_conv,
    create_norm,
    is_norm_layer,
    norm_arguments,
    norm_builder,
    norm_names,
    register_conv,
    register_norm,
)

# Importing a family's module registers it.
from . import (  # noqa: E402,F401  (isort: keep after the registry)
    batchinstancenorm,
    batchnorm,
    conv,
    convnorm,
    groupnorm,
    instancenorm,
    layernorm,
    torch_norms,
)


def has_learned_shift(norm: nn.Module) -> bool:
    """Whether a normalization layer adds its own learnable per-channel shift (a parameter
    named ``bias``, as torch's layers and ours call it).

    Models give the convolution before a norm a bias only when the norm has none: a bias
    before BN or GN is cancelled by the mean subtraction, but without normalization (``none``)
    the convolution's bias is the only shift the layer has.
    """
    return isinstance(getattr(norm, "bias", None), nn.Parameter)


__all__ = [
    "ArgumentForm",
    "check_conv_name",
    "check_norm_name",
    "conv_arguments",
    "conv_builder",
    "conv_names",
    "create_conv",
    "create_norm",
    "has_learned_shift",
    "is_norm_layer",
    "norm_arguments",
    "norm_builder",
    "norm_names",
    "register_conv",
    "register_norm",
]
