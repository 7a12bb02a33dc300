"""The training engine: device-resident data, batch augmentation, optimizers, the resumable loop.

``train(config, out_dir)`` is the one entry point; the run folder it writes is
described in ARCHITECTURE.md ("A run"). ``load_trained(run_dir)`` reads its
``best.pt`` back as a network and its input pipeline.
"""

from .loop import train
from .trained import evaluate_split, load_trained

__all__ = ["evaluate_split", "load_trained", "train"]
