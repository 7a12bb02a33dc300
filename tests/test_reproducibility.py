"""The reproducibility appendix: its library on fabricated run folders, and its chapter end to end.

The fabricated set ``normalization_layers/local`` under ``results/`` has five runs whose
figures can be checked by hand (times in UTC on 2026-01-01):

| run | status | starts (environment.json) | seconds (epochs) | finish |
| --- | --- | --- | --- | --- |
| a | complete | 10:00 (torch 2.1.0, commit aaaaaaa) | 300 (100 + 200) | 10:06 recorded by papermill |
| b | complete | 10:00 (aaaaaaa), resumed 11:00 from epoch 1 (bbbbbbb) | 900 (400 + 500) | none recorded: 11:00 + 500 s |
| c | complete | none (no environment.json) | 50 | - |
| d | running | 11:30 (torch 2.1.0) | 10 | - |
| e | failed | 09:00 (torch 2.2.0) | 5 | - |

so the complete runs took 300 + 900 + 50 = 1,250 s (20 min 50 s), the longest is b (15 min),
and the span runs from 10:00 to 11:08:20 (1 h 08 min) over a and b, b's finish estimated.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import papermill
import pandas as pd
import pytest
import yaml

from normtest_lib.grid.runner import run_grid
from normtest_lib.grid.spec import load_grid
from normtest_lib.report import book
from normtest_lib.report import reproducibility as repro
from normtest_lib.report.glue import GLUE_PREFIX
from normtest_lib.report.results import collect_histories, collect_runs
from test_book import fabricate_quickstart_runs, fabricate_run, fabricate_runs

REPO = Path(__file__).resolve().parents[1]
STUDY, PROFILE = "normalization_layers", "local"
DAY = "2026-01-01T"
ENVIRONMENT = {"python": "3.11.7", "torch": "2.1.0+cpu", "torchvision": "0.16.0+cpu", "numpy": "1.26.4",
               "platform": "Linux-6.1-x86_64-with-glibc2.36", "hostname": "box", "device": "cpu",
               "device_name": "Test CPU", "threads": 1, "precision": "fp32", "deterministic": False}  # fmt: skip


def start(time: str, commit: str, *, kind: str = "start", from_epoch: int = 0, **changes) -> dict:
    return {**ENVIRONMENT, "kind": kind, "time": DAY + time + "+00:00", "from_epoch": from_epoch,
            "git_commit": commit * 40, **changes}  # fmt: skip


def fabricate_timed_run(root: Path, run_id: str, status: str, epoch_seconds: list[float], starts: list[dict] | None,
                        finish: str | None = None, params: dict | None = None) -> Path:  # fmt: skip
    """A run folder (test_book's) with its seconds, its recorded starts and its papermill finish."""
    summary = {"status": status, "seconds": sum(epoch_seconds), "test_acc_at_best_val": 0.5}
    params = params or {"dataset": "imagefolder", "data_root": "data/cifar10-jpeg", "seed": 0}
    folder = fabricate_run(root, STUDY, PROFILE, run_id, params, summary, notebook=True)
    rows = [f"{epoch},{seconds}" for epoch, seconds in enumerate(epoch_seconds, start=1)]
    (folder / "history.csv").write_text("epoch,seconds\n" + "\n".join(rows) + "\n")
    if starts is not None:
        (folder / "environment.json").write_text(json.dumps({"starts": starts}))
    if finish is not None:
        notebook = nbformat.read(folder / "run_experiment.ipynb", as_version=4)
        notebook.metadata["papermill"] = {"start_time": DAY + "09:59:58+00:00", "end_time": DAY + finish + "+00:00"}
        nbformat.write(notebook, folder / "run_experiment.ipynb")
    return folder


def fabricate_set(root: Path) -> None:
    fabricate_timed_run(root, "a", "complete", [100, 200], [start("10:00:00", "a")], finish="10:06:00.5")
    fabricate_timed_run(root, "b", "complete", [400, 500],
                        [start("10:00:00", "a"), start("11:00:00", "b", kind="resume", from_epoch=1)])  # fmt: skip
    fabricate_timed_run(root, "c", "complete", [50], None)
    fabricate_timed_run(root, "d", "running", [10], [start("11:30:00", "d")])
    fabricate_timed_run(root, "e", "failed", [5], [start("09:00:00", "e", torch="2.2.0")])


@pytest.fixture
def fabricated(tmp_path) -> dict:
    fabricate_set(tmp_path / "results")
    runs = collect_runs(tmp_path / "runs", tmp_path / "results")
    environments = repro.read_environments(runs)
    times = repro.run_times(runs, environments, repro.read_finish_times(runs),
                            repro.epoch_seconds(collect_histories(runs=runs)))  # fmt: skip
    return {"runs": runs, "starts": repro.environment_starts(runs, environments), "times": times}


def utc(time: str) -> pd.Timestamp:
    return pd.Timestamp(DAY + time, tz="UTC")


# --- time ---------------------------------------------------------------------------------


def test_run_time_and_the_longest_run_are_over_the_complete_runs_only(fabricated):
    row = repro.time_table(fabricated["times"]).loc[(STUDY, PROFILE, "results")]
    assert row["complete"] == 3
    assert row["run_seconds"] == 300 + 900 + 50  # the running and the failed run are left out
    assert (row["longest_run"], row["longest_seconds"]) == ("b", 900)


def test_span_runs_from_the_first_start_to_the_last_finish_recorded_or_estimated(fabricated):
    times = fabricated["times"].set_index("run_id")
    assert times.loc["a", "finish"] == utc("10:06:00.5") and times.loc["a", "finish_recorded"]
    # No papermill finish: b's last start (11:00) plus the epochs trained since it (epoch 2: 500 s).
    assert times.loc["b", "finish"] == utc("11:08:20") and not times.loc["b", "finish_recorded"]
    assert pd.isna(times.loc["c", "finish"]) and pd.isna(times.loc["d", "finish"])
    row = repro.time_table(fabricated["times"]).loc[(STUDY, PROFILE, "results")]
    # e started at 09:00 but failed, c has no recorded start: neither moves the span.
    assert (row["first_start"], row["last_finish"]) == (utc("10:00:00"), utc("11:08:20"))
    assert row["span_seconds"] == 4100 and row["timed"] == 2 and row["estimated"] == 1


def test_a_recorded_finish_before_the_last_start_belongs_to_an_earlier_execution(tmp_path):
    fabricate_timed_run(tmp_path, "r", "complete", [60, 60, 60],
                        [start("08:00:00", "a"), start("09:00:00", "a", kind="resume", from_epoch=2)], finish="08:02:00")
    runs = collect_runs(tmp_path)
    environments = repro.read_environments(runs)
    times = repro.run_times(runs, environments, repro.read_finish_times(runs), repro.epoch_seconds(collect_histories(runs=runs)))
    assert times.loc[0, "finish"] == utc("09:01:00") and not times.loc[0, "finish_recorded"]


def test_without_a_history_the_estimate_adds_the_summary_seconds(tmp_path):
    folder = fabricate_timed_run(tmp_path, "r", "complete", [30, 30], [start("08:00:00", "a")])
    (folder / "history.csv").unlink()
    runs = collect_runs(tmp_path)
    times = repro.run_times(runs, repro.read_environments(runs), {}, {})
    assert times.loc[0, "finish"] == utc("08:01:00")


def test_the_time_view_and_sentence_say_what_each_figure_rests_on(fabricated):
    table = repro.time_table(fabricated["times"])
    view = repro.time_view(table).iloc[0]
    assert view["run time"] == "20 min 50 s" and view["longest run"] == "15 min 00 s (b)" and view["span"] == "1 h 08 min"
    assert view["first start"] == "2026-01-01 10:00 UTC" and view["last finish"] == "2026-01-01 11:08 UTC"
    statuses = fabricated["runs"]["status"].value_counts().to_dict()
    sentence = repro.time_sentence("`normalization_layers` / `local`", table.iloc[0], 27, statuses)
    assert sentence == (
        "`normalization_layers` / `local`: 3 of the grid's 27 runs complete (1 failed, 1 running: not counted), "
        "20 min 50 s of run time in all, the longest 15 min 00 s (`b`); 1 h 08 min from the first start "
        "(2026-01-01 10:00 UTC) to the last finish (2026-01-01 11:08 UTC), over 2 runs, 1 of their finishes estimated."
    )


@pytest.mark.parametrize("seconds, text", [(45.4, "45 s"), (556.4, "9 min 16 s"), (7272.8, "2 h 01 min"), (None, "–")])
def test_format_duration(seconds, text):
    assert repro.format_duration(seconds) == text


# --- environment ----------------------------------------------------------------------------


def test_environment_table_counts_runs_per_combination_with_resumes_and_commits(fabricated):
    table = repro.environment_table(fabricated["starts"], repro.SOFTWARE_KEYS).reset_index().set_index("torch")
    assert list(table.index) == ["2.1.0+cpu", "2.2.0", "not recorded"]
    recorded = table.loc["2.1.0+cpu"]
    assert (recorded["runs"], recorded["complete"], recorded["resumed"]) == (3, 2, 1)  # a, b and the running d
    assert recorded["commits"] == "aaaaaaa, bbbbbbb, ddddddd"  # short, in the order first used
    assert (table.loc["2.2.0", "runs"], table.loc["2.2.0", "complete"]) == (1, 0)  # the failed e
    unrecorded = table.loc["not recorded"]
    assert (unrecorded["runs"], unrecorded["complete"], unrecorded["python"], unrecorded["commits"]) == (1, 1, "not recorded", "–")


def test_a_run_without_environment_json_is_counted_not_guessed(fabricated):
    starts = fabricated["starts"].set_index("run_id")
    assert starts.loc["c", "kind"] == repro.NOT_RECORDED and pd.isna(starts.loc["c", "time"])
    assert list(fabricated["starts"]["run_id"]) == ["a", "b", "b", "c", "d", "e"]  # one row per start and resume
    sentence = repro.environment_sentence(fabricated["starts"])
    assert sentence.startswith("5 runs (4 with an environment record): cpu (Test CPU), threads 1, fp32;")
    assert "torch 2.1.0+cpu (3 runs), 2.2.0 (1 run)" in sentence
    assert sentence.endswith("started at 4 commits, eeeeeee to ddddddd; 1 run resumed.")


def test_overview_counts_runs_by_status_against_the_grid(fabricated):
    overview = repro.set_overview(fabricated["runs"], fabricated["starts"], {(STUDY, PROFILE): 27},
                                  {(STUDY, PROFILE, "results"): None})  # fmt: skip
    row = overview.loc[(STUDY, PROFILE, "results")]
    assert list(overview.columns) == ["runs in grid (--dry-run)", "runs in grid.json", "runs found", "complete",
                                      "failed", "running", "without environment.json"]  # fmt: skip
    assert list(row) == [27, "–", 5, 3, 1, 1, 1]


def test_pins_compare_releases_and_name_the_runs_that_differ(fabricated, tmp_path):
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("# header\nnumpy==1.26.4\ntorch==2.1.0\ntorchvision==0.16.0\npandas==2.0.0\n")
    pins = repro.pinned_versions(constraints)
    assert pins == {"numpy": "1.26.4", "torch": "2.1.0", "torchvision": "0.16.0"}
    # 2.1.0+cpu is the pinned release (a build of it); e's 2.2.0 is another.
    assert repro.pins_sentence(fabricated["starts"], pins).endswith("runs recorded another release of torch (1 run).")
    same = fabricated["starts"][fabricated["starts"]["run_id"] != "e"]
    assert repro.pins_sentence(same, pins).endswith(": the release every recorded run used.")
    assert repro.pinned_versions(tmp_path / "absent.txt") == {}


def test_readers_tolerate_absent_and_half_written_files(tmp_path):
    (tmp_path / "environment.json").write_text('{"starts": [{"kind": "st')
    (tmp_path / "run_experiment.ipynb").write_text('{"metadata": {"papermill": {"end_time": "2026')
    assert repro.read_environment(tmp_path) == [] and repro.read_finish_time(tmp_path) is None
    assert repro.read_environment(tmp_path / "absent") == [] and repro.read_finish_time(tmp_path / "absent") is None


# --- commands ---------------------------------------------------------------------------------


def test_grid_run_count_is_what_the_dry_run_lists(tmp_path):
    for grid in sorted((REPO / "params").glob("*.yml")):
        assert repro.grid_run_count(grid, "smoke") == len(load_grid(grid, "smoke").all_runs), grid.name
    lines: list[str] = []
    run_grid(REPO / "params" / "quickstart.yml", "smoke", runs_root=tmp_path, dry_run=True, log=lines.append)
    assert lines[-1] == f"{repro.grid_run_count(REPO / 'params' / 'quickstart.yml', 'smoke')} runs"
    # The local profiles need data/ to validate; counted without it, the pretraining run included,
    # they match what the runner recorded when it ran them.
    for study in ("input_normalization", "normalization_layers"):
        recorded = repro.recorded_grid_count(REPO / "results" / study / "local")
        assert recorded is not None and repro.grid_run_count(REPO / "params" / f"{study}.yml", "local") == recorded
    assert repro.grid_run_count(REPO / "params" / "quickstart.yml", "no-such-profile") is None
    assert repro.grid_run_count(tmp_path / "absent.yml", "smoke") is None


def test_make_data_folders_come_from_the_makefile_data_rule(tmp_path):
    assert repro.make_data_folders(REPO / "Makefile") == ["data/cifar10-jpeg", "data/tiny-imagenet-200"]
    (tmp_path / "Makefile").write_text("all: x\n\ndata: data/.svhn.extracted\n\ndata/.%.extracted: a/%.tar.gz\n")
    assert repro.make_data_folders(tmp_path / "Makefile") == ["data/svhn"]
    assert repro.make_data_folders(tmp_path / "absent") == []


def test_commands_rebuild_a_set_with_the_data_it_reads(fabricated):
    runs = fabricated["runs"]
    folders = repro.data_folders_needed(runs, ["data/cifar10-jpeg", "data/tiny-imagenet-200"])
    assert folders == ["data/cifar10-jpeg"]
    downloading = pd.DataFrame({"dataset": ["cifar10", "cifar100", "synthetic"], "download": [True, True, None]})
    assert repro.downloaded_datasets(downloading) == ["cifar10", "cifar100"]
    lines = repro.rebuild_commands("params/normalization_layers.yml", PROFILE, "results", data_folders=folders,
                                   downloads=["cifar10"], grid_runs=27, workers=2)  # fmt: skip
    assert lines == [
        "make install  # .venv with the exact versions in constraints.txt",
        "make data     # the real data the runs read: data/cifar10-jpeg",
        "# the runs download cifar10 themselves (download: true)",
        "normtest run params/normalization_layers.yml --profile local --runs-root results --dry-run  # lists the 27 runs",
        "normtest run params/normalization_layers.yml --profile local --runs-root results --workers 2"
        "  # skips finished runs, resumes interrupted ones",
        "normtest book",
    ]


# --- the book ---------------------------------------------------------------------------------


def test_the_appendix_is_a_report_on_every_study_listed_before_the_run_index():
    report = next(r for r in book.REPORTS if r.chapter == "reproducibility")
    assert report.template == "notebooks/reproducibility.ipynb"
    assert set(report.studies) == {path.stem for path in (REPO / "params").glob("*.yml")}
    assert report.parameters["studies"] == list(report.studies)
    files = [chapter["file"] for chapter in yaml.safe_load((REPO / "_toc.yml").read_text())["chapters"]]
    assert files.index("book/chapters/reproducibility") == files.index("book/chapters/runs") - 1


def test_report_digest_follows_environment_json(tmp_path):
    template = tmp_path / "report.ipynb"
    template.write_text("{}")
    fabricate_set(tmp_path / "results")
    roots = (tmp_path / "runs", tmp_path / "results")
    digest = book.report_digest(template, {}, [STUDY], roots)
    environment = tmp_path / "results" / STUDY / PROFILE / "a" / "environment.json"
    environment.write_text(json.dumps({"starts": [start("10:00:00", "f")]}))
    assert book.report_digest(template, {}, [STUDY], roots) != digest


def execute_appendix(project: Path) -> tuple[str, dict[str, str]]:
    """Execute the template in ``project``; its cells as JSON text and its glued values (plain or Markdown text)."""
    output = project / "reproducibility.ipynb"
    papermill.execute_notebook(str(REPO / "notebooks" / "reproducibility.ipynb"), str(output), cwd=str(project),
                               progress_bar=False, kernel_name="python3")  # fmt: skip
    cells = nbformat.read(output, as_version=4).cells
    glued = {}
    for output_ in (o for cell in cells if cell.cell_type == "code" for o in cell.outputs):
        if "scrapbook" in output_.get("metadata", {}):
            data = {key.removeprefix(GLUE_PREFIX): value for key, value in output_.data.items()}
            glued[output_.metadata["scrapbook"]["name"]] = data.get("text/markdown") or data.get("text/plain")
    return json.dumps(cells), glued


@pytest.mark.slow
def test_the_chapter_runs_on_fabricated_results(tmp_path):
    for name in ("Makefile", "constraints.txt"):
        shutil.copy(REPO / name, tmp_path / name)
    shutil.copytree(REPO / "params", tmp_path / "params")
    fabricate_set(tmp_path / "results")
    fabricate_quickstart_runs(tmp_path)  # runs/quickstart/smoke: no environment.json, no seconds
    text, glued = execute_appendix(tmp_path)
    assert str(tmp_path) not in text  # no folder of the machine
    assert (glued["n_sets"], glued["n_runs"], glued["n_complete"]) == ("2", "11", "9")
    assert glued["total_run_time"] == "'20 min 50 s'"
    assert "3 of the grid's 30 runs complete (1 failed, 1 running: not counted), 20 min 50 s of run time" in glued["time_sentences"]
    assert "quickstart` / `smoke` (runs/): 6 of the grid's 12 runs complete, with no recorded seconds" in glued["time_sentences"]
    commands = glued["commands"]
    assert "normtest run params/normalization_layers.yml --profile local --runs-root results --workers 2" in commands
    assert "make data     # the real data the runs read: data/cifar10-jpeg\n" in commands
    assert "normtest run params/quickstart.yml --profile smoke --runs-root runs --dry-run  # lists the 12 runs" in commands
    assert glued["pins_sentence"].endswith("runs recorded another release of numpy (4 runs), torch (4 runs), torchvision (4 runs).")
    assert "6 runs, none with an environment record (no environment.json)." in glued["environment_sentences"]
    assert "The 4 runs with an environment record ran on cpu (Test CPU) under Linux" in glued["machine_sentence"]


@pytest.mark.slow
def test_the_chapter_runs_in_the_book_test_project_without_grids_or_makefile(tmp_path):
    fabricate_runs(tmp_path)  # the book test's project: no params/, no Makefile, no environment.json
    fabricate_quickstart_runs(tmp_path)
    text, glued = execute_appendix(tmp_path)
    assert '"output_type": "error"' not in text
    assert glued["n_sets"] == "1"  # study1 is no study of the book
    assert "--profile smoke --runs-root runs --dry-run  # lists its runs" in glued["commands"]
    assert "make data" not in glued["commands"]
    assert glued["machine_sentence"] == "No run recorded its machine."
    assert glued["total_run_time"] == "'–'"


# --- verification -------------------------------------------------------------------------------


def verification_record(**counts: int) -> dict:
    full = {status: counts.get(status.replace(" ", "_"), 0) for status in repro.VERIFICATION_COUNTS}
    return {"format": 1, "time": "2026-12-04T10:00:00+00:00", "commit": "abcdef0123", "device_name": "Test CPU",
            "runs_in_set": 27, "with_fingerprint": 2, "uncommitted_library_changes": False, "counts": full}  # fmt: skip


def test_the_appendix_reads_each_sets_last_verification_from_its_record(tmp_path):
    set_dir = tmp_path / "results" / STUDY / PROFILE
    set_dir.mkdir(parents=True)
    assert repro.read_verification(set_dir) is None
    (set_dir / "verification.json").write_text(json.dumps(verification_record(verified=2, no_fingerprint=1)))
    record = repro.read_verification(set_dir)
    key = (STUDY, PROFILE, "results")
    table = repro.verification_table({key: record, (STUDY, "smoke", "runs"): None})
    assert table.loc[key, "verified"] == 2 and table.loc[key, "no fingerprint"] == 1
    assert table.loc[key, "last verified"] == "2026-12-04 10:00 UTC" and table.loc[key, "commit"] == "abcdef0"
    assert table.loc[key, "runs with a fingerprint"] == "2 of 27"
    assert table.loc[(STUDY, "smoke", "runs"), "outcome"] == "not verified yet"
    assert repro.verification_outcome(record) == "2 of 3 verified, none differs"
    assert repro.verification_outcome(verification_record(verified=3)) == "verifies"
    assert repro.verification_outcome(verification_record(no_fingerprint=3)) == "cannot be verified: made before fingerprints existed"
    assert repro.verification_outcome(verification_record(verified=2, differs=1)).startswith("1 of 3 differ")
    sentence = repro.verification_sentence("`s` / `local` (results/)", record, "results")
    assert sentence == ("`s` / `local` (results/): 2 of 3 verified, none differs. Last verified 2026-12-04 10:00 UTC at "
                        "commit abcdef0 on Test CPU: 2 verified, 1 no fingerprint (2 of the set's 27 runs have a "
                        "fingerprint; `normtest verify --sample 3 results` repeats it).")  # fmt: skip
