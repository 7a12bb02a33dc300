"""Study 1's answer: does standardizing with the fine-tuning set's own statistics beat borrowing ImageNet's?

Computed from the study's runs for the landing page and the chapter's opening
(:func:`study_answer`), with the wording every answer shares
(:mod:`normtest_lib.report.findings`): ``pretrain`` against ``finetune`` on the
largest training set, the other settings, the small-data sweep, and the
baseline's absolute accuracy beside the published one.

A profile may fine-tune from several networks it pretrained (one per normalization
layer); every difference is then paired within one (source, model, data set) group
and named with it (:func:`~.analysis.comparison_keys`), never pooled across them.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from ...data.photometric import SEPARATOR as SHIFT_SEPARATOR
from ...input_norm import SETTINGS
from ...report import protocol
from ...report.counts import ProfileCount, profile_count
from ...report.findings import (
    Finding, StudyAnswer, all_converged, and_list, answer_runs, baseline_sentence, converged_groups, epochs_text,
    evidence_sentence, interval_text, learning_speed_caveat, listing, seeds_text, still_learning_sentence, titled,
    unconverged_count, unconverged_title, verdict, with_baseline,
)  # fmt: skip
from ...report.paired import paired_differences, significant, within_noise
from ...report.plots import difference_forest
from ...report.published import published_values
from .analysis import (
    PROTOCOL_KEYS, SCRATCH, SOURCE, add_labels, add_sources, comparison_keys, largest_training_set, setting_order,
    split_pretraining, varying_keys, without_constant_levels,
)  # fmt: skip

STUDY = "input_normalization"
METRIC = "test_acc_at_best_val"


def study_answer(everything: pd.DataFrame, profile: str, grid_file: str, metric: str = METRIC) -> StudyAnswer:
    """Study 1's answer from ``everything`` (:func:`~normtest_lib.report.results.collect_runs`' frame), read in
    the profile :func:`~normtest_lib.report.findings.answer_runs` picks (``profile`` preferred); the published
    protocol is the ``paper`` profile of ``grid_file``. Its figure: each setting's paired difference to ``finetune``."""
    profile, runs = answer_runs(everything, STUDY, profile, grid_file)
    pretraining, finetuning = split_pretraining(add_sources(add_labels(runs)))
    complete = finetuning[finetuning["status"] == "complete"]
    full = largest_training_set(complete)
    if "setting" not in full or not (full["setting"] == "finetune").any():
        raise LookupError(f"no complete `finetune` run on the largest fine-tuning set of the `{profile}` profile yet: "
                          "every setting is compared with it")
    reductions = protocol.profile_table(protocol.paper_runs(grid_file), finetuning, profile, PROTOCOL_KEYS)
    count = profile_count(everything, STUDY, profile, grid_file)
    finding = input_normalization_finding(complete, metric, profile, *protocol.changed_parameters(reductions),
                                          sources=pretraining.to_dict("records"), count=count)
    headline = without_constant_levels(paired_differences(full, metric, "setting", "finetune", comparison_keys(full)))
    # Rows in reading order (pretrain first, the from-scratch control last), not alphabetical.
    order = setting_order(headline.index.get_level_values("setting"), SETTINGS)
    multi = isinstance(headline.index, pd.MultiIndex)
    headline = headline.reindex(order, level="setting") if multi else headline.reindex(order)
    figure = difference_forest(
        headline, "setting", "finetune", still_learning=_still_learning_rows(headline, full),
        title=unconverged_title(titled("each setting against finetune", complete), full))
    baseline = full[full["setting"] == "finetune"]
    first = _baseline_run(baseline)
    where = ""
    if first is not None:  # one network on one data set (from one source)
        keys = comparison_keys(full)
        baseline = baseline[(baseline[keys] == first[keys]).all(axis=1)]
        named = varying_keys(full)
        where = _group_text(named, tuple(first[named])) if named else ""
    finding = dataclasses.replace(finding, advice=input_normalization_advice(complete, metric))
    published_test, what = published_finetune(first)
    finding = with_baseline(finding, baseline_sentence(baseline, "finetune", metric, published_test, None, what, where))
    return StudyAnswer(STUDY, profile, finding, figure, len(full), complete, reductions, full, count, complete)


