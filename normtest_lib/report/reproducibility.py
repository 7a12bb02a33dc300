"""The reproducibility appendix: how to rebuild each result set, what it ran on, how long it took.

A *result set* is the runs of one study and profile under one root: ``results/``
(committed real-data runs) or ``runs/`` (local runs, such as the smoke profiles);
it is one row of every table here (:data:`SET_KEYS`).

Everything comes from what was recorded, never typed in: the runs'
``environment.json`` (one entry per start and resume), ``summary.json``
(status, ``seconds``), ``history.csv`` (each epoch's seconds), the papermill
metadata of each executed run notebook (when it finished), the grid files (how
many runs a profile has) and the Makefile (which data folders ``make data``
makes). The ``read_*`` functions touch files and tolerate absent or
half-written ones; every other function is pure, over the frames and mappings
they return.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import pandas as pd

from ..errors import ConfigError
from ..grid.runner import GRID_INDEX_NAME
from ..grid.spec import PRETRAIN_PLACEHOLDER, expand, read_grid_file, resolve_profile, source_params
from ..run_files import ENVIRONMENT, RUN_NOTEBOOK, VERIFICATION
from .counts import runs_word

SET_KEYS = ["study", "profile", "source"]
SOFTWARE_KEYS = ("python", "torch", "torchvision", "numpy")
MACHINE_KEYS = ("device", "device_name", "threads", "precision", "deterministic", "platform")
PINNED_PACKAGES = ("torch", "torchvision", "numpy")
NOT_RECORDED = "not recorded"  # the fields of a run without environment.json
COMPLETE = "complete"
SHORT_COMMIT = 7
START_COLUMNS = [*SET_KEYS, "run_id", "status", "kind", "time", "from_epoch", *SOFTWARE_KEYS, *MACHINE_KEYS, "commit"]
TIME_COLUMNS = [*SET_KEYS, "run_id", "status", "seconds", "first_start", "last_start", "finish", "finish_recorded"]
MISSING_TEXT = "–"


# --- readers ------------------------------------------------------------------------


def read_environment(folder: str | Path) -> list[dict[str, Any]]:
    """A run's recorded starts (``environment.json``), oldest first; [] when absent or unreadable."""
    data = _read_json(Path(folder) / ENVIRONMENT)
    starts = data.get("starts") if isinstance(data, dict) else None
    return [start for start in starts if isinstance(start, dict)] if isinstance(starts, list) else []


def read_finish_time(folder: str | Path) -> str | None:
    """When papermill finished executing the run's notebook (its ``end_time``); None without one.

    A notebook being written, or one run outside papermill, has none.
    """
    notebook = _read_json(Path(folder) / RUN_NOTEBOOK)
    papermill = notebook.get("metadata", {}).get("papermill", {}) if isinstance(notebook, dict) else {}
    end = papermill.get("end_time") if isinstance(papermill, dict) else None
    return end if isinstance(end, str) else None


def read_environments(runs: pd.DataFrame) -> dict[str, list[dict[str, Any]]]:
    """Each run's recorded starts, by its ``path``."""
    return {path: read_environment(path) for path in runs["path"]}


def read_finish_times(runs: pd.DataFrame) -> dict[str, str | None]:
    """Each run's recorded finish time, by its ``path``."""
    return {path: read_finish_time(path) for path in runs["path"]}


def grid_run_count(grid_file: str | Path, profile: str) -> int | None:
    """How many runs ``normtest run GRID --profile P --dry-run`` lists: the grid's runs and its distinct
    pretraining runs (:func:`profile_params`); None when the file or the profile does not exist."""
    params = profile_params(grid_file, profile)
    return None if params is None else len(params)


def profile_params(grid_file: str | Path, profile: str) -> list[dict[str, Any]] | None:
    """The parameters of every run of ``profile`` in ``grid_file``, its pretraining runs included
    (one per distinct source, first), as ``normtest run`` would train them; None when the file or the
    profile does not exist.

    Expanded without validating the runs, which would need the data in place (``data_root`` must
    exist), so pretraining runs are told apart by their parameters
    (:func:`~normtest_lib.grid.spec.source_params`), not their ids: a chapter built on a machine
    without the data still names what the profile trains."""
    try:
        resolved = resolve_profile(read_grid_file(Path(grid_file)), profile)
        runs = expand(resolved)
    except ConfigError:
        return None
    sources = {
        json.dumps(source_params(resolved, run), sort_keys=True, default=str): source_params(resolved, run)
        for run in runs
        if run.get("pretrained") == PRETRAIN_PLACEHOLDER
    }
    return [*sources.values(), *runs]


