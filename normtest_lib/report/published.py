"""Published results of the earlier works, kept as data beside the library and never typed into a notebook.

One CSV per study in ``normtest_lib/published/<study>.csv``; every row carries its
``source``. The values are transcribed from ../shared/STUDIES.md, which restates
each earlier work's tables. Setting and variant names are ours (the earlier
work's ``minmax`` was plain scaling, our ``unit``); ``published_name`` keeps theirs.
Metrics ending in ``_approx`` were reported as "about" a value or read off a plot.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

PUBLISHED_DIR = Path(__file__).resolve().parents[1] / "published"


def published_studies() -> list[str]:
    """The studies with published results on file."""
    return sorted(path.stem for path in PUBLISHED_DIR.glob("*.csv"))


def published_results(study: str) -> pd.DataFrame:
    """The published numbers of ``study`` as a long frame (one value per row, with its source)."""
    path = PUBLISHED_DIR / f"{study}.csv"
    if not path.is_file():
        known = ", ".join(published_studies()) or "none"
        raise KeyError(f"no published results for study {study!r}; known: {known}")
    frame = pd.read_csv(path)
    missing = {"metric", "value", "source"} - set(frame.columns)
    if missing:
        raise ValueError(f"{path} lacks the columns {sorted(missing)}")
    return frame


def published_values(study: str, metric: str = "test_acc") -> pd.Series:
    """One published metric as a Series indexed by (model, dataset, setting), in the CSV's units."""
    frame = published_results(study)
    frame = frame[frame["metric"] == metric]
    if frame.empty:
        raise KeyError(f"no published {metric!r} for study {study!r}")
    return frame.set_index(["model", "dataset", "setting"])["value"].rename(metric)