def _baseline_run(baseline: pd.DataFrame) -> pd.Series | None:
    """A `finetune` run of the group the answer's baseline sentence describes, where the runs have several: on a
    data set the earlier work ran (a shifted copy has no published figure to stand beside), from a source network
    with normalization layers (as every published ImageNet network has), then the first by the group's keys, so
    the choice never depends on the order in which runs finished. None without runs."""
    if not len(baseline):
        return None
    ranked = baseline.assign(
        _shifted=baseline["data"].astype(str).map(_is_shifted) if "data" in baseline else False,
        _no_norm=baseline[SOURCE].astype(str).eq("none") if SOURCE in baseline else False,
    )
    keys = [key for key in comparison_keys(baseline) if key in baseline.columns]
    return ranked.sort_values(["_shifted", "_no_norm", *keys], kind="stable").iloc[0].drop(["_shifted", "_no_norm"])


def input_normalization_finding(finetuning: pd.DataFrame, metric: str, profile: str,
                                changed: int | None = None, total: int | None = None,
                                sources: Sequence[Mapping[str, Any]] = (), count: ProfileCount | None = None) -> Finding:
    """Study 1's answer from its complete fine-tuning runs, labelled (:func:`.analysis.add_labels`, and
    :func:`.analysis.add_sources` where they start from several pretraining runs): ``pretrain`` against
    ``finetune`` on the largest training set, the other settings, and the small-data sweep, each paired
    within its (source, model, data set) group. ``sources`` are the profile's pretraining runs (their rows
    of the runs frame), if the runs start from their own rather than from an ImageNet checkpoint; ``count`` is the
    profile's (:func:`~normtest_lib.report.counts.profile_count`), which the evidence states."""
    full = largest_training_set(finetuning)
    keys = [key for key in comparison_keys(full) if key in full.columns]
    differences = without_constant_levels(paired_differences(full, metric, "setting", "finetune", keys))
    groups = [name for name in differences.index.names if name != "setting"]
    # The headline pairs finetune with pretrain: "after N epochs" (learning speed) only where those runs had not converged.
    headline = full[full["setting"].isin(["finetune", "pretrain"])]
    early = f" after {epochs_text(headline)} epochs of fine-tuning" if all_converged(headline) is False else ""
    parts = []
    settings = differences.index.get_level_values("setting")
    pretrain = differences[settings == "pretrain"]
    if len(pretrain):
        # One group: "by +0.5 [...] points, within ..."; several: each "by ... points for the `none` network on ...".
        change = "; ".join(
            f"by {interval_text(row, unit='points')}{' ' + _group_text(groups, key) if groups else ''}, {verdict(row)}"
            for key, row in pretrain.iterrows())
        parts.append(
            "Standardizing with the pretraining set's statistics (`pretrain`) instead of the fine-tuning set's own "
            f"(`finetune`) changes test accuracy{early} {change}."
        )
    others = differences[settings != "pretrain"]
    beyond, within = others[significant(others)].sort_values("mean"), others[within_noise(others)]
    if len(beyond):
        parts.append(f"Beyond the spread against `finetune`: {_listing(beyond)}.")
    if len(within):
        parts.append(_within_sentence(within, groups))
    longer = _epochs_sentence(full)
    if longer:
        parts.append(longer)
    small = _small_data_sentence(finetuning, metric)
    if small:
        parts.append(small)
    caveat = _still_learning_caveat(finetuning)
    if caveat:
        parts.append(caveat)
    certainty = (
        f"How sure: each difference is paired by seed ({seeds_text(differences)} seeds: same head initialisation, data "
        "order and validation split) and given in points with its 95 % t interval; the epoch was chosen on the "
        "validation split, never on the test set."
    )
    evidence = evidence_sentence(finetuning, profile, changed, total, count, "the fine-tuning runs") + _sources_text(sources)
    return Finding(" ".join(parts), certainty, evidence)


