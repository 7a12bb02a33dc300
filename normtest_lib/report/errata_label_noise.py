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
- The official code never saved its noisy labels, and drew them from the seed that
  also initialised the network. :func:`saved_labels_table` checks that every noisy
  run saved them (and that they give back its recorded rate);
  :func:`noise_seed_table` and :func:`noise_independent_of_seed` show that ours
  follow ``noise_seed`` alone.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..data.label_noise import noisy_labels
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


def saved_labels_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per nominal rate (runs above 0 % noise): how many runs saved their noisy labels, and how many of
    those files give back the flip rate the run recorded (``noise_rate_actual``, to 1e-9)."""
    rows = []
    for _, run in runs[runs["label_noise"].astype(float) > 0].iterrows():
        path = Path(run["path"]) / NOISY_LABELS
        labels = pd.read_csv(path) if path.is_file() else None
        recorded = pd.to_numeric(pd.Series([run.get("noise_rate_actual")]), errors="coerce").iloc[0]
        rate = float((labels["label"] != labels["noisy_label"]).mean()) if labels is not None and len(labels) else np.nan
        rows.append({"nominal": _nominal(run["label_noise"]), "saved": labels is not None,
                     "matches": bool(abs(rate - recorded) <= 1e-9) if labels is not None else False})  # fmt: skip
    if not rows:
        raise ValueError("no run with label noise")
    frame = pd.DataFrame(rows)
    grouped = frame.groupby("nominal", sort=False)
    table = pd.DataFrame({
        "noisy runs": grouped.size(), f"with {NOISY_LABELS}": grouped["saved"].sum(),
        "files that give back the recorded rate": grouped["matches"].sum(),
    })  # fmt: skip
    return table.loc[sorted(table.index, key=lambda text: float(text.rstrip(" %")))]


def _nominal(rate: object) -> str:
    return f"{100 * float(rate):g} %"


def noise_seed_table(runs: pd.DataFrame, variant: str = "variant") -> pd.DataFrame:
    """Per nominal rate and ``noise_seed`` (runs above 0 % noise that saved their labels): the runs, the
    distinct ``variant`` values and ``seed`` values among them, and the distinct noisy-label files.

    One file per row means every run of that row, whatever its network and
    initialisation, trained on the same noisy labels; the labels follow
    ``noise_seed`` and nothing else.
    """
    noisy = runs[runs["label_noise"].astype(float) > 0]
    rows = []
    for _, run in noisy.iterrows():
        path = Path(run["path"]) / NOISY_LABELS
        if path.is_file():
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            rows.append({"nominal": _nominal(run["label_noise"]), "noise_seed": int(run["noise_seed"]),
                         "variant": run[variant], "seed": int(run["seed"]), "file": digest})  # fmt: skip
    if not rows:
        raise ValueError(f"no run with label noise has its {NOISY_LABELS}")
    frame = pd.DataFrame(rows)
    grouped = frame.groupby(["nominal", "noise_seed"], sort=False)
    table = pd.DataFrame({
        "runs": grouped.size(), "variants": grouped["variant"].nunique(), "seeds": grouped["seed"].nunique(),
        "distinct noisy-label files": grouped["file"].nunique(),
    })  # fmt: skip
    order = sorted(table.index, key=lambda key: (float(key[0].rstrip(" %")), key[1]))
    return table.loc[order]


def noise_independent_of_seed(rate: float = 0.2, num_classes: int = 10, n: int = 1000) -> pd.DataFrame:
    """The noisy labels our code draws, under two global torch seeds (what a run's ``seed`` sets before it
    builds the network) and two ``noise_seed`` values: how many of ``n`` labels differ from the first draw."""
    labels = torch.arange(n) % num_classes
    classes = [str(k) for k in range(num_classes)]
    draws = {}
    for seed, noise_seed in ((0, 0), (1, 0), (0, 1)):
        torch.manual_seed(seed)
        draws[(seed, noise_seed)] = noisy_labels(labels, classes, rate, "symmetric", noise_seed)
    first = draws[(0, 0)]
    rows = [{"seed": seed, "noise_seed": noise_seed, "labels that differ from seed 0, noise_seed 0": int((noisy != first).sum())}
            for (seed, noise_seed), noisy in draws.items()]  # fmt: skip
    return pd.DataFrame(rows).set_index(["seed", "noise_seed"])
