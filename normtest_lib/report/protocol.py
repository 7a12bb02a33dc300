"""What a profile changed against the published protocol, read from the parameters themselves.

A chapter must say plainly what a reduced profile reduced. Typing that list
would let it drift from what ran; here it is computed: the values each
parameter took in the runs of one profile, beside the values the ``paper``
profile of the same grid gives it.
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Mapping, Sequence

import pandas as pd

PROTOCOL_KEYS = (
    "model", "pretrained", "dataset", "input_size", "input_norm", "stats_subset", "train_subset",
    "optimizer", "lr", "weight_decay", "schedule", "warmup_epochs", "epochs", "batch_size",
    "augment", "pad", "flip", "val_fraction", "test_every_epoch", "seed",
)  # fmt: skip
# The parameters each study chapter sets beside the published protocol (study 1's are PROTOCOL_KEYS).
STUDY_PROTOCOL_KEYS: dict[str, tuple[str, ...]] = {
    "input_normalization": PROTOCOL_KEYS,
    "normalization_layers": (
        "model", "depth_n", "dataset", "val_fraction", "train_subset", "norm_layer", "optimizer", "lr", "momentum",
        "weight_decay", "schedule", "milestones", "epochs", "batch_size", "input_norm", "pad", "flip", "seed",
    ),
    "convnorm_label_noise": (
        "model", "depth_n", "dataset", "val_fraction", "train_subset", "conv_layer", "norm_layer", "label_noise",
        "label_noise_kind", "optimizer", "lr", "momentum", "weight_decay", "schedule", "milestones", "epochs",
        "batch_size", "input_norm", "seed",
    ),
}  # fmt: skip
# What a parameter's None means, in words.
NONE_MEANS = {"input_size": "native", "train_subset": "all", "stats_subset": "all"}
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


def pretraining_run_id(runs: pd.DataFrame) -> str | None:
    """The id of the run the others started from (named in their ``pretrained`` path), if any."""
    if "pretrained" not in runs.columns:
        return None
    found = runs["pretrained"].astype(str).str.extract(PRETRAINED_RUN)["run"].dropna().unique()
    if len(found) > 1:
        raise ValueError(f"runs start from more than one pretraining run: {sorted(found)}")
    return str(found[0]) if len(found) else None


def _number(value: Any) -> float | None:
    return None if value is None or (isinstance(value, float) and pd.isna(value)) else float(value)


def pretraining_sentence(source: Mapping[str, Any] | None, data: str) -> str:
    """What every fine-tuning cell of a profile is, in one sentence built from its pretraining run's record.

    ``source`` is the pretraining run's row of :func:`normtest_lib.report.results.collect_runs`
    (None when the runs start from no pretraining run of their own); ``data``
    names the fine-tuning set.
    """
    if source is None:
        return f"These runs fine-tune on {data} and start from no pretraining run of this profile."
    # The summary's input size (the size actually trained at) wins over the parameter (None: native).
    size = _number(source.get("summary_input_size", source.get("input_size")))
    accuracy = [_number(source.get(key)) for key in ("best_val_acc", "test_acc_at_best_val")]
    measured = (
        f" (best validation accuracy {100 * accuracy[0]:.1f} %, test {100 * accuracy[1]:.1f} %)"
        if None not in accuracy
        else ""
    )
    size_text = f" at {int(size)} px" if size is not None else ""
    return (
        f"Read every cell below as {data} fine-tuned from a `{source['model']}` pretrained in this profile on "
        f"`{source['dataset']}`{size_text} for {int(source['epochs'])} epochs{measured}, not as an ImageNet "
        "network: the pretraining set's statistics play ImageNet's part in `pretrain`. Its weights are not "
        "committed; the profile rebuilds them, and each fine-tuning run records the SHA-256 of the file it started from."
    )


def reductions_sentence(table: pd.DataFrame, profile: str) -> str:
    """A bold statement of what ``profile`` changed, from :func:`protocol_table`'s frame
    (its first column the published protocol, its second the profile's values)."""
    published, ours = table.columns[0], table.columns[1]
    changed = table[~table["same"].astype(bool)]
    if changed.empty:
        return f"The {profile} profile runs the published protocol: every listed parameter agrees."
    listed = "; ".join(
        f"`{key}` {row[ours]} (published: {row[published]})" for key, row in changed.iterrows()
    )
    return (
        f"**The {profile} profile is not the published protocol, and its numbers are not the published "
        f"protocol's.** It changes {len(changed)} of {len(table)} parameters: {listed}."
    )


def changed_parameters(table: pd.DataFrame) -> tuple[int, int]:
    """How many parameters of :func:`protocol_table`'s frame differ from the published protocol, of how many."""
    return int((~table["same"].astype(bool)).sum()), len(table)
