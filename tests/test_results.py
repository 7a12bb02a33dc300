import json

import pandas as pd
import pytest
import yaml

from normtest_lib.report.results import collect_histories, collect_runs, find_run_folders, param_columns

HISTORY_HEADER = "epoch,train_loss,train_acc,val_loss,val_acc,test_loss,test_acc,lr,seconds,images_per_second\n"


def history_text(epochs: int, seed: int) -> str:
    rows = [f"{e},1.0,{0.5 + 0.1 * e + 0.01 * seed},1.1,0.5,1.2,0.4,0.1,2.0,500" for e in range(1, epochs + 1)]
    return HISTORY_HEADER + "\n".join(rows) + "\n"


def make_run(root, study, profile, run_id, *, params=None, summary=None, history=None, notebook=False):
    folder = root / study / profile / run_id
    folder.mkdir(parents=True)
    if params is not None:
        (folder / "params.yaml").write_text(yaml.safe_dump(params))
    if summary is not None:
        (folder / "summary.json").write_text(summary if isinstance(summary, str) else json.dumps(summary))
    if history is not None:
        (folder / "history.csv").write_text(history)
    if notebook:
        (folder / "run_experiment.ipynb").write_text("{}")
    return folder


@pytest.fixture
def roots(tmp_path):
    runs, results = tmp_path / "runs", tmp_path / "results"
    base = {"dataset": "synthetic", "epochs": 3, "milestones": [1, 2]}
    for seed in (0, 1):
        make_run(
            runs, "study1", "smoke", f"run{seed}",
            params={**base, "seed": seed},
            summary={"status": "complete", "test_acc_at_best_val": 0.8 + seed / 100, "best_epoch": 3, "n_train": 90},
            history=history_text(3, seed),
            notebook=True,
        )
    # Still training: summary says running, the last history line is half written.
    make_run(
        runs, "study1", "smoke", "run_live",
        params={**base, "seed": 2}, summary={"status": "running"}, history=history_text(2, 2) + "3,0.9,",
    )
    make_run(runs, "study1", "smoke", "run_empty")  # created, nothing written yet
    make_run(runs, "study2", "paper", "run_torn", params={"dataset": "synthetic", "seed": 0}, summary='{"status": "compl')
    make_run(runs, "study2", "paper", "run_noparams", summary={"status": "failed", "error": "boom", "dataset": "x"})
    (runs / "study2" / "paper" / ".tmp-run").mkdir()  # hidden: a run being created
    (runs / "README.md").write_text("not a study")
    make_run(
        results, "study1", "paper", "real0",
        params={**base, "dataset": "cifar10", "seed": 0}, summary={"status": "complete", "test_acc_at_best_val": 0.9},
        history=history_text(3, 0),
    )
    return runs, results


def test_every_run_folder_is_one_row_with_location_params_and_summary(roots):
    runs = collect_runs(*roots)
    assert list(runs["run_id"]) == ["real0", "run0", "run1", "run_empty", "run_live", "run_noparams", "run_torn"]
    row = runs.set_index("run_id").loc["run1"]
    assert (row["study"], row["profile"], row["source"]) == ("study1", "smoke", "runs")
    assert row["seed"] == 1 and row["dataset"] == "synthetic"
    assert row["milestones"] == (1, 2)  # lists become tuples so that grouping works
    assert row["test_acc_at_best_val"] == pytest.approx(0.81)
    assert row["has_notebook"] and pd.isna(row["problem"])
    assert runs.set_index("run_id").loc["real0", "source"] == "results"


def test_half_written_folders_are_rows_with_a_status_and_a_reason(roots):
    runs = collect_runs(*roots).set_index("run_id")
    assert runs.loc["run_live", "status"] == "running"
    assert runs.loc["run_empty", "status"] == "missing"
    assert "summary.json absent" in runs.loc["run_empty", "problem"]
    assert "params.yaml absent" in runs.loc["run_empty", "problem"]
    assert runs.loc["run_torn", "status"] == "missing"
    assert "summary.json unreadable" in runs.loc["run_torn", "problem"]
    assert runs.loc["run_noparams", "status"] == "failed"
    assert runs.loc["run_noparams", "error"] == "boom"


def test_a_summary_key_that_clashes_with_a_param_gets_a_prefix(tmp_path):
    make_run(tmp_path, "s", "p", "r", params={"dataset": "synthetic"}, summary={"status": "complete", "dataset": "other"})
    row = collect_runs(tmp_path).iloc[0]
    assert row["dataset"] == "synthetic" and row["summary_dataset"] == "other"


