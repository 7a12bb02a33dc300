"""Run counts agree between the pages: one function per meaning (report/counts.py), each text saying which count it is.

The landing page once said 21 runs for study 2 (the runs its layer comparison read) where its provenance table said
27 (every complete run), and study 1's chapter 45 (its fine-tuning runs) where the errata said 46 (the pretraining
run included). Here each study's results folder is fabricated (partial, with a failed run, with pretraining runs),
and every page's statement about the same profile is computed as the page computes it and compared.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from normtest_lib import studies
from normtest_lib.report import counts, errata, findings
from normtest_lib.report import reproducibility as repro
from normtest_lib.report.results import collect_runs
from test_convnorm_label_noise_chapter import fabricate as fabricate_noise
from test_input_normalization_chapter import fabricate_two_sources
from test_normalization_layers_chapter import fabricate as fabricate_layers

REPO = Path(__file__).resolve().parents[1]
GRIDS = {study: str(REPO / "params" / f"{study}.yml") for study in studies.ANSWERED_STUDIES}


@pytest.fixture(scope="module")
def everything(tmp_path_factory) -> pd.DataFrame:
    """Study 1 with its two pretraining runs, study 2 with a failed run, study 3 with 2 of its 9 cells' seeds gone."""
    results = tmp_path_factory.mktemp("project") / "results"
    fabricate_two_sources(results)
    fabricate_layers(results)
    failed = results / "normalization_layers" / "local" / "failed-ln-8"
    failed.mkdir()
    (failed / "params.yaml").write_text("norm_layer: ln\nbatch_size: 8\nseed: 0\n")
    (failed / "summary.json").write_text(json.dumps({"status": "failed", "error": "out of memory"}))
    fabricate_noise(results)
    for gone in ("convnorm-0.2-2", "convnorm+bn-0.2-2"):  # a grid partly run: some runs still to come
        for path in (results / "convnorm_label_noise" / "local" / gone).iterdir():
            path.unlink()
        (results / "convnorm_label_noise" / "local" / gone).rmdir()
    return collect_runs(results.parent / "runs", results)


@pytest.fixture(scope="module")
def answers(everything) -> dict:
    return {study: studies.answer_study(everything, study, "local", GRIDS[study]) for study in studies.ANSWERED_STUDIES}


def test_a_profile_count_counts_the_grid_the_folders_the_complete_runs_and_the_pretraining_runs(everything):
    one = counts.profile_count(everything, "input_normalization", "local", GRIDS["input_normalization"])
    assert (one.grid, one.found, one.complete, one.pretraining, one.cells) == (92, 62, 62, 2, 60)
    assert one.text() == ("62 of the 92 runs in the `local` profile's grid are complete "
                          "(2 pretraining runs and 60 fine-tuning runs)")
    two = counts.profile_count(everything, "normalization_layers", "local", GRIDS["normalization_layers"])
    assert (two.grid, two.found, two.complete, two.others) == (30, 28, 27, (("failed", 1),))
    assert two.text() == "27 of the 30 runs in the `local` profile's grid are complete; not complete: 1 failed"
    three = counts.profile_count(everything, "convnorm_label_noise", "local", GRIDS["convnorm_label_noise"])
    assert (three.cell(), three.text()) == ("25 of 27", "25 of the 27 runs in the `local` profile's grid are complete")
    none = counts.profile_count(everything, "convnorm_label_noise", "paper")
    assert none.text() == "0 runs of the `paper` profile are complete" and none.cell() == "0"


@pytest.mark.parametrize("study", studies.ANSWERED_STUDIES)
def test_the_landing_page_the_provenance_table_the_errata_and_the_appendix_state_one_count(study, everything, answers):
    count = counts.profile_count(everything, study, "local", GRIDS[study])
    answer = answers[study]
    # The landing page's evidence sentence states the profile's count in the chapter's words ...
    assert count.text() in answer.finding.evidence
    # ... and how many of those runs the answer rests on, which the provenance table states too.
    behind = int(re.search(r"rests on (?:all )?(\d+)", answer.finding.evidence).group(1))
    row = findings.provenance_table(answers).loc[study]
    assert row[findings.PROFILE_RUNS_COLUMN] == count.cell()
    assert row[findings.ANSWER_RUNS_COLUMN] == behind == len(answer.behind)
    assert behind <= count.complete
    # The errata chapter's line for the study.
    assert count.text() in errata.study_runs(everything, study, "local", GRIDS[study]).describe()
    # The reproducibility appendix: the grid's runs and the complete runs of the same set.
    overview = repro.set_overview(everything, repro.environment_starts(everything, {}),
                                  {(study, "local"): repro.grid_run_count(GRIDS[study], "local")})
    set_row = overview.loc[(study, "local", "results")]
    assert set_row["runs in grid (--dry-run)"] == count.grid and set_row["complete"] == count.complete
    assert set_row["runs found"] == count.found


def test_each_count_says_what_it_counts(answers):
    layers = answers["normalization_layers"].finding.evidence
    # 21 runs at batch 128 compare the layers; the batch-size sentence reads the 6 at batch 32 too.
    assert ("this answer rests on all 27 of them: 21 at batch 128 with the main optimizer, for the comparison of the "
            "layers, and 6 more of `bn` and `gn:c/4` at other batch sizes") in layers
    assert "this answer rests on 60 of them: the fine-tuning runs" in answers["input_normalization"].finding.evidence
    assert "this answer rests on all 25 of them" in answers["convnorm_label_noise"].finding.evidence


@pytest.mark.parametrize("study", studies.ANSWERED_STUDIES)
def test_each_study_chapter_states_the_profile_count_from_the_same_function(study):
    notebook = nbformat.read(REPO / "notebooks" / f"{study}.ipynb", as_version=4)
    code = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code")
    markdown = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "markdown")
    assert 'glue("profile_count", Markdown(counts.profile_count(everything, study, profile, grid_file).text())' in code
    assert "{glue:md}`profile_count`" in markdown
    assert "n_complete" not in markdown + code  # the chapter's own count of another set of runs is gone