def recorded_grid_count(profile_dir: str | Path) -> int | None:
    """How many runs the grid had when ``normtest run`` last wrote ``grid.json`` into ``profile_dir``.

    Its runs and pretraining runs (``pretrains``; an older ``grid.json`` has only ``pretrain``, one or none)."""
    index = _read_json(Path(profile_dir) / GRID_INDEX_NAME)
    if not isinstance(index, dict) or not isinstance(index.get("runs"), list):
        return None
    if isinstance(index.get("pretrains"), list):
        return len(index["runs"]) + len(index["pretrains"])
    return len(index["runs"]) + (index.get("pretrain") is not None)


def make_data_folders(makefile: str | Path) -> list[str]:
    """The folders ``make data`` extracts, from the Makefile's ``data:`` rule; [] without a Makefile.

    Each prerequisite ``data/.NAME.extracted`` stands for the folder ``data/NAME``.
    """
    try:
        text = Path(makefile).read_text()
    except OSError:
        return []
    rule = re.search(r"^data:(?P<prerequisites>[^\n]*)$", text, flags=re.MULTILINE)
    if rule is None:
        return []
    markers = re.findall(r"(\S*?)/?\.([\w.-]+)\.extracted", rule["prerequisites"])
    return [f"{folder}/{name}" if folder else name for folder, name in markers]


def pinned_versions(constraints: str | Path, packages: Iterable[str] = PINNED_PACKAGES) -> dict[str, str]:
    """The versions ``constraints.txt`` pins for ``packages``; {} without the file."""
    try:
        text = Path(constraints).read_text()
    except OSError:
        return {}
    wanted = {name.lower() for name in packages}
    pins = {}
    for line in text.splitlines():
        name, _, version = line.partition("==")
        if version and name.strip().lower() in wanted:
            pins[name.strip().lower()] = version.strip()
    return pins


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return None


# --- environment ------------------------------------------------------------------------


def environment_starts(runs: pd.DataFrame, environments: Mapping[str, Sequence[Mapping[str, Any]]]) -> pd.DataFrame:
    """One row per recorded start or resume of each run (:data:`START_COLUMNS`).

    A run without recorded starts (no ``environment.json``) gets one row whose
    ``kind`` is ``not recorded`` and whose fields are missing, so that every
    run is counted. ``time`` is a UTC timestamp; ``commit`` the short git commit.
    """
    rows = []
    for run in runs.to_dict("records"):
        location = {key: run[key] for key in (*SET_KEYS, "run_id", "status")}
        for start in environments.get(run["path"]) or [None]:
            start = start or {}
            rows.append({
                **location,
                "kind": start.get("kind") or NOT_RECORDED,
                "time": to_timestamp(start.get("time")),
                "from_epoch": start.get("from_epoch"),
                **{key: start.get(key) for key in (*SOFTWARE_KEYS, *MACHINE_KEYS)},
                "commit": (start.get("git_commit") or None) and str(start["git_commit"])[:SHORT_COMMIT],
            })  # fmt: skip
    # Object columns: a run without a record would otherwise turn every thread count into a float (1.0).
    starts = pd.DataFrame(rows, columns=START_COLUMNS, dtype=object)
    starts["time"] = pd.to_datetime(starts["time"], utc=True)
    return starts


