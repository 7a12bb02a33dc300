"""Each study's answer in a few sentences, computed from its runs.

The landing page and each study chapter open with these, so the book states an
answer once, in code: when a run changes, the answer changes with it. Every
figure in a sentence is a paired difference over seeds with its 95 % interval,
and every answer says whether it exceeds the seed-to-seed spread, how many runs
stand behind it, and whether they ran on real or on the built-in synthetic data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from . import labels, protocol
from .label_noise import VARIANT_ORDER, add_variant, noise_level_text, variant_order
from .paired import confidence_interval, paired_differences, significant, within_noise

SYNTHETIC_PREFIX = "synthetic"
REAL, SYNTHETIC, MIXED = "real data", "synthetic data", "real and synthetic data"


@dataclass(frozen=True)
class Finding:
    """One study's answer: ``answer`` (what we found, with its numbers), ``certainty``
    (how sure: seeds, intervals) and ``evidence`` (where it came from), each Markdown."""

    answer: str
    certainty: str
    evidence: str

    def markdown(self) -> str:
        return "\n\n".join((self.answer, self.certainty, self.evidence))


# --- shared wording --------------------------------------------------------------


def data_kind(runs: pd.DataFrame) -> str:
    """``real data``, ``synthetic data`` or ``real and synthetic data``, from the runs' ``dataset``."""
    names = {str(name) for name in runs["dataset"].dropna()} if "dataset" in runs.columns else set()
    synthetic = {name for name in names if name.startswith(SYNTHETIC_PREFIX)}
    if not names or synthetic == names:
        return SYNTHETIC if names else REAL
    return MIXED if synthetic else REAL


def kind_label(runs: pd.DataFrame) -> str:
    """``**Real data.**`` or ``**Synthetic data.**`` (Markdown), to open a figure's caption; empty without runs."""
    return f"**{data_kind(runs).capitalize()}.**" if len(runs) else ""


def titled(title: str, runs: pd.DataFrame) -> str:
    """``title`` prefixed with what kind of data its runs used, so real and synthetic results
    are told apart at a glance: ``Real data: ...``."""
    kind = data_kind(runs)
    return f"{kind[0].upper()}{kind[1:]}: {title}"


def labelled(table: pd.DataFrame | Any, runs: pd.DataFrame, what: str) -> Any:
    """``table`` (a frame or a pandas Styler) as a Styler captioned ``<Real|Synthetic> data: what; runs
    converged: k of n``, so a reader tells real from synthetic results, and finished training from a network
    stopped while still learning, at a glance; with no runs, ``what`` alone."""
    from .converged import caption_note

    styler = table.style if isinstance(table, pd.DataFrame) else table
    if not len(runs):
        return styler.set_caption(what)
    note = caption_note(runs)
    return styler.set_caption(titled(what, runs) + (f" ({note})" if note else ""))


def interval_text(row: pd.Series, digits: int = 1) -> str:
    """``+0.5 [-0.2, +1.3]``; without an interval (one seed) ``+0.5 (one seed, no interval)``."""
    if pd.isna(row["ci_low"]):
        return f"{row['mean']:+.{digits}f} (one seed, no interval)"
    return f"{row['mean']:+.{digits}f} [{row['ci_low']:+.{digits}f}, {row['ci_high']:+.{digits}f}]"


def verdict(row: pd.Series) -> str:
    """Whether a paired difference exceeds the seed-to-seed spread, in words."""
    frame = row.to_frame().T
    if bool(significant(frame).iloc[0]):
        return "beyond the seed-to-seed spread"
    if bool(within_noise(frame).iloc[0]):
        return "within the seed-to-seed spread"
    return "with too few seeds to tell"


def _listing(rows: pd.DataFrame, digits: int = 1) -> str:
    return "; ".join(f"`{name}` {interval_text(row, digits)}" for name, row in rows.iterrows())


def _seeds(differences: pd.DataFrame) -> str:
    counts = sorted({int(n) for n in differences["n"]})
    return " to ".join(str(n) for n in (counts[0], counts[-1])) if len(counts) > 1 else str(counts[0])


