"""The model registry: a name maps to a function that builds the network from scratch.

Builders take ``(num_classes, options)`` and return an ``nn.Module`` whose classifier is
an ``nn.Linear`` attribute named ``fc`` or ``classifier`` (so a head can be replaced
uniformly, see ``heads.py``), and which has ``forward_features(x)``: the globally pooled
features that classifier receives (the ``features`` probe measures them). Registration is by decorator, as for data sets and layers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from torch import nn

from ..errors import ModelError


@dataclass(frozen=True)
class ArchOptions:
    """The run parameters that shape a network besides its class count."""

    norm_layer: str = "torch_bn"
    conv_layer: str = "conv"
    depth_n: int = 2


ModelBuilder = Callable[[int, ArchOptions], nn.Module]


@dataclass(frozen=True)
class ModelSpec:
    name: str
    build: ModelBuilder
    description: str
    uses_depth_n: bool = False
    # "ResNet18_Weights.IMAGENET1K_V1": the pinned torchvision weights, None if the model has none.
    imagenet_weights: str | None = None


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(
    name: str, *, description: str, uses_depth_n: bool = False, imagenet_weights: str | None = None
) -> Callable[[ModelBuilder], ModelBuilder]:
    """Decorator: register ``builder(num_classes, options) -> nn.Module`` under ``name``."""

    def decorate(builder: ModelBuilder) -> ModelBuilder:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is registered twice")
        _REGISTRY[name] = ModelSpec(name, builder, description, uses_depth_n, imagenet_weights)
        return builder

    return decorate


def _ensure_models_imported() -> None:
    # Importing the model modules fills the registry. They import torchvision only
    # inside their builders, so listing names (done by every config validation) stays cheap.
    from . import cifar_resnet, small, torchvision_models  # noqa: F401


def model_names() -> list[str]:
    _ensure_models_imported()
    return sorted(_REGISTRY)


def get_model_spec(name: str) -> ModelSpec:
    _ensure_models_imported()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ModelError(f"unknown model {name!r}; known: {', '.join(sorted(_REGISTRY))}") from None
