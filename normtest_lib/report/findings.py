"""What every study's answer is made of, and the captions every chapter shares.

The landing page and each study chapter open with the study's answer, so the book
states an answer once, in code: when a run changes, the answer changes with it.
Each study computes its own (``normtest_lib.studies.<study>.answer``); this module
holds what they share: the :class:`Finding` and :class:`StudyAnswer` they return,
the runs an answer reads (:func:`answer_runs`), the wording of intervals, verdicts,
evidence, convergence and the baseline, and the glue a page shows them with. Every
figure in a sentence is a paired difference over seeds with its 95 % interval,
and every answer says whether it exceeds the seed-to-seed spread, how many runs
stand behind it, and whether they ran on real or on the built-in synthetic data.
Every chapter's tables and figures are captioned with :func:`labelled` and
:func:`titled`, so real and synthetic results are told apart at a glance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import pandas as pd

from . import labels, protocol
from .counts import ProfileCount, behind_text
from .paired import significant, within_noise

SYNTHETIC_PREFIX = "synthetic"
REAL, SYNTHETIC, MIXED = "real data", "synthetic data", "real and synthetic data"


@dataclass(frozen=True)
class Finding:
    """One study's answer: ``answer`` (what we found, with its numbers), ``certainty``
    (how sure: seeds, intervals), ``evidence`` (where it came from) and ``advice`` (what a reader
    should do, or why the evidence does not yet say), each Markdown."""

    answer: str
    certainty: str
    evidence: str
    advice: str = ""

    def markdown(self) -> str:
        return "\n\n".join(part for part in (self.answer, self.advice, self.certainty, self.evidence) if part)


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


def labelled(table: pd.DataFrame | Any, runs: pd.DataFrame, what: str, names: Sequence[str] | None = None) -> Any:
    """``table`` (a frame or a pandas Styler) as a Styler captioned ``<Real|Synthetic> data: what; runs
    converged: k of n``, so a reader tells real from synthetic results, and finished training from a network
    stopped while still learning, at a glance; with no runs, ``what`` alone. The caption ends with links to
    the glossary sections that define the names the table lists (:func:`~.glossary_links.caption_note`: by its
    columns and index levels, or ``names``, kinds of :data:`~.glossary_links.SECTIONS`, where given)."""
    from .converged import caption_note
    from .glossary_links import with_caption_note

    styler = table.style if isinstance(table, pd.DataFrame) else table
    if not len(runs):
        return styler.set_caption(with_caption_note(what, styler, names))
    note = caption_note(runs)
    return styler.set_caption(with_caption_note(titled(what, runs) + (f" ({note})" if note else ""), styler, names))


def and_list(items: Iterable[str], quote: bool = False, conjunction: str = "and") -> str:
    """``a``, ``a and b``, ``a, b and c`` (or another ``conjunction``); each item in backticks with ``quote``."""
    texts = [f"`{item}`" if quote else str(item) for item in items]
    return texts[0] if len(texts) == 1 else ", ".join(texts[:-1]) + f" {conjunction} {texts[-1]}"


def interval_text(row: pd.Series, digits: int = 1, unit: str = "") -> str:
    """``+0.5 [-0.2, +1.3]``; without an interval (one seed) ``+0.5 (one seed, no interval)``. A ``unit``
    ("points") follows the numbers and precedes the parenthesis: ``+0.5 points (one seed, no interval)``."""
    unit = f" {unit}" if unit else ""
    if pd.isna(row["ci_low"]):
        return f"{row['mean']:+.{digits}f}{unit} (one seed, no interval)"
    return f"{row['mean']:+.{digits}f} [{row['ci_low']:+.{digits}f}, {row['ci_high']:+.{digits}f}]{unit}"


def verdict(row: pd.Series) -> str:
    """Whether a paired difference exceeds the seed-to-seed spread, in words."""
    frame = row.to_frame().T
    if bool(significant(frame).iloc[0]):
        return "beyond the seed-to-seed spread"
    if bool(within_noise(frame).iloc[0]):
        return "within the seed-to-seed spread"
    return "with too few seeds to tell"


def listing(rows: pd.DataFrame, digits: int = 1) -> str:
    """Rows of paired differences, each as its name in backticks and :func:`interval_text`, joined by semicolons."""
    return "; ".join(f"`{name}` {interval_text(row, digits)}" for name, row in rows.iterrows())


def seeds_text(differences: pd.DataFrame) -> str:
    """How many seeds the differences rest on: ``3``, or ``2 to 5``."""
    counts = sorted({int(n) for n in differences["n"]})
    return " to ".join(str(n) for n in (counts[0], counts[-1])) if len(counts) > 1 else str(counts[0])


def evidence_sentence(runs: pd.DataFrame, profile: str, changed: int | None = None, total: int | None = None,
                      count: ProfileCount | None = None, which: str = "") -> str:
    """Where an answer comes from: the kind of data, the profile, how many of its runs are complete
    (``count``, :func:`~normtest_lib.report.counts.profile_count`: the same words as the chapter's and the
    appendix's), how many of them the answer rests on (the complete runs of ``runs``; ``which`` says which, where
    they are not all of them) and their data sets, and how many of the published protocol's parameters the
    profile changed (when known)."""
    complete = runs[runs["status"] == "complete"] if "status" in runs.columns else runs
    datasets = ", ".join(f"`{name}`" for name in sorted({labels.dataset_label(run) for run in complete.to_dict("records")}))
    opening = f"**{data_kind(complete).capitalize()}**, on {datasets}"
    if count is None:
        behind = behind_text(len(complete), None, which, what=f"this answer of the `{profile}` profile")
        text = f"{opening}: {behind}."
    else:
        text = f"{opening}: {count.text()}; {behind_text(len(complete), count, which)}."
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


def converged_groups(runs: pd.DataFrame, column: str) -> set[str]:
    """The values of ``column`` (layers, variants, settings) whose every run converged by the book's rule; every
    value when the frame carries no verdicts (nothing says otherwise)."""
    names = set(runs[column].unique()) if len(runs) else set()
    if all_converged(runs) is None:
        return names
    every = runs.groupby(column)["converged"].agg(lambda group: bool(group.astype(bool).all()))
    return {name for name in names if every.get(name, False)}


def unconverged_count(runs: pd.DataFrame) -> str:
    """``k of n``: how many of ``runs`` had not converged by the book's rule (its ``converged`` column)."""
    return f"{len(runs) - int(runs['converged'].astype(bool).sum())} of {len(runs)}"