def _epochs_sentence(full: pd.DataFrame, reference: str = "finetune") -> str:
    """Which settings trained another number of epochs than ``reference`` in their comparison group (a grid that
    trains some settings longer, so that they converge): each with its epochs, and the source networks it applies
    to where not all of them. Empty when every setting trained as long as ``reference``."""
    if "epochs" not in full.columns or reference not in set(full["setting"]):
        return ""
    runs = full.assign(epochs=pd.to_numeric(full["epochs"], errors="coerce"))
    keys = [key for key in comparison_keys(runs) if key in runs.columns]
    by_group = runs.groupby(keys, dropna=False) if keys else [((), runs)]
    longer: dict[tuple[str, int], list[str]] = {}
    reference_epochs: set[int] = set()
    for _, group in by_group:
        baseline = group.loc[group["setting"] == reference, "epochs"].dropna()
        if not len(baseline):
            continue
        epochs = int(baseline.mode().iloc[0])
        reference_epochs.add(epochs)
        other = group[(group["setting"] != reference) & group["epochs"].notna() & (group["epochs"] != epochs)]
        for (setting, count), rows in other.groupby(["setting", "epochs"]):
            networks = longer.setdefault((str(setting), int(count)), [])
            networks.extend(str(v) for v in rows[SOURCE].unique() if SOURCE in rows and str(v) not in networks)
    if not longer:
        return ""
    every = {str(v) for v in runs[SOURCE].dropna().unique()} if SOURCE in runs.columns else set()
    # Settings with the same epochs on the same networks share one item: "`unit` and `minmax`, 150 epochs ...".
    items: dict[tuple[int, tuple[str, ...]], list[str]] = {}
    for setting in setting_order({setting for setting, _ in longer}, SETTINGS):
        for (name, epochs), networks in longer.items():
            if name == setting:
                shared = () if set(networks) == every else tuple(networks)
                items.setdefault((epochs, shared), []).append(setting)
    texts = []
    for (epochs, networks), settings in items.items():
        where = (f" for the {and_list(networks, quote=True)} network{'s' if len(networks) > 1 else ''}"
                 if networks else "")
        texts.append(f"{and_list(settings, quote=True)}, {epochs} epochs{where}")
    how = "longer than" if all(epochs > max(reference_epochs) for _, epochs in longer) else "other epochs than"
    return (f"Trained {how} `{reference}` ({and_list(sorted(reference_epochs))} epochs), so that they could "
            f"converge: {'; '.join(texts)}.")


def _still_learning_caveat(finetuning: pd.DataFrame) -> str:
    """Which settings' runs had not converged, each with its count, and what their differences then measure; the
    shared wording (:func:`~normtest_lib.report.findings.learning_speed_caveat`) where no setting's runs all
    converged; empty when every run converged or nothing says."""
    if all_converged(finetuning) is not False:
        return ""
    names = setting_order(finetuning["setting"], SETTINGS)
    trained = converged_groups(finetuning, "setting")
    stopped = [name for name in names if name not in trained]
    if not trained:
        return learning_speed_caveat(finetuning, "setting")
    unconverged = finetuning[finetuning["setting"].isin(stopped)]
    counts = [f"`{name}` ({unconverged_count(unconverged[unconverged['setting'] == name])})" for name in stopped]
    return (f"Runs that had not converged by the book's rule: {and_list(counts)}; a difference involving them says how "
            f"fast each learns in its {epochs_text(unconverged)} epochs (learning speed), not which is better once "
            "trained. Every run of the other settings converged.")


