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

from functools import cache, partial

import torch
from torch import nn
from torch.nn import functional as F

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
    module = getattr(torchvision.models, name)(weights=None, num_classes=num_classes, **kwargs)
    # Same parameters and state-dict keys; only forward_features is added.
    module.__class__ = _with_features(type(module))
    return module


def _resnet_features(self: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """torchvision ResNet.forward up to the head: the globally pooled features (N, fc.in_features)."""
    x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
    x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
    return torch.flatten(self.avgpool(x), 1)


def _densenet_features(self: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """torchvision DenseNet.forward up to the head: the globally pooled features (N, classifier.in_features)."""
    x = F.relu(self.features(x))
    return torch.flatten(F.adaptive_avg_pool2d(x, (1, 1)), 1)


@cache
def _with_features(base: type) -> type:
    """A subclass of torchvision's ``base`` (ResNet or DenseNet) with ``forward_features``.

    Every model exposes ``forward_features`` (the probes use it); torchvision's classes do not.
    """
    import torchvision.models

    features = _resnet_features if issubclass(base, torchvision.models.ResNet) else _densenet_features
    return type(base.__name__, (base,), {"forward_features": features, "__module__": __name__})


def _register(name: str, weights: str) -> None:
    register_model(name, description=f"torchvision {name} (ImageNet weights: {weights})", imagenet_weights=weights)(
        partial(build_torchvision, name)
    )


for _name, (_weights, _) in TORCHVISION_MODELS.items():
    _register(_name, _weights)


def recorded_preprocessing() -> list[dict[str, object]]:
    """Each pinned ImageNet checkpoint's own preprocessing, as its torchvision weights record it.

    Read from the weights' metadata (no download): the resize and crop sizes,
    the interpolation and the normalization statistics that the checkpoint was
    evaluated with. Study 1's earlier work ignored all of them and fed 32 and
    64 px images.
    """
    import torchvision.models  # imported here: it takes over a second

    rows = []
    for model, (weights_name, _) in TORCHVISION_MODELS.items():
        transforms = torchvision.models.get_weight(weights_name).transforms()
        rows.append(
            {
                "model": model,
                "weights": weights_name,
                "resize": int(transforms.resize_size[0]),
                "crop": int(transforms.crop_size[0]),
                "interpolation": transforms.interpolation.value,
                "mean": tuple(transforms.mean),
                "std": tuple(transforms.std),
            }
        )
    return rows