def still_learning_sentence(names: Sequence[str], training: str = "training") -> str:
    """That ``names`` had not converged in the same ``training`` and so are never chosen; empty without names."""
    if not names:
        return ""
    return (f"{and_list(names, quote=True)} had not converged in the same {training}: these runs cannot say how "
            f"{'it compares' if len(names) == 1 else 'they compare'} once trained.")


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
                      published_train: float | None = None, published_what: str = "", where: str = "") -> str:
    """The baseline's absolute accuracies beside the published ones, and whether its runs converged; ``where``
    names its group when a study has several (``for the `torch_bn` network on `cifar10-jpeg```).

    Training accuracy is ``train_acc_final`` (the last weights on the training split, evaluation mode, no
    augmentation) where the runs recorded it, else the last epoch's ``train_acc`` (a running average over
    augmented batches in training mode), and the sentence says which."""
    from .converged import add_convergence, converged_text

    if baseline.empty:  # a grid that runs other cells first: say so, with the published figure still beside
        text = f"The baseline, `{name}`{f' {where}' if where else ''}, has no complete run yet."
        if published_test is not None and pd.notna(published_test):
            text += f" Published{f' ({published_what})' if published_what else ''}: {100 * published_test:.1f} % test accuracy."
        return text
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
        f"The baseline, `{name}`{f' {where}' if where else ''} ({len(runs)} run{'' if len(runs) == 1 else 's'} of "
        f"{epochs_text(runs)} epochs): "
        f"test accuracy {_percent(runs[metric])}, training accuracy {_percent(train)} ({how})."
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


# --- what a page shows of one study's answer ---------------------------------------


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
    count: ProfileCount | None = None  # the profile's runs: in its grid, found, complete (report/counts.py)
    answered: pd.DataFrame | None = None  # the complete runs the answer's sentences rest on; None: ``complete``

    @property
    def behind(self) -> pd.DataFrame:
        """The complete runs the answer's sentences rest on (its evidence sentence counts them)."""
        return self.complete if self.answered is None else self.answered

    @property
    def kind(self) -> str:
        return data_kind(self.complete)


