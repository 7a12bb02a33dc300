"""The per-epoch record: ``history.csv`` rows and the choice of the best epoch.

Floats are written with ``repr`` so that a value read back is bit-identical
to the one written; a missing value (no validation split, or the evaluation
skipped after a divergence) is an empty field, which pandas reads as NaN.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any, Sequence

from ..io import write_text

COLUMNS = (
    "epoch",
    "train_loss",
    "train_acc",
    "val_loss",
    "val_acc",
    "test_loss",
    "test_acc",
    "lr",
    "seconds",  # the whole epoch: training, evaluation and probes
    "images_per_second",  # training only
    "probe_seconds",  # the probes' share of seconds (0 without probes)
)

Row = dict[str, Any]


def format_history(rows: Sequence[Row]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow(["" if row.get(column) is None else repr(row[column]) for column in COLUMNS])
    return buffer.getvalue()


def write_history(path: str | Path, rows: Sequence[Row]) -> None:
    """Rewrite ``history.csv`` atomically with all rows so far."""
    write_text(path, format_history(rows))


def read_history(path: str | Path) -> list[Row]:
    """Rows of a ``history.csv`` as dicts (epoch as int, other values float or None)."""
    with open(path, newline="") as handle:
        rows = []
        for raw in csv.DictReader(handle):
            row: Row = {column: (float(raw[column]) if raw.get(column) else None) for column in COLUMNS}
            row["epoch"] = int(row["epoch"])
            rows.append(row)
    return rows


def best_row(rows: Sequence[Row]) -> Row | None:
    """The row with the highest finite validation accuracy (earliest on ties: a later epoch must be
    strictly better); without any, the last row with a finite training loss (never chosen on test)."""
    best = None
    for row in rows:
        value = row.get("val_acc")
        if value is None or not math.isfinite(value):
            continue
        if best is None or value > best["val_acc"]:
            best = row
    if best is None:
        finite = [row for row in rows if row.get("train_loss") is not None and math.isfinite(row["train_loss"])]
        return finite[-1] if finite else None
    return best
