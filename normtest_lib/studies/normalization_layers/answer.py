"""Study 2's answer: do batch norm written from scratch and batch-instance norm hold up against PyTorch's?

Computed from the study's runs for the landing page and the chapter's opening
(:func:`study_answer`), with the wording every answer shares
(:mod:`normtest_lib.report.findings`): our ``bn`` against torch's, ``bin``
against ``bn``, what the other layers cost, at the main batch size, and the
baseline's absolute accuracy beside the published one.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import pandas as pd

from ...report import protocol
from ...report.counts import profile_count
from ...report.findings import (
    Finding, StudyAnswer, all_converged, and_list, answer_runs, baseline_sentence, converged_groups, epochs_text,
    evidence_sentence, interval_text,
    learning_speed_caveat, listing, seeds_text, titled, unconverged_title, verdict, with_baseline,
)  # fmt: skip
from ...report.paired import paired_differences, significant, within_noise
from ...report.plots import difference_forest
from ...report.published import published_results
from .analysis import PROTOCOL_KEYS, batch_sweep_runs, layer_order, main_batch_size, main_runs

STUDY = "normalization_layers"
METRIC = "test_acc_at_best_val"
REFERENCE = "torch_bn"  # every difference is taken against PyTorch's BatchNorm2d


def study_answer(everything: pd.DataFrame, profile: str, grid_file: str, metric: str = METRIC) -> StudyAnswer:
    """Study 2's answer from ``everything`` (:func:`~normtest_lib.report.results.collect_runs`' frame), read in
    the profile :func:`~normtest_lib.report.findings.answer_runs` picks (``profile`` preferred), at the batch
    size most runs trained with; the published protocol is the ``paper`` profile of ``grid_file``. Its figure:
    each layer's paired difference to ``torch_bn``."""
    profile, runs = answer_runs(everything, STUDY, profile, grid_file)
    paper = protocol.paper_runs(grid_file)
    published_epochs = int(max(run["epochs"] for run in paper))
    complete = runs[runs["status"] == "complete"]
    main_batch = main_batch_size(complete)
    main = main_runs(complete)
    reductions = protocol.profile_table(paper, runs, profile, PROTOCOL_KEYS)
    published = published_results(STUDY).query("batch_size == @main_batch")
    finding = normalization_layers_finding(
        main, metric, profile, published.query("metric == 'test_acc'").set_index("norm_layer")["value"],
        *protocol.changed_parameters(reductions), published_epochs=published_epochs)
    headline = paired_differences(main, metric, "norm_layer", REFERENCE, ["batch_size"]).droplevel("batch_size")
    headline = headline.reindex(layer_order(headline.index))
    trained = trained_layers(main)
    title = titled(f"each layer against {REFERENCE}, batch {main_batch}", main)
    if REFERENCE in trained:  # hollow dots mark the layers still learning; the others are trained networks
        figure = difference_forest(headline, "norm_layer", REFERENCE, title=title,
                                   still_learning=[name for name in headline.index if name not in trained])
    else:
        figure = difference_forest(headline, "norm_layer", REFERENCE, title=unconverged_title(title, main))
    value = published[published["norm_layer"] == REFERENCE].set_index("metric")["value"]
    what = f"the earlier work's last-epoch model after {published_epochs} epochs, one run"
    finding = with_baseline(finding, baseline_sentence(main[main["norm_layer"] == REFERENCE], REFERENCE, metric,
                                                       value.get("test_acc"), value.get("train_acc"), what))
    sweep = batch_sweep_runs(complete)
    batch_sentence = batch_size_finding(sweep, metric)
    if batch_sentence:
        finding = dataclasses.replace(finding, answer=f"{finding.answer} {batch_sentence}")
    finding = dataclasses.replace(finding, advice=layers_advice(main, metric, sweep))
    # The answer reads the main runs and, for its batch-size sentence, the sweep: its evidence counts both, as
    # the landing page's provenance table does (StudyAnswer.answered).
    answered = complete[complete["run_id"].isin(set(main["run_id"]) | (set(sweep["run_id"]) if batch_sentence else set()))]
    count = profile_count(everything, STUDY, profile, grid_file)
    finding = dataclasses.replace(finding, evidence=evidence_sentence(
        answered, profile, *protocol.changed_parameters(reductions), count=count,
        which=answered_text(len(main), main_batch, len(answered) - len(main))))
    return StudyAnswer(STUDY, profile, finding, figure, len(main), complete, reductions, main, count, answered)


