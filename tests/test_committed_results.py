"""The committed real-data results: complete run folders that name no folder of any machine."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from normtest_lib.report.results import collect_runs, find_run_folders

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "results"
MACHINE_PATH = re.compile(r"(/tmp/|/home/|/root/|/Users/|[A-Za-z]:\\\\)")
RUN_FILES = ("params.yaml", "summary.json", "history.csv", "run_experiment.ipynb", "environment.json")


def running(folder: Path) -> bool:
    """A run in progress in this checkout (its lock is held): not a result yet, never committed."""
    return (folder / ".lock").exists()


def finished_run_folders() -> list[Path]:
    return [folder for folder in find_run_folders(RESULTS) if not running(folder)]


def committed_files() -> list[Path]:
    return [
        path
        for path in RESULTS.rglob("*")
        if path.is_file() and not path.name.startswith(".") and not running(path.parent) and path.suffix not in (".pt", ".ckpt")
    ]


@pytest.mark.skipif(not RESULTS.is_dir(), reason="no committed results")
def test_committed_results_name_no_folder_of_a_machine():
    offenders = []
    for path in committed_files():
        text = path.read_text(errors="replace")
        for needle in (str(REPO), *MACHINE_PATH.findall(text)):
            if needle in text:
                offenders.append(f"{path.relative_to(REPO)}: {needle}")
    assert not offenders, "\n".join(offenders[:20])


@pytest.mark.skipif(not RESULTS.is_dir(), reason="no committed results")
def test_every_committed_run_is_a_whole_run_folder():
    folders = finished_run_folders()
    for folder in folders:
        present = {path.name for path in folder.iterdir()}
        missing = [name for name in RUN_FILES if name not in present]
        assert not missing, f"{folder.relative_to(REPO)} lacks {missing}"
        assert json.loads((folder / "summary.json").read_text())["status"] in ("complete", "diverged")
    runs = collect_runs(RESULTS)
    runs = runs[runs["path"].map(lambda path: not running(Path(path)))]
    assert len(runs) == len(folders) and not runs["problem"].notna().any()


@pytest.mark.skipif(not (RESULTS / "dataset_statistics").is_dir(), reason="no committed data set statistics")
def test_committed_statistics_records_are_current_and_cover_whole_training_splits():
    from normtest_lib.stats.record import read_records, statistics_folder

    records = read_records(statistics_folder(RESULTS))  # a record of an older format is refused, naming it
    assert records, "no record in results/dataset_statistics/local"
    for name, record in records.items():
        assert record.sample is None and record.n_images == record.n_images_in_split, name
        assert record.image_checks.n_images == record.n_images, name  # the errata's checks rest on the same images
