"""The errata chapter's plumbing: each study's complete runs in the profile it reads, and what it says without evidence."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd

from normtest_lib.report import errata
from normtest_lib.stats.record import compute_record


def runs_frame(*rows: tuple[str, str, str]) -> pd.DataFrame:
    """(study, profile, status) rows, one run each, with a seed and an accuracy."""
    return pd.DataFrame([
        {"study": study, "profile": profile, "status": status, "run_id": f"r{i}", "seed": i, "setting": "a",
         "acc": 0.5}
        for i, (study, profile, status) in enumerate(rows)
    ])  # fmt: skip


def test_study_runs_hold_the_complete_runs_of_the_profile_and_describe_them():
    runs = runs_frame(("s", "local", "complete"), ("s", "local", "failed"), ("s", "smoke", "complete"))
    read = errata.study_runs(runs, "s", ("local", "smoke"))
    assert (read.profile, len(read)) == ("local", 1)
    assert read.describe() == "`s`: 1 run of the `local` profile is complete; not complete: 1 failed"
    assert read.count.complete == 1 and read.count.found == 2 and read.count.grid is None  # no grid file given
    none = errata.study_runs(runs, "u", ("local",))
    assert none.profile is None and len(none) == 0
    assert "no complete runs of `u`" in none.describe() and "params/u.yml" in none.describe()


def test_what_an_entry_says_without_its_data():
    assert errata.not_here("because.").data == "*Not computed here:* because."
    text = errata.missing_data({"tiny_imagenet_200": "data/tiny"}).data
    assert "`tiny_imagenet_200` (expected in `data/tiny`), which is not on this machine" in text
    assert "make data" in text and "make dataset-stats" in text
    assert "which are not" in errata.missing_data({"a": "x", "b": "y"}).data


def test_the_data_sentence_says_where_each_data_sets_numbers_came_from():
    whole = compute_record("synthetic-dim", name="tiny_imagenet_200", max_images=None)
    sample = dataclasses.replace(compute_record("synthetic", name="cifar10-jpeg", max_images=10),
                                 data_root="data/cifar10-jpeg")
    folder = Path("results/dataset_statistics/local")
    sentence = errata.data_sentence({"tiny_imagenet_200": whole}, folder, {"cifar10-jpeg": sample}, {"svhn": "data/svhn"})
    assert (
        "from the statistics records committed in `results/dataset_statistics/local`: "
        f"`tiny_imagenet_200` ({whole.n_images:,} images, the whole training split)."
    ) in sentence
    assert ("Computed now from the training splits on this machine: `cifar10-jpeg` (10 images, a seeded sample of "
            "the training split, `data/cifar10-jpeg`).") in sentence
    assert "Neither recorded nor on this machine (run `make data`): `svhn` (`data/svhn`)" in sentence
    assert "No data set's images were read" in errata.data_sentence({}, folder, {}, {"svhn": "data/svhn"})


def test_paired_text_pairs_by_seed_and_drops_index_levels_with_one_value():
    runs = pd.DataFrame({
        "setting": ["base", "base", "other", "other"], "seed": [0, 1, 0, 1], "group": ["g"] * 4,
        "status": ["complete"] * 4, "acc": [0.5, 0.6, 0.4, 0.5],
    })  # fmt: skip
    text = errata.paired_text(runs, "acc", "setting", "base", ["group"])
    assert "`other` -10.0 [-10.0, -10.0]" in text and "group" not in text
    assert errata.paired_text(runs[runs["setting"] == "other"], "acc", "setting", "base", ["group"]) == (
        "There are no complete `base` runs here to pair with."
    )
    assert "no complete `base`" in errata.paired_text(runs.iloc[0:0], "acc", "setting", "base", ["group"])
