"""Write a clean notebook template: fixed cell ids, the project's kernel, no outputs."""

import nbformat as nbf


def write_template(cells: list, path: str) -> None:
    for index, cell in enumerate(cells):
        cell.id = f"cell-{index}"  # fixed ids: regenerating the notebook changes nothing
    notebook = nbf.v4.new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.metadata["language_info"] = {"name": "python"}
    nbf.write(notebook, path)