def environment_table(starts: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """The runs of each result set per combination of ``keys`` (such as the software versions).

    One row per combination that some start recorded (a missing field reads
    ``not recorded``); columns: runs, complete (of those runs), resumed (runs
    with a resume among these starts) and commits (short, in the order first
    used). A run resumed with another combination counts in both rows.
    """
    frame = starts.assign(**{key: starts[key].map(_label) for key in keys}).sort_values("time", kind="stable")
    rows = []
    for combination, group in frame.groupby([*SET_KEYS, *keys], sort=True):
        rows.append({
            **dict(zip([*SET_KEYS, *keys], combination)),
            "runs": group["run_id"].nunique(),
            "complete": group.loc[group["status"] == COMPLETE, "run_id"].nunique(),
            "resumed": group.loc[group["kind"] == "resume", "run_id"].nunique(),
            "commits": ", ".join(group["commit"].dropna().unique()) or MISSING_TEXT,
        })  # fmt: skip
    columns = [*SET_KEYS, *keys, "runs", "complete", "resumed", "commits"]
    return pd.DataFrame(rows, columns=columns).set_index([*SET_KEYS, *keys])


def _label(value: Any) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return NOT_RECORDED
    return str(value)


def to_timestamp(value: Any) -> pd.Timestamp | None:
    """An ISO time as a UTC timestamp; None when absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        time = pd.Timestamp(value)
    except (ValueError, TypeError):
        return None
    # environment.json and papermill write UTC offsets; a time without one is taken as UTC.
    return time.tz_convert("UTC") if time.tzinfo else time.tz_localize("UTC")


# --- time -------------------------------------------------------------------------------


def epoch_seconds(histories: pd.DataFrame) -> dict[str, dict[int, float]]:
    """Each run's seconds per epoch from its history (a frame of :func:`results.collect_histories`), by path."""
    if histories.empty or "seconds" not in histories.columns:
        return {}
    frame = histories.dropna(subset=["epoch", "seconds"])
    return {
        path: dict(zip(group["epoch"].astype(int), group["seconds"].astype(float)))
        for path, group in frame.groupby("path", sort=False)
    }


def run_times(
    runs: pd.DataFrame,
    environments: Mapping[str, Sequence[Mapping[str, Any]]],
    finishes: Mapping[str, str | None],
    epochs: Mapping[str, Mapping[int, float]],
) -> pd.DataFrame:
    """One row per run (:data:`TIME_COLUMNS`): its seconds, first and last start, and finish.

    ``finish`` is given for complete runs only: the recorded one (the run
    notebook's papermill ``end_time``, when it is not before the last start),
    else estimated as the last start plus the seconds of the epochs trained
    since it (its ``history.csv``; the summary's ``seconds`` without one), which
    leaves out loading the data and the final test evaluation.
    """
    rows = []
    for run in runs.to_dict("records"):
        starts = recorded_starts(environments.get(run["path"]) or [])
        first, (last, from_epoch) = (starts[0][0], starts[-1]) if starts else (None, (None, 0))
        seconds = pd.to_numeric(run.get("seconds"), errors="coerce")  # None or a missing summary: NaN
        finish, recorded = None, False
        if run["status"] == COMPLETE and last is not None:
            finish = to_timestamp(finishes.get(run["path"]))
            recorded = finish is not None and finish >= last  # else the notebook is an earlier execution's
            if not recorded:
                finish = estimated_finish(last, from_epoch, epochs.get(run["path"]) or {}, seconds)
        rows.append({**{key: run[key] for key in (*SET_KEYS, "run_id", "status")}, "seconds": seconds,
                     "first_start": first, "last_start": last, "finish": finish, "finish_recorded": recorded})
    times = pd.DataFrame(rows, columns=TIME_COLUMNS)
    for column in ("first_start", "last_start", "finish"):
        times[column] = pd.to_datetime(times[column], utc=True)
    return times


def recorded_starts(starts: Sequence[Mapping[str, Any]]) -> list[tuple[pd.Timestamp, int]]:
    """(time, from_epoch) of each start with a readable time, oldest first."""
    timed = [(to_timestamp(start.get("time")), start.get("from_epoch") or 0) for start in starts]
    return sorted((time, epoch) for time, epoch in timed if time is not None)


def estimated_finish(last_start: pd.Timestamp, from_epoch: int, epochs: Mapping[int, float], seconds: float) -> pd.Timestamp | None:
    """The last start plus the seconds of the epochs after ``from_epoch``; plus ``seconds`` without any epoch."""
    trained = [epoch_time for epoch, epoch_time in epochs.items() if epoch > from_epoch]
    since = sum(trained) if trained else seconds
    return last_start + pd.Timedelta(seconds=float(since)) if pd.notna(since) else None


def time_table(times: pd.DataFrame) -> pd.DataFrame:
    """Per result set, over its complete runs: run time, the longest run and the wall-clock span.

    Columns: complete (runs behind the run time), run_seconds (sum of their
    ``seconds``), longest_seconds and longest_run, timed (complete runs with a
    recorded start and a finish: those behind the span), first_start (the
    earliest recorded start of any of them), last_finish, span_seconds (from
    one to the other) and estimated (finishes among them that were estimated).
    """
    rows = []
    for key, group in times[times["status"] == COMPLETE].groupby(SET_KEYS, sort=True):
        timed = group.dropna(subset=["first_start", "finish"])
        seconds = group.dropna(subset=["seconds"])
        longest = seconds.loc[seconds["seconds"].idxmax()] if len(seconds) else None
        first, last = (timed["first_start"].min(), timed["finish"].max()) if len(timed) else (None, None)
        rows.append({
            **dict(zip(SET_KEYS, key)),
            "complete": len(group),
            "run_seconds": float(seconds["seconds"].sum()) if len(seconds) else float("nan"),
            "longest_seconds": float(longest["seconds"]) if longest is not None else float("nan"),
            "longest_run": longest["run_id"] if longest is not None else None,
            "timed": len(timed),
            "first_start": first,
            "last_finish": last,
            "span_seconds": (last - first).total_seconds() if first is not None else float("nan"),
            "estimated": int((~timed["finish_recorded"].astype(bool)).sum()),
        })  # fmt: skip
    columns = [*SET_KEYS, "complete", "run_seconds", "longest_seconds", "longest_run", "timed", "first_start",
               "last_finish", "span_seconds", "estimated"]  # fmt: skip
    return pd.DataFrame(rows, columns=columns).set_index(SET_KEYS)


def time_view(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`time_table` for reading: durations as "2 h 05 min", times as "2026-12-03 09:11 UTC"."""
    view = pd.DataFrame(index=table.index)
    view["complete runs"] = table["complete"]
    view["run time"] = table["run_seconds"].map(format_duration)
    view["longest run"] = [f"{format_duration(s)} ({run})" if isinstance(run, str) else MISSING_TEXT
                           for s, run in zip(table["longest_seconds"], table["longest_run"])]  # fmt: skip
    view["runs in span"] = table["timed"]
    view["first start"] = table["first_start"].map(format_time)
    view["last finish"] = table["last_finish"].map(format_time)
    view["span"] = table["span_seconds"].map(format_duration)
    view["finishes estimated"] = table["estimated"]
    return view


def format_duration(seconds: float | None) -> str:
    """"2 h 05 min", "9 min 16 s", "45 s"; a dash for none."""
    if seconds is None or pd.isna(seconds):
        return MISSING_TEXT
    total = int(round(float(seconds)))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def format_time(time: pd.Timestamp | None) -> str:
    """A UTC timestamp to the minute ("2026-12-03 09:11 UTC"); a dash for none."""
    if time is None or pd.isna(time):
        return MISSING_TEXT
    return time.tz_convert("UTC").strftime("%Y-%m-%d %H:%M UTC")


# --- what ran, and how to run it again ----------------------------------------------------


def set_overview(runs: pd.DataFrame, starts: pd.DataFrame, grid_counts: Mapping[tuple[str, str], int | None],
                 recorded_counts: Mapping[tuple[str, str, str], int | None] | None = None) -> pd.DataFrame:
    """Per result set: the grid's run count (``--dry-run``), the runs found by status, those without an environment.

    ``grid_counts`` is keyed by (study, profile), ``recorded_counts`` (the
    grid.json the runner wrote) by (study, profile, source).
    """
    statuses = runs.groupby([*SET_KEYS, "status"]).size().unstack("status", fill_value=0)
    ordered = [COMPLETE] + sorted(set(statuses.columns) - {COMPLETE})
    statuses = statuses.reindex(columns=ordered, fill_value=0)
    overview = pd.DataFrame(index=statuses.index)
    overview["runs in grid (--dry-run)"] = [_count(grid_counts.get(key[:2])) for key in overview.index]
    if recorded_counts is not None:
        overview["runs in grid.json"] = [_count(recorded_counts.get(key)) for key in overview.index]
    overview["runs found"] = statuses.sum(axis=1)
    overview = overview.join(statuses)
    unrecorded = starts[starts["kind"] == NOT_RECORDED].groupby(SET_KEYS)["run_id"].nunique()
    overview["without environment.json"] = unrecorded.reindex(overview.index, fill_value=0).astype(int)
    return overview


def _count(value: int | None) -> int | str:
    return MISSING_TEXT if value is None else int(value)


def data_folders_needed(runs: pd.DataFrame, folders: Sequence[str]) -> list[str]:
    """The ``make data`` folders that some run reads (its ``data_root`` is the folder or lies in it)."""
    roots = [str(root).rstrip("/") for root in runs.get("data_root", pd.Series(dtype=object)).dropna().unique()]
    return [folder for folder in folders if any(root == folder or root.startswith(folder + "/") for root in roots)]


def downloaded_datasets(runs: pd.DataFrame) -> list[str]:
    """The data sets the runs download themselves (``download: true``)."""
    if "download" not in runs.columns or "dataset" not in runs.columns:
        return []
    return sorted(runs.loc[runs["download"].map(lambda value: value is True), "dataset"].dropna().unique())


def rebuild_commands(grid_file: str, profile: str, source: str, *, data_folders: Sequence[str] = (),
                     downloads: Sequence[str] = (), grid_runs: int | None = None, workers: int = 2) -> list[str]:
    """The shell lines that rebuild one result set, from a fresh checkout to the book."""
    run = f"normtest run {grid_file} --profile {profile} --runs-root {source}"
    lines = ["make install  # .venv with the exact versions in constraints.txt"]
    if data_folders:
        lines.append(f"make data     # the real data the runs read: {', '.join(data_folders)}")
    if downloads:
        lines.append(f"# the runs download {', '.join(downloads)} themselves (download: true)")
    listed = f"the {grid_runs} runs" if grid_runs is not None else "its runs"
    lines.append(f"{run} --dry-run  # lists {listed}")
    lines.append(f"{run} --workers {workers}  # skips finished runs, resumes interrupted ones")
    lines.append("normtest book")
    return lines


def commands_markdown(title: str, lines: Sequence[str]) -> str:
    """One result set's commands as a titled bash block."""
    return f"**{title}**\n\n```bash\n" + "\n".join(lines) + "\n```\n"


def set_title(study: str, profile: str, source: str) -> str:
    """``normalization_layers`` / ``local`` (results/)."""
    return f"`{study}` / `{profile}` ({source}/)"


# --- sentences --------------------------------------------------------------------------


def values_phrase(starts: pd.DataFrame, key: str) -> str:
    """The distinct recorded values of ``key`` with their run counts when more than one: "2.1 (3 runs), 2.2 (1 run)"."""
    recorded = starts.dropna(subset=[key])
    counts = recorded.groupby(recorded[key].map(str), sort=False)["run_id"].nunique()
    if len(counts) == 1:
        return str(counts.index[0])
    return ", ".join(f"{value} ({runs_word(n)})" for value, n in counts.sort_values(ascending=False, kind="stable").items())


def _recorded(starts: pd.DataFrame) -> pd.DataFrame:
    """The starts an environment.json recorded (not the stand-ins of runs without one)."""
    return starts[starts["kind"] != NOT_RECORDED]


def _with_machine(starts: pd.DataFrame) -> pd.DataFrame:
    """``starts`` with a ``machine`` column: "cpu (AMD EPYC)", "cuda (NVIDIA H100)"."""
    return starts.assign(machine=starts["device"].map(str) + " (" + starts["device_name"].map(str) + ")")


def environment_sentence(starts: pd.DataFrame) -> str:
    """What one result set's runs recorded: machine, threads, versions, commits, resumes."""
    recorded = _recorded(starts)
    n_runs, n_recorded = starts["run_id"].nunique(), recorded["run_id"].nunique()
    coverage = "all recorded" if n_recorded == n_runs else f"{n_recorded} with an environment record"
    if not n_recorded:
        return f"{runs_word(n_runs)}, none with an environment record (no environment.json)."
    commits = list(recorded.sort_values("time", kind="stable")["commit"].dropna().unique())
    resumed = recorded.loc[recorded["kind"] == "resume", "run_id"].nunique()
    return (
        f"{runs_word(n_runs)} ({coverage}): {values_phrase(_with_machine(recorded), 'machine')}, threads {values_phrase(recorded, 'threads')}, "
        f"{values_phrase(recorded, 'precision')}; Python {values_phrase(recorded, 'python')}, "
        f"torch {values_phrase(recorded, 'torch')}, torchvision {values_phrase(recorded, 'torchvision')}, "
        f"numpy {values_phrase(recorded, 'numpy')}; started at {_commits_phrase(commits)}; "
        f"{'no run' if not resumed else runs_word(resumed)} resumed."
    )


def _commits_phrase(commits: Sequence[str]) -> str:
    if not commits:
        return "no recorded commit"
    if len(commits) == 1:
        return f"commit {commits[0]}"
    return f"{len(commits)} commits, {commits[0]} to {commits[-1]}"


def machine_sentence(starts: pd.DataFrame) -> str:
    """The machines behind every recorded run, in one sentence."""
    recorded = _recorded(starts)
    if recorded.empty:
        return "No run recorded its machine."
    platforms = recorded["platform"].dropna().map(lambda p: str(p).split("-")[0]).unique()
    return (
        f"The {runs_word(recorded['run_id'].nunique())} with an environment record ran on {values_phrase(_with_machine(recorded), 'machine')} "
        f"under {', '.join(platforms)}, with threads per run {values_phrase(recorded, 'threads')}."
    )


def software_sentence(starts: pd.DataFrame) -> str:
    """The software versions behind every recorded run, in one sentence."""
    recorded = _recorded(starts)
    if recorded.empty:
        return "No run recorded its software versions."
    versions = ", ".join(f"{name} {values_phrase(recorded, key)}" for name, key in
                         (("Python", "python"), ("torch", "torch"), ("torchvision", "torchvision"), ("numpy", "numpy")))
    return f"The recorded runs used {versions}."


def pins_sentence(starts: pd.DataFrame, pins: Mapping[str, str]) -> str:
    """Whether the recorded versions are the releases ``constraints.txt`` pins (a local ``+cu130`` names a build)."""
    if not pins:
        return "There is no constraints.txt to compare the recorded versions with."
    recorded = _recorded(starts)
    if recorded.empty:
        return "No run recorded the versions it used, to compare with those constraints.txt pins."
    others = []
    for package, pinned in pins.items():
        release = recorded[package].dropna().map(lambda v: str(v).split("+")[0])
        off = recorded.loc[release.index[release != pinned], "run_id"].nunique()
        if off:
            others.append(f"{package} ({runs_word(off)})")
    pinned_text = ", ".join(f"{package} {version}" for package, version in pins.items())
    if not others:
        return f"constraints.txt pins {pinned_text}: the release every recorded run used."
    return f"constraints.txt pins {pinned_text}; runs recorded another release of {', '.join(others)}."


def time_sentence(title: str, row: Mapping[str, Any], grid_runs: int | None, others: Mapping[str, int] | None = None) -> str:
    """One result set's time figures (a row of :func:`time_table`) with the runs behind each.

    ``others`` counts the set's runs by status other than complete (running,
    failed, ...): they are named as left out.
    """
    of_grid = f" of the grid's {grid_runs}" if grid_runs is not None else ""
    left_out = ", ".join(f"{n} {status}" for status, n in sorted((others or {}).items()) if n and status != COMPLETE)
    left_out = f" ({left_out}: not counted)" if left_out else ""
    text = f"{title}: {row['complete']}{of_grid} runs complete{left_out}"
    if isinstance(row["longest_run"], str):
        text += (f", {format_duration(row['run_seconds'])} of run time in all, the longest "
                 f"{format_duration(row['longest_seconds'])} (`{row['longest_run']}`)")  # fmt: skip
    else:
        text += ", with no recorded seconds"
    if not row["timed"]:
        return text + "; no recorded start and finish, so no span."
    estimated = f", {row['estimated']} of their finishes estimated" if row["estimated"] else ""
    return (f"{text}; {format_duration(row['span_seconds'])} from the first start ({format_time(row['first_start'])}) "
            f"to the last finish ({format_time(row['last_finish'])}), over {runs_word(row['timed'])}{estimated}.")  # fmt: skip


def bullet_list(lines: Iterable[str]) -> str:
    """Markdown bullets, one per line."""
    return "\n".join(f"- {line}" for line in lines)


# --- verification -------------------------------------------------------------------------

VERIFICATION_COUNTS = ("verified", "differs", "missing fingerprint", "no fingerprint", "source verified", "unavailable")


def read_verification(set_dir: str | Path) -> dict[str, Any] | None:
    """The set's last ``normtest verify --sample`` record (``verification.json``); None when it was never verified."""
    record = _read_json(Path(set_dir) / VERIFICATION)
    return record if isinstance(record, dict) and isinstance(record.get("counts"), dict) else None


def verification_outcome(record: Mapping[str, Any] | None) -> str:
    """One result set's verdict, in words, from its record."""
    if record is None:
        return "not verified yet"
    counts = record["counts"]
    checked = sum(int(counts.get(status) or 0) for status in VERIFICATION_COUNTS)
    failed = int(counts.get("differs") or 0) + int(counts.get("missing fingerprint") or 0)
    if failed:
        return f"{failed} of {checked} differ: the current code no longer computes these numbers"
    if counts.get("verified") and counts.get("verified") == checked:
        return "verifies"
    if counts.get("no fingerprint") == checked:
        return "cannot be verified: made before fingerprints existed"
    verified = int(counts.get("verified") or 0) + int(counts.get("source verified") or 0)
    return f"{verified} of {checked} verified, none differs"


def verification_table(records: Mapping[tuple[str, str, str], Mapping[str, Any] | None]) -> pd.DataFrame:
    """Per result set (keyed by :data:`SET_KEYS`): when it was last verified, at which commit and on what, and the outcome."""
    rows = []
    for key, record in sorted(records.items()):
        record = record or {}
        counts = record.get("counts") or {}
        rows.append({
            **dict(zip(SET_KEYS, key)),
            "last verified": format_time(to_timestamp(record.get("time"))),
            "commit": str(record["commit"])[:SHORT_COMMIT] if record.get("commit") else MISSING_TEXT,
            "machine": record.get("device_name") or MISSING_TEXT,
            "runs with a fingerprint": (f"{record['with_fingerprint']} of {record['runs_in_set']}"
                                        if "with_fingerprint" in record else MISSING_TEXT),
            **{status: int(counts.get(status) or 0) for status in VERIFICATION_COUNTS},
            "outcome": verification_outcome(record or None),
        })  # fmt: skip
    columns = [*SET_KEYS, "last verified", "commit", "machine", "runs with a fingerprint", *VERIFICATION_COUNTS, "outcome"]
    return pd.DataFrame(rows, columns=columns).set_index(SET_KEYS)


def verification_sentence(title: str, record: Mapping[str, Any] | None, source: str) -> str:
    """What the set's last verification found, and the command that repeats it."""
    command = f"`normtest verify --sample 3 {source}`"
    if record is None:
        return f"{title}: not verified yet ({command} checks it)."
    counts = record["counts"]
    found = ", ".join(f"{int(counts[status])} {status}" for status in VERIFICATION_COUNTS if counts.get(status))
    dirty = " from a working tree with uncommitted library changes" if record.get("uncommitted_library_changes") else ""
    commit = f"commit {str(record['commit'])[:SHORT_COMMIT]}" if record.get("commit") else "an unrecorded commit"
    return (f"{title}: {verification_outcome(record)}. Last verified {format_time(to_timestamp(record.get('time')))} at "
            f"{commit}{dirty} on {record.get('device_name') or 'an unrecorded machine'}: {found or 'no run checked'} "
            f"({record.get('with_fingerprint', 0)} of the set's {record.get('runs_in_set', 0)} runs have a fingerprint; "
            f"{command} repeats it).")  # fmt: skip