def test_param_columns_are_recorded(roots):
    runs = collect_runs(*roots)
    assert set(param_columns(runs)) == {"dataset", "epochs", "milestones", "seed"}
    assert set(param_columns(runs[runs["study"] == "study1"])) == {"dataset", "epochs", "milestones", "seed"}
    runs.attrs.clear()  # without the record, the params files are read again
    assert set(param_columns(runs)) == {"dataset", "epochs", "milestones", "seed"}
    assert "n_train" in runs.columns  # a summary key, not a param


def test_absent_or_empty_roots_give_an_empty_frame_with_the_location_columns(tmp_path):
    assert find_run_folders(tmp_path / "nowhere") == []
    empty = collect_runs(tmp_path / "nowhere", tmp_path)
    assert empty.empty
    assert {"study", "profile", "run_id", "status"} <= set(empty.columns)
    assert collect_histories(tmp_path).empty


def test_histories_stack_every_readable_epoch_with_the_runs_params(roots):
    histories = collect_histories(*roots)
    per_run = histories.groupby("run_id")["epoch"].max().to_dict()
    # run_live's ragged last line is skipped; runs without a history add nothing.
    assert per_run == {"real0": 3, "run0": 3, "run1": 3, "run_live": 2}
    assert {"seed", "dataset", "milestones", "train_acc", "study", "profile"} <= set(histories.columns)
    assert not {"test_acc_at_best_val", "n_train", "status"} & set(histories.columns)
    run1 = histories[histories["run_id"] == "run1"]
    assert (run1["seed"] == 1).all()
    assert list(run1["train_acc"]) == pytest.approx([0.61, 0.71, 0.81])


def test_histories_of_a_chosen_subset_of_runs(roots):
    runs = collect_runs(*roots)
    chosen = runs[runs["source"] == "results"]
    histories = collect_histories(runs=chosen)
    assert set(histories["run_id"]) == {"real0"}
    assert isinstance(histories, pd.DataFrame) and len(histories) == 3


def test_a_run_under_both_roots_is_one_row_from_results(tmp_path):
    params = {"dataset": "synthetic", "seed": 0}
    for root, acc in (("runs", 0.5), ("results", 0.7)):
        make_run(tmp_path / root, "s", "smoke", "same", params=params, summary={"status": "complete", "acc": acc})
    make_run(tmp_path / "runs", "s", "smoke", "other", params=params, summary={"status": "complete", "acc": 0.1})
    for order in ((tmp_path / "runs", tmp_path / "results"), (tmp_path / "results", tmp_path / "runs")):
        runs = collect_runs(*order)
        assert sorted(runs["run_id"]) == ["other", "same"]
        same = runs[runs["run_id"] == "same"].iloc[0]
        assert same["source"] == "results" and same["acc"] == 0.7
        assert param_columns(runs) == ["dataset", "seed"]  # the frame keeps its param record


def test_runs_the_grid_record_names_as_pretraining_runs_are_marked_before_any_run_starts_from_them(tmp_path):
    from normtest_lib.report.results import pretraining_run_ids

    results = tmp_path / "results"
    make_run(results, "s", "local", "0123456789ab", params={"seed": 0}, summary={"status": "complete"})
    make_run(results, "s", "local", "fedcba987654", params={"seed": 0}, summary={"status": "running"})
    grid = {"runs": [{"id": "fedcba987654"}], "pretrains": [{"id": "0123456789ab", "params": {}}]}
    (results / "s" / "local" / "grid.json").write_text(json.dumps(grid))
    make_run(results, "s", "old", "aaaaaaaaaaaa", params={"seed": 0}, summary={"status": "complete"})
    (results / "s" / "old" / "grid.json").write_text(json.dumps({"runs": [], "pretrain": {"id": "aaaaaaaaaaaa"}}))
    make_run(results, "s", "bare", "bbbbbbbbbbbb", params={"seed": 0}, summary={"status": "complete"})
    runs = collect_runs(results).set_index("run_id")
    assert runs["pretraining_run"].to_dict() == {"0123456789ab": True, "fedcba987654": False, "aaaaaaaaaaaa": True,
                                             "bbbbbbbbbbbb": False}  # fmt: skip
    assert pretraining_run_ids(runs.reset_index()) == ["0123456789ab", "aaaaaaaaaaaa"]
    named = pd.DataFrame({"run_id": ["cccccccccccc"], "pretrained": ["results/s/x/dddddddddddd/best.pt"]})
    assert pretraining_run_ids(named) == ["dddddddddddd"]  # a source named by a run started from it
