"""A trained network read back from its run folder, and evaluating a network on a split.

``load_trained(run_dir)`` rebuilds the network of ``best.pt`` (or ``checkpoint.pt``)
with its weights, and the :class:`InputPipeline` that feeds it exactly as during
training (the same input normalization and statistics, the same resize). Both files
record what that needs (``model`` and ``source``, see ``checkpoint.py``), so no data
set has to be loaded to rebuild them.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Callable, Literal

import torch
import torch.nn.functional as F
from torch import nn

from ..checkpoint import load_checkpoint
from ..data.types import Split
from ..errors import ModelError
from ..run_files import BEST, CHECKPOINT
from ..stats.channel import ChannelStats
from .loader import InputPipeline, eval_batches

Which = Literal["best", "last"]
_FILES = {"best": BEST, "last": CHECKPOINT}


def evaluate_split(
    model: nn.Module,
    pipeline: InputPipeline,
    split: Split,
    batch_size: int,
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` over ``split`` in evaluation mode.

    ``split`` must be on the model's device; ``autocast`` is the run's precision
    (:meth:`Execution.autocast`; float32 by default). Batches are taken in the
    split's order, so the same weights, batch size and precision give the same numbers.
    """
    loss, accuracy, _ = evaluate_and_predict(model, pipeline, split, batch_size, autocast)
    return loss, accuracy


def evaluate_and_predict(
    model: nn.Module,
    pipeline: InputPipeline,
    split: Split,
    batch_size: int,
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
) -> tuple[float, float, torch.Tensor]:
    """:func:`evaluate_split`'s loss and accuracy and :func:`predict_split`'s predictions from one pass over
    ``split``: a run's test accuracy and F1 at its chosen epoch cost one evaluation of the test split, not two."""
    device = split.images.device
    loss_sum = torch.zeros((), dtype=torch.float32, device=device)
    predictions = []
    model.eval()
    with torch.no_grad():
        for images, labels in eval_batches(split, batch_size):
            with autocast():
                logits = model(pipeline(images))
            loss_sum += F.cross_entropy(logits.float(), labels, reduction="sum")
            predictions.append(logits.argmax(dim=1))
    predicted = torch.cat(predictions)
    correct = (predicted == split.labels.to(predicted.device)).sum()
    return loss_sum.item() / len(split), correct.item() / len(split), predicted


def predict_split(
    model: nn.Module,
    pipeline: InputPipeline,
    split: Split,
    batch_size: int,
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
) -> torch.Tensor:
    """The predicted class of every image of ``split``, in its order (int64, on the split's device)."""
    model.eval()
    predictions = []
    with torch.no_grad():
        for images, _ in eval_batches(split, batch_size):
            with autocast():
                predictions.append(model(pipeline(images)).argmax(dim=1))
    return torch.cat(predictions)


def load_trained(
    run_dir: str | Path, which: Which = "best", device: str | torch.device = "cpu"
) -> tuple[nn.Module, InputPipeline]:
    """The network of a run folder's ``best.pt`` (``which="best"``) or ``checkpoint.pt``
    (``"last"``) on ``device``, in evaluation mode, and the pipeline that feeds it uint8 images.

    Raises ModelError when the file is absent or does not record what is needed.
    """
    from ..input_norm import make_normalizer
    from ..models import create_model

    if which not in _FILES:
        raise ModelError(f"which: {which!r} is not one of {', '.join(_FILES)}")
    path = Path(run_dir) / _FILES[which]
    payload = load_checkpoint(path)
    recorded, source = payload.get("model"), payload.get("source")
    if not isinstance(recorded, dict) or not isinstance(source, dict) or "input_norm" not in source:
        raise ModelError(f"{path} does not record its model and input settings; it cannot be evaluated again")
    built = create_model(
        recorded["name"],
        int(recorded["num_classes"]),
        pretrained=str(path),
        norm_layer=recorded["norm_layer"],
        conv_layer=recorded["conv_layer"],
        depth_n=int(recorded["depth_n"]),
    )
    model = built.module.to(device).eval()
    setting = source["input_norm"]
    finetune = _stats(source.get("finetune_stats"))
    if finetune is None and setting == "finetune":
        finetune = built.pretrain_stats  # older files: mean/std are the finetune statistics themselves
    try:
        normalizer = make_normalizer(setting, finetune_stats=finetune, pretrain_stats=built.pretrain_stats)
    except ValueError as exc:
        raise ModelError(f"{path}: input_norm {setting!r} cannot be rebuilt: {exc}") from None
    interpolation = source.get("interpolation")
    # interpolation is None exactly when the run kept the images' native size.
    resize_to = int(source["input_size"]) if interpolation is not None else None
    trained_size = int(source["input_size"]) if source.get("input_size") is not None else None
    return model, InputPipeline(normalizer, resize_to, interpolation or "bilinear", trained_size=trained_size)


def _stats(recorded: object) -> ChannelStats | None:
    if not isinstance(recorded, dict) or recorded.get("mean") is None or recorded.get("std") is None:
        return None
    return ChannelStats(tuple(map(float, recorded["mean"])), tuple(map(float, recorded["std"])))