def answered_text(main: int, batch: int, sweep: int) -> str:
    """Which runs the answer reads, in words: the ``main`` runs at the main batch size and optimizer and the
    ``sweep`` runs more of the batch-size comparison."""
    text = f"{main} at batch {batch} with the main optimizer, for the comparison of the layers"
    if sweep:
        text += f", and {sweep} more of `bn` and `gn:c/4` at other batch sizes, for the batch-size comparison"
    return text


def trained_layers(main: pd.DataFrame) -> list[str]:
    """The layers whose every run converged by the book's rule, in the book's order; every layer when the
    frame carries no verdicts (nothing says otherwise)."""
    trained = converged_groups(main, "norm_layer")
    return [name for name in layer_order(main["norm_layer"].unique()) if name in trained]


def normalization_layers_finding(main: pd.DataFrame, metric: str, profile: str, published: pd.Series | None = None,
                                 changed: int | None = None, total: int | None = None,
                                 reference: str = REFERENCE, published_epochs: int | None = None) -> Finding:
    """Study 2's answer from its complete runs at one batch size: our ``bn`` against torch's,
    ``bin`` against ``bn``, and what the other layers cost; ``published`` is the published
    test accuracy per ``norm_layer`` (fractions), for the published gaps.

    Each comparison is worded by whether both its layers converged (:func:`trained_layers`): one between
    trained networks says which is better and sets the gap beside the published one; one with a layer still
    learning at the last epoch says how fast it learns, never which is better. With the reference itself
    still learning, every comparison is of learning speed."""
    differences = paired_differences(main, metric, "norm_layer", reference, ["batch_size"]).droplevel("batch_size")
    differences = differences.reindex(layer_order(differences.index))
    judged = all_converged(main) is not None
    trained = set(trained_layers(main))
    if reference not in trained:
        trained = set()  # every gap is to a network still learning
    early = f" in the first {epochs_text(main)} epochs"
    parts = []
    if "bn" in differences.index:
        row = differences.loc["bn"]
        same = "matches" if bool(within_noise(row.to_frame().T).iloc[0]) else "differs from"
        when = "" if "bn" in trained else early
        parts.append(f"Batch norm written from scratch (`bn`) {same} PyTorch's (`{reference}`){when}: {interval_text(row, unit='points')}, {verdict(row)}.")
    if {"bin", "bn"} <= set(main["norm_layer"]):
        against_bn = paired_differences(main, metric, "norm_layer", "bn", ["batch_size"]).droplevel("batch_size").loc["bin"]
        claim = {
            "beyond": "supports" if against_bn["mean"] > 0 else "contradicts",
            "within": "does not support",
        }["beyond" if bool(significant(against_bn.to_frame().T).iloc[0]) else "within"]
        if {"bin", "bn"} <= trained:
            parts.append(
                f"Batch-instance norm with a gate that learns (`bin`) against `bn`: {interval_text(against_bn, unit='points')}, "
                f"{verdict(against_bn)}, which {claim} the earlier claim that BIN is the best layer."
            )
        else:
            parts.append(
                f"Batch-instance norm with a gate that learns (`bin`) against `bn`{early}: "
                f"{interval_text(against_bn, unit='points')}, {verdict(against_bn)}; runs that had not converged "
                "cannot test the earlier claim that BIN is the best layer."
            )
    rest = differences.drop(index=[name for name in ("bn", "bin") if name in differences.index])
    behind = rest[significant(rest) & (rest["mean"] < 0)].sort_values("mean", ascending=False)
    behind_trained = behind[behind.index.isin(trained)]
    if len(behind_trained):
        parts.append(f"Behind `{reference}`, beyond the spread: {listing(behind_trained)} points.")
    if published is not None and reference in published.index and trained and not judged:
        parts.append(different_training_sentence(main, behind, published, reference, published_epochs))
    elif published is not None and reference in published.index and trained:
        compared = [name for name in differences.index if name in trained]
        on_trained = main[main["norm_layer"].isin([reference, *compared])]
        parts.extend(published_comparison(on_trained, differences.loc[compared], published, metric, reference,
                                          published_epochs))
    learning = [name for name in differences.index if name not in trained and name not in ("bn", "bin")]
    if trained and learning:
        parts.append(still_learning_sentence(main, differences.loc[learning], reference, published, published_epochs))
    elif not trained:
        if len(behind):
            parts.append(f"Slower to learn than `{reference}`{early}, beyond the spread: {listing(behind)} points.")
        if published is not None and reference in published.index:
            parts.append(different_training_sentence(main, behind, published, reference, published_epochs))
        caveat = learning_speed_caveat(main, "layer")
        if caveat:
            parts.append(caveat)
    certainty = (
        f"How sure: {seeds_text(differences)} seeds per layer, each run paired with the `{reference}` run of the same seed; "
        "differences in points with their 95 % t interval, at the epoch chosen on the validation split."
    )
    return Finding(" ".join(part for part in parts if part), certainty, evidence_sentence(main, profile, changed, total))


