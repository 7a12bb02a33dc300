"""Evidence for study 3's errata about label noise, computed from the runs.

- The nominal rate is not the real one: symmetric noise as published draws the new
  label from all K classes, the true one included, so only p(1 - 1/K) of the labels
  change. :func:`noise_rate_table` sets each run's measured rate (``noise_rate_actual``
  in its summary) beside both.
- The official code drew its validation images from the noisy training set and chose
  checkpoints on them. :func:`official_validation_table` draws such a validation set
  from each run's own noisy training labels (``noisy_labels.csv``) and counts its wrong
  labels, beside the rate of the validation split the run really selected on
  (``noise_rate_actual_val``: 0 unless ``noisy_val``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..run_files import NOISY_LABELS


def expected_rate(nominal: float, kind: str, num_classes: int) -> float:
    """The share of labels a kind of noise changes at nominal rate p: p(1 - 1/K) for
    ``symmetric`` (the new class may be the old one), p otherwise."""
    return nominal * (1.0 - 1.0 / num_classes) if kind == "symmetric" else nominal


def noise_rate_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per nominal rate and kind (runs above 0 % noise): the nominal and expected real rates
    and the measured one (mean, min and max over runs), in percent, with the number of runs."""
    noisy = runs[(runs["label_noise"].astype(float) > 0) & runs["noise_rate_actual"].notna()]
    if noisy.empty:
        raise ValueError("no run with label noise records noise_rate_actual")
    rows = []
    for (nominal, kind, classes), group in noisy.groupby(["label_noise", "label_noise_kind", "num_classes"]):
        measured = group["noise_rate_actual"].astype(float) * 100
        rows.append({
            "kind": kind, "nominal": f"{100 * float(nominal):g} %",
            "expected real (%)": 100 * expected_rate(float(nominal), kind, int(classes)),
            "measured, mean (%)": measured.mean(), "measured, min (%)": measured.min(),
            "measured, max (%)": measured.max(), "runs": len(group),
        })  # fmt: skip
    return pd.DataFrame(rows).set_index(["kind", "nominal"])


def official_validation_table(runs: pd.DataFrame, val_fraction: float = 0.1, seed: int = 0) -> pd.DataFrame:
    """Per nominal rate: the wrong labels of a validation set drawn, as the official code did,
    from the run's own noisy training images (``val_fraction`` of its ``noisy_labels.csv``
    rows), beside the noise of the validation split the run selected on, in percent
    (mean over the runs that saved their noisy labels)."""
    rng = np.random.default_rng(seed)
    rows = []
    for _, run in runs[runs["label_noise"].astype(float) > 0].iterrows():
        path = Path(run["path"]) / NOISY_LABELS
        if not path.is_file():
            continue
        labels = pd.read_csv(path)
        drawn = labels.iloc[rng.permutation(len(labels))[: max(1, int(round(val_fraction * len(labels))))]]
        rows.append({
            "nominal": f"{100 * float(run['label_noise']):g} %",
            "official-style validation: wrong labels (%)": 100 * float((drawn["label"] != drawn["noisy_label"]).mean()),
            "official-style validation: images also trained on (%)": 100.0,
            "ours: validation noise (%)": 100 * float(run.get("noise_rate_actual_val") or 0.0),
        })  # fmt: skip
    if not rows:
        raise ValueError(f"no run with label noise has its {NOISY_LABELS}")
    frame = pd.DataFrame(rows).sort_values("nominal", key=lambda text: text.str.rstrip(" %").astype(float), kind="stable")
    table = frame.groupby("nominal", sort=False).mean()
    return table.assign(runs=frame.groupby("nominal", sort=False).size())
