"""Study 1's answer: does standardizing with the fine-tuning set's own statistics beat borrowing ImageNet's?

Computed from the study's runs for the landing page and the chapter's opening
(:func:`study_answer`), with the wording every answer shares
(:mod:`normtest_lib.report.findings`): ``pretrain`` against ``finetune`` on the
largest training set, the other settings, the small-data sweep, and the
baseline's absolute accuracy beside the published one.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from ...report import protocol
from ...report.findings import (
    Finding, StudyAnswer, all_converged, answer_runs, baseline_sentence, epochs_text, evidence_sentence, interval_text,
    learning_speed_caveat, listing, seeds_text, titled, unconverged_title, verdict, with_baseline,
)  # fmt: skip
from ...report.paired import paired_differences, significant, within_noise
from ...report.plots import difference_forest
from ...report.published import published_values
from .analysis import PROTOCOL_KEYS, SCRATCH, add_labels, largest_training_set, pretraining_run_id

STUDY = "input_normalization"
METRIC = "test_acc_at_best_val"


def study_answer(everything: pd.DataFrame, profile: str, grid_file: str, metric: str = METRIC) -> StudyAnswer:
    """Study 1's answer from ``everything`` (:func:`~normtest_lib.report.results.collect_runs`' frame), read in
    the profile :func:`~normtest_lib.report.findings.answer_runs` picks (``profile`` preferred); the published
    protocol is the ``paper`` profile of ``grid_file``. Its figure: each setting's paired difference to ``finetune``."""
    profile, runs = answer_runs(everything, STUDY, profile, grid_file)
    runs = add_labels(runs)
    source_id = pretraining_run_id(runs)
    finetuning = runs[runs["run_id"] != source_id]
    source = runs[runs["run_id"] == source_id]
    complete = finetuning[finetuning["status"] == "complete"]
    reductions = protocol.profile_table(protocol.paper_runs(grid_file), finetuning, profile, PROTOCOL_KEYS)
    finding = input_normalization_finding(complete, metric, profile, *protocol.changed_parameters(reductions),
                                          source=source.iloc[0].to_dict() if len(source) else None)
    full = largest_training_set(complete)
    groups = ["model", "data"]
    headline = paired_differences(full, metric, "setting", "finetune", groups).droplevel(groups)
    figure = difference_forest(
        headline, "setting", "finetune", title=unconverged_title(titled("each setting against finetune", complete), full))
    baseline = full[full["setting"] == "finetune"]
    first = baseline.iloc[0] if len(baseline) else None
    if first is not None:  # one network on one data set: the first the runs name
        baseline = baseline[(baseline["model"] == first["model"]) & (baseline["data"] == first["data"])]
    published_test, what = published_finetune(first)
    finding = with_baseline(finding, baseline_sentence(baseline, "finetune", metric, published_test, None, what))
    return StudyAnswer(STUDY, profile, finding, figure, len(full), complete, reductions, full)


