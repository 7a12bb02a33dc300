"""The training engine: device-resident data, batch augmentation, optimizers, the resumable loop.

``train(config, out_dir)`` is the one entry point; the run folder it writes is
described in ARCHITECTURE.md ("A run").
"""

from .loop import train

__all__ = ["train"]
