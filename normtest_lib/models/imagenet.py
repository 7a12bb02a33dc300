"""Loading torchvision's ImageNet weights from the torch cache, downloading only when allowed.

The file is looked for where torchvision itself keeps it,
``torch.hub.get_dir()/checkpoints/<basename of the weights' URL>`` (``$TORCH_HOME/hub/...``),
so weights fetched once by any torchvision program are reused. It is read with
``torch.load(weights_only=True)`` (torchvision's own loader does not insist on that).
The weights' recorded preprocessing (``weights.transforms()``) is returned with them: the
statistics, crop size and interpolation the network was trained with.
"""

from __future__ import annotations

import os
import pickle
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch

from ..errors import ModelError
from ..stats.channel import ChannelStats

# torchvision's DenseNet files keep the pre-2018 key names "denselayer1.norm.1.weight";
# today's modules call them "denselayer1.norm1.weight" (torchvision renames them the same way).
_LEGACY_DENSENET_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$"
)


@dataclass(frozen=True)
class Preprocessing:
    """What the weights expect at their input."""

    stats: ChannelStats
    crop_size: int
    interpolation: str


def resolve_weights(pinned: str) -> Any:
    """``"ResNet18_Weights.IMAGENET1K_V1"`` -> torchvision's weights enum member."""
    import torchvision.models

    enum_name, member = pinned.split(".")
    return getattr(getattr(torchvision.models, enum_name), member)


def weights_file(weights: Any) -> Path:
    """Where torchvision caches (and we look for) the weights' file."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(weights.url).path)


def preprocessing(weights: Any) -> Preprocessing:
    transform = weights.transforms()
    return Preprocessing(
        stats=ChannelStats(tuple(map(float, transform.mean)), tuple(map(float, transform.std))),
        crop_size=int(transform.crop_size[0]),
        interpolation=str(transform.interpolation.value),
    )


def load_imagenet_state_dict(weights: Any, allow_download: bool) -> dict[str, torch.Tensor]:
    """The weights' state dict from the cache; fetched first only if ``allow_download``."""
    path = weights_file(weights)
    if not path.is_file():
        _fetch(weights, path, allow_download)
    try:
        state_dict = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated download, wrong file
        reason = _short_reason(exc)
        raise ModelError(
            f"ImageNet weights file {path} cannot be read ({reason}); delete it and fetch it again from {weights.url}"
        ) from None
    return {_modern_key(key): value for key, value in state_dict.items()}


def _fetch(weights: Any, path: Path, allow_download: bool) -> None:
    by_hand = f"fetch {weights.url} and save it as {path} (the torch hub cache, $TORCH_HOME/hub/checkpoints)"
    if not allow_download:
        raise ModelError(
            f"ImageNet weights {path.name} for {weights!r} are not in the torch cache at {path}; {by_hand}, "
            "or allow downloads (run parameter download: true; create_model(..., allow_download=True))"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    hash_prefix = torch.hub.HASH_REGEX.search(path.name)
    try:
        # download_url_to_file writes to a temporary file and renames it, and checks the
        # hash prefix in torchvision's file name, so a failed download leaves no file behind.
        torch.hub.download_url_to_file(
            weights.url, str(path), hash_prefix=hash_prefix.group(1) if hash_prefix else None
        )
    except Exception as exc:
        raise ModelError(
            f"downloading ImageNet weights {path.name} from {weights.url} failed ({exc}); {by_hand}"
        ) from None


def _short_reason(exc: Exception) -> str:
    # torch's weights-only refusal (an UnpicklingError) advises weights_only=False, which we
    # never do; other messages are kept to their first line.
    if isinstance(exc, pickle.UnpicklingError):
        return "not a file of plain tensors"
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _modern_key(key: str) -> str:
    match = _LEGACY_DENSENET_KEY.match(key)
    return match.group(1) + match.group(2) if match else key
