"""torchvision's ImageNet networks (study 1): ResNet18/50, DenseNet121/161.

From scratch they are torchvision's architectures with a K-way head. ResNets accept any
registered ``norm_layer`` through torchvision's own ``norm_layer`` argument (their
convolutions stay bias-free, also with ``none``); DenseNets have no such argument and
accept only ``torch_bn``. Neither accepts a ``conv_layer`` other than ``conv``.

The ImageNet weights are pinned to one torchvision weights enum per model (``IMAGENET1K_V1``,
the weights ``pretrained=True`` gave, which the reference work used) and loaded through
``imagenet.py``.
"""

from __future__ import annotations

from functools import partial

from torch import nn

from ..errors import ModelError
from ..layers import create_norm
from .registry import ArchOptions, register_model

# name -> (pinned ImageNet weights, whether torchvision's builder takes a norm_layer)
TORCHVISION_MODELS: dict[str, tuple[str, bool]] = {
    "resnet18": ("ResNet18_Weights.IMAGENET1K_V1", True),
    "resnet50": ("ResNet50_Weights.IMAGENET1K_V1", True),
    "densenet121": ("DenseNet121_Weights.IMAGENET1K_V1", False),
    "densenet161": ("DenseNet161_Weights.IMAGENET1K_V1", False),
}


def build_torchvision(name: str, num_classes: int, options: ArchOptions) -> nn.Module:
    """torchvision's ``name`` without weights, with ``num_classes`` outputs and the chosen norm."""
    import torchvision.models  # imported here: it takes over a second and listing names must stay cheap

    _, takes_norm_layer = TORCHVISION_MODELS[name]
    if options.conv_layer != "conv":
        raise ModelError(f"conv_layer {options.conv_layer!r} is not supported by {name}; use conv_layer 'conv'")
    kwargs = {}
    if takes_norm_layer:
        kwargs["norm_layer"] = partial(create_norm, options.norm_layer)
    elif options.norm_layer != "torch_bn":
        raise ModelError(f"norm_layer {options.norm_layer!r} is not supported by {name}; use norm_layer 'torch_bn'")
    return getattr(torchvision.models, name)(weights=None, num_classes=num_classes, **kwargs)


def _register(name: str, weights: str) -> None:
    register_model(name, description=f"torchvision {name} (ImageNet weights: {weights})", imagenet_weights=weights)(
        partial(build_torchvision, name)
    )


for _name, (_weights, _) in TORCHVISION_MODELS.items():
    _register(_name, _weights)
