"""Readable labels for runs: which data set a run used, in a reader's words.

A grid's parameters say everything about a run but not in a reader's words:
``dataset: imagefolder`` is the CIFAR-10 JPEG copy in ``data/cifar10-jpeg``.
Every chapter, the landing page and the statistics records name a data set this
way; a study's own labels (study 1's input settings) live in its package.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any, Mapping


def dataset_label(run: Mapping[str, Any]) -> str:
    """The registry name, or for a generic ``imagefolder`` set the name of its folder (``cifar10-jpeg``).

    A photometrically shifted set keeps its shift after its base's label: ``imagefolder+dim``
    read from ``data/cifar10-jpeg`` is ``cifar10-jpeg+dim``.
    """
    name = str(run.get("dataset"))
    base, separator, shift = name.partition("+")
    root = run.get("data_root")
    if base == "imagefolder" and isinstance(root, str) and root:
        return PurePosixPath(root.replace("\\", "/")).name + separator + shift
    return name
