"""``create_model``: any registered network, from scratch, from ImageNet, or from our checkpoint."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from ..checkpoint import load_checkpoint
from ..errors import ModelError
from ..stats.channel import ChannelStats
from .heads import replace_head
from .imagenet import load_imagenet_state_dict, preprocessing, resolve_weights
from .registry import ArchOptions, ModelSpec, get_model_spec


@dataclass(frozen=True)
class BuiltModel:
    """A network and what its starting weights expect of the input."""

    module: nn.Module
    # The (mean, std) the starting weights were trained with; None from scratch.
    pretrain_stats: ChannelStats | None
    # The image size the starting weights were trained at; None from scratch (or unrecorded).
    input_size: int | None
    # The resize interpolation of the weights' preprocessing ("bilinear"), where recorded.
    interpolation: str | None
    # "scratch", "imagenet:ResNet18_Weights.IMAGENET1K_V1" or "checkpoint:<path as given>" (a relative
    # path stays relative, so a committed run names no folder of the machine that made it).
    source: str
    # The input_norm a normtest checkpoint was trained with (None elsewhere); it explains a
    # checkpoint without statistics (one trained with 'instance', 'unit', ...).
    trained_input_norm: str | None = None
    # SHA-256 of the checkpoint file started from (None elsewhere): which weights, not just which path.
    source_sha256: str | None = None


def create_model(
    name: str,
    num_classes: int,
    *,
    pretrained: str = "none",
    norm_layer: str = "torch_bn",
    conv_layer: str = "conv",
    depth_n: int = 2,
    allow_download: bool = False,
) -> BuiltModel:
    """Build model ``name`` with a ``num_classes``-way head.

    ``pretrained``: ``"none"`` (from scratch), ``"imagenet"`` (torchvision's pinned weights, from
    the torch cache; fetched only if ``allow_download``), or the path of a normtest checkpoint,
    whose recorded architecture must match the one asked for. Raises ModelError otherwise.
    """
    spec = get_model_spec(name)
    if num_classes < 1:
        raise ModelError(f"num_classes must be at least 1, got {num_classes}")
    if depth_n < 1:
        raise ModelError(f"depth_n must be at least 1, got {depth_n}")
    options = ArchOptions(norm_layer, conv_layer, depth_n)
    if pretrained == "none":
        return BuiltModel(spec.build(num_classes, options), None, None, None, "scratch")
    if pretrained == "imagenet":
        return _from_imagenet(spec, num_classes, options, allow_download)
    return _from_checkpoint(spec, num_classes, options, Path(pretrained))


def check_imagenet_options(spec: ModelSpec, norm_layer: str) -> None:
    """Refuse a model without ImageNet weights, or a norm layer that cannot hold them."""
    if spec.imagenet_weights is None:
        raise ModelError(
            f"model {spec.name!r} has no ImageNet weights; use pretrained 'none' or a normtest checkpoint"
        )
    if norm_layer != "torch_bn":
        raise ModelError(
            f"norm_layer {norm_layer!r} cannot hold {spec.name}'s ImageNet weights (trained with "
            "BatchNorm); use norm_layer 'torch_bn' with pretrained 'imagenet'"
        )


def _from_imagenet(spec: ModelSpec, num_classes: int, options: ArchOptions, allow_download: bool) -> BuiltModel:
    check_imagenet_options(spec, options.norm_layer)
    weights = resolve_weights(spec.imagenet_weights)
    module = spec.build(len(weights.meta["categories"]), options)  # first: checks the options before any I/O
    state_dict = load_imagenet_state_dict(weights, allow_download)
    load_into(module, state_dict, f"ImageNet weights {spec.imagenet_weights}")
    replace_head(module, num_classes)
    prep = preprocessing(weights)
    return BuiltModel(module, prep.stats, prep.crop_size, prep.interpolation, f"imagenet:{spec.imagenet_weights}")


def _from_checkpoint(spec: ModelSpec, num_classes: int, options: ArchOptions, path: Path) -> BuiltModel:
    payload = load_checkpoint(path)
    recorded = _recorded_architecture(payload, path)
    if recorded["name"] != spec.name:
        raise ModelError(
            f"checkpoint {path} holds model {recorded['name']!r}, not {spec.name!r}; set model to {recorded['name']!r}"
        )
    _check_same_layers(spec, options, recorded, path)
    module = spec.build(int(recorded["num_classes"]), options)
    load_into(module, payload["state_dict"], f"checkpoint {path}")
    if int(recorded["num_classes"]) != num_classes:
        replace_head(module, num_classes)
    source = payload.get("source")
    if not isinstance(source, dict):
        raise ModelError(f"checkpoint {path} has no 'source' block recording what it was trained on")
    input_size = source.get("input_size")
    return BuiltModel(
        module,
        _recorded_stats(source, path),
        int(input_size) if input_size is not None else None,
        source.get("interpolation"),
        f"checkpoint:{path}",
        source.get("input_norm"),
        file_sha256(path),
    )


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _recorded_stats(source: dict, path: Path) -> ChannelStats | None:
    """The mean/std a checkpoint's network was trained with; None when its input_norm used none."""
    mean, std = source.get("mean"), source.get("std")
    if mean is None and std is None:
        return None  # trained with instance/minmax/unit/none: no statistics to reuse
    if mean is None or std is None or len(mean) != 3 or len(std) != 3:
        raise ModelError(f"checkpoint {path} records a broken mean/std ({mean!r}, {std!r}): 3 values each expected")
    return ChannelStats(tuple(map(float, mean)), tuple(map(float, std)))


def load_into(module: nn.Module, state_dict: dict, what: str) -> None:
    """``module.load_state_dict`` (strict), with a ModelError that says what did not fit."""
    try:
        module.load_state_dict(state_dict)
    except (RuntimeError, TypeError) as exc:
        raise ModelError(f"{what} does not fit the network: {exc}") from None


def _recorded_architecture(payload: dict, path: Path) -> dict:
    recorded = payload.get("model")
    required = {"name", "num_classes", "norm_layer", "conv_layer", "depth_n"}
    if not isinstance(recorded, dict) or not required <= set(recorded):
        raise ModelError(f"checkpoint {path} does not record its model ({', '.join(sorted(required))} expected)")
    if "state_dict" not in payload:
        raise ModelError(f"checkpoint {path} holds no 'state_dict'")
    return recorded


def _check_same_layers(spec: ModelSpec, options: ArchOptions, recorded: dict, path: Path) -> None:
    """The run's parameters must describe the network it gets, or results would be mislabelled."""
    compared = ["norm_layer", "conv_layer"] + (["depth_n"] if spec.uses_depth_n else [])
    differing = [key for key in compared if getattr(options, key) != recorded[key]]
    if differing:
        wanted = ", ".join(f"{key}={recorded[key]!r} (asked: {getattr(options, key)!r})" for key in differing)
        raise ModelError(f"checkpoint {path} was trained with {wanted}; set the same values to start from it")