def with_baseline(finding: Finding, sentence: str) -> Finding:
    """``finding`` with ``sentence`` (the baseline's absolute accuracies and verdict) closing its answer."""
    return Finding(f"{finding.answer} {sentence}".strip(), finding.certainty, finding.evidence, finding.advice)


def answer_runs(everything: pd.DataFrame, study: str, profile: str, grid_file: str) -> tuple[str, pd.DataFrame]:
    """The profile ``study``'s answer reads and that profile's runs of ``study``, each with its convergence verdict.

    The profile is :func:`~normtest_lib.report.profiles.pick_profile`'s choice with ``profile`` preferred,
    the one the study's chapter reads. ValueError, naming the command to run, when ``study`` has no
    complete run in any profile of ``everything`` (:func:`~normtest_lib.report.results.collect_runs`' frame).
    """
    from .converged import add_convergence
    from .profiles import pick_profile

    of_study = everything[everything["study"] == study] if len(everything) else everything
    if not len(of_study):
        raise ValueError(f"no runs of {study!r}: run `normtest run {grid_file} --profile {profile}`")
    chosen = pick_profile(everything, study, profile)
    if chosen is None:
        raise ValueError(f"no complete runs of {study!r} yet: run `normtest run {grid_file} --profile {profile}`")
    return chosen, add_convergence(of_study[of_study["profile"] == chosen])


NO_ADVICE = "these runs do not yet say: the study's rerun at convergence is still to come."


def advice_text(advice: str) -> str:
    """An answer's closing advice as the page shows it: **What to do:** and the advice, or why there is none."""
    return f"**What to do:** {advice or NO_ADVICE}"


def glue_answer(answer: StudyAnswer, prefix: str = "answer") -> None:
    """Glue ``answer`` for a page: ``<prefix>`` (the answer), ``<prefix>_certainty``,
    ``<prefix>_evidence``, ``<prefix>_advice`` (Markdown, for ``{glue:md}``) and ``<prefix>_figure``;
    closes the figure."""
    import matplotlib.pyplot as plt
    from IPython.display import Markdown

    from .converged import runs_behind
    from .glue import glue

    glue(prefix, Markdown(answer.finding.answer))
    glue(f"{prefix}_certainty", Markdown(answer.finding.certainty))
    glue(f"{prefix}_evidence", Markdown(answer.finding.evidence))
    glue(f"{prefix}_advice", Markdown(advice_text(answer.finding.advice)))
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
    glue(f"{prefix}_advice", Markdown(advice_text("")))
    figure = message_figure("no complete runs yet")
    glue(f"{prefix}_figure", figure)
    glue(f"{prefix}_figure_runs", 0)
    plt.close(figure)


# The provenance table's two counts, each named for what it counts (report/counts.py).
PROFILE_RUNS_COLUMN = "complete runs of the profile (of its grid's)"
ANSWER_RUNS_COLUMN = "complete runs behind the answer"


def provenance_table(answers: Mapping[str, StudyAnswer]) -> pd.DataFrame:
    """Per study: the profile its answer read, real or synthetic data, how many of the profile's runs are
    complete of how many its grid lists (:meth:`~normtest_lib.report.counts.ProfileCount.cell`, the count the
    chapter and the appendix state), how many of them the answer rests on (the count its evidence sentence
    states), their data sets, and how many of the published protocol's parameters the profile changed."""
    rows = {}
    for study, answer in answers.items():
        changed, total = protocol.changed_parameters(answer.reductions)
        rows[study] = {
            "profile": answer.profile,
            "data": answer.kind,
            PROFILE_RUNS_COLUMN: answer.count.cell() if answer.count is not None else str(len(answer.complete)),
            ANSWER_RUNS_COLUMN: len(answer.behind),
            "data sets": ", ".join(sorted({labels.dataset_label(r) for r in answer.behind.to_dict("records")})),
            "parameters changed": f"{changed} of {total}",
        }
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("study")
