"""Study 3's answer: does ConvNorm lose less accuracy to label noise than batch norm?

Computed from the study's runs for the landing page and the chapter's opening
(:func:`study_answer`), with the wording every answer shares
(:mod:`normtest_lib.report.findings`): the accuracy each variant loses at the
highest noise level, ConvNorm's loss against BN's seed by seed, where each
starts without noise, and the baseline's absolute accuracy beside the published one.
"""

from __future__ import annotations

import dataclasses

import pandas as pd

from ...report import protocol
from ...report.counts import ProfileCount, profile_count
from ...report.findings import (
    Finding, StudyAnswer, all_converged, and_list, answer_runs, baseline_sentence, converged_groups, epochs_text,
    evidence_sentence, interval_text, learning_speed_caveat, still_learning_sentence, titled, unconverged_count,
    unconverged_title, with_baseline,
)  # fmt: skip
from ...report.paired import paired_differences, significant, within_noise
from ...report.published import published_results
from ...report.results import collect_probes
from .analysis import (
    PROTOCOL_KEYS, VARIANT_ORDER, accuracy_lost, add_variant, loss_difference, memorization_at_end, noise_level_text,
    variant_order,
)  # fmt: skip
from .figures import accuracy_vs_noise

STUDY = "convnorm_label_noise"
METRIC = "test_acc_at_best_val"
REFERENCE = "bn"  # every variant is compared with plain convolutions and batch norm
# The share of its flipped training images a network predicts as their wrong label by its last epoch, above which
# it is learning the wrong labels (chance is 10 % for 10 classes): where robustness to noisy labels is tested.
MEMORIZING = 30.0


def study_answer(everything: pd.DataFrame, profile: str, grid_file: str, metric: str = METRIC) -> StudyAnswer:
    """Study 3's answer from ``everything`` (:func:`~normtest_lib.report.results.collect_runs`' frame), read in
    the profile :func:`~normtest_lib.report.findings.answer_runs` picks (``profile`` preferred); the published
    protocol is the ``paper`` profile of ``grid_file``. Its figure: test accuracy against the noise level."""
    profile, runs = answer_runs(everything, STUDY, profile, grid_file)
    runs = add_variant(runs)
    complete = runs[runs["status"] == "complete"]
    reductions = protocol.profile_table(protocol.paper_runs(grid_file), runs, profile, PROTOCOL_KEYS)
    probes = collect_probes(runs=complete) if len(complete) else pd.DataFrame()
    memorized = memorization_at_end(add_variant(probes)) if len(probes) else None
    count = profile_count(everything, STUDY, profile, grid_file)
    finding = convnorm_finding(complete, metric, profile, *protocol.changed_parameters(reductions), memorized=memorized,
                               count=count)
    figure = accuracy_vs_noise(
        complete, metric, order=variant_order(complete["variant"]),
        title=unconverged_title(titled("test accuracy against label noise", complete), complete))
    published = published_results(STUDY)
    clean = published.query(f"variant == '{REFERENCE}' and label_noise == 0 and metric == 'test_acc'")["value"]
    baseline = complete[(complete["variant"] == REFERENCE) & (complete["label_noise"].astype(float) == 0)]
    finding = dataclasses.replace(finding, advice=convnorm_advice(complete, metric, memorized))
    finding = with_baseline(finding, baseline_sentence(baseline, f"{REFERENCE}, no label noise", metric,
                                                       clean.iloc[0] if len(clean) else None, None,
                                                       "the course paper's best test accuracy, one run"))
    return StudyAnswer(STUDY, profile, finding, figure, len(complete), complete, reductions, complete, count, complete)


