"""`normtest book`: report execution, run pages, and the HTML build.

The slow tests build the whole book once per session (``built_book``) into a
temporary copy of the book's sources, with a few fabricated run folders and each
study's fabricated `local` results (so that every chapter is an executed page), and
share it with ``test_book_browser.py``.
"""

from __future__ import annotations

import base64
import functools
import io
import json
import os
import re
import shutil
import sys
import threading
import time
import types
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import nbformat
import pandas as pd
import pytest
import yaml
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output
from PIL import Image

from normtest_lib.report import book

from normtest_lib.grid import executors
from normtest_lib.report.book import BookBuildError, Report, build_book
from normtest_lib.report.results import collect_runs
from normtest_lib.grid.runner import GridReport, RunRecord

REPO = Path(__file__).resolve().parents[1]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
GLUED_FIGURES = ("gallery", "histograms_unit", "histograms_pretrain")
WIDE_TABLE_COLUMNS = 24  # about 3,000 px of columns: wider than the book's column at any window width


# --- fabricated inputs ----------------------------------------------------------


def tiny_png() -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (12, 8), (200, 40, 40)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def executed_run_notebook() -> nbformat.NotebookNode:
    """What an executed run notebook looks like: narrative, a figure, a table, and a table with a caption that is
    wider than the book's column at any window width (the browser tests check how the page holds it)."""
    table = pd.DataFrame({"epoch": [1, 2], "val_acc": [0.5, 0.6]}).to_html()
    wide = pd.DataFrame({f"probe measurement {i}": [0.5, 0.6] for i in range(WIDE_TABLE_COLUMNS)}).style.set_uuid("wide").set_caption(
        "A wide table: every probe measurement of the run after each epoch, more columns than the page has room for"
    ).to_html()
    cells = [
        new_markdown_cell("## Training\n\nOne run of a grid."),
        new_code_cell(
            "curves(history)",
            execution_count=1,
            outputs=[
                new_output("stream", name="stdout", text="epoch 2 done\n"),
                new_output("display_data", data={"image/png": tiny_png(), "text/plain": "<Figure>"}),
                new_output("execute_result", data={"text/html": table, "text/plain": "table"}, execution_count=1),
                new_output("display_data", data={"text/html": wide, "text/plain": "wide table"}),
            ],
        ),
    ]
    notebook = new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return notebook


def fabricate_run(root: Path, study: str, profile: str, run_id: str, params: dict, summary: dict, notebook: bool) -> Path:
    folder = root / study / profile / run_id
    folder.mkdir(parents=True)
    (folder / "params.yaml").write_text(yaml.safe_dump(params))
    (folder / "summary.json").write_text(json.dumps(summary))
    (folder / "history.csv").write_text("epoch,train_acc,val_acc\n1,0.5,0.5\n2,0.6,0.6\n")
    if notebook:
        nbformat.write(executed_run_notebook(), folder / "run_experiment.ipynb")
    return folder


def fabricate_runs(project: Path) -> None:
    for seed in (0, 1):
        fabricate_run(
            project / "runs", "study1", "smoke", f"abc{seed}",
            {"dataset": "synthetic", "seed": seed, "lr": 0.05},
            {"status": "complete", "test_acc_at_best_val": 0.71 + seed / 100},
            notebook=True,
        )
    fabricate_run(
        project / "results", "study1", "paper", "real0",
        {"dataset": "cifar10", "seed": 0, "lr": 0.05}, {"status": "failed", "error": "out of memory"}, notebook=False,
    )


QUICKSTART_SETTINGS = {"finetune": 0.60, "unit": 0.64, "instance": 0.55}  # input_norm -> a plausible accuracy


def fabricate_quickstart_runs(project: Path) -> None:
    """A complete smoke grid of the quickstart, so that its report chapter is executed, not a placeholder."""
    for seed in (0, 1):
        for setting, accuracy in QUICKSTART_SETTINGS.items():
            folder = project / "runs" / "quickstart" / "smoke" / f"{setting}-s{seed}"
            folder.mkdir(parents=True)
            params = {"seed": seed, "input_norm": setting, "dataset": "synthetic-dim"}
            (folder / "params.yaml").write_text(yaml.safe_dump(params))
            final = accuracy + seed / 50
            summary = {"status": "complete", "test_acc_at_best_val": final}
            (folder / "summary.json").write_text(json.dumps(summary))
            epochs = [f"{epoch},{final * epoch / 3 + 0.05:.3f},{final * epoch / 3:.3f}" for epoch in (1, 2, 3)]
            (folder / "history.csv").write_text("epoch,train_acc,val_acc\n" + "\n".join(epochs) + "\n")


