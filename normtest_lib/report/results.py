"""Read run folders into pandas.

A run folder is ``<root>/<study>/<profile>/<run id>/`` (ARCHITECTURE.md, "A
run"); ``runs/`` holds local runs and ``results/`` the committed real-data
runs in the same layout. Folders may be half-written (a run in progress, a
crash, a partial copy): every reader here tolerates that, records what was
wrong in a ``problem`` column, and never raises for one bad folder.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from ..grid.runner import GRID_INDEX_NAME
from ..run_files import HISTORY, PARAMS, PROBES, RUN_NOTEBOOK, SUMMARY
from .protocol import PRETRAINED_RUN

# Columns describing where a run lives; params and summary keys follow them.
LOCATION_COLUMNS = ["study", "profile", "run_id", "source", "path"]
MISSING = "missing"
PREFERRED_SOURCE = "results"  # where committed runs live; their copy wins over a local one
PREVIOUS = "previous"  # a folder of superseded records, beside the runs that replace them: never read
# Column: the run is one of its profile's pretraining runs, as the grid.json beside it records them.
PRETRAINING = "pretraining_run"


def find_run_folders(root: str | Path) -> list[Path]:
    """Every ``<study>/<profile>/<run id>`` folder under ``root``, sorted; none if ``root`` is absent.

    Hidden folders (a leading dot, as temporary folders use) are skipped, and so are folders named
    ``previous`` (:data:`PREVIOUS`) at any of the three levels: they keep records that the current
    code no longer reproduces (a corrected layer, a stale run), which no chapter shows as evidence.
    """
    root = Path(root)
    if not root.is_dir():
        return []
    folders = []
    for study in _visible_dirs(root):
        for profile in _visible_dirs(study):
            folders.extend(_visible_dirs(profile))
    return folders


def superseded_runs(root: str | Path, study: str) -> pd.DataFrame:
    """The records kept under ``<root>/<study>/<profile>/previous/``: one row per run, as :func:`collect_runs`
    reads a run, with ``profile`` the profile they were made for. Only the errata chapter's "Corrections to
    this book" reads them, to say which runs a correction took out of the book."""
    records = []
    study_dir = Path(root) / study
    for profile in _visible_dirs(study_dir) if study_dir.is_dir() else []:
        previous = profile / PREVIOUS
        for folder in _visible_dirs(previous) if previous.is_dir() else []:
            record, _ = read_run(folder, Path(root).name)
            record.update(study=study, profile=profile.name)
            records.append(record)
    return pd.DataFrame.from_records(records, columns=None if records else [*LOCATION_COLUMNS, "status"])


def _visible_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".") and p.name != PREVIOUS)


def read_run(folder: str | Path, source: str = "") -> tuple[dict[str, Any], list[str]]:
    """One run folder as a flat record (location, every param, every summary key) and its param names.

    ``status`` comes from ``summary.json``; a folder without a readable one has
    status ``missing`` and says why in ``problem``. Summary keys that clash
    with a param or location column get a ``summary_`` prefix.
    """
    folder = Path(folder)
    profile_dir = folder.parent
    record: dict[str, Any] = {
        "study": profile_dir.parent.name,
        "profile": profile_dir.name,
        "run_id": folder.name,
        "source": source,
        "path": str(folder),
    }
    problems = []
    params, problem = _read_mapping(folder / PARAMS, yaml.safe_load)
    if problem:
        problems.append(problem)
    param_keys = [key for key in params if key not in record]
    for key in param_keys:
        record[key] = _hashable(params[key])
    summary, problem = _read_mapping(folder / SUMMARY, json.loads)
    if problem:
        problems.append(problem)
    record["status"] = summary.pop("status", None) or MISSING
    for key, value in summary.items():
        record["summary_" + key if key in record else key] = _hashable(value)
    record["has_notebook"] = (folder / RUN_NOTEBOOK).is_file()
    record["problem"] = "; ".join(problems) or None
    return record, param_keys


def _read_mapping(path: Path, parse) -> tuple[dict[str, Any], str | None]:
    """A YAML/JSON mapping from ``path``, or ({}, why not) for an absent, partial or odd file."""
    if not path.is_file():
        return {}, f"{path.name} absent"
    try:
        data = parse(path.read_text())
    except (ValueError, yaml.YAMLError, UnicodeDecodeError) as exc:
        return {}, f"{path.name} unreadable ({type(exc).__name__})"
    if not isinstance(data, dict):
        return {}, f"{path.name} is not a mapping"
    return data, None


