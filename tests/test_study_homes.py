"""One name per study everywhere: grid, chapter notebook, study package, book chapter; and the arrows between homes.

A study is ``params/<study>.yml``, ``notebooks/<study>.ipynb``, ``normtest_lib/studies/<study>/`` and the chapter
``book/chapters/<study>`` (ARCHITECTURE.md, "Adding a study"). The quickstart grid is exempt: the generic grid
report (``notebooks/grid_report.ipynb``) is its chapter, and it has nothing of its own to analyse.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import nbformat
import yaml

from normtest_lib import studies
from normtest_lib.report import book

REPO = Path(__file__).resolve().parents[1]
LIBRARY = REPO / "normtest_lib"
EXEMPT_GRIDS = {"quickstart"}
JOBS = ("analysis", "figures", "errata", "answer")  # the modules of a study with a grid


def grid_studies() -> list[str]:
    return sorted(path.stem for path in (REPO / "params").glob("*.yml") if path.stem not in EXEMPT_GRIDS)


def study_packages() -> list[str]:
    return sorted(path.parent.name for path in (LIBRARY / "studies").glob("*/__init__.py"))


def toc_chapters() -> list[str]:
    toc = yaml.safe_load((REPO / "_toc.yml").read_text())
    return [Path(entry["file"]).name for entry in toc["chapters"]]


def imported_modules(path: Path, package: str) -> set[str]:
    """The absolute names of the modules ``path`` (a module of ``package``) imports, relative imports resolved."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def notebook_imports(name: str) -> set[str]:
    notebook = nbformat.read(REPO / "notebooks" / f"{name}.ipynb", as_version=4)
    code = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code")
    names = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.add(node.module or "")
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_every_grid_has_a_notebook_a_study_package_and_a_chapter_of_the_same_name():
    grids = grid_studies()
    assert grids, "no study grids under params/"
    chapters = toc_chapters()
    reports = {report.chapter: report for report in book.REPORTS}
    for study in grids:
        assert (REPO / "notebooks" / f"{study}.ipynb").is_file(), f"params/{study}.yml has no notebooks/{study}.ipynb"
        assert study in study_packages(), f"params/{study}.yml has no package normtest_lib/studies/{study}/"
        assert study in chapters, f"params/{study}.yml has no chapter book/chapters/{study} in _toc.yml"
        assert study in reports and reports[study].template == f"notebooks/{study}.ipynb", f"{study}: no book.REPORTS entry"
        assert study in reports[study].studies, f"{study}: its report does not read results/{study}/"


def test_every_study_package_has_a_notebook_and_a_chapter_and_a_grid_study_has_every_job():
    chapters = toc_chapters()
    for study in study_packages():
        assert (REPO / "notebooks" / f"{study}.ipynb").is_file(), study
        assert study in chapters, study
        if study in grid_studies():
            for job in JOBS:
                assert (LIBRARY / "studies" / study / f"{job}.py").is_file(), f"studies/{study}/ has no {job}.py"
            assert callable(importlib.import_module(f"normtest_lib.studies.{study}.answer").study_answer), study


def test_the_landing_page_answers_exactly_the_grid_studies_in_the_books_order():
    chapters = toc_chapters()
    assert set(studies.ANSWERED_STUDIES) == set(grid_studies())
    assert list(studies.ANSWERED_STUDIES) == sorted(studies.ANSWERED_STUDIES, key=chapters.index)
    assert set(book.STUDIES) == set(grid_studies()) | EXEMPT_GRIDS  # the reproducibility appendix covers every grid


def test_report_holds_nothing_named_after_a_study_and_never_imports_one():
    words = {word for study in study_packages() for word in study.split("_")}
    for module in sorted((LIBRARY / "report").glob("*.py")):
        assert not words & set(module.stem.split("_")), f"report/{module.name} is named after a study"
        imported = imported_modules(module, "normtest_lib.report")
        assert not [name for name in imported if name.startswith("normtest_lib.studies")], f"report/{module.name}"


def test_a_study_imports_no_other_study_and_its_chapter_only_its_own_home():
    for study in study_packages():
        package = f"normtest_lib.studies.{study}"
        for module in sorted((LIBRARY / "studies" / study).glob("*.py")):
            imported = imported_modules(module, package)
            others = [name for name in imported if name.startswith("normtest_lib.studies.")
                      and not name.startswith(package + ".") and name != package]
            assert not others, f"studies/{study}/{module.name} imports {others}"
        used = {name for name in notebook_imports(study) if name.startswith("normtest_lib.studies")}
        # ``from normtest_lib import studies`` reads as normtest_lib.studies, which is not the study's own home.
        assert used and all(name.startswith(package) for name in used), f"notebooks/{study}.ipynb imports {used}"
