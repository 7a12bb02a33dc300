"""``normtest book``: run the report notebooks and build the Jupyter Book.

Four steps, each skipped when it has nothing to do:

1. optionally, the ``smoke`` profile of every ``params/*.yml`` grid;
2. each report notebook template in :data:`REPORTS`, executed with papermill
   (one report per core at a time) into ``book/chapters/<name>.ipynb``, unless neither the template, its
   parameters, the results it reads nor the library changed since the stamp
   written by the last successful execution;
3. the references page ``book/chapters/references.md`` (from
   :mod:`normtest_lib.report.references`), the run index ``book/chapters/runs.md`` and a copy of
   every executed run notebook under ``book/runs/<source>/<study>/<profile>/<run id>.ipynb``
   (found by the ``book/runs/**`` glob in ``_toc.yml``);
4. ``jupyter-book build`` with execution off, warnings treated as errors.

Everything under ``book/chapters/``, ``book/runs/`` and ``book/_build/`` is
generated. Files are only rewritten when their content changes, so Sphinx's
incremental build re-reads only what changed.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import nbformat
import pandas as pd

from .. import __version__
from ..config import EXECUTION_ONLY_KEYS, RunConfig
from ..convergence import NOT_JUDGED
from ..errors import NormtestError
from ..io import relative_path, write_json, write_text
from ..run_files import VERIFICATION
from .converged import add_convergence
from .references import references_markdown
from .results import RUN_NOTEBOOK, collect_runs, param_columns
from .tables import MISSING_TEXT

Log = Callable[[str], None]

# The grids whose runs the book reports on (params/<study>.yml); the reproducibility appendix covers them all.
STUDIES: tuple[str, ...] = ("quickstart", "input_normalization", "normalization_layers", "convnorm_label_noise")


class BookBuildError(NormtestError):
    """A step of the book build failed; the message says which and where to look."""


@dataclass(frozen=True)
class Report:
    """A report notebook template and the chapter it becomes.

    ``parameters`` are passed to papermill (the template's defaults apply to
    the rest); ``studies`` names the run folders (``<root>/<study>/``) whose
    ``summary.json`` and ``history.csv`` it reads: their content is part of the
    stamp, and ``runs_root``/``results_root`` are passed to it as parameters.
    ``reads`` names other folders under ``results_root`` whose files it reads
    (the committed data set statistics): every file's content is part of the
    stamp, and ``results_root`` is passed.
    """

    template: str
    chapter: str
    parameters: dict[str, Any] = field(default_factory=dict)
    studies: tuple[str, ...] = ()
    reads: tuple[str, ...] = ()


# The one list of report notebooks; a study's report is added here with its studies. They run one per
# core in this order (the table of contents orders the book), so the longest comes first.
REPORTS: tuple[Report, ...] = (
    # The errata of all three studies' earlier works, with evidence from their runs and the real data sets'
    # whole training splits; the study chapters link to it.
    Report(
        template="notebooks/errata.ipynb",
        chapter="errata",
        studies=("input_normalization", "normalization_layers", "convnorm_label_noise"),
    ),
    # The landing page: each study's answer, from the same runs as the study chapters below.
    Report(template="notebooks/findings.ipynb", chapter="findings",
           studies=("input_normalization", "normalization_layers", "convnorm_label_noise")),
    Report(template="notebooks/dataset_statistics.ipynb", chapter="dataset_statistics", reads=("dataset_statistics",)),
    Report(template="notebooks/grid_report.ipynb", chapter="quickstart", parameters={"study": "quickstart"}, studies=("quickstart",)),
    Report(template="notebooks/input_normalization.ipynb", chapter="input_normalization", studies=("input_normalization",),
           reads=("dataset_statistics",)),
    Report(template="notebooks/normalization_layers.ipynb", chapter="normalization_layers", studies=("normalization_layers",)),
    Report(template="notebooks/convnorm_label_noise.ipynb", chapter="convnorm_label_noise", studies=("convnorm_label_noise",)),
    Report(
        template="notebooks/reproducibility.ipynb", chapter="reproducibility", parameters={"studies": list(STUDIES)}, studies=STUDIES
    ),
    # What every name in a table means, read from the library's registries and run schema: it reads no runs.
    Report(template="notebooks/glossary.ipynb", chapter="glossary"),
)

RUN_INDEX = "runs.md"
REFERENCES_PAGE = "references.md"  # every work the book cites (report/references.py), listed in _toc.yml
# The run files a report's stamp follows (environment.json: the reproducibility appendix reads each start).
DIGESTED_RUN_FILES = frozenset({"summary.json", "history.csv", "probes.csv", "environment.json"})
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")  # Sphinx colours its warnings
KERNEL = "python3"


def build_book(
    *,
    run_smoke: bool = False,
    runs_root: str | Path = "runs",
    results_root: str | Path = "results",
    book_dir: str | Path = "book",
    project_root: str | Path = ".",
    reports: Sequence[Report] = REPORTS,
    log: Log = print,
) -> Path:
    """Build the book and return the path of its HTML ``index.html``.

    Relative paths are taken from ``project_root``, the folder holding
    ``_config.yml`` and ``_toc.yml`` (the repository root).
    """
    project = Path(project_root).resolve()
    for name in ("_config.yml", "_toc.yml"):
        if not (project / name).is_file():
            raise BookBuildError(f"no {name} in {project}: run `normtest book` from the repository root")
    runs_root, results_root, book_dir = (project / Path(p) for p in (runs_root, results_root, book_dir))
    if not book_dir.resolve().is_relative_to(project):
        raise BookBuildError(f"book_dir {book_dir} must lie inside {project}, where _toc.yml finds its pages")
    if run_smoke:
        run_smoke_profiles(project / "params", runs_root, log)
    execute_reports(reports, project, book_dir, runs_root, results_root, log)
    doc_prefix = "/" + book_dir.resolve().relative_to(project).as_posix()
    studies = tuple(dict.fromkeys(study for report in reports for study in report.studies))
    write_references_page(book_dir)
    write_run_pages(collect_runs(runs_root, results_root), book_dir, doc_prefix, log, studies=studies)
    return build_html(project, book_dir, log)


# --- 1. smoke runs ----------------------------------------------------------


def run_smoke_profiles(params_dir: Path, runs_root: Path, log: Log = print) -> None:
    """Run the ``smoke`` profile of every grid in ``params_dir``; nothing when there is none."""
    grids = sorted(params_dir.glob("*.yml"))
    if not grids:
        log(f"no grids in {params_dir}: no smoke runs")
        return
    from ..grid.executors import cpu_count
    from ..grid.runner import run_grid

    # Smoke runs are small CPU runs (gpus=[]: never pinned to, nor limited by, the GPUs
    # of the machine): one single-threaded worker per usable core is the fastest split.
    workers = cpu_count()
    failures = []
    for grid in grids:
        log(f"smoke profile of {grid.name}")
        # Relative to the working directory (the project root under `normtest book`), the run
        # folders' notebooks and parameters name no folder of this machine.
        report = run_grid(grid, "smoke", runs_root=relative_path(runs_root), workers=workers, gpus=[], log=log)
        if report.failed or report.exit_code:
            folders = [str(record.run_dir) for record in report.records if record.status == "failed"]
            failures.append(f"{grid}: {len(folders)} failed run(s): {', '.join(folders)}")
    if failures:
        # A book built on top would show a placeholder where a chapter should be.
        raise BookBuildError(
            "smoke runs failed (each run folder's summary.json holds the error, run_experiment.ipynb the traceback):\n"
            + "\n".join(failures)
        )


# --- 2. report notebooks -----------------------------------------------------


def chapters_dir(book_dir: Path) -> Path:
    return book_dir / "chapters"


def execute_reports(
    reports: Sequence[Report],
    project: Path,
    book_dir: Path,
    runs_root: Path,
    results_root: Path,
    log: Log = print,
    workers: int | None = None,
) -> list[bool]:
    """:func:`execute_report` for each of ``reports``, ``workers`` (default: one per core) at a time.

    Each report runs in its own kernel, and most of a report's time is its
    kernel's, so threads that wait on them suffice. Every report is finished or
    failed before this returns; a failure raises the first :class:`BookBuildError`
    (in ``reports`` order) after the others are done, so no kernel outlives it.
    """
    from concurrent.futures import ThreadPoolExecutor

    from ..grid.executors import cpu_count

    workers = max(1, min(workers or cpu_count(), len(reports) or 1))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="report") as pool:
        futures = [pool.submit(execute_report, r, project, book_dir, runs_root, results_root, log) for r in reports]
    return [future.result() for future in futures]  # the first failure, in ``reports`` order, raises


def execute_report(report: Report, project: Path, book_dir: Path, runs_root: Path, results_root: Path, log: Log = print) -> bool:
    """Execute ``report`` into its chapter unless its stamp is current; True when it ran."""
    template = project / report.template
    if not template.is_file():
        raise BookBuildError(f"report template {template} does not exist (listed in normtest_lib.report.book.REPORTS)")
    chapter = chapters_dir(book_dir) / f"{report.chapter}.ipynb"
    placeholder = chapter.with_suffix(".md")
    stamp = chapter.with_suffix(".stamp.json")
    parameters = dict(report.parameters)
    if report.reads:
        parameters.update(results_root=str(relative_path(results_root, project)))
    if report.studies:
        # Relative to the project, where the notebook runs: a chapter shows no folder of the machine.
        parameters.update(
            runs_root=str(relative_path(runs_root, project)), results_root=str(relative_path(results_root, project))
        )
        if not _has_complete_runs(report.studies, (runs_root, results_root)):
            # The chapter keeps its place in the table of contents and says how to fill it.
            log(f"{report.chapter}: no complete runs of {', '.join(report.studies)} yet; placeholder page")
            for stale in (chapter, stamp):
                stale.unlink(missing_ok=True)
            _write_if_changed(placeholder, _placeholder_page(report))
            return False
    placeholder.unlink(missing_ok=True)
    digest = report_digest(template, parameters, report.studies, (runs_root, results_root), _read_folders(report, results_root))
    if chapter.is_file() and stamp.is_file() and _read_stamp(stamp) == digest:
        log(f"{report.chapter}: unchanged, not re-executed")
        return False
    log(f"{report.chapter}: executing {report.template}")
    stamp.unlink(missing_ok=True)  # no stamp may outlive the chapter it vouched for
    _execute_notebook(template, chapter, parameters, project)
    write_json(stamp, {"digest": digest, "template": report.template})
    return True


def _has_complete_runs(studies: Iterable[str], roots: Iterable[Path]) -> bool:
    runs = collect_runs(*roots)
    return bool(len(runs)) and bool(((runs["study"].isin(list(studies))) & (runs["status"] == "complete")).any())


def _placeholder_page(report: Report) -> str:
    commands = "\n".join(f"normtest run params/{study}.yml --profile smoke" for study in report.studies)
    return (
        f"# {report.chapter.replace('_', ' ').capitalize()}\n\n"
        "This chapter is computed from the runs of its grid, and there are none yet. Run\n\n"
        f"```bash\n{commands}\nnormtest book\n```\n\n"
        "or build the book with `normtest book --run-smoke` (what `make book` does).\n"
    )


def _execute_notebook(template: Path, chapter: Path, parameters: dict[str, Any], cwd: Path) -> None:
    """papermill ``template`` into ``chapter``; a failed execution is kept as ``<name>.failed.ipynb``."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    running = chapter.with_name(f".{chapter.stem}.running.ipynb")
    failed = chapter.with_suffix(".failed.ipynb")
    chapter.parent.mkdir(parents=True, exist_ok=True)
    try:
        # The kernel starts in ``cwd`` (nbclient's resources path), not papermill's ``cwd=``: that
        # one changes the whole process's directory, which other reports' threads share.
        papermill.execute_notebook(
            str(template), str(running), parameters=parameters, kernel_name=KERNEL, progress_bar=False,
            resources={"metadata": {"path": str(cwd)}},
        )
    except PapermillExecutionError as exc:
        running.replace(failed)
        raise BookBuildError(
            f"{template} failed in cell {exc.exec_count} with {exc.ename}: {exc.evalue}\n"
            f"the executed notebook, traceback included, is {failed}"
        ) from None
    else:
        _prepare_chapter(running, cwd, {"input_path": template, "output_path": chapter})
        running.replace(chapter)
    finally:
        running.unlink(missing_ok=True)
    failed.unlink(missing_ok=True)