def input_normalization_advice(finetuning: pd.DataFrame, metric: str, reference: str = "finetune") -> str:
    """Which input statistics a reader fine-tuning a network should use, from what the runs show (the answer's
    closing advice).

    Per comparison group (source network, data set) on the largest training set, among the settings whose every
    run converged by the book's rule (the from-scratch control aside): the setting furthest ahead of ``reference``
    beyond the seed spread, else ``reference`` and the settings within its spread; the settings behind it beyond
    the spread to avoid; then the settings still learning, never chosen. Where ``reference`` itself had not
    converged, why the runs cannot choose. Empty without ``reference`` runs."""
    full = largest_training_set(finetuning)
    pretrained = full[~full["setting"].astype(str).str.startswith(SCRATCH)] if len(full) else full
    if not len(pretrained) or reference not in set(pretrained["setting"]):
        return ""
    trained = converged_groups(pretrained, "setting")
    if reference not in trained:
        return (f"These runs cannot say which statistics to use: "
                f"{unconverged_count(pretrained[pretrained['setting'] == reference])} `{reference}` runs had not "
                f"converged by the book's rule, so every comparison here is of how fast each setting learns in "
                f"{epochs_text(pretrained)} epochs of fine-tuning. With no evidence either way, keep the statistics "
                "your pipeline already uses.")
    compared = pretrained[pretrained["setting"].isin(trained)]
    keys = [key for key in comparison_keys(compared) if key in compared.columns]
    differences = without_constant_levels(paired_differences(compared, metric, "setting", reference, keys))
    groups = [name for name in differences.index.names if name != "setting"]
    parts = []
    for group, rows in (differences.groupby(level=groups, sort=False) if groups else [((), differences)]):
        rows = rows.droplevel(groups) if groups else rows
        ahead = rows[significant(rows) & (rows["mean"] > 0)]
        behind = rows[significant(rows) & (rows["mean"] < 0)]
        if len(ahead):
            best = ahead["mean"].idxmax()
            text = (f"use `{best}`: {interval_text(ahead.loc[best], unit='points')} over `{reference}`, beyond the seed "
                    "spread")
        elif (rows["n"] < 2).all():  # no interval anywhere: nothing can be told from the seed spread
            text = (f"use `{reference}`, the usual choice: with one seed per setting, no difference to it can be told "
                    "from the seed-to-seed spread yet")
        else:
            tied = setting_order(rows[within_noise(rows)].index, SETTINGS)
            text = f"use `{reference}`"
            if tied:
                text += f" (or {and_list(tied, quote=True, conjunction='or')}, within the seed spread of it)"
        if len(behind):
            text += f"; avoid {and_list(setting_order(behind.index, SETTINGS), quote=True)}, below it beyond the seed spread"
        where = _group_text(groups, group) if groups else ""
        sentence = f"{where}, {text}" if where else text
        parts.append(sentence[0].upper() + sentence[1:] + ".")
    parts.append(still_learning_sentence([name for name in setting_order(pretrained["setting"], SETTINGS)
                                          if name not in trained], "fine-tuning"))
    return " ".join(part for part in parts if part)


def _sources_text(sources: Sequence[Mapping[str, Any]]) -> str:
    """What the runs fine-tune, where they start from the profile's own pretraining runs: one network, or several
    named by their normalization layer."""
    if not sources:
        return ""
    if len(sources) == 1:
        source = sources[0]
        return (
            f" They fine-tune a `{source['model']}` network pretrained in this profile on `{source['dataset']}`, "
            "not an ImageNet checkpoint: its statistics play ImageNet's part in `pretrain`."
        )
    # Named as the answer's groups name them (add_sources' label: the norm layer, else the run id).
    networks = "; ".join(f"`{source.get(SOURCE) or source['run_id']}`: a `{source['model']}` on `{source['dataset']}`"
                         for source in sources)
    return (
        f" They fine-tune {len(sources)} networks pretrained in this profile ({networks}), not ImageNet checkpoints, "
        "each compared only with itself: each one's pretraining statistics play ImageNet's part in `pretrain`."
    )


