"""Cheap validation of model options, for the run schema: no weights, no memory, no I/O."""

from __future__ import annotations

import functools

import torch



@functools.lru_cache(maxsize=256)
def check_model_options(name: str, norm_layer: str, conv_layer: str, depth_n: int, pretrained: str = "none") -> None:
    """Raise :class:`~normtest_lib.errors.ModelError` if ``name`` cannot be built with these layers (or this pretrained start).

    The network is built on PyTorch's ``meta`` device, which allocates nothing,
    so every check the real build makes (layer names and their arguments, such
    as a group count that does not divide a width) runs in milliseconds and
    before any data is loaded. Cached: a grid validates many runs of one model.
    """
    from .factory import check_imagenet_options, create_model
    from .registry import get_model_spec

    if pretrained == "imagenet":
        check_imagenet_options(get_model_spec(name), norm_layer)
    with torch.device("meta"):
        create_model(name, 10, norm_layer=norm_layer, conv_layer=conv_layer, depth_n=depth_n)
