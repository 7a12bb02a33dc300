"""Replacing a network's classifier with a new K-way head."""

from __future__ import annotations

from torch import nn

from ..errors import ModelError

HEAD_ATTRIBUTES = ("fc", "classifier")  # torchvision's ResNets / DenseNets; our models use "fc"


def head_of(module: nn.Module) -> tuple[str, nn.Linear]:
    """The classifier's attribute name and the layer itself."""
    for attribute in HEAD_ATTRIBUTES:
        head = getattr(module, attribute, None)
        if isinstance(head, nn.Linear):
            return attribute, head
    raise ModelError(f"{type(module).__name__} has no linear head named {' or '.join(HEAD_ATTRIBUTES)}")


def replace_head(module: nn.Module, num_classes: int) -> nn.Module:
    """Swap the classifier for a freshly initialised ``nn.Linear`` with ``num_classes`` outputs
    (in place; returns ``module``). Everything before the head keeps its weights."""
    attribute, head = head_of(module)
    new_head = nn.Linear(head.in_features, num_classes, bias=head.bias is not None)
    setattr(module, attribute, new_head.to(device=head.weight.device, dtype=head.weight.dtype))
    return module