# Cells a reader of a chapter does not need open: the template's parameters and papermill's injected ones.
PARAMETER_TAGS = frozenset({"parameters", "injected-parameters"})
COLLAPSED = "hide-input"


def _prepare_chapter(notebook_path: Path, project: Path, paths: dict[str, Path]) -> None:
    """Make an executed chapter fit to publish: ``paths`` recorded in its papermill metadata
    relative to ``project`` (the chapter is downloadable from the book, and must name no folder of
    the machine that built it), and its parameter cells collapsed like the rest of its code."""
    notebook = nbformat.read(notebook_path, as_version=4)
    recorded = notebook.metadata.get("papermill", {})
    for key, path in paths.items():
        recorded[key] = str(relative_path(path, project))
    for cell in notebook.cells:
        tags = cell.metadata.get("tags", [])
        if PARAMETER_TAGS & set(tags) and COLLAPSED not in tags:
            cell.metadata["tags"] = [*tags, COLLAPSED]
    nbformat.write(notebook, notebook_path)


def _read_stamp(path: Path) -> str | None:
    try:
        return json.loads(path.read_text()).get("digest")
    except (ValueError, OSError, AttributeError):
        return None


def report_digest(
    template: Path, parameters: dict[str, Any], studies: Iterable[str], roots: Iterable[Path], reads: Iterable[Path] = ()
) -> str:
    """A hash of everything a report's output depends on; ``reads``: folders whose every file counts."""
    digest = hashlib.sha256()
    digest.update(template.read_bytes())
    digest.update(json.dumps(parameters, sort_keys=True, default=str).encode())
    digest.update(library_digest().encode())
    for root in roots:
        for study in sorted(studies):
            for path in sorted((root / study).glob("*/*/*")):
                if path.name in DIGESTED_RUN_FILES:
                    digest.update(str(path.relative_to(root)).encode())
                    digest.update(path.read_bytes())
            for path in sorted((root / study).glob(f"*/{VERIFICATION}")):  # the appendix shows the last verification
                digest.update(str(path.relative_to(root)).encode())
                digest.update(path.read_bytes())
    for folder in reads:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and not path.name.startswith("."):
                digest.update(str(path.relative_to(folder)).encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()


def _read_folders(report: Report, results_root: Path) -> list[Path]:
    return [results_root / folder for folder in report.reads]


def library_digest() -> str:
    """The package version and a hash of every source file of ``normtest_lib``."""
    return source_digest(Path(__file__).resolve().parents[1], __version__)


def source_digest(folder: Path, salt: str = "") -> str:
    """A hash of the names and contents of every ``.py`` file under ``folder``."""
    digest = hashlib.sha256(salt.encode())
    for path in sorted(folder.rglob("*.py")):
        digest.update(str(path.relative_to(folder)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


# --- 3. the references page and the run pages ---------------------------------


def write_references_page(book_dir: Path) -> Path:
    """``book/chapters/references.md``: the one list of cited works, with a target per entry that chapters link to."""
    page = chapters_dir(book_dir) / REFERENCES_PAGE
    _write_if_changed(page, references_markdown())
    return page



def run_page_docname(row: dict[str, Any]) -> str:
    """Where a run's notebook page lives, relative to the book's source root, without suffix."""
    return f"runs/{row['source']}/{row['study']}/{row['profile']}/{row['run_id']}"


def write_run_pages(
    runs: pd.DataFrame, book_dir: Path, doc_prefix: str = "/book", log: Log = print, studies: Iterable[str] = ()
) -> Path:
    """Copy each executed run notebook into ``book/runs/`` and write the run index page.

    ``doc_prefix`` is ``book_dir`` as a docname relative to the book's source
    root (for the index's links). Copies of runs that are gone are removed.
    ``studies`` get a section (and its link target) even without runs.
    Returns the index page's path.
    """
    pages_root = book_dir / "runs"
    pages: dict[str, Path] = {}  # run folder -> its page
    for row in runs.to_dict("records"):
        if not row["has_notebook"]:
            continue
        try:
            text = run_page_notebook(Path(row["path"]) / RUN_NOTEBOOK, row)
        except (ValueError, OSError, nbformat.ValidationError) as exc:
            # A run still being written (or a damaged copy) gets no page, and the book still builds.
            log(f"run {row['path']}: notebook not readable, no page ({type(exc).__name__})")
            continue
        pages[row["path"]] = book_dir / f"{run_page_docname(row)}.ipynb"
        _write_if_changed(pages[row["path"]], text)
    if pages_root.is_dir():
        for stale in set(pages_root.rglob("*.ipynb")) - set(pages.values()):
            stale.unlink()
    index = chapters_dir(book_dir) / RUN_INDEX
    _write_if_changed(index, run_index_markdown(runs, doc_prefix, linked=set(pages), studies=studies))
    log(f"run index: {len(runs)} run folder(s), {len(pages)} run notebook(s)")
    return index


def run_page_notebook(source: Path, row: dict[str, Any]) -> str:
    """The run's executed notebook with a first cell that names the run (its page title)."""
    notebook = nbformat.read(source, as_version=4)
    title = nbformat.v4.new_markdown_cell(
        f"# Run `{row['run_id']}`\n\n"
        f"Study `{row['study']}`, profile `{row['profile']}`, from `{row['source']}/`; status **{row['status']}**. "
        "The cells below are the run's executed notebook as it was written to its run folder."
    )
    if notebook.nbformat_minor >= 5:
        title["id"] = "normtest-run-title"  # fixed, so that an unchanged run gives an unchanged page
    else:
        title.pop("id", None)  # cell ids exist from nbformat 4.5 on
    notebook.cells.insert(0, title)
    return nbformat.writes(notebook)


def run_index_target(study: str, profile: str | None = None) -> str:
    """The MyST label of a study's section of the run index (or of one profile's table in it),
    which other pages link to with ``{ref}``: ``runs-<study>`` or ``runs-<study>-<profile>``."""
    return f"runs-{study}" + (f"-{profile}" if profile else "")


def run_index_markdown(
    runs: pd.DataFrame, doc_prefix: str = "/book", linked: set[str] | None = None, studies: Iterable[str] = ()
) -> str:
    """The run index page: a section per study (each of ``studies`` too, when it has no run yet),
    one table per profile in it, one row per run folder.

    A row says what sets the run apart from the other runs of its table (the
    parameters that differ between them, as text: ``label_noise 0.2, seed 1``),
    its status, its test accuracy at the best validation epoch, whether it
    converged (:func:`normtest_lib.convergence.verdict`) and, where it has one,
    links to its page. A run links to its page when its folder is in ``linked``
    (by default: when it has an executed notebook).
    """
    if linked is None:
        linked = set(runs.loc[runs["has_notebook"].astype(bool), "path"]) if not runs.empty else set()
    lines = [
        "# Runs",
        "",
        "Every run folder found under `runs/` (local runs) and `results/` (committed runs on real data) "
        "when this book was built, one table per study and profile. A run id links to its executed notebook "
        "where the run wrote one. *parameters* names what sets a run apart from the other runs of its table: "
        "the parameters whose values differ between them, less those a run leaves unset (or predates). Runs "
        "that differ only in their seed are next to each other. *converged* is the verdict of the book's convergence rule, stated on "
        f"{{doc}}`the landing page <{doc_prefix}/chapters/findings>`; a run that did not complete is not judged.",
        "",
    ]
    if runs.empty:
        lines += [
            "No run folders were found. `make book` runs every grid's smoke profile first; "
            "`normtest run` runs a grid's profile.",
            "",
        ]
    params = _in_config_order([c for c in param_columns(runs) if c not in EXECUTION_ONLY_KEYS]) if not runs.empty else []
    present = sorted(runs["study"].unique()) if not runs.empty else []
    for study in sorted(set(present) | set(studies)):
        lines += [f"({run_index_target(study)})=", f"## {study}", ""]
        if study not in present:
            lines += [f"No runs yet: `normtest run params/{study}.yml --profile smoke` makes some.", ""]
            continue
        lines += _profile_tables(add_convergence(runs[runs["study"] == study]), study, params, doc_prefix, linked)
    return "\n".join(lines)


def _profile_tables(runs: pd.DataFrame, study: str, params: list[str], doc_prefix: str, linked: set[str]) -> list[str]:
    lines = []
    for profile, group in runs.groupby("profile", sort=True):
        varying = [c for c in params if group[c].astype(str).nunique(dropna=False) > 1]
        header = ["run", *(["parameters"] if varying else []), "status", ACCURACY_HEADER, "converged"]
        # The accuracy right-aligned (---:), text left.
        alignment = ["---", *(["---"] if varying else []), "---", "---:", "---"]
        # A {table} directive only to give the table a class: the book's CSS wraps its text cells
        # (book/_static/normtest.css), where number tables keep one line per cell.
        lines += [f"({run_index_target(study, str(profile))})=", f"### {study} / {profile}", "",
                  f"```{{table}}", f":class: {RUN_INDEX_CLASS}", "", _table_row(header), _table_row(alignment)]
        for row in _by_parameters(group, varying).to_dict("records"):
            link = f"`{row['run_id']}`"
            if row["path"] in linked:
                link = f"{{doc}}`{row['run_id']} <{doc_prefix}/{run_page_docname(row)}>`"
            parameters = [parameters_text(row, varying)] if varying else []
            cells = [link, *parameters, row["status"], _percent(row.get("test_acc_at_best_val")), _converged_text(row)]
            lines.append(_table_row(cells))
        lines += ["```", ""]
    return lines


def _in_config_order(names: list[str]) -> list[str]:
    """``names`` in the order RunConfig declares its fields (data, model, training, ...), unknown ones last:
    the same order in every row and table, whichever run's ``params.yaml`` was read first."""
    declared = {name: position for position, name in enumerate(RunConfig.model_fields)}
    return sorted(names, key=lambda name: declared.get(name, len(declared)))


def _by_parameters(runs: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """``runs`` ordered by the parameters ``names`` (numbers as numbers, the rest as text), the run id last,
    so that the seeds of one setting are next to each other; unset values last."""
    def order(column: pd.Series) -> pd.Series:
        return column if pd.api.types.is_numeric_dtype(column) else column.map(lambda v: None if _is_missing(v) else str(v))

    return runs.sort_values([*names, "run_id"], key=order, na_position="last", kind="stable")


ACCURACY_HEADER = "test acc. at best val (%)"
RUN_INDEX_CLASS = "run-index"
# Between a parameter's name and its value: a line of the parameters column breaks only between parameters.
NO_BREAK_SPACE = "\u00a0"


def parameters_text(row: dict[str, Any], names: Sequence[str]) -> str:
    """``label_noise 0.2, conv_layer convnorm:1600``: each of ``names`` the run sets, with its value as a reader
    writes it (a list as its items joined by +, yes/no for a flag), name and value joined by a no-break space;
    "–" when it sets none of them."""
    parts = [f"{name}{NO_BREAK_SPACE}{_readable_value(row.get(name))}" for name in names if not _is_missing(row.get(name))]
    return ", ".join(parts) if parts else MISSING_TEXT


def _readable_value(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):  # collect_runs reads lists as tuples: never show their repr
        return " + ".join(_readable_value(item) for item in value) if value else "none"
    if isinstance(value, dict):
        return " + ".join(f"{key} {_readable_value(item)}" for key, item in value.items()) if value else "none"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _converged_text(row: dict[str, Any]) -> str:
    """yes or no, from the verdict :func:`add_convergence` added; "not judged" where the rule judged nothing
    (a run that did not complete, or one without a finite training loss)."""
    if str(row.get("convergence", "")).startswith(NOT_JUDGED):
        return NOT_JUDGED
    return "yes" if row.get("converged") else "no"


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and pd.isna(value))


def _percent(fraction: Any) -> str:
    return MISSING_TEXT if _is_missing(fraction) else f"{100 * float(fraction):.1f}"


def _table_row(cells: list[Any]) -> str:
    return "| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in cells) + " |"


def _write_if_changed(path: Path, text: str) -> bool:
    if path.is_file() and path.read_text() == text:
        return False
    write_text(path, text)
    return True


# --- 4. HTML ----------------------------------------------------------------


def jupyter_book_executable() -> Path:
    """``jupyter-book`` of the environment running this Python."""
    executable = Path(sys.executable).parent / "jupyter-book"
    if not executable.is_file():
        found = shutil.which("jupyter-book")
        if found is None:
            raise BookBuildError(f"jupyter-book is not installed next to {sys.executable}; install the project (make install)")
        executable = Path(found)
    return executable


def build_html(project: Path, book_dir: Path, log: Log = print) -> Path:
    """``jupyter-book build`` into ``book_dir/_build/html``; warnings fail the build."""
    command = [str(jupyter_book_executable()), "build", str(project), "--path-output", str(book_dir), "-W", "--keep-going"]
    log("jupyter-book build")
    result = subprocess.run(command, cwd=project, capture_output=True, text=True)
    output = ANSI_ESCAPE.sub("", result.stdout + result.stderr)
    index = book_dir / "_build" / "html" / "index.html"
    if result.returncode != 0 or not index.is_file():
        problems = [line for line in output.splitlines() if "WARNING" in line or "ERROR" in line or "Error" in line]
        detail = "\n".join(problems[-30:] or output.splitlines()[-30:])
        raise BookBuildError(f"jupyter-book build failed (exit {result.returncode}):\n{detail}")
    return index
