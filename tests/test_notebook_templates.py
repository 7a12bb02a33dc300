"""The notebooks under notebooks/ are the one source of the templates: they are kept clean.

Every template has a cell tagged ``parameters`` (papermill injects after it), is
committed without outputs or execution counts, has fixed cell ids (nbformat
4.5: stable diffs, and the book's glue keys stay attached to the same cells),
and keeps each code cell short enough to read at a glance.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
MAX_CODE_LINES = 25
CELL_ID = re.compile(r"^[a-zA-Z0-9-_]{1,64}$")  # nbformat's cell id pattern


def test_there_are_templates():
    assert {path.name for path in NOTEBOOKS} >= {"run_experiment.ipynb", "grid_report.ipynb", "dataset_statistics.ipynb"}


@pytest.fixture(params=NOTEBOOKS, ids=lambda path: path.name)
def notebook(request) -> nbformat.NotebookNode:
    nb = nbformat.read(request.param, as_version=4)
    nbformat.validate(nb)
    return nb


def test_one_cell_is_tagged_parameters(notebook):
    tagged = [cell for cell in notebook.cells if "parameters" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1 and tagged[0].cell_type == "code"


def test_no_outputs_and_no_execution_counts(notebook):
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], cell.source[:60]
            assert cell.execution_count is None, cell.source[:60]


def test_cell_ids_are_fixed_and_unique(notebook):
    assert (notebook.nbformat, notebook.nbformat_minor) >= (4, 5)  # ids are part of the format
    ids = [cell.get("id") for cell in notebook.cells]
    assert all(isinstance(cell_id, str) and CELL_ID.match(cell_id) for cell_id in ids), ids
    assert len(set(ids)) == len(ids)


def test_the_file_on_disk_already_has_its_ids():
    # nbformat.read fills in missing ids, so check the raw JSON as committed.
    import json

    for path in NOTEBOOKS:
        cells = json.loads(path.read_text())["cells"]
        assert all("id" in cell for cell in cells), path.name


def test_code_cells_are_short(notebook):
    for cell in notebook.cells:
        if cell.cell_type == "code":
            lines = cell.source.splitlines()
            assert len(lines) <= MAX_CODE_LINES, f"{len(lines)} lines: {cell.source[:60]!r}"