def fabricate_study_results(results: Path) -> None:
    """Each study's `local` profile as its chapter test fabricates it, so that the landing page, the study
    chapters, the errata and the appendix are executed pages with answers, tables and figures (what the
    browser test reads), not placeholders."""
    from test_convnorm_label_noise_chapter import fabricate as fabricate_convnorm
    from test_input_normalization_chapter import fabricate_local_profile
    from test_normalization_layers_chapter import fabricate as fabricate_layers

    fabricate_local_profile(results)
    fabricate_layers(results)
    fabricate_convnorm(results)


def copy_book_sources(project: Path) -> None:
    """The committed book sources (not the generated pages) into ``project``."""
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(REPO / name, project / name)
    shutil.copytree(REPO / "notebooks", project / "notebooks")
    shutil.copytree(REPO / "params", project / "params")  # the grids, which chapters read beside their runs
    shutil.copytree(REPO / "book", project / "book", ignore=shutil.ignore_patterns("_build", "chapters", "runs"))


@dataclass
class BuiltBook:
    project: Path
    index: Path
    log: list[str]
    seconds: float

    @property
    def html(self) -> Path:
        return self.index.parent


@functools.cache
def build_once(session_tmp: Path) -> BuiltBook:
    """The whole book, built once per test session (cached on the session's temporary folder)."""
    project = session_tmp / "book_project"
    project.mkdir()
    copy_book_sources(project)
    fabricate_runs(project)
    fabricate_quickstart_runs(project)
    fabricate_study_results(project / "results")
    log: list[str] = []
    start = time.perf_counter()
    with fixed_library_digest():
        index = build_book(project_root=project, log=log.append)
    return BuiltBook(project, index, log, time.perf_counter() - start)


def fixed_library_digest():
    """Pin the library's hash in a report stamp for the length of a build.

    Any edit of normtest_lib's sources between two builds rightly re-executes
    every report; pinning it lets a test that compares two builds ignore edits
    made meanwhile by someone working in the same checkout.
    """
    return mock.patch.object(book, "library_digest", lambda: "pinned for the test session")


@pytest.fixture(scope="session")
def built_book(tmp_path_factory) -> BuiltBook:
    return build_once(tmp_path_factory.getbasetemp())


def executed_chapter(book: BuiltBook, chapter: str) -> nbformat.NotebookNode:
    """A chapter as the book build executed it (on :func:`fabricate_study_results`' runs): the chapter tests
    read it rather than executing the chapter a second time."""
    return nbformat.read(book.project / "book" / "chapters" / f"{chapter}.ipynb", as_version=4)


# --- the committed sources --------------------------------------------------------