def evidence_sentence(runs: pd.DataFrame, profile: str, changed: int | None = None, total: int | None = None) -> str:
    """Where an answer comes from: the kind of data, the profile, its complete runs and data sets,
    and how many of the published protocol's parameters the profile changed (when known)."""
    complete = runs[runs["status"] == "complete"] if "status" in runs.columns else runs
    datasets = ", ".join(f"`{name}`" for name in sorted({labels.dataset_label(run) for run in complete.to_dict("records")}))
    text = f"**{data_kind(complete).capitalize()}**: {len(complete)} complete runs of the `{profile}` profile on {datasets}."
    if changed is not None and total is not None:
        text += (
            f" The profile changes {changed} of {total} parameters of the published protocol, so its numbers "
            "are not the published protocol's." if changed else " The profile runs the published protocol."
        )
    return text


# --- whether the runs converged ------------------------------------------------------


def all_converged(runs: pd.DataFrame) -> bool | None:
    """Whether every run of ``runs`` converged by the book's rule (its ``converged`` column,
    :func:`normtest_lib.report.converged.add_convergence`); None when the frame does not say."""
    if "converged" not in runs.columns or not len(runs):
        return None
    return bool(runs["converged"].astype(bool).all())


def epochs_text(runs: pd.DataFrame) -> str:
    """The runs' epoch count(s): ``8``, or ``5 to 12``."""
    epochs = sorted({int(e) for e in pd.to_numeric(runs.get("epochs", pd.Series(dtype=float)), errors="coerce").dropna()})
    if not epochs:
        return "its"
    return str(epochs[0]) if len(epochs) == 1 else f"{epochs[0]} to {epochs[-1]}"


def learning_speed_caveat(runs: pd.DataFrame, unit: str) -> str:
    """What a comparison of unconverged runs measures, in words: how fast each ``unit`` (layer, setting,
    variant) learns in the first epochs, never which is better; empty when every run converged or nothing says."""
    from .converged import converged_text

    if all_converged(runs) is not False:
        return ""
    done = int(runs["converged"].astype(bool).sum())
    which = f"None of these {len(runs)} runs" if done == 0 else f"Only {converged_text(runs['converged'])} runs"
    return (
        f"{which} converged by the book's rule, so these differences say how fast each {unit} learns in the first "
        f"{epochs_text(runs)} epochs (learning speed), not which {unit} is better once trained."
    )


def unconverged_title(title: str, runs: pd.DataFrame) -> str:
    """A figure's title, saying so when its runs did not all converge: it shows learning speed."""
    return title if all_converged(runs) is not False else f"{title}\n(unconverged runs: learning speed, not final accuracy)"


def _percent(values: pd.Series) -> str:
    values = 100 * pd.to_numeric(values, errors="coerce").dropna()
    if not len(values):
        return "not recorded"
    return f"{values.mean():.1f} %" if len(values) == 1 else f"{values.mean():.1f} ± {values.std():.1f} %"


def baseline_sentence(baseline: pd.DataFrame, name: str, metric: str, published_test: float | None = None,
                      published_train: float | None = None, published_what: str = "") -> str:
    """The baseline's absolute accuracies beside the published ones, and whether its runs converged.

    Training accuracy is ``train_acc_final`` (the last weights on the training split, evaluation mode, no
    augmentation) where the runs recorded it, else the last epoch's ``train_acc`` (a running average over
    augmented batches in training mode), and the sentence says which."""
    from .converged import add_convergence, converged_text

    runs = add_convergence(baseline) if "path" in baseline.columns or set(("converged", "train_acc_final")) <= set(baseline.columns) else baseline
    recorded = "train_acc_final" in runs.columns and pd.to_numeric(runs["train_acc_final"], errors="coerce").notna().all()
    if recorded:
        train, how = runs["train_acc_final"], "of the last weights on the training set, in evaluation mode"
    elif "train_acc_last_epoch" in runs.columns:
        train = runs["train_acc_last_epoch"]
        how = ("the last epoch's running average over augmented batches: train_acc_final was not recorded "
               "by these runs")
    else:
        train, how = pd.Series(dtype=float), "not recorded"
    text = (
        f"The baseline, `{name}` ({len(runs)} runs of {epochs_text(runs)} epochs): test accuracy "
        f"{_percent(runs[metric])}, training accuracy {_percent(train)} ({how})."
    )
    published = []
    if published_test is not None and pd.notna(published_test):
        published.append(f"{100 * published_test:.1f} % test")
    if published_train is not None and pd.notna(published_train):
        published.append(f"{100 * published_train:.1f} % training")
    if published:
        text += f" Published{f' ({published_what})' if published_what else ''}: {' and '.join(published)} accuracy."
    elif published_what:
        text += f" Published: {published_what}."
    if "converged" in runs.columns:
        reasons = runs["convergence"].dropna().astype(str) if "convergence" in runs.columns else pd.Series(dtype=str)
        reason = f" ({reasons.iloc[0]}{' in the first run' if len(reasons) > 1 else ''})" if len(reasons) else ""
        text += f" Its runs converged: {converged_text(runs['converged'])}{reason}."
    return text


