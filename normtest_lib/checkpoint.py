"""Checkpoints: one file format for resuming a run and for starting another from it.

A checkpoint holds only tensors and plain Python values, so it loads with
``torch.load(..., weights_only=True)``: a file can never run code.

Keys (``FORMAT`` = "normtest-checkpoint/1"):
- ``format``: the string above.
- ``model``: {"name", "num_classes", "norm_layer", "conv_layer", "depth_n"}: enough to rebuild the network.
- ``state_dict``: the model's weights.
- ``source``: {"dataset", "mean": [3] | None, "std": [3] | None, "input_size": int, "input_norm",
  "interpolation", "finetune_stats": {"mean", "std"}}: what the network was trained on. mean/std are the statistics its inputs were
  standardized with ('finetune': its training set's, 'pretrain': its start's, 'center': its
  training set's mean with std 1.0, since nothing was divided), None for any other input_norm; a
  fine-tuning run uses them as its ``pretrain`` statistics. finetune_stats are the run's
  training-set statistics whatever input_norm did with them (``engine.trained.load_trained``
  rebuilds the input pipeline from them; absent in older files).
- ``epoch``: epochs completed (``best.pt``: the best epoch).
- ``precision``: "bf16" or "fp32", the arithmetic of the run's forward passes (absent in older
  files); a run is never resumed in another precision.
- ``train_state``: optimizer, scheduler, RNG and best-so-far state, the history rows and the probe
  rows (``probes``) for resuming (absent in ``best.pt`` and in a checkpoint exported only for
  fine-tuning).

A run folder holds two such files: ``checkpoint.pt`` (the last epoch, with ``train_state``) and
``best.pt`` (the best epoch's weights, plus ``selected_by``: "val_acc" or "last"). Both are
usable as ``pretrained:`` of another run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .errors import ModelError
from .io import atomic_path

FORMAT = "normtest-checkpoint/1"


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` atomically: a crash mid-write leaves the previous file intact."""
    payload = {"format": FORMAT, **payload}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`, refusing anything that could run code."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"checkpoint {path} does not exist")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # a truncated file, a pickle with code, not a torch file at all
        # torch's own message ends with advice to retry with weights_only=False: never take it.
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"checkpoint {path} cannot be read safely: {reason}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ModelError(f"{path} is not a normtest checkpoint (format {FORMAT!r} expected)")
    return payload