def different_training_sentence(main: pd.DataFrame, behind: pd.DataFrame, published: pd.Series,
                                reference: str = REFERENCE, published_epochs: int | None = None) -> str:
    """The published gaps of the layers ``behind`` the reference, for runs not known to be trained as the
    published ones were: their gaps measure a different training (empty when none was published)."""
    gaps = (100 * (published.drop(index=reference) - published[reference])).reindex(behind.index).dropna()
    if not len(gaps):
        return ""
    epochs = ", ".join(str(int(e)) for e in sorted(main["epochs"].unique()))
    listed = "; ".join(f"`{name}` {gap:+.1f}" for name, gap in gaps.items())
    after = f", after {published_epochs} epochs," if published_epochs else ""
    return (f"The published gaps for these layers{after} were {listed} points; this profile trains {epochs} epochs, "
            "so its gaps measure a different training, not the published one.")


def still_learning_sentence(main: pd.DataFrame, learning: pd.DataFrame, reference: str = REFERENCE,
                            published: pd.Series | None = None, published_epochs: int | None = None) -> str:
    """The layers (rows of paired differences to ``reference``) whose runs had not all converged when the
    reference's had: how much of their training set their last weights fit, their gaps read as learning
    speed, and the published gaps, which came from networks trained on the whole training set."""
    fitted = pd.to_numeric(main.get("train_acc_final", pd.Series(dtype=float)), errors="coerce")
    fit = (100 * fitted).groupby(main["norm_layer"]).mean()
    names = and_list(learning.index, quote=True)
    fits = "; ".join(f"`{name}` {fit[name]:.0f} %" for name in learning.index if pd.notna(fit.get(name)))
    fitting = f" (training images their last weights classify correctly: {fits})" if fits else ""
    sentence = (
        f"{names} had not converged after the same {epochs_text(main)} epochs{fitting}, while `{reference}` fits its "
        f"training set: {'its gap' if len(learning) == 1 else 'their gaps'} to it, {listing(learning)} points, "
        f"{'says' if len(learning) == 1 else 'say'} how much slower {'it learns' if len(learning) == 1 else 'they learn'} "
        "here, not which layer is better once trained."
    )
    if published is not None and reference in published.index:
        gaps = (100 * (published.drop(index=reference) - published[reference])).reindex(learning.index).dropna()
        if len(gaps):
            after = f" after {published_epochs} epochs" if published_epochs else ""
            listed = "; ".join(f"`{name}` {gap:+.1f}" for name, gap in gaps.items())
            sentence += f" The published {'gap' if len(gaps) == 1 else 'gaps'}{after} on the whole training set: {listed} points."
    return sentence