def convnorm_finding(complete: pd.DataFrame, metric: str, profile: str, changed: int | None = None,
                     total: int | None = None, reference: str = REFERENCE,
                     memorized: pd.DataFrame | None = None, count: ProfileCount | None = None) -> Finding:
    """Study 3's answer from its complete runs: accuracy lost at the highest noise level per variant,
    ConvNorm's loss against BN's, where each starts without noise, and (given ``memorized``,
    :func:`~.analysis.memorization_at_end`'s frame) whether the reference was learning its wrong labels at
    the highest noise level, without which the comparison does not test robustness to memorizing them."""
    runs = complete if "variant" in complete.columns else add_variant(complete)
    noise = runs["label_noise"].astype(float)
    top = float(noise.max())
    order = variant_order(runs["variant"])
    lost = accuracy_lost(runs, metric)
    parts = []
    if top > 0 and len(lost):
        at_top = lost.xs(top, level="label_noise") if top in lost.index.get_level_values("label_noise") else lost.iloc[:0]
        at_top = at_top.reindex([v for v in order if v in at_top.index])
        rate = runs.loc[noise == top, "noise_rate_actual"] if "noise_rate_actual" in runs.columns else pd.Series(dtype=float)
        rate_text = f" (real share of wrong training labels {100 * rate.mean():.1f} %)" if rate.notna().any() else ""
        listed = "; ".join(f"`{name}` {interval_text(row)}" for name, row in at_top.iterrows())
        early = f" after {epochs_text(runs)} epochs" if all_converged(runs) is False else ""
        parts.append(f"At {noise_level_text(top)} nominal label noise{rate_text}, test accuracy lost against no noise{early}: {listed} points.")
        for name in (v for v in order if v != reference and v in at_top.index):
            difference = loss_difference(runs, metric, name, reference, top)
            if difference["n"] == 0:
                continue
            if bool(significant(difference.to_frame().T).iloc[0]):
                word = "less" if difference["mean"] < 0 else "more"
                parts.append(f"`{name}` loses {word} than `{reference}`: {interval_text(difference, unit='points')}, beyond the seed-to-seed spread.")
            elif bool(within_noise(difference.to_frame().T).iloc[0]):
                parts.append(f"`{name}` loses as much as `{reference}` within the spread: {interval_text(difference, unit='points')}.")
            else:
                parts.append(f"`{name}` against `{reference}`: {interval_text(difference, unit='points')}, too few seeds to tell.")
    if top > 0 and not (noise == 0).any():
        parts.append("No run without noise is complete yet, so the accuracy each variant loses to noise cannot be "
                     "paired yet.")
    if memorized is not None and top > 0:
        parts.append(memorizing_sentence(memorized, top, reference))
    clean = runs[noise == 0]
    if len(clean):
        accuracy = (100 * pd.to_numeric(clean[metric], errors="coerce")).groupby(clean["variant"]).agg(["mean", "std", "count"])
        accuracy = accuracy.reindex([v for v in order if v in accuracy.index])
        listed = "; ".join(f"`{name}` {row['mean']:.1f} ± {row['std']:.1f} %" for name, row in accuracy.iterrows())
        parts.append(f"Without noise, test accuracy (mean ± std over seeds): {listed}.")
    missing = [name for name in VARIANT_ORDER if name not in set(runs["variant"])]
    if missing:
        parts.append(
            f"{' and '.join(f'`{name}`' for name in missing)} {'has' if len(missing) == 1 else 'have'} no complete runs "
            f"in the `{profile}` profile, so it answers nothing about {'it' if len(missing) == 1 else 'them'} yet."
        )
    caveat = learning_speed_caveat(runs, "variant")
    if caveat:
        parts.append(caveat)
    per_cell = runs.groupby(["variant", "label_noise"])["seed"].nunique() if len(runs) else pd.Series([0])
    seeds = f"{per_cell.min()}" if per_cell.min() == per_cell.max() else f"{per_cell.min()} to {per_cell.max()}"
    certainty = (
        f"How sure: {seeds} seeds per variant and noise level, each drawing its own noisy labels; losses are "
        "paired by seed within a variant and compared between variants seed by seed, in points with 95 % t intervals, "
        "at the epoch chosen on a clean validation split."
    )
    return Finding(" ".join(part for part in parts if part), certainty, evidence_sentence(runs, profile, changed, total, count))


def memorizing_sentence(memorized: pd.DataFrame, level: float, reference: str = REFERENCE) -> str:
    """Whether ``reference`` at noise ``level`` was learning its wrong labels by its last epoch (its mean
    ``flipped_fit_noisy`` at or above :data:`MEMORIZING` percent), in words; empty without such runs."""
    at_level = memorized[(memorized["label_noise"].astype(float) == level) & (memorized["variant"] == reference)]
    if at_level.empty:
        return ""
    share = float(at_level["flipped_fit_noisy"].mean())
    where = f"By its last epoch, `{reference}` at {noise_level_text(level)} noise predicts {share:.0f} % of its flipped training images as their wrong label (chance about 10 %)"
    if share >= MEMORIZING:
        return f"{where}: it was learning the wrong labels, so these losses are measured where memorization happens."
    return (f"{where}: below {MEMORIZING:.0f} %, it had barely begun to learn them, so these losses say little about "
            "robustness to memorizing noisy labels.")


