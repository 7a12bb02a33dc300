"""Cheap validation of model options, for the run schema: no weights, no memory, no I/O."""

from __future__ import annotations

import functools

import torch

from ..errors import ModelError


@functools.lru_cache(maxsize=256)
def check_model_options(name: str, norm_layer: str, conv_layer: str, depth_n: int, pretrained: str = "none") -> None:
    """Raise ModelError if ``name`` cannot be built with these layers (or this pretrained start).

    The network is built on PyTorch's ``meta`` device, which allocates nothing,
    so every check the real build makes (layer names and their arguments, such
    as a group count that does not divide a width) runs in milliseconds and
    before any data is loaded. Cached: a grid validates many runs of one model.
    """
    from .factory import create_model
    from .registry import get_model_spec

    if pretrained == "imagenet":
        spec = get_model_spec(name)
        if spec.imagenet_weights is None:
            raise ModelError(f"model {name!r} has no ImageNet weights; use pretrained 'none' or a normtest checkpoint")
        if norm_layer != "torch_bn":
            raise ModelError(f"norm_layer {norm_layer!r} cannot hold {name}'s ImageNet weights; use 'torch_bn'")
    with torch.device("meta"):
        create_model(name, 10, norm_layer=norm_layer, conv_layer=conv_layer, depth_n=depth_n)
