"""The one rule choosing the profile a page reads (report/profiles.py), and every page applying it."""

from __future__ import annotations

import nbformat
import pandas as pd

from normtest_lib.report.profiles import pick_profile
from test_input_normalization_chapter import REPO


def runs_frame(*rows: tuple[str, str, str]) -> pd.DataFrame:
    """(study, profile, status) rows, one run each."""
    return pd.DataFrame([{"study": study, "profile": profile, "status": status, "run_id": f"r{i}"}
                         for i, (study, profile, status) in enumerate(rows)])


def test_the_first_preferred_profile_with_complete_runs_is_read_else_the_fullest():
    runs = runs_frame(("s", "local", "failed"), ("s", "smoke", "complete"), ("s", "paper", "complete"),
                      ("s", "paper", "complete"), ("t", "local", "complete"))  # fmt: skip
    assert pick_profile(runs, "s", ("local", "smoke")) == "smoke"  # local has no complete run of s
    assert pick_profile(runs, "s", ("local",)) == "paper"  # the fullest
    assert pick_profile(runs, "s", "local") == "paper"  # one name reads as a list of one
    assert pick_profile(runs, "t", ("local", "smoke")) == "local"
    assert pick_profile(runs, "u", ("local",)) is None
    assert pick_profile(runs.iloc[0:0], "s", ("local",)) is None


def test_without_a_preference_the_profile_with_most_complete_runs_is_read():
    runs = runs_frame(("s", "smoke", "complete"), ("s", "smoke", "complete"), ("s", "paper", "complete"),
                      ("s", "paper", "complete"), ("s", "paper", "failed"), ("t", "smoke", "complete"))  # fmt: skip
    assert pick_profile(runs, "t") == "smoke"
    assert pick_profile(runs, "s", None) == "paper"  # a tie (2 and 2 complete runs) goes to the first name
    runs.loc[4, "status"] = "complete"
    assert pick_profile(runs, "s") == "paper"
    assert pick_profile(runs.iloc[::-1], "s") == "paper"  # whatever order the runs were read in
    assert pick_profile(runs, "u") is None


def test_a_profile_whose_only_complete_runs_are_pretraining_runs_is_not_read():
    runs = runs_frame(("s", "local", "complete"), ("s", "local", "running"), ("s", "smoke", "complete"))
    runs["pretraining_run"] = [True, False, False]  # local's source is done, its fine-tuning run is not
    assert pick_profile(runs, "s", "local") == "smoke"
    runs.loc[1, "status"] = "complete"
    assert pick_profile(runs, "s", "local") == "local"
    # A source known only because a run names it as its pretrained weights counts as one too.
    named = runs_frame(("s", "local", "complete"), ("s", "local", "failed"), ("s", "smoke", "complete"))
    named["pretrained"] = [None, "results/s/local/0123456789ab/best.pt", None]
    named.loc[0, "run_id"] = "0123456789ab"
    assert pick_profile(named, "s", "local") == "smoke"


def test_every_page_chooses_its_profile_through_the_one_rule():
    """No notebook picks a profile its own way: each page that reads a study's runs calls pick_profile,
    directly or through the answer and errata machinery (which call it), with its ``profile`` parameter."""
    pages = {
        "input_normalization": "pick_profile(everything, study, profile)",
        "normalization_layers": "pick_profile(everything, study, profile)",
        "convnorm_label_noise": "pick_profile(everything, study, profile)",
        "grid_report": "pick_profile(everything, study, profile)",
        "errata": "errata.study_runs(everything, study, profile,",
        "findings": "studies.answer_study(everything, study, profile,",
    }
    for page, call in pages.items():
        notebook = nbformat.read(REPO / "notebooks" / f"{page}.ipynb", as_version=4)
        code = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code")
        assert call in code, page
        assert "fullest_profile" not in code, page