@pytest.mark.parametrize("report", book.REPORTS, ids=lambda r: r.chapter)
def test_report_templates_are_clean_parameterized_notebooks(report):
    notebook = nbformat.read(REPO / report.template, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert any("parameters" in cell.metadata.get("tags", []) for cell in code)
    assert all(not cell.outputs and cell.execution_count is None for cell in code)
    assert all(len(cell.source.splitlines()) <= 25 for cell in code)
    assert "matplotlib.use(" not in "".join(cell.source for cell in code)  # the inline backend must stay


def test_toc_lists_every_report_chapter_the_references_and_the_run_index():
    toc = yaml.safe_load((REPO / "_toc.yml").read_text())
    files = [toc["root"]] + [chapter["file"] for chapter in toc["chapters"]]
    assert toc["root"] == "book/chapters/findings"  # the landing page: each study's answer first
    for report in book.REPORTS:
        assert f"book/chapters/{report.chapter}" in files
    assert f"book/chapters/{book.REFERENCES_PAGE.removesuffix('.md')}" in files
    run_index = next(c for c in toc["chapters"] if c["file"] == "book/chapters/runs")
    assert run_index["sections"] == [{"glob": "book/runs/**"}]
    config = yaml.safe_load((REPO / "_config.yml").read_text())
    assert config["execute"]["execute_notebooks"] == "off" and config["only_build_toc_files"] is True


# --- run pages (fast) ---------------------------------------------------------------


def test_run_index_lists_each_run_with_the_params_that_vary(tmp_path):
    fabricate_runs(tmp_path)
    runs = collect_runs(tmp_path / "runs", tmp_path / "results")
    text = book.run_index_markdown(runs, "/book")
    assert "## study1 / smoke" in text and "## study1 / paper" in text
    smoke = text.split("## study1 / smoke")[1]
    assert "| run | parameters | status | test acc. at best val (%) | converged |" in smoke  # lr and dataset do not vary
    assert "| --- | --- | --- | ---: | --- |" in smoke  # the accuracy right-aligned
    assert "{doc}`abc1 </book/runs/runs/study1/smoke/abc1>` | seed\u00a01 | complete | 72.0 |" in smoke  # percent, one decimal
    assert f":class: {book.RUN_INDEX_CLASS}" in smoke  # the class the book's CSS wraps the parameters by
    paper = text.split("## study1 / paper")[1].split("##")[0]
    assert "`real0`" in paper and "{doc}" not in paper and "failed" in paper  # no notebook, no link
    assert "| run | status |" in paper  # one run: nothing differs, no parameters column
    assert "No run folders" in book.run_index_markdown(collect_runs(tmp_path / "nowhere"))


def test_run_index_rows_say_what_differs_as_text_and_whether_the_run_converged(tmp_path):
    """A reader's row: the parameters that set a run apart, written out, never a tuple's repr or a thread count."""
    history = "epoch,train_loss,train_acc,lr\n1,1.0,0.50,0.1\n2,0.4,0.90,0.1\n"
    cases = {  # run id -> (params that vary, train_acc_final, status)
        "fit": ({"label_noise": 0.2, "probes": ["features", "layer_stats"], "num_threads": 1, "seed": 0}, 0.97, "complete"),
        "short": ({"label_noise": 0.4, "probes": ["features"], "num_threads": 2, "seed": 0}, 0.50, "complete"),
        "crashed": ({"probes": [], "num_threads": 2, "seed": 1}, None, "failed"),
    }
    for run_id, (params, final, status) in cases.items():
        summary = {"status": status, "train_acc_final": final} | ({"test_acc_at_best_val": 0.6} if final else {})
        folder = fabricate_run(tmp_path / "runs", "study3", "local", run_id, {"lr": 0.1, **params}, summary, notebook=False)
        (folder / "history.csv").write_text(history)
    runs = collect_runs(tmp_path / "runs")
    rows = {line.split(" | ")[0].strip("|` "): line for line in book.run_index_markdown(runs).splitlines()
            if line.startswith("| `")}
    nbsp = book.NO_BREAK_SPACE
    assert f"| label_noise{nbsp}0.2, seed{nbsp}0, probes{nbsp}features + layer_stats | complete | 60.0 | yes |" in rows["fit"]
    assert f"| label_noise{nbsp}0.4, seed{nbsp}0, probes{nbsp}features | complete | 60.0 | no |" in rows["short"]
    # In RunConfig's order, whatever order the files had; a parameter a run leaves unset is not listed; a run
    # that did not complete is not judged.
    assert f"| seed{nbsp}1, probes{nbsp}none | failed | – | not judged |" in rows["crashed"]
    text = "\n".join(rows.values())
    assert "num_threads" not in text and "lr" not in text  # how a run executed, and what no run changes
    assert "(" not in text and "[" not in text and "'" not in text  # no tuple or list repr
    # The verdicts are the convergence rule's, read by the report's own reader.
    from normtest_lib.report.converged import add_convergence

    converged = add_convergence(runs).set_index("run_id")["converged"]
    assert bool(converged["fit"]) and not converged["short"]


def test_run_pages_are_titled_copies_and_stale_ones_go(tmp_path):
    fabricate_runs(tmp_path / "p")
    runs = collect_runs(tmp_path / "p" / "runs")
    book_dir = tmp_path / "book"
    stale = book_dir / "runs" / "runs" / "old" / "smoke" / "gone.ipynb"
    stale.parent.mkdir(parents=True)
    stale.write_text("{}")
    index = book.write_run_pages(runs, book_dir, "/book", log=lambda _: None)
    page = book_dir / "runs" / "runs" / "study1" / "smoke" / "abc0.ipynb"
    notebook = nbformat.read(page, as_version=4)
    assert notebook.cells[0].source.startswith("# Run `abc0`")
    assert [c.source for c in notebook.cells[1:]] == [c.source for c in executed_run_notebook().cells]
    assert notebook.cells[2].outputs == executed_run_notebook().cells[1].outputs
    assert not stale.exists() and index.name == "runs.md"
    before = page.stat().st_mtime_ns
    book.write_run_pages(runs, book_dir, "/book", log=lambda _: None)
    assert page.stat().st_mtime_ns == before  # unchanged pages are not rewritten (Sphinx rebuilds by mtime)


def test_a_run_notebook_being_written_gets_no_page_and_no_link(tmp_path):
    fabricate_runs(tmp_path / "p")
    torn = tmp_path / "p" / "runs" / "study1" / "smoke" / "abc1" / "run_experiment.ipynb"
    torn.write_text(torn.read_text()[:200])
    messages = []
    index = book.write_run_pages(collect_runs(tmp_path / "p" / "runs"), tmp_path / "book", "/book", messages.append)
    assert not (tmp_path / "book" / "runs" / "runs" / "study1" / "smoke" / "abc1.ipynb").exists()
    assert (tmp_path / "book" / "runs" / "runs" / "study1" / "smoke" / "abc0.ipynb").exists()
    text = index.read_text()
    assert "`abc1`" in text and "abc1 </book" not in text and "abc0 </book" in text
    assert any("abc1: notebook not readable" in m for m in messages)


# --- smoke runs, stamps, errors (fast) ---------------------------------------------


def test_smoke_step_skips_without_grids(tmp_path):
    messages = []
    book.run_smoke_profiles(tmp_path / "params", tmp_path / "runs", messages.append)
    assert "no smoke runs" in messages[0]


def test_smoke_step_runs_the_smoke_profile_of_every_grid(tmp_path, monkeypatch):
    (tmp_path / "params").mkdir()
    for name in ("b.yml", "a.yml", "notes.txt"):
        (tmp_path / "params" / name).write_text("axes: {}\n")
    calls = []

    def run_grid(path, profile, *, runs_root, workers, gpus, log):
        calls.append((Path(path).name, profile, runs_root, workers, gpus))
        return grid_report([])

    runner = types.ModuleType("normtest_lib.grid.runner")
    runner.run_grid = run_grid
    monkeypatch.setitem(sys.modules, "normtest_lib.grid.runner", runner)
    monkeypatch.setattr(executors, "cpu_count", lambda: 3)
    monkeypatch.chdir(tmp_path)
    book.run_smoke_profiles(tmp_path / "params", tmp_path / "runs", lambda _: None)
    # Smoke runs are CPU runs (gpus=[]), one worker per usable core, whatever GPUs the machine has; their
    # root is relative to the working directory, so their notebooks name no folder of the machine.
    assert calls == [("a.yml", "smoke", Path("runs"), 3, []), ("b.yml", "smoke", Path("runs"), 3, [])]


def grid_report(statuses: list[str], runs_dir: Path = Path("runs/g/smoke")) -> GridReport:
    records = [RunRecord(f"r{i}", status, runs_dir / f"r{i}", {}) for i, status in enumerate(statuses)]
    return GridReport("g", "smoke", runs_dir, records, wall_seconds=0.0)


def test_a_failed_smoke_run_fails_the_build_naming_the_grid_and_the_run(tmp_path, monkeypatch):
    (tmp_path / "params").mkdir()
    for name in ("a.yml", "b.yml"):
        (tmp_path / "params" / name).write_text("axes: {}\n")
    reports = {"a.yml": grid_report(["done", "failed", "skipped"], tmp_path / "runs/a/smoke"), "b.yml": grid_report(["done"])}
    calls = []

    def run_grid(path, profile, *, runs_root, workers, gpus, log):
        calls.append(Path(path).name)
        return reports[Path(path).name]

    runner = types.ModuleType("normtest_lib.grid.runner")
    runner.run_grid = run_grid
    monkeypatch.setitem(sys.modules, "normtest_lib.grid.runner", runner)
    with pytest.raises(BookBuildError, match="smoke runs failed") as failure:
        book.run_smoke_profiles(tmp_path / "params", tmp_path / "runs", lambda _: None)
    message = str(failure.value)
    assert "a.yml: 1 failed run(s)" in message and str(tmp_path / "runs/a/smoke/r1") in message
    assert "r0" not in message and "r2" not in message and "b.yml" not in message
    assert calls == ["a.yml", "b.yml"]  # every grid still ran


def test_report_digest_follows_the_results_a_report_reads(tmp_path):
    template = tmp_path / "report.ipynb"
    template.write_text("{}")
    fabricate_runs(tmp_path)
    roots = (tmp_path / "runs", tmp_path / "results")
    digest = book.report_digest(template, {}, ["study1"], roots)
    assert digest == book.report_digest(template, {}, ["study1"], roots)
    assert digest != book.report_digest(template, {"max_images": 10}, ["study1"], roots)
    assert book.report_digest(template, {}, ["study9"], roots) == book.report_digest(template, {}, [], roots)
    (tmp_path / "runs" / "study1" / "smoke" / "abc0" / "summary.json").write_text('{"status": "failed"}')
    assert digest != book.report_digest(template, {}, ["study1"], roots)


def test_source_digest_follows_python_sources_only(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text("x = 1\n")
    digest = book.source_digest(tmp_path)
    (tmp_path / "pkg" / "notes.txt").write_text("not code")
    assert book.source_digest(tmp_path) == digest
    (tmp_path / "pkg" / "a.py").write_text("x = 2\n")
    assert book.source_digest(tmp_path) != digest
    assert book.source_digest(tmp_path, "0.2.0") != book.source_digest(tmp_path, "0.1.0")


def test_build_outside_the_repository_root_is_refused(tmp_path):
    with pytest.raises(BookBuildError, match="_config.yml"):
        build_book(project_root=tmp_path, log=lambda _: None)


# --- the whole book (slow) ------------------------------------------------------------


@pytest.mark.slow
def test_book_builds_every_page(built_book):
    html = built_book.html
    print(f"\nfirst build of the book: {built_book.seconds:.1f} s")
    assert built_book.index.is_file()
    for page in ("book/chapters/findings.html", "book/chapters/dataset_statistics.html", "book/chapters/runs.html",
                 "book/chapters/references.html"):
        assert (html / page).is_file(), page
    references = (html / "book/chapters/references.html").read_text()
    assert 'id="ref-liu2021"' in references and "https://arxiv.org/abs/2103.00673" in references
    # The data chapter's {ref} links to the references page resolve (Sphinx would have failed the build otherwise).
    assert 'href="references.html#ref-krizhevsky2009"' in (html / "book/chapters/dataset_statistics.html").read_text()
    for run_id in ("abc0", "abc1"):
        assert (html / f"book/runs/runs/study1/smoke/{run_id}.html").is_file()
    runs_page = (html / "book/chapters/runs.html").read_text()
    assert 'href="../runs/runs/study1/smoke/abc0.html"' in runs_page
    assert "real0" in runs_page and "out of memory" not in runs_page


@pytest.mark.slow
def test_dataset_statistics_chapter_is_a_papermill_execution_without_errors(built_book):
    chapter = nbformat.read(built_book.project / "book/chapters/dataset_statistics.ipynb", as_version=4)
    assert "papermill" in chapter.metadata
    outputs = [output for cell in chapter.cells if cell.cell_type == "code" for output in cell.outputs]
    assert outputs and not [o for o in outputs if o.output_type == "error"]
    assert chapter.metadata["papermill"]["input_path"] == "notebooks/dataset_statistics.ipynb"  # relative: no machine path
    parameter_cells = [c for c in chapter.cells if {"parameters", "injected-parameters"} & set(c.metadata.get("tags", []))]
    assert parameter_cells and all("hide-input" in c.metadata["tags"] for c in parameter_cells)  # collapsed for the reader


@pytest.mark.slow
def test_quickstart_chapter_is_the_executed_grid_report_with_a_table_and_figures(built_book):
    chapters = built_book.project / "book/chapters"
    assert not (chapters / "quickstart.md").exists()  # not the placeholder
    chapter = nbformat.read(chapters / "quickstart.ipynb", as_version=4)
    assert chapter.metadata["papermill"]["input_path"].endswith("notebooks/grid_report.ipynb")
    assert chapter.metadata["papermill"]["parameters"]["study"] == "quickstart"
    # The roots are passed relative to the project: no page shows a folder of the machine.
    assert chapter.metadata["papermill"]["parameters"]["runs_root"] == "runs"
    assert str(built_book.project) not in (built_book.html / "book/chapters/quickstart.html").read_text()
    outputs = [output for cell in chapter.cells if cell.cell_type == "code" for output in cell.outputs]
    assert outputs and not [o for o in outputs if o.output_type == "error"]
    page = (built_book.html / "book/chapters/quickstart.html").read_text()
    assert "<table" in page and "<img" in page
    assert "65.0 ± 1.4 (n=2)" in page  # unit over seeds 0 and 1: 0.64 and 0.66


@pytest.mark.slow
def test_the_glossary_defines_every_registered_layer_and_the_landing_page_links_to_it(built_book):
    from normtest_lib.layers import conv_names, norm_names

    page = (built_book.html / "book/chapters/glossary.html").read_text()
    assert page.count('class="glossary"') == 7  # one table per kind
    for name in [*norm_names(), *conv_names(), "depth_n", "imagefolder", "center", "convnorm+bn"]:
        assert f"<code>{name}</code>" in page, name
    assert "<code>&lt;name&gt;:c/&lt;k&gt;</code>" in page  # gn:c/4's form, explained once
    landing = (built_book.html / "book/chapters/findings.html").read_text()
    assert 'href="glossary.html"' in landing


@pytest.mark.slow
def test_no_built_file_names_a_folder_of_the_machine_that_built_it(built_book):
    """Pages, and the notebook sources the book offers for download, name paths relative to the project."""
    machine = str(built_book.project.resolve())
    offenders = [
        str(path.relative_to(built_book.html))
        for path in built_book.html.rglob("*")
        if path.is_file() and path.suffix in {".html", ".ipynb", ".md", ".txt"} and machine in path.read_text(errors="ignore")
    ]
    assert offenders == []


@pytest.mark.slow
def test_glued_figures_are_pngs_in_the_notebook_and_the_html(built_book):
    chapter = nbformat.read(built_book.project / "book/chapters/dataset_statistics.ipynb", as_version=4)
    glued = {
        output.metadata["scrapbook"]["name"]: output.data
        for cell in chapter.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if "scrapbook" in output.get("metadata", {})
    }
    for key in GLUED_FIGURES:
        png = glued[key].get("application/papermill.record/image/png")
        assert png is not None, f"glued figure {key} has no PNG (was a backend forced?)"
        assert base64.b64decode(png).startswith(PNG_MAGIC)
    page = (built_book.html / "book/chapters/dataset_statistics.html").read_text()
    sources = re.findall(r'<img[^>]+src="([^"]+)"', page)
    assert len(sources) >= len(GLUED_FIGURES)
    for source in sources:
        assert (built_book.html / "book/chapters" / source).resolve().read_bytes().startswith(PNG_MAGIC)
    assert "glue:" not in page  # every glue reference was resolved


@pytest.mark.slow
def test_rebuild_without_changes_reexecutes_nothing(built_book):
    chapter = built_book.project / "book/chapters/dataset_statistics.ipynb"
    before = chapter.stat().st_mtime_ns
    log: list[str] = []
    start = time.perf_counter()
    with fixed_library_digest():
        build_book(project_root=built_book.project, log=log.append)
    print(f"\nno-change rebuild of the book: {time.perf_counter() - start:.1f} s")
    assert "dataset_statistics: unchanged, not re-executed" in log
    assert chapter.stat().st_mtime_ns == before


@pytest.mark.slow
def test_the_notebook_rejects_an_unknown_parameter(tmp_path):
    report = Report(template="notebooks/dataset_statistics.ipynb", chapter="stats", parameters={"datasetz": ["synthetic"]})
    with pytest.raises(BookBuildError, match=r"unknown notebook parameter\(s\): datasetz") as failure:
        book.execute_report(report, REPO, tmp_path / "book", tmp_path / "runs", tmp_path / "results", lambda _: None)
    assert "stats.failed.ipynb" in str(failure.value)
    assert not (tmp_path / "book" / "chapters" / "stats.ipynb").exists()


@pytest.mark.slow
def test_a_build_warning_fails_with_the_warning_in_the_message(tmp_path):
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(REPO / name, tmp_path / name)
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: book/intro\n")
    (tmp_path / "book").mkdir()
    (tmp_path / "book" / "intro.md").write_text("# Intro\n\nA number: {glue:text}`no_such_key`\n")
    with pytest.raises(BookBuildError, match="no_such_key"):
        build_book(project_root=tmp_path, reports=(), log=lambda _: None)


def test_a_study_report_without_complete_runs_becomes_a_placeholder_page(tmp_path):
    template = tmp_path / "notebooks" / "report.ipynb"
    template.parent.mkdir()
    template.write_text("{}")  # never executed: there is nothing to report on
    report = Report(template="notebooks/report.ipynb", chapter="my_study", studies=("my_study",))
    messages = []
    ran = book.execute_report(report, tmp_path, tmp_path / "book", tmp_path / "runs", tmp_path / "results", messages.append)
    page = tmp_path / "book" / "chapters" / "my_study.md"
    assert not ran and page.is_file()
    assert "normtest run params/my_study.yml --profile smoke" in page.read_text()
    assert "placeholder" in messages[0]


def test_report_digest_follows_every_file_of_the_folders_a_report_reads(tmp_path):
    template = tmp_path / "report.ipynb"
    template.write_text("{}")
    reads = [tmp_path / "results" / "dataset_statistics"]
    absent = book.report_digest(template, {}, [], (), reads)
    assert absent == book.report_digest(template, {}, [], ())  # a folder not there reads as nothing
    record = reads[0] / "local" / "cifar10-jpeg.json"
    record.parent.mkdir(parents=True)
    record.write_text('{"format": 1}')
    digest = book.report_digest(template, {}, [], (), reads)
    assert digest != absent
    record.write_text('{"format": 1, "n_images": 2}')
    assert book.report_digest(template, {}, [], (), reads) != digest


def test_reports_that_read_committed_statistics_get_the_results_root(tmp_path, monkeypatch):
    executed = []
    monkeypatch.setattr(book, "_execute_notebook", lambda template, chapter, parameters, cwd: executed.append(parameters))
    template = tmp_path / "notebooks" / "stats.ipynb"
    template.parent.mkdir()
    template.write_text("{}")
    report = Report(template="notebooks/stats.ipynb", chapter="stats", reads=("dataset_statistics",))
    assert book.execute_report(report, tmp_path, tmp_path / "book", tmp_path / "runs", tmp_path / "results", lambda _: None)
    assert executed == [{"results_root": "results"}]  # relative to the project, and no runs_root
    datasets = {r.chapter: r.reads for r in book.REPORTS}
    assert datasets["dataset_statistics"] == datasets["input_normalization"] == ("dataset_statistics",)


def test_reports_run_one_per_worker_at_a_time_and_all_finish_before_a_failure_is_raised(tmp_path, monkeypatch):
    running, most, finished = [0], [0], []
    guard = threading.Lock()
    both_started = threading.Barrier(2, timeout=10)

    def fake_execute(report, project, book_dir, runs_root, results_root, log):
        with guard:
            running[0] += 1
            most[0] = max(most[0], running[0])
        if report.chapter in ("a", "b"):
            both_started.wait()  # the first two run side by side, or this times out
        time.sleep(0.05)
        with guard:
            running[0] -= 1
            finished.append(report.chapter)
        if report.chapter == "b":
            raise BookBuildError("b failed")
        return True

    monkeypatch.setattr(book, "execute_report", fake_execute)
    reports = [Report(template="t.ipynb", chapter=name) for name in "abcde"]
    with pytest.raises(BookBuildError, match="b failed"):
        book.execute_reports(reports, tmp_path, tmp_path / "book", tmp_path / "runs", tmp_path / "results", workers=2)
    assert most[0] == 2
    assert sorted(finished) == list("abcde")  # the failure stopped nothing already queued half-way


def test_a_report_kernel_runs_in_the_project_and_the_builder_stays_where_it_was(tmp_path):
    template = tmp_path / "where.ipynb"
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import os\nprint(os.getcwd())")])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, template)
    project, before = tmp_path / "project", os.getcwd()
    project.mkdir()
    chapter = tmp_path / "book" / "where.ipynb"
    book._execute_notebook(template, chapter, {}, project)
    printed = nbformat.read(chapter, as_version=4).cells[0].outputs[0]["text"].strip()
    assert Path(printed).resolve() == project.resolve()
    assert os.getcwd() == before  # no process-wide chdir, which the other reports' threads would share