def _still_learning_at(runs: pd.DataFrame, layers: Sequence[str]) -> list[str]:
    """Which of ``layers`` have a run among ``runs`` that did not converge (none when no verdict is recorded)."""
    trained = set(trained_layers(runs))
    return [name for name in layers if name not in trained]


def published_comparison(main: pd.DataFrame, differences: pd.DataFrame, published: pd.Series, metric: str,
                         reference: str = REFERENCE, published_epochs: int | None = None) -> list[str]:
    """Converged runs against the published ones: each layer's gap to ``reference`` here beside the published
    gap, and whether the published ordering of the layers by test accuracy holds (ties within the seed spread
    counted as ties). ``published`` is the published test accuracy per ``norm_layer`` (fractions)."""
    published_gaps = 100 * (published.drop(index=reference, errors="ignore") - published[reference])
    shared = [name for name in layer_order(differences.index) if name in published_gaps.index]
    if not shared:
        return []
    after = f" after {published_epochs} epochs" if published_epochs else ""
    listed = "; ".join(f"`{name}` {differences.loc[name, 'mean']:+.1f} (published {published_gaps[name]:+.1f})"
                       for name in shared)
    sentences = [f"Gaps to `{reference}` at convergence here, with the published{after}: {listed} points."]
    layers = [reference, *shared]
    ours = main.groupby("norm_layer")[metric].mean().reindex(layers)
    theirs = published.reindex(layers)
    published_order = " > ".join(f"`{name}`" for name in theirs.sort_values(ascending=False).index)
    our_order = " > ".join(f"`{name}`" for name in ours.sort_values(ascending=False).index)
    if not significant(differences.loc[shared]).any():
        largest = published_gaps[shared].abs().max()
        sentences.append(
            f"Here {and_list(layers, quote=True)} are all within the seed spread of each other, so no ordering can be read "
            f"from them; the published gaps, from one run each, are at most {largest:.1f} points, well inside such a spread.")
    elif published_order == our_order:
        sentences.append(f"The published ordering by test accuracy holds here: {our_order}.")
    else:
        sentences.append(f"The published ordering by test accuracy ({published_order}) does not hold here: {our_order} "
                         "(means over seeds; the paired intervals above say which gaps exceed the seed spread).")
    return sentences


def batch_size_finding(sweep: pd.DataFrame, metric: str, baseline: str = "bn", other: str = "gn:c/4") -> str:
    """What to choose at each batch size of the batch-size comparison: ``other`` against ``baseline``, paired
    by seed at each batch size, and the layer a reader should pick there (the better mean, said to be within
    the seed spread when the interval includes 0). Empty when the sweep has fewer than two batch sizes."""
    if sweep["batch_size"].nunique() < 2 or not {baseline, other} <= set(sweep["norm_layer"]):
        return ""
    differences = paired_differences(sweep, metric, "norm_layer", baseline, ["batch_size"])
    if other not in differences.index.get_level_values("norm_layer"):
        return ""
    rows = differences.xs(other, level="norm_layer").sort_index()
    parts, choices = [], []
    for batch, row in rows.iterrows():
        learning = _still_learning_at(sweep[sweep["batch_size"] == batch], (baseline, other))
        note = f"; {and_list(learning, quote=True)} still learning at the last epoch" if learning else ""
        parts.append(f"at batch {int(batch)}, {interval_text(row, unit='points')} ({verdict(row)}{note})")
        better = other if row["mean"] > 0 else baseline
        sure = "" if bool(significant(row.to_frame().T).iloc[0]) else ", though within the seed spread"
        budget = " for this training budget" if learning else ""
        choices.append((better, int(batch), f"{budget}{sure}"))
    return (f"Batch size: `{other}` against `{baseline}`, the learning rate scaled with the batch, equal epochs: "
            f"{'; '.join(parts)}. Choose {_choices_text(choices)}.")