def _hashable(value: Any) -> Any:
    # Lists (milestones) become tuples so that grouping by any column works.
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return value


def collect_runs(*roots: str | Path) -> pd.DataFrame:
    """One row per run folder under each of ``roots`` (default ``runs`` and ``results``).

    Columns: study, profile, run_id, source (the root's folder name), path,
    every param of ``params.yaml``, status and every other ``summary.json``
    key, has_notebook, problem, and :data:`PRETRAINING` (the run is one of its profile's pretraining
    runs, :func:`grid_pretraining_ids`). Rows are sorted by study, profile, run_id, source.
    A run found under more than one root (the same study, profile and run id)
    appears once, see :func:`drop_duplicate_runs`.
    """
    roots = roots or ("runs", "results")
    records, params = [], {}
    sources: dict[Path, set[str]] = {}
    for root in roots:
        for folder in find_run_folders(root):
            record, param_keys = read_run(folder, Path(root).name)
            if folder.parent not in sources:
                sources[folder.parent] = grid_pretraining_ids(folder.parent)
            record[PRETRAINING] = folder.name in sources[folder.parent]
            params.update(dict.fromkeys(param_keys))
            records.append(record)
    if not records:
        frame = pd.DataFrame(columns=[*LOCATION_COLUMNS, "status", "has_notebook", "problem", PRETRAINING])
    else:
        frame = pd.DataFrame.from_records(records)
        frame = frame.sort_values(["study", "profile", "run_id", "source"], kind="stable").reset_index(drop=True)
        frame = drop_duplicate_runs(frame)
    frame.attrs["param_columns"] = list(params)
    return frame


def grid_pretraining_ids(profile_dir: str | Path) -> set[str]:
    """The ids of the pretraining runs that the ``grid.json`` in ``profile_dir`` records (``pretrains``, or an
    older file's one ``pretrain``); empty without a readable file."""
    try:
        index = json.loads((Path(profile_dir) / GRID_INDEX_NAME).read_text())
    except (OSError, ValueError):
        return set()
    if not isinstance(index, dict):
        return set()
    entries = index.get("pretrains") if isinstance(index.get("pretrains"), list) else [index.get("pretrain")]
    return {str(entry["id"]) for entry in entries if isinstance(entry, dict) and "id" in entry}


def pretraining_run_ids(runs: pd.DataFrame) -> list[str]:
    """The ids of a frame's pretraining runs, sorted: the runs other runs start from (named in their
    ``pretrained`` path, ``.../<run id>/best.pt``) and the runs their grid records as pretraining runs
    (:data:`PRETRAINING`), so that a source is known as one before any run started from it is here."""
    if runs.empty:
        return []
    ids: set[str] = set()
    if "pretrained" in runs.columns:
        ids |= {str(run) for run in runs["pretrained"].astype(str).str.extract(PRETRAINED_RUN)["run"].dropna()}
    if PRETRAINING in runs.columns and "run_id" in runs.columns:
        ids |= {str(run) for run in runs.loc[runs[PRETRAINING].fillna(False).astype(bool), "run_id"]}
    return sorted(ids)


def drop_duplicate_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per run (study, profile, run_id), preferring the copy under ``results/``.

    A run copied from ``runs/`` into ``results/`` (to commit it) is the same
    run twice; counted twice, it would weigh double in a mean over seeds. The
    committed copy is the one kept; between other roots, the first found.
    A frame without those columns is returned as it is.
    """
    key = ["study", "profile", "run_id"]
    if runs.empty or not set(key) <= set(runs.columns):
        return runs
    preference = (runs["source"] != PREFERRED_SOURCE) if "source" in runs.columns else pd.Series(False, index=runs.index)
    order = runs.assign(_preference=preference.to_numpy()).sort_values("_preference", kind="stable")
    kept = order[~order.duplicated(key, keep="first")].index
    deduplicated = runs.loc[runs.index.isin(kept)]
    if len(deduplicated) == len(runs):
        return runs
    deduplicated = deduplicated.reset_index(drop=True)
    deduplicated.attrs = dict(runs.attrs)
    return deduplicated


def collect_histories(*roots: str | Path, runs: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every run's ``history.csv`` stacked into one long frame.

    Each row is one epoch of one run, with the run's location and params
    columns (from ``runs``, or :func:`collect_runs` of ``roots``) before the
    history columns. Runs without a readable history contribute no rows.
    """
    return _stack_run_files(runs if runs is not None else collect_runs(*roots), HISTORY, ["epoch"])


