"""notebooks/run_experiment.ipynb under papermill, as grid runs and users execute it."""

import json
from pathlib import Path

import nbformat
import papermill
import pytest

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "run_experiment.ipynb"
TINY = {"epochs": 2, "train_subset": 300, "batch_size": 64, "deterministic": True}


def _execute(tmp_path, **parameters):
    output = tmp_path / "executed.ipynb"
    papermill.execute_notebook(
        str(NOTEBOOK), str(output), parameters=parameters, kernel_name="python3", progress_bar=False, cwd=str(tmp_path)
    )
    return nbformat.read(output, as_version=4)


def _glued(notebook):
    """Glue keys stored by myst_nb in the executed notebook's outputs."""
    keys = {}
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            name = output.get("metadata", {}).get("scrapbook", {}).get("name")
            if name:
                prefix = "application/papermill.record/"
                keys[name] = {mime.removeprefix(prefix): value for mime, value in output["data"].items()}
    return keys


def test_template_is_committed_clean_with_a_parameters_cell():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    assert any("parameters" in cell.metadata.get("tags", []) for cell in notebook.cells)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")


@pytest.mark.slow
def test_papermill_run_trains_writes_the_run_folder_and_glues_results(tmp_path):
    run_dir = tmp_path / "run"
    notebook = _execute(tmp_path, out_dir=str(run_dir), **TINY)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "complete" and summary["epochs_completed"] == 2
    glued = _glued(notebook)
    assert "image/png" in glued["run_curves"]
    assert glued["status"]["text/plain"] == "'complete'"
    assert float(glued["test_acc_at_best_val"]["text/plain"]) == pytest.approx(summary["test_acc_at_best_val"])
    # A parameter outside the notebook's own cell still reaches the run through the schema.
    assert "train_subset: 300" in (run_dir / "params.yaml").read_text()


@pytest.mark.slow
def test_unknown_injected_parameter_fails_before_training(tmp_path):
    run_dir = tmp_path / "run"
    with pytest.raises(papermill.PapermillExecutionError, match="learning_rate: unknown parameter"):
        _execute(tmp_path, out_dir=str(run_dir), learning_rate=0.1, **TINY)
    assert not run_dir.exists()


@pytest.mark.slow
def test_rerunning_the_cells_in_a_live_kernel_keeps_working(tmp_path):
    """As in JupyterLab: run everything, change a parameter, rerun from the parameters cell."""
    from nbclient import NotebookClient

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    params_index = next(i for i, c in enumerate(notebook.cells) if "parameters" in c.metadata.get("tags", []))
    notebook.cells[params_index].source += f"\nout_dir = {str(tmp_path / 'run')!r}\nepochs = 1\ntrain_subset = 200"
    client = NotebookClient(notebook, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    with client.setup_kernel():
        for index in range(len(notebook.cells)):
            client.execute_cell(notebook.cells[index], index)
        source = notebook.cells[params_index].source.replace("epochs = 1", "epochs = 2")
        notebook.cells[params_index].source = source.replace(str(tmp_path / "run"), str(tmp_path / "run2"))
        for index in range(params_index, len(notebook.cells)):
            client.execute_cell(notebook.cells[index], index)
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["epochs_completed"] == 1
    assert json.loads((tmp_path / "run2" / "summary.json").read_text())["epochs_completed"] == 2