def input_normalization_finding(finetuning: pd.DataFrame, metric: str, profile: str,
                                changed: int | None = None, total: int | None = None,
                                source: Mapping[str, Any] | None = None) -> Finding:
    """Study 1's answer from its complete fine-tuning runs, labelled (:func:`.analysis.add_labels`):
    ``pretrain`` against ``finetune`` on the largest training set, the other settings, and the
    small-data sweep. ``source`` is the profile's pretraining run (its row of the runs frame),
    if the runs start from one of their own rather than from an ImageNet checkpoint."""
    full = largest_training_set(finetuning)
    groups = [key for key in ("model", "data") if key in full.columns]
    differences = paired_differences(full, metric, "setting", "finetune", groups).droplevel(groups)
    if differences.index.has_duplicates:  # several models or data sets: the answer covers the first
        differences = differences[~differences.index.duplicated()]
    early = f" after {epochs_text(full)} epochs of fine-tuning" if all_converged(full) is False else ""
    parts = []
    if "pretrain" in differences.index:
        row = differences.loc["pretrain"]
        parts.append(
            "Standardizing with the pretraining set's statistics (`pretrain`) instead of the fine-tuning set's own "
            f"(`finetune`) changes test accuracy{early} by {interval_text(row)} points, {verdict(row)}."
        )
    others = differences.drop(index="pretrain", errors="ignore")
    beyond, within = others[significant(others)].sort_values("mean"), others[within_noise(others)]
    if len(beyond):
        parts.append(f"Beyond the spread against `finetune`: {listing(beyond)}.")
    if len(within):
        parts.append(f"Within it: {listing(within)}.")
    small = _small_data_sentence(finetuning, metric)
    if small:
        parts.append(small)
    caveat = learning_speed_caveat(finetuning, "setting")
    if caveat:
        parts.append(caveat)
    certainty = (
        f"How sure: each difference is paired by seed ({seeds_text(differences)} seeds: same head initialisation, data "
        "order and validation split) and given in points with its 95 % t interval; the epoch was chosen on the "
        "validation split, never on the test set."
    )
    evidence = evidence_sentence(finetuning, profile, changed, total)
    if source is not None:
        evidence += (
            f" They fine-tune a `{source['model']}` network pretrained in this profile on `{source['dataset']}`, "
            "not an ImageNet checkpoint: its statistics play ImageNet's part in `pretrain`."
        )
    return Finding(" ".join(parts), certainty, evidence)


def _small_data_sentence(finetuning: pd.DataFrame, metric: str) -> str:
    """Own statistics against borrowed ones on every fine-tuning set size, and from few images."""
    pretrained = finetuning[~finetuning["setting"].str.startswith(SCRATCH)]
    if "n_train" not in pretrained.columns or pretrained["n_train"].nunique() < 2:
        return ""
    sweep = pretrained.assign(train_images=pretrained["n_train"].astype(int))
    differences = paired_differences(sweep, metric, "setting", "pretrain", ["train_images"])
    differences = differences[differences.index.get_level_values("setting").str.startswith("finetune")]
    if differences.empty:
        return ""
    sizes = sorted(differences.index.get_level_values("train_images").unique())
    fewest = pd.to_numeric(sweep["stats_subset"], errors="coerce").min() if "stats_subset" in sweep else np.nan
    beyond = int(significant(differences).sum())
    largest = differences["mean"].abs().max()
    stats_from = f" and statistics estimated from as few as {int(fewest):,} images" if pd.notna(fewest) else ""
    return (
        f"With {_number_list(sizes)} fine-tuning images{stats_from}, {beyond} of {len(differences)} differences between "
        f"own and pretraining statistics exceed the spread; the largest is {largest:.1f} points."
    )


def _number_list(values: Sequence[int]) -> str:
    texts = [f"{int(v):,}" for v in values]
    return texts[0] if len(texts) == 1 else ", ".join(texts[:-1]) + f" and {texts[-1]}"


def published_finetune(run: pd.Series | None) -> tuple[float | None, str]:
    """Study 1's published ``finetune`` test accuracy for ``run``'s model and data set, with what it is in words;
    where the earlier work ran another model on that data set, None and the range of its figures in words."""
    if run is None:
        return None, ""
    finetune = published_values(STUDY, "test_acc").xs("finetune", level="setting")
    data = str(run.get("data", ""))
    # Our data label may name a copy of the published set (cifar10-jpeg for cifar10): the longest matching name.
    names = [name for name in finetune.index.get_level_values("dataset").unique() if data.startswith(name)]
    if not names:
        return None, ""
    dataset = max(names, key=len)
    if (run.get("model"), dataset) in finetune.index:
        return float(finetune.loc[(run.get("model"), dataset)]), "the earlier work's best test accuracy over 100 epochs, one run"
    on_data = 100 * finetune.xs(dataset, level="dataset")
    return None, (f"no run of `{run.get('model')}`; with `finetune` on {dataset}, the earlier work's ImageNet networks "
                  f"reached {on_data.min():.1f} to {on_data.max():.1f} % best test accuracy over 100 epochs")