def _choices_text(choices: Sequence[tuple[str, int, str]]) -> str:
    """(layer, batch, qualifier) per batch size in words; one layer with one qualifier at every batch is said once:
    ```bn`` at batch 8 and 128 for this training budget``."""
    if len(choices) > 1 and len({(layer, note) for layer, _, note in choices}) == 1:
        layer, _, note = choices[0]
        batches = [str(batch) for _, batch, _ in choices]
        return f"`{layer}` at batch {', '.join(batches[:-1])} and {batches[-1]}{note}"
    return " and ".join(f"`{layer}` at batch {batch}{note}" for layer, batch, note in choices)


def layers_advice(main: pd.DataFrame, metric: str, sweep: pd.DataFrame | None = None,
                  reference: str = REFERENCE) -> str:
    """What a reader should choose, from what the runs show: at the main batch size, the trained layers
    none of which is beaten beyond the seed spread (or the ones that beat ``reference``); the layers still
    learning when the budget ran out; and at the sweep's smallest batch, the better of ``bn`` and
    ``gn:c/4``. Empty when ``reference`` itself had not converged (the runs cannot say)."""
    trained = trained_layers(main)
    if reference not in trained:
        return ""
    batch = main_batch_size(main)
    differences = paired_differences(main, metric, "norm_layer", reference, ["batch_size"]).droplevel("batch_size")
    ahead = differences[significant(differences) & (differences["mean"] > 0)]
    behind = differences[significant(differences) & (differences["mean"] < 0)]
    better = [name for name in layer_order(ahead.index) if name in trained]
    if better:
        parts = [f"At batch {batch}, choose {and_list(better, quote=True)}: ahead of `{reference}` beyond the seed spread."]
    else:
        tied = [name for name in trained if name not in behind.index]
        parts = [f"At batch {batch}, choose any of {and_list(tied, quote=True)}: once trained, they are within the seed "
                 f"spread of `{reference}`." if len(tied) > 1 else f"At batch {batch}, choose `{reference}`."]
    learning = [name for name in layer_order(differences.index) if name not in trained]
    if learning:
        parts.append(f"{and_list(learning, quote=True)} had not converged in the same training: for a budget like this one "
                     "they are the worse choice, and whether they catch up when trained longer these runs cannot say.")
    if sweep is not None and len(sweep) and sweep["batch_size"].nunique() > 1:
        small = int(sweep["batch_size"].min())
        at_small = sweep[sweep["batch_size"] == small]
        pair = paired_differences(at_small, metric, "norm_layer", "bn", ["batch_size"]) if {"bn", "gn:c/4"} <= set(at_small["norm_layer"]) else None
        if pair is not None and "gn:c/4" in pair.index.get_level_values("norm_layer"):
            row = pair.xs("gn:c/4", level="norm_layer").iloc[0]
            choice = "gn:c/4" if row["mean"] > 0 else "bn"
            sure = "beyond the seed spread" if bool(significant(row.to_frame().T).iloc[0]) else "though within the seed spread"
            still = _still_learning_at(at_small, ("bn", "gn:c/4"))
            caveat = f"; {and_list(still, quote=True)} still learning at the last epoch" if still else ""
            parts.append(f"At batch {small}, choose `{choice}` ({interval_text(row, unit='points')} for `gn:c/4` against `bn`, "
                         f"{sure}{caveat}).")
    return " ".join(parts)
