"""Readable labels for runs: which data a run fine-tuned on and under which setting.

A grid's parameters say everything about a run but not in a reader's words:
``dataset: imagefolder`` is the CIFAR-10 JPEG copy, and a study-1 run with
``stats_subset: 10`` is "finetune, statistics from 10 images". Tables and
figures group by these labels so that every condition of a grid is one column
or one curve.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any, Mapping

import pandas as pd

SCRATCH = "from scratch"


def dataset_label(run: Mapping[str, Any]) -> str:
    """The registry name, or for a generic ``imagefolder`` set the name of its folder (``cifar10-jpeg``)."""
    name = str(run.get("dataset"))
    root = run.get("data_root")
    if name == "imagefolder" and isinstance(root, str) and root:
        return PurePosixPath(root.replace("\\", "/")).name
    return name


def setting_label(run: Mapping[str, Any]) -> str:
    """The input setting, with the number of images its statistics came from, or ``from scratch``.

    A run without pretrained weights is the from-scratch control whatever its
    input setting; the label says which setting it used when that is not ``finetune``.
    """
    setting = str(run.get("input_norm"))
    if str(run.get("pretrained", "none")) == "none":
        return SCRATCH if setting == "finetune" else f"{SCRATCH} ({setting})"
    images = run.get("stats_subset")
    if setting == "finetune" and images is not None and not pd.isna(images):
        return f"finetune, stats from {int(images)}"
    return setting


def add_labels(runs: pd.DataFrame) -> pd.DataFrame:
    """``runs`` with ``data`` (:func:`dataset_label`) and ``setting`` (:func:`setting_label`) columns added."""
    records = runs.to_dict("records")
    labelled = runs.assign(
        data=[dataset_label(record) for record in records],
        setting=[setting_label(record) for record in records],
    )
    labelled.attrs = dict(runs.attrs)
    return labelled


def setting_order(labels: pd.Series | list[str], first: tuple[str, ...] = ()) -> list[str]:
    """Labels in reading order: ``first`` as given, then finetune with the fewest images first, then the rest."""
    present = list(dict.fromkeys(labels))

    def key(label: str) -> tuple[int, int, str]:
        if label in first:
            return (0, first.index(label), "")
        if label.startswith("finetune, stats from "):
            return (1, int(label.rsplit(" ", 1)[1]), "")
        if label.startswith(SCRATCH):
            return (3, 0, label)
        return (2, 0, label)

    return sorted(present, key=key)


def largest_training_set(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs that fine-tune on the most images: ``train_subset`` unset (all), else its largest value."""
    if "train_subset" not in runs.columns or runs.empty:
        return runs
    subset = pd.to_numeric(runs["train_subset"], errors="coerce")
    keep = subset.isna() if subset.isna().any() else subset == subset.max()
    return runs[keep.to_numpy()]
