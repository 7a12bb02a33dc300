"""The errata chapter's plumbing: which runs of each study it reads, and what an entry says without evidence.

The errata chapter (``notebooks/errata.ipynb``) reads the runs of all three studies;
each study's evidence is computed by its own package (``normtest_lib.studies.<study>.errata``).
Each study is read in the profile :func:`~normtest_lib.report.profiles.pick_profile`
chooses, the one its chapter reads (``local``, the real-data runs committed under
``results/``, where the study has complete runs there). An entry whose
evidence cannot be computed on this machine (no runs of its study, no data set)
glues a plain sentence saying so in place of its table, so that the page keeps
every ``{glue:}`` reference and tells the reader what is missing and why.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import pandas as pd
from IPython.display import Markdown

from ..stats.record import StatisticsRecord
from .counts import ProfileCount, profile_count
from .paired import paired_differences
from .profiles import pick_profile
from .sentences import paired_sentence


@dataclass(frozen=True)
class StudyRuns:
    """The complete runs of one study in the one profile the errata chapter reads, and the profile's count
    (:func:`~normtest_lib.report.counts.profile_count`, in the words the chapters and the appendix use)."""

    study: str
    profile: str | None  # None: the study has no complete run anywhere
    complete: pd.DataFrame
    count: ProfileCount | None = None

    def __len__(self) -> int:
        return len(self.complete)

    def describe(self) -> str:
        """"`normalization_layers`: 27 of the 27 runs in the `local` profile's grid are complete" (the
        profile's count, pretraining runs apart), or that there are none."""
        if self.profile is None:
            return f"no complete runs of `{self.study}` (run `normtest run params/{self.study}.yml --profile smoke`)"
        count = self.count or ProfileCount(self.study, self.profile, None, len(self), len(self))
        return f"`{self.study}`: {count.text()}"


def study_runs(runs: pd.DataFrame, study: str, preferred: str | Sequence[str],
               grid_file: str | Path | None = None) -> StudyRuns:
    """:class:`StudyRuns` of ``study`` from a :func:`~normtest_lib.report.results.collect_runs` frame, in the
    profile :func:`~normtest_lib.report.profiles.pick_profile` chooses with ``preferred``; ``grid_file``, the
    study's grid, gives the count of runs its profile lists."""
    profile = pick_profile(runs, study, preferred)
    if profile is None:
        return StudyRuns(study, None, runs.iloc[0:0])
    chosen = runs[(runs["study"] == study) & (runs["profile"] == profile) & (runs["status"] == "complete")]
    return StudyRuns(study, profile, chosen, profile_count(runs, study, profile, grid_file))


def not_here(reason: str) -> Markdown:
    """What an entry glues where its evidence would be, when this machine cannot compute it: ``reason``, plainly."""
    return Markdown(f"*Not computed here:* {reason}")


def missing_data(roots: Mapping[str, str]) -> Markdown:
    """:func:`not_here` for evidence that needs data sets with neither a committed record nor images here."""
    listed = ", ".join(f"`{name}` (expected in `{root}`)" for name, root in roots.items())
    verb = "is" if len(roots) == 1 else "are"
    return not_here(
        f"this needs the training split of {listed}, which {verb} not on this machine, or its committed "
        "statistics record; `make data` extracts the data, `make dataset-stats` records it."
    )


def data_sentence(
    committed: Mapping[str, StatisticsRecord],
    folder: Path,
    computed: Mapping[str, StatisticsRecord],
    missing: Mapping[str, str],
) -> str:
    """Where the chapter's numbers on each data set's images come from: a committed statistics record
    in ``folder``, the images on this machine (computed now), or nowhere (``missing``: name -> root)."""
    sentences = []
    if committed:
        read = ", ".join(f"`{name}` ({_images(record)})" for name, record in committed.items())
        sentences.append(f"Data sets' images, from the statistics records committed in `{folder.as_posix()}`: {read}.")
    if computed:
        read = ", ".join(f"`{name}` ({_images(record)}, `{record.data_root}`)" for name, record in computed.items())
        sentences.append(f"Computed now from the training splits on this machine: {read}.")
    if not sentences:
        sentences.append("No data set's images were read: none has a committed record or is on this machine.")
    if missing:
        absent = ", ".join(f"`{name}` (`{root}`)" for name, root in missing.items())
        sentences.append(
            f"Neither recorded nor on this machine (run `make data`): {absent}; "
            "the evidence that needs them says so where it would be."
        )
    return " ".join(sentences)


def _images(record: StatisticsRecord) -> str:
    whole = "the whole training split" if record.sample is None else "a seeded sample of the training split"
    return f"{record.n_images:,} images, {whole}"


def paired_text(runs: pd.DataFrame, metric: str, compare: str, baseline: str, index: Sequence[str]) -> str:
    """The paired-difference sentence of ``runs`` against ``baseline`` (by seed, per group of ``index``: at least
    one column), or a sentence saying there is nothing to pair. Index levels with one value are left out of the names."""
    if runs.empty or compare not in runs or not (runs[compare] == baseline).any():
        return f"There are no complete `{baseline}` runs here to pair with."
    differences = paired_differences(runs, metric, compare, baseline, list(index))
    constant = [level for level in index if differences.index.get_level_values(level).nunique() <= 1]
    if constant and len(constant) < differences.index.nlevels:
        differences = differences.droplevel(constant)
    return paired_sentence(differences, compare, baseline)
