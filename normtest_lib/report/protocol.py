"""What a profile changed against the published protocol, read from the parameters themselves.

A chapter must say plainly what a reduced profile reduced. Typing that list
would let it drift from what ran; here it is computed: the values each
parameter took in the runs of one profile, beside the values the ``paper``
profile of the same grid gives it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import pandas as pd

# The parameters a protocol table lists by default (a fine-tuning protocol's); each study's package
# names those its chapter sets beside the published protocol (``studies/<study>/analysis.py``, PROTOCOL_KEYS).
PROTOCOL_KEYS = (
    "model", "pretrained", "dataset", "input_size", "input_norm", "stats_subset", "train_subset",
    "optimizer", "lr", "weight_decay", "schedule", "warmup_epochs", "epochs", "batch_size",
    "augment", "pad", "flip", "val_fraction", "test_every_epoch", "seed",
)  # fmt: skip
# What a parameter's None means, in words.
NONE_MEANS = {"input_size": "native", "train_subset": "all", "stats_subset": "all"}
PAPER = "paper"  # the profile of every grid that runs the published protocol
# A run started from another run of its profile names that run's best weights.
PRETRAINED_RUN = re.compile(r"(^|/)(?P<run>[0-9a-f]{12})/best\.pt$")
FROM_PRETRAINING_RUN = "the profile's pretraining run"


def describe_value(key: str, value: Any) -> str:
    """One parameter value in a reader's words (``None`` of ``input_size`` is ``native``)."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return NONE_MEANS.get(key, "none")
    if key == "pretrained" and PRETRAINED_RUN.search(str(value)):
        return FROM_PRETRAINING_RUN
    if isinstance(value, (list, tuple)):  # a YAML list and the config's tuple read alike
        return "[" + ", ".join(describe_value(key, item) for item in value) + "]"
    if isinstance(value, float) and value.is_integer() and key in NONE_MEANS:
        return str(int(value))
    return str(value)


def described_values(key: str, values: Iterable[Any]) -> list[str]:
    """The distinct values a parameter took, in words, in first-seen order."""
    return list(dict.fromkeys(describe_value(key, value) for value in values))


def value_set(key: str, values: Iterable[Any]) -> str:
    """The distinct values a parameter took, in words, in first-seen order, comma-separated."""
    return ", ".join(described_values(key, values))


def protocol_table(
    reference: Sequence[Mapping[str, Any]],
    actual: Sequence[Mapping[str, Any]],
    names: tuple[str, str] = ("published protocol", "this profile"),
    keys: Sequence[str] = PROTOCOL_KEYS,
) -> pd.DataFrame:
    """Per parameter: the values in ``reference`` runs, in ``actual`` runs, and whether they are
    the same set of values (in any order)."""
    rows = {}
    for key in keys:
        ours = described_values(key, [run.get(key) for run in actual])
        theirs = described_values(key, [run.get(key) for run in reference])
        rows[key] = {names[0]: ", ".join(theirs), names[1]: ", ".join(ours), "same": set(ours) == set(theirs)}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("parameter")


def paper_runs(grid_file: str | Path) -> list[dict[str, Any]]:
    """The published protocol: the configuration of each run of ``grid_file``'s ``paper`` profile."""
    from ..grid.spec import load_grid  # imported here: a chapter that only formats tables needs no grid code

    return [run.config.to_dict() for run in load_grid(grid_file, PAPER).runs]


def profile_table(paper: Sequence[Mapping[str, Any]], runs: pd.DataFrame, profile: str,
                  keys: Sequence[str] = PROTOCOL_KEYS) -> pd.DataFrame:
    """:func:`protocol_table` of ``runs`` (one profile's rows of the runs frame) against ``paper``
    (:func:`paper_runs`), its columns named as every chapter names them."""
    return protocol_table(paper, runs.to_dict("records"), (f"published protocol ({PAPER})", f"{profile} profile"), keys)


def reductions_sentence(table: pd.DataFrame, profile: str) -> str:
    """A bold statement of what ``profile`` changed, from :func:`protocol_table`'s frame
    (its first column the published protocol, its second the profile's values), with a link to the
    glossary's run parameters, which says what each parameter does (Markdown, for a chapter to display)."""
    from .glossary_links import markdown_link

    published, ours = table.columns[0], table.columns[1]
    changed = table[~table["same"].astype(bool)]
    defined = f"Each parameter is defined in the glossary's {markdown_link('parameters')}."
    if changed.empty:
        return f"The {profile} profile runs the published protocol: every listed parameter agrees. {defined}"
    listed = "; ".join(
        f"`{key}` {row[ours]} (published: {row[published]})" for key, row in changed.iterrows()
    )
    return (
        f"**The {profile} profile is not the published protocol, and its numbers are not the published "
        f"protocol's.** It changes {len(changed)} of {len(table)} parameters: {listed}. {defined}"
    )


def changed_parameters(table: pd.DataFrame) -> tuple[int, int]:
    """How many parameters of :func:`protocol_table`'s frame differ from the published protocol, of how many."""
    return int((~table["same"].astype(bool)).sum()), len(table)


def with_reasons(table: pd.DataFrame, reasons: Mapping[str, str]) -> pd.DataFrame:
    """:func:`protocol_table`'s frame with a ``why`` column: the grid profile's reason for each changed
    parameter (``profiles.<name>.reasons``, :func:`~normtest_lib.grid.spec.profile_reasons`), "no reason
    given" where a changed parameter has none, empty where nothing changed."""
    changed = ~table["same"].astype(bool)
    why = [reasons.get(key, "no reason given") if is_changed else "" for key, is_changed in changed.items()]
    return table.assign(why=why)
