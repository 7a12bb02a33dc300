"""One home per study: each study's analysis, figures, errata evidence and answer.

A study is named the same way everywhere: its grid ``params/<study>.yml``, its chapter
``notebooks/<study>.ipynb``, its committed runs ``results/<study>/`` and its package here,
``normtest_lib/studies/<study>/``, with one module per job:

- ``analysis``: its runs in its own terms (labels, selections, tables, numbers);
- ``figures``: the figures only its chapter draws;
- ``errata``: the evidence for the earlier work's defects, which the errata chapter shows;
- ``answer``: its answer in a few sentences and one figure, ``study_answer(everything, profile, grid_file,
  metric)``, which its chapter opens with and the landing page composes.

A study package imports from :mod:`normtest_lib.report` (what every chapter shares) and from the
library below it (data, layers, models, stats, ...), never from another study; ``report`` never
imports a study, and a study's chapter imports from its own package and from ``report`` only. ``dataset_statistics`` is the
home of the data chapter's figures: it has a chapter but no grid, runs, errata or answer.
ARCHITECTURE.md, "Adding a study", is the recipe for a new one.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from ..report.findings import StudyAnswer

# The studies with a grid and an answer, in the book's order: the landing page answers each.
ANSWERED_STUDIES = ("input_normalization", "normalization_layers", "convnorm_label_noise")


def answer_study(everything: pd.DataFrame, study: str, profile: str, grid_file: str,
                 metric: str = "test_acc_at_best_val") -> StudyAnswer:
    """``study``'s answer (its ``answer.study_answer``) from ``everything``, :func:`~normtest_lib.report.results.collect_runs`'
    frame: the landing page's one call per study. ValueError for a study without an answer, or without complete runs."""
    if study not in ANSWERED_STUDIES:
        raise ValueError(f"no answer is defined for study {study!r}; studies with one: {ANSWERED_STUDIES}")
    # Imported by name: a study's answer module is loaded only when its answer is asked for.
    return import_module(f"{__name__}.{study}.answer").study_answer(everything, profile, grid_file, metric)


def study_glossary(study: str) -> dict[str, str]:
    """The labels ``study``'s tables and figures use that are no run parameter's value, each with its meaning (its
    ``analysis.GLOSSARY``; {} when it has none): what the book's glossary lists under the study, so that a new
    study's labels reach the glossary page without editing it."""
    return dict(getattr(import_module(f"{__name__}.{study}.analysis"), "GLOSSARY", {}))


def protocol_keys(study: str) -> tuple[str, ...]:
    """The run parameters ``study``'s chapter tabulates beside the published protocol (its ``analysis.PROTOCOL_KEYS``):
    each must have a description in the run schema, which the glossary shows."""
    return tuple(import_module(f"{__name__}.{study}.analysis").PROTOCOL_KEYS)
