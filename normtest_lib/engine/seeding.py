"""Seeds for every random stream of a run, and the global RNG state a checkpoint keeps.

Each stream (validation split, training subset, statistics subset, model
initialisation, each epoch's shuffle and augmentation) gets its own seed
derived from ``config.seed`` and the stream's name, so changing one part of a
run (say, the number of epochs) never shifts the random numbers of another
(say, the validation split).

A checkpoint keeps the global RNG states: the CPU ones (torch, numpy, random),
which the engine's randomness comes from, and on CUDA only the generator of the
run's device (what dropout on the model's device draws from), whichever device is
current in the process. Not every visible GPU's: a run resumed with fewer or more
GPUs visible must still load; it restores the state into its own device.
"""

from __future__ import annotations

import hashlib
import random
from typing import Any

import numpy as np
import torch


def derive_seed(seed: int, *names: object) -> int:
    """A 63-bit seed for stream ``names`` of run seed ``seed``, stable across processes and versions."""
    text = "/".join([str(seed), *map(str, names)])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") % (2**63)


def generator(seed: int, *names: object) -> torch.Generator:
    """A CPU generator for one stream; CPU so that CPU and CUDA runs draw the same numbers."""
    return torch.Generator().manual_seed(derive_seed(seed, *names))


def seed_globals(seed: int) -> None:
    """Seed the global RNGs (torch, CUDA, numpy, random) that models may use, e.g. for dropout."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def capture_rng_state(device: torch.device | None = None) -> dict[str, Any]:
    """The global RNG states as tensors and plain lists, loadable with ``weights_only=True``;
    with a CUDA ``device``, that device's generator too."""
    py_version, py_state, py_gauss = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": [py_version, list(py_state), py_gauss],
        "numpy": [np_name, np_keys.tolist(), int(np_pos), int(np_has_gauss), float(np_gauss)],
    }
    if device is not None and device.type == "cuda" and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state(_cuda_index(device))
    return state


def restore_rng_state(state: dict[str, Any], device: torch.device | None = None) -> None:
    """Undo :func:`capture_rng_state`; the saved CUDA state goes to ``device`` (a CUDA device)."""
    torch.set_rng_state(state["torch"].cpu())
    py_version, py_state, py_gauss = state["python"]
    random.setstate((py_version, tuple(py_state), py_gauss))
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = state["numpy"]
    np.random.set_state((np_name, np.asarray(np_keys, dtype=np.uint32), np_pos, np_has_gauss, np_gauss))
    if device is None or device.type != "cuda" or not torch.cuda.is_available():
        return
    index = _cuda_index(device)
    cuda_state = _device_state(state.get("cuda"), index)
    if cuda_state is not None:
        torch.cuda.set_rng_state(cuda_state.cpu(), index)


def _cuda_index(device: torch.device) -> int:
    """``cuda`` without an index is the current device, as tensors placed on it are."""
    return device.index if device.index is not None else torch.cuda.current_device()


def _device_state(saved: torch.Tensor | list[torch.Tensor] | None, index: int) -> torch.Tensor | None:
    """The saved CUDA state for device ``index``; older checkpoints hold one per visible GPU."""
    if saved is None or isinstance(saved, torch.Tensor):
        return saved
    # Fewer GPUs visible than when saved: a device without a saved state keeps its own.
    return saved[index] if index < len(saved) else None