# --- study 1 ---------------------------------------------------------------------


def input_normalization_finding(finetuning: pd.DataFrame, metric: str, profile: str,
                                changed: int | None = None, total: int | None = None,
                                source: Mapping[str, Any] | None = None) -> Finding:
    """Study 1's answer from its complete fine-tuning runs (:func:`labels.add_labels` applied):
    ``pretrain`` against ``finetune`` on the largest training set, the other settings, and the
    small-data sweep. ``source`` is the profile's pretraining run (its row of the runs frame),
    if the runs start from one of their own rather than from an ImageNet checkpoint."""
    full = labels.largest_training_set(finetuning)
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
        parts.append(f"Beyond the spread against `finetune`: {_listing(beyond)}.")
    if len(within):
        parts.append(f"Within it: {_listing(within)}.")
    small = _small_data_sentence(finetuning, metric)
    if small:
        parts.append(small)
    caveat = learning_speed_caveat(finetuning, "setting")
    if caveat:
        parts.append(caveat)
    certainty = (
        f"How sure: each difference is paired by seed ({_seeds(differences)} seeds: same head initialisation, data "
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
    pretrained = finetuning[~finetuning["setting"].str.startswith(labels.SCRATCH)]
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


# --- study 2 ---------------------------------------------------------------------


def normalization_layers_finding(main: pd.DataFrame, metric: str, profile: str, published: pd.Series | None = None,
                                 changed: int | None = None, total: int | None = None,
                                 reference: str = "torch_bn", published_epochs: int | None = None) -> Finding:
    """Study 2's answer from its complete runs at one batch size: our ``bn`` against torch's,
    ``bin`` against ``bn``, and what the other layers cost; ``published`` is the published
    test accuracy per ``norm_layer`` (fractions), for the published gaps."""
    differences = paired_differences(main, metric, "norm_layer", reference, ["batch_size"]).droplevel("batch_size")
    # Runs stopped while still learning compare learning speed: every sentence says so, none ranks the layers.
    unconverged = all_converged(main) is False
    early = f" in the first {epochs_text(main)} epochs" if unconverged else ""
    parts = []
    if "bn" in differences.index:
        row = differences.loc["bn"]
        same = "matches" if bool(within_noise(row.to_frame().T).iloc[0]) else "differs from"
        parts.append(f"Batch norm written from scratch (`bn`) {same} PyTorch's (`{reference}`){early}: {interval_text(row)} points, {verdict(row)}.")
    if {"bin", "bn"} <= set(main["norm_layer"]):
        against_bn = paired_differences(main, metric, "norm_layer", "bn", ["batch_size"]).droplevel("batch_size").loc["bin"]
        claim = {
            "beyond": "supports" if against_bn["mean"] > 0 else "contradicts",
            "within": "does not support",
        }["beyond" if bool(significant(against_bn.to_frame().T).iloc[0]) else "within"]
        if unconverged:
            parts.append(
                f"Batch-instance norm with a gate that learns (`bin`) against `bn`{early}: {interval_text(against_bn)} "
                f"points, {verdict(against_bn)}; runs that had not converged cannot test the earlier claim that BIN "
                "is the best layer."
            )
        else:
            parts.append(
                f"Batch-instance norm with a gate that learns (`bin`) against `bn`: {interval_text(against_bn)} points, "
                f"{verdict(against_bn)}, which {claim} the earlier claim that BIN is the best layer."
            )
    rest = differences.drop(index=[name for name in ("bn", "bin") if name in differences.index])
    behind = rest[significant(rest) & (rest["mean"] < 0)].sort_values("mean", ascending=False)
    if len(behind):
        lead = f"Slower to learn than `{reference}`{early}" if unconverged else f"Behind `{reference}`"
        parts.append(f"{lead}, beyond the spread: {_listing(behind)} points.")
    if published is not None and reference in published.index:
        gaps = (100 * (published.drop(index=reference) - published[reference])).reindex(behind.index).dropna()
        if len(gaps):
            epochs = ", ".join(str(int(e)) for e in sorted(main["epochs"].unique()))
            listed = "; ".join(f"`{name}` {gap:+.1f}" for name, gap in gaps.items())
            after = f", after {published_epochs} epochs," if published_epochs else ""
            parts.append(
                f"The published gaps for these layers{after} were {listed} points; this profile trains {epochs} epochs, "
                "so its gaps measure a different training, not the published one."
            )
    caveat = learning_speed_caveat(main, "layer")
    if caveat:
        parts.append(caveat)
    certainty = (
        f"How sure: {_seeds(differences)} seeds per layer, each run paired with the `{reference}` run of the same seed; "
        "differences in points with their 95 % t interval, at the epoch chosen on the validation split."
    )
    return Finding(" ".join(parts), certainty, evidence_sentence(main, profile, changed, total))


# --- study 3 ---------------------------------------------------------------------


def loss_difference(runs: pd.DataFrame, metric: str, variant: str, reference: str, level: float,
                    scale: float = 100.0) -> pd.Series:
    """Accuracy lost to noise ``level`` by ``variant`` minus that lost by ``reference``, paired by seed
    (negative: ``variant`` loses less). ``mean``, ``n``, ``ci_low``, ``ci_high`` in points."""
    complete = runs[runs["status"] == "complete"] if "status" in runs.columns else runs
    values = complete.assign(_value=pd.to_numeric(complete[metric], errors="coerce") * scale,
                             _noise=complete["label_noise"].astype(float))
    wide = values.pivot_table(index="seed", columns=["variant", "_noise"], values="_value", aggfunc="mean")
    needed = [(name, noise) for name in (variant, reference) for noise in (0.0, float(level))]
    if any(column not in wide.columns for column in needed):
        return pd.Series({"mean": np.nan, "n": 0, "ci_low": np.nan, "ci_high": np.nan})
    lost = {name: wide[(name, 0.0)] - wide[(name, float(level))] for name in (variant, reference)}
    per_seed = (lost[variant] - lost[reference]).dropna()
    low, high = confidence_interval(per_seed.to_numpy())
    return pd.Series({"mean": per_seed.mean(), "n": len(per_seed), "ci_low": low, "ci_high": high})


def convnorm_finding(complete: pd.DataFrame, metric: str, profile: str, changed: int | None = None,
                     total: int | None = None, reference: str = "bn") -> Finding:
    """Study 3's answer from its complete runs: accuracy lost at the highest noise level per variant,
    ConvNorm's loss against BN's, and where each starts without noise."""
    from .stability import accuracy_lost

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
                parts.append(f"`{name}` loses {word} than `{reference}`: {interval_text(difference)} points, beyond the seed-to-seed spread.")
            elif bool(within_noise(difference.to_frame().T).iloc[0]):
                parts.append(f"`{name}` loses as much as `{reference}` within the spread: {interval_text(difference)} points.")
            else:
                parts.append(f"`{name}` against `{reference}`: {interval_text(difference)} points, too few seeds to tell.")
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
    return Finding(" ".join(parts), certainty, evidence_sentence(runs, profile, changed, total))


# --- one call per study, for the landing page and the chapters alike --------------


@dataclass(frozen=True)
class StudyAnswer:
    """What a page shows of one study's answer: the finding, its figure (a matplotlib Figure)
    and how many runs the figure draws, the profile it read, its complete runs, and the
    protocol table its reductions come from."""

    study: str
    profile: str
    finding: Finding
    figure: Any
    figure_runs: int
    complete: pd.DataFrame
    reductions: pd.DataFrame
    drawn: pd.DataFrame | None = None  # the runs behind the figure, with their verdicts

    @property
    def kind(self) -> str:
        return data_kind(self.complete)


def answer_study(everything: pd.DataFrame, study: str, profile: str, grid_file: str,
                 metric: str = "test_acc_at_best_val") -> StudyAnswer:
    """``study``'s answer from ``everything`` (:func:`normtest_lib.report.results.collect_runs`'
    frame): the runs of ``profile``, or of the profile with the most complete runs when it has
    none; the published protocol is the ``paper`` profile of ``grid_file``."""
    from ..grid.spec import load_grid
    from . import headline_plots
    from .converged import add_convergence
    from .published import published_results
    from .results import fullest_profile

    of_study = everything[everything["study"] == study] if len(everything) else everything
    if not len(of_study):
        raise ValueError(f"no runs of {study!r}: run `normtest run {grid_file} --profile {profile}`")
    if not ((of_study["profile"] == profile) & (of_study["status"] == "complete")).any():
        profile = fullest_profile(everything, study)
    runs = add_convergence(of_study[of_study["profile"] == profile])
    if not (runs["status"] == "complete").any():
        raise ValueError(f"no complete runs of {study!r} yet: run `normtest run {grid_file} --profile {profile}`")
    paper_runs = [run.config.to_dict() for run in load_grid(grid_file, "paper").runs]
    names = ("published protocol (paper)", f"{profile} profile")
    keys = protocol.STUDY_PROTOCOL_KEYS.get(study, protocol.PROTOCOL_KEYS)

    if study == "input_normalization":
        runs = labels.add_labels(runs)
        source_id = protocol.pretraining_run_id(runs)
        finetuning = runs[runs["run_id"] != source_id]
        source = runs[runs["run_id"] == source_id]
        complete = finetuning[finetuning["status"] == "complete"]
        reductions = protocol.protocol_table(paper_runs, finetuning.to_dict("records"), names, keys)
        finding = input_normalization_finding(complete, metric, profile, *protocol.changed_parameters(reductions),
                                              source=source.iloc[0].to_dict() if len(source) else None)
        full = labels.largest_training_set(complete)
        groups = ["model", "data"]
        headline = paired_differences(full, metric, "setting", "finetune", groups).droplevel(groups)
        figure = headline_plots.difference_forest(
            headline, "setting", "finetune", title=unconverged_title(titled("each setting against finetune", complete), full))
        drawn = full
        baseline = full[full["setting"] == "finetune"]
        first = baseline.iloc[0] if len(baseline) else None
        baseline = baseline[(baseline["model"] == first["model"]) & (baseline["data"] == first["data"])] if first is not None else baseline
        published_test, what = _published_finetune(first)
        finding = _with(finding, baseline_sentence(baseline, "finetune", metric, published_test, None, what))
    elif study == "normalization_layers":
        complete = runs[runs["status"] == "complete"]
        main_batch = int(complete["batch_size"].mode().iloc[0])
        main = complete[complete["batch_size"] == main_batch]
        reductions = protocol.protocol_table(paper_runs, runs.to_dict("records"), names, keys)
        published = published_results(study).query("metric == 'test_acc' and batch_size == @main_batch")
        finding = normalization_layers_finding(
            main, metric, profile, published.set_index("norm_layer")["value"], *protocol.changed_parameters(reductions),
            published_epochs=int(max(run["epochs"] for run in paper_runs)))
        headline = paired_differences(main, metric, "norm_layer", "torch_bn", ["batch_size"]).droplevel("batch_size")
        headline = headline.reindex([name for name in LAYER_ORDER if name in headline.index]
                                    + sorted(set(headline.index) - set(LAYER_ORDER)))
        figure = headline_plots.difference_forest(
            headline, "norm_layer", "torch_bn",
            title=unconverged_title(titled(f"each layer against torch_bn, batch {main_batch}", main), main))
        drawn = main
        everything_published = published_results(study).query("batch_size == @main_batch and norm_layer == 'torch_bn'")
        value = everything_published.set_index("metric")["value"]
        what = f"the earlier work's last-epoch model after {int(max(run['epochs'] for run in paper_runs))} epochs, one run"
        finding = _with(finding, baseline_sentence(main[main["norm_layer"] == "torch_bn"], "torch_bn", metric,
                                                   value.get("test_acc"), value.get("train_acc"), what))
    elif study == "convnorm_label_noise":
        runs = add_variant(runs)
        complete = runs[runs["status"] == "complete"]
        reductions = protocol.protocol_table(paper_runs, runs.to_dict("records"), names, keys)
        finding = convnorm_finding(complete, metric, profile, *protocol.changed_parameters(reductions))
        figure = headline_plots.accuracy_vs_noise(
            complete, metric, order=variant_order(complete["variant"]),
            title=unconverged_title(titled("test accuracy against label noise", complete), complete))
        drawn = complete
        clean = published_results(study).query("variant == 'bn' and label_noise == 0 and metric == 'test_acc'")["value"]
        baseline = complete[(complete["variant"] == "bn") & (complete["label_noise"].astype(float) == 0)]
        finding = _with(finding, baseline_sentence(baseline, "bn, no label noise", metric,
                                                   clean.iloc[0] if len(clean) else None, None,
                                                   "the course paper's best test accuracy, one run"))
    else:
        raise ValueError(f"no answer is defined for study {study!r}; studies with one: {ANSWERED_STUDIES}")
    return StudyAnswer(study, profile, finding, figure, len(drawn), complete, reductions, drawn)


def _with(finding: Finding, sentence: str) -> Finding:
    """``finding`` with ``sentence`` (the baseline's absolute accuracies and verdict) closing its answer."""
    return Finding(f"{finding.answer} {sentence}".strip(), finding.certainty, finding.evidence)


def _published_finetune(run: pd.Series | None) -> tuple[float | None, str]:
    """Study 1's published ``finetune`` test accuracy for ``run``'s model and data set, with what it is in words;
    where the earlier work ran another model on that data set, None and the range of its figures in words."""
    from .published import published_values

    if run is None:
        return None, ""
    finetune = published_values("input_normalization", "test_acc").xs("finetune", level="setting")
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
    finetune = published.xs("finetune", level="setting")
    data = str(run.get("data", ""))
    same_data = finetune[[data.startswith(name) for name in finetune.index.get_level_values("dataset")]]
    same_data = same_data[[len(name) == len(max(same_data.index.get_level_values("dataset"), key=len))
                           for name in same_data.index.get_level_values("dataset")]] if len(same_data) else same_data
    if (run.get("model"), *same_data.index.get_level_values("dataset")[:1]) in finetune.index:
        key = (run.get("model"), same_data.index.get_level_values("dataset")[0])
        return float(finetune.loc[key]), "the earlier work's best test accuracy over 100 epochs, one run"
    if len(same_data):
        low, high = 100 * same_data.min(), 100 * same_data.max()
        return None, (f"the earlier work did not run `{run.get('model')}`; its ImageNet networks reached "
                      f"{low:.1f} to {high:.1f} % best test accuracy with `finetune` on this data set over 100 epochs")
    return None, ""


LAYER_ORDER = ("torch_bn", "bn", "in", "bin", "ln", "gn:c/4", "gn:32", "none")
ANSWERED_STUDIES = ("input_normalization", "normalization_layers", "convnorm_label_noise")


def glue_answer(answer: StudyAnswer, prefix: str = "answer") -> None:
    """Glue ``answer`` for a page: ``<prefix>`` (the answer), ``<prefix>_certainty``,
    ``<prefix>_evidence`` (Markdown, for ``{glue:md}``) and ``<prefix>_figure``; closes the figure."""
    import matplotlib.pyplot as plt
    from IPython.display import Markdown

    from .converged import runs_behind
    from .glue import glue

    glue(prefix, Markdown(answer.finding.answer))
    glue(f"{prefix}_certainty", Markdown(answer.finding.certainty))
    glue(f"{prefix}_evidence", Markdown(answer.finding.evidence))
    glue(f"{prefix}_figure", answer.figure)
    glue(f"{prefix}_figure_runs", runs_behind(answer.drawn) if answer.drawn is not None else answer.figure_runs)
    plt.close(answer.figure)


def glue_no_answer(prefix: str, reason: str) -> None:
    """Glue what :func:`glue_answer` would, saying why there is no answer yet."""
    from IPython.display import Markdown

    from .glue import glue
    from .plots import message_figure

    import matplotlib.pyplot as plt

    glue(prefix, Markdown(f"No answer yet: {reason}."))
    glue(f"{prefix}_certainty", Markdown(""))
    glue(f"{prefix}_evidence", Markdown(""))
    figure = message_figure("no complete runs yet")
    glue(f"{prefix}_figure", figure)
    glue(f"{prefix}_figure_runs", 0)
    plt.close(figure)


def provenance_table(answers: Mapping[str, StudyAnswer]) -> pd.DataFrame:
    """Per study: the profile its answer read, real or synthetic data, its complete runs, data sets,
    and how many of the published protocol's parameters the profile changed."""
    rows = {}
    for study, answer in answers.items():
        changed, total = protocol.changed_parameters(answer.reductions)
        rows[study] = {
            "profile": answer.profile,
            "data": answer.kind,
            "complete runs": len(answer.complete),
            "data sets": ", ".join(sorted({labels.dataset_label(r) for r in answer.complete.to_dict("records")})),
            "parameters changed": f"{changed} of {total}",
        }
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("study")