# "for", not "from": the from-scratch control of a network started from no pretraining run.
_GROUP_WORDS = {SOURCE: "for the `{}` network", "model": "`{}`", "data": "on `{}`"}


def _group_text(levels: Sequence[str], values: Any) -> str:
    """A comparison group in words: ``for the `torch_bn` network on `cifar10-jpeg```."""
    values = values if isinstance(values, tuple) else (values,)
    return " ".join(_GROUP_WORDS.get(level, f"{level} `{{}}`").format(value) for level, value in zip(levels, values))


def _listing(differences: pd.DataFrame) -> str:
    """:func:`~normtest_lib.report.findings.listing`, each setting followed by its group where there are several."""
    groups = [name for name in differences.index.names if name != "setting"]
    if not groups:
        return listing(differences)
    return "; ".join(f"`{key[-1]}` ({_group_text(groups, key[:-1])}) {interval_text(row)}"
                     for key, row in differences.iterrows())


def _within_sentence(within: pd.DataFrame, groups: Sequence[str]) -> str:
    """The differences within the seed spread: each one with a single comparison group; with several (a list of
    a dozen that buried the ones beyond it), their count and range, each one being in the chapter's table."""
    if not groups:
        return f"Within it: {_listing(within)}."
    return (f"Within it: the other {len(within)} differences, from {within['mean'].min():+.1f} to "
            f"{within['mean'].max():+.1f} points (each with its interval in the chapter's table of paired differences).")


def _still_learning_rows(differences: pd.DataFrame, runs: pd.DataFrame) -> set[Any]:
    """The answer figure's rows (index keys of ``differences``: the setting alone with one comparison group, the
    (group..., setting) tuple with several) whose difference rests on a run that had not converged by the book's
    rule: the setting's or its group's `finetune` run."""
    if all_converged(runs) is not False:
        return set()
    keys = [name for name in differences.index.names if name != "setting"]
    if not keys:  # one group: a row is its setting
        trained = converged_groups(runs, "setting")
        return {setting for setting in differences.index if setting not in trained or "finetune" not in trained}
    converged = runs.groupby([*keys, "setting"])["converged"].agg(lambda group: bool(group.astype(bool).all()))
    return {key for key in differences.index
            if not (converged.get(key, True) and converged.get((*key[:-1], "finetune"), True))}


def _small_data_sentence(finetuning: pd.DataFrame, metric: str) -> str:
    """Own statistics against borrowed ones on every fine-tuning set size, and from few images."""
    pretrained = finetuning[~finetuning["setting"].str.startswith(SCRATCH)]
    if "n_train" not in pretrained.columns or pretrained["n_train"].nunique() < 2:
        return ""
    sweep = pretrained.assign(train_images=pretrained["n_train"].astype(int))
    differences = paired_differences(sweep, metric, "setting", "pretrain", [*varying_keys(sweep), "train_images"])
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


def _is_shifted(data: str) -> bool:
    """Whether a data label names a photometrically shifted copy of a set (``<base>+<shift>``)."""
    return SHIFT_SEPARATOR in data


def published_finetune(run: pd.Series | None) -> tuple[float | None, str]:
    """Study 1's published ``finetune`` test accuracy for ``run``'s model and data set, with what it is in words;
    where the earlier work ran another model on that data set, None and the range of its figures in words.

    A derived set (``<base>+<shift>``, e.g. ``cifar10-jpeg+dim``) is not its base: the earlier work never ran it,
    so it has no published figure, and the words say so."""
    if run is None:
        return None, ""
    data = str(run.get("data", ""))
    if _is_shifted(data):
        return None, f"the shifted set `{data}` was not in the earlier work"
    finetune = published_values(STUDY, "test_acc").xs("finetune", level="setting")
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
