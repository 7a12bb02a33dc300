"""Seeds for every random stream of a run, and the global RNG state a checkpoint keeps.

Each stream (validation split, training subset, statistics subset, model
initialisation, each epoch's shuffle and augmentation) gets its own seed
derived from ``config.seed`` and the stream's name, so changing one part of a
run (say, the number of epochs) never shifts the random numbers of another
(say, the validation split).
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


def capture_rng_state() -> dict[str, Any]:
    """The global RNG states as tensors and plain lists, loadable with ``weights_only=True``."""
    py_version, py_state, py_gauss = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": [py_version, list(py_state), py_gauss],
        "numpy": [np_name, np_keys.tolist(), int(np_pos), int(np_has_gauss), float(np_gauss)],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Undo :func:`capture_rng_state`."""
    torch.set_rng_state(state["torch"].cpu())
    py_version, py_state, py_gauss = state["python"]
    random.setstate((py_version, tuple(py_state), py_gauss))
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = state["numpy"]
    np.random.set_state((np_name, np.asarray(np_keys, dtype=np.uint32), np_pos, np_has_gauss, np_gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