def convnorm_advice(complete: pd.DataFrame, metric: str, memorized: pd.DataFrame | None = None,
                    reference: str = REFERENCE) -> str:
    """What a reader with noisy labels should use, from what the runs show (the answer's closing advice).

    Only variants whose every run converged by the book's rule are compared (never a choice from runs still
    learning): the one choice is the variant most accurate at the highest noise level, beyond the seed spread,
    else ``reference``; then whether each trained ConvNorm variant loses less accuracy to the noise than
    ``reference`` (the course paper's claim), and which variants were still learning. Where ``reference``
    itself had not converged, or (given ``memorized``, :func:`~.analysis.memorization_at_end`'s frame) had
    barely begun to learn its wrong labels, the advice says why the runs cannot choose. Empty without a
    noisy level and its clean start."""
    runs = complete if "variant" in complete.columns else add_variant(complete)
    noise = runs["label_noise"].astype(float) if len(runs) else pd.Series(dtype=float)
    top = float(noise.max()) if len(runs) else 0.0
    if top == 0 or not (noise == 0).any() or reference not in set(runs["variant"]):
        return ""
    level = noise_level_text(top)
    trained = converged_groups(runs, "variant")
    if reference not in trained:
        return (f"These runs cannot say whether ConvNorm is worth using: "
                f"{unconverged_count(runs[runs['variant'] == reference])} `{reference}` runs had "
                f"not converged by the book's rule, so every comparison here is of how fast the variants learn in "
                f"{epochs_text(runs)} epochs. With no evidence either way, `{reference}` stays the default.")
    if memorized is not None:
        share = memorized[(memorized["variant"] == reference) & (memorized["label_noise"].astype(float) == top)]
        if len(share) and float(share["flipped_fit_noisy"].mean()) < MEMORIZING:
            return (f"These runs do not test robustness to noisy labels: `{reference}` had barely begun to learn its "
                    f"wrong labels at {level} noise, so train longer before choosing a layer for it.")
    others = [name for name in variant_order(runs["variant"]) if name != reference]
    compared = [name for name in others if name in trained]
    at_top = runs[noise == top]
    accuracy = (paired_differences(at_top, metric, "variant", reference, ["label_noise"]).droplevel("label_noise")
                if compared and (at_top["variant"] == reference).any()
                else pd.DataFrame(columns=["mean", "n", "ci_low", "ci_high"]))
    accuracy = accuracy.reindex([name for name in compared if name in accuracy.index])
    ahead = accuracy[significant(accuracy) & (accuracy["mean"] > 0)]
    if len(ahead):
        best = ahead["mean"].idxmax()
        parts = [f"With noisy labels, use `{best}`: at {level} noise it is {interval_text(ahead.loc[best], unit='points')} more "
                 f"accurate than `{reference}`, beyond the seed spread."]
    else:
        rest = "; ".join(f"`{name}` {interval_text(row)}" for name, row in accuracy.iterrows())
        beside = f" (test accuracy at {level} noise against it, in points: {rest})" if rest else ""
        parts = [f"With noisy labels, keep `{reference}`: no trained variant is more accurate at {level} noise beyond the "
                 f"seed spread{beside}."]
    robust, same = [], []
    for name in compared:
        difference = loss_difference(runs, metric, name, reference, top)
        if difference["n"] < 2:
            continue
        row = difference.to_frame().T
        if bool(significant(row).iloc[0]) and difference["mean"] < 0:
            robust.append(f"`{name}` ({interval_text(difference, unit='points')})")
        elif bool(within_noise(row).iloc[0]):
            same.append(f"`{name}` ({interval_text(difference, unit='points')})")
    if robust:
        parts.append(f"{and_list(robust)} {'loses' if len(robust) == 1 else 'lose'} less accuracy to the noise than "
                     f"`{reference}`, beyond the seed spread: the robustness the course paper claimed.")
    if same:
        parts.append(f"{and_list(same)} {'loses' if len(same) == 1 else 'lose'} as much accuracy to the noise as "
                     f"`{reference}` within the seed spread: no robustness to label noise to choose ConvNorm for.")
    parts.append(still_learning_sentence([name for name in others if name in set(runs["variant"]) and name not in trained]))
    return " ".join(part for part in parts if part)
