"""Networks built by name: ``create_model(name, num_classes, ...) -> BuiltModel``.

Registered models: torchvision's ``resnet18``, ``resnet50``, ``densenet121``, ``densenet161``
(with pinned ImageNet weights), our ``cifar_resnet`` (6n+2, study 2), ``cifar_resnet18``
(study 3) and ``small`` (CPU smoke runs). See ``factory.py`` for the starting weights.
"""

from __future__ import annotations

from .factory import BuiltModel, create_model
from .heads import replace_head
from .registry import ArchOptions, get_model_spec, model_names, register_model

__all__ = [
    "ArchOptions",
    "BuiltModel",
    "create_model",
    "get_model_spec",
    "model_names",
    "register_model",
    "replace_head",
]