PROBE_COLUMNS = ["epoch", "probe", "name", "value"]


def collect_probes(*roots: str | Path, runs: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every run's ``probes.csv`` stacked into one long frame.

    Each row is one number of one probe at one epoch of one run (columns epoch,
    probe, name, value), after the run's location and params columns (from
    ``runs``, or :func:`collect_runs` of ``roots``). Runs without probes, or
    without a readable ``probes.csv``, contribute no rows.
    """
    return _stack_run_files(runs if runs is not None else collect_runs(*roots), PROBES, PROBE_COLUMNS)


def _stack_run_files(runs: pd.DataFrame, name: str, columns: list[str]) -> pd.DataFrame:
    """Each run's CSV file ``name`` with the run's location and params columns first, stacked.

    A file counts when it has ``columns[0]``; with none, an empty frame with the
    location columns and ``columns``.
    """
    params = param_columns(runs)
    frames = []
    for row in runs.to_dict("records"):
        frame = _read_csv_rows(Path(row["path"]) / name, required=columns[0])
        if frame is None:
            continue
        for key in [*LOCATION_COLUMNS, *params]:
            if key not in frame.columns:
                frame[key] = [row[key]] * len(frame)
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=[*LOCATION_COLUMNS, *columns])
    long = pd.concat(frames, ignore_index=True)
    leading = [c for c in LOCATION_COLUMNS if c in long.columns]
    return long[leading + [c for c in long.columns if c not in leading]]


def param_columns(runs: pd.DataFrame) -> list[str]:
    """The columns of a :func:`collect_runs` frame that came from ``params.yaml``.

    :func:`collect_runs` records them in ``runs.attrs``; for a frame that lost
    its attrs (some pandas operations drop them) they are read again from the
    runs' ``params.yaml`` files.
    """
    recorded = runs.attrs.get("param_columns")
    if recorded is None:
        recorded = {}
        for folder in runs.get("path", []):
            params, _ = _read_mapping(Path(folder) / PARAMS, yaml.safe_load)
            recorded.update(dict.fromkeys(params))
    return [c for c in recorded if c in runs.columns and c not in LOCATION_COLUMNS]


def _read_csv_rows(path: Path, required: str) -> pd.DataFrame | None:
    """A run's CSV file (history, probes) without a half-written last line; None if absent or empty."""
    if not path.is_file():
        return None
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError):
        return None
    # A line without its newline is one being written (or cut off by a crash): leave it out.
    text = text[: text.rfind("\n") + 1]
    try:
        frame = pd.read_csv(io.StringIO(text), on_bad_lines="skip")
    except (pd.errors.EmptyDataError, pd.errors.ParserError):
        return None
    if frame.empty or required not in frame.columns:
        return None
    return frame


def at_best_epoch(runs: pd.DataFrame, histories: pd.DataFrame, column: str) -> pd.Series:
    """Each run's history ``column`` at its best epoch (the summary's ``best_epoch``), indexed like ``runs``.

    NaN for a run without a best epoch or without that history row; this is how
    a table reports the training accuracy of the weights it evaluates.
    """
    if column not in histories.columns:
        raise KeyError(f"histories have no column {column!r}; available: {list(histories.columns)}")
    if "best_epoch" not in runs.columns:
        raise KeyError(f"runs have no best_epoch column; available: {list(runs.columns)}")
    values = {(run, int(epoch)): value for run, epoch, value in zip(histories["run_id"], histories["epoch"], histories[column])}
    best = pd.to_numeric(runs["best_epoch"], errors="coerce")
    picked = [values.get((run, int(epoch)), float("nan")) if pd.notna(epoch) else float("nan")
              for run, epoch in zip(runs["run_id"], best)]
    return pd.Series(picked, index=runs.index, name=f"{column}_at_best", dtype=float)


def run_count(frame: pd.DataFrame) -> int:
    """How many runs a frame of runs, histories or probes holds (distinct ``run_id``), for captions."""
    return int(frame["run_id"].nunique()) if len(frame) and "run_id" in frame.columns else 0
