"""``normtest verify --sample K RESULTS_ROOT``: a few runs of every result set, one per variant.

A result set is ``<root>/<study>/<profile>/``. Its *variants* are the combinations of the
parameters its grid varies (``grid.json``'s ``varying``, else those that differ between its
runs' ``params.yaml``), seeds left out (:data:`SEED_KEYS`): a change that alters one layer or
one input setting moves that variant's runs, so K runs are chosen one per variant, greedily
covering every value of every varying parameter first, each the variant's run with the lowest
seed. The choice depends only on the folders, so CI checks the same runs every time.

Each set's outcome is written to ``<set>/verification.json`` (:data:`~normtest_lib.run_files.VERIFICATION`),
which the book's reproducibility appendix reads; ``record=False`` (CI) writes nothing.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import torch

from ..engine import fingerprint as fp
from ..engine.environment import device_name
from ..errors import ConfigError
from ..io import read_json, write_json
from ..run_files import FINISHED, PARAMS, SUMMARY, VERIFICATION
from .provenance import current_commit, uncommitted_library_changes
from .run import (
    DIFFERS,
    FAILURES,
    MISSING,
    NO_FINGERPRINT,
    SOURCE_VERIFIED,
    UNAVAILABLE,
    VERIFIED,
    Outcome,
    has_fingerprint,
    read_params,
    verify_in_fresh_process,
)

SEED_KEYS = frozenset({"seed", "noise_seed"})
GRID_INDEX = "grid.json"  # written by the grid runner beside the run folders
STATUS_ORDER = (VERIFIED, DIFFERS, MISSING, NO_FINGERPRINT, SOURCE_VERIFIED, UNAVAILABLE)
FORMAT = 1

Log = Callable[[str], None]


def result_sets(root: str | Path) -> list[Path]:
    """Every ``<study>/<profile>`` folder under ``root`` that holds finished run folders."""
    root = Path(root)
    if not root.is_dir():
        raise ConfigError(f"{root} is not a folder; give a results root such as results/ (<study>/<profile>/<run id>/)")
    sets = [profile for study in _dirs(root) for profile in _dirs(study) if finished_runs(profile)]
    if not sets:
        raise ConfigError(f"{root} holds no finished run folders under <study>/<profile>/<run id>/")
    return sets


def _dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _status(run_dir: Path) -> str | None:
    try:
        summary = read_json(run_dir / SUMMARY)
    except (OSError, ValueError):
        return None
    return summary.get("status") if isinstance(summary, dict) else None


def finished_runs(set_dir: Path) -> list[Path]:
    """The set's run folders (holding ``params.yaml``) whose summary says complete or diverged."""
    return [run for run in _dirs(set_dir) if (run / PARAMS).is_file() and _status(run) in FINISHED]


def _varying_keys(set_dir: Path, params: dict[Path, dict[str, Any]]) -> list[str]:
    try:
        index = read_json(set_dir / GRID_INDEX)
        keys = list(index["varying"])
    except (OSError, ValueError, KeyError, TypeError):
        values: dict[str, set[str]] = {}
        for run_params in params.values():
            for key, value in run_params.items():
                values.setdefault(key, set()).add(json.dumps(value, sort_keys=True, default=str))
        keys = sorted(key for key, seen in values.items() if len(seen) > 1)
    return [key for key in keys if key not in SEED_KEYS]


def _pretrain_labels(set_dir: Path) -> dict[str, str]:
    """The set's pretraining runs (``grid.json``'s ``pretrains``, else its ``pretrain``) by id, with their variant labels.

    One is the "pretraining run"; several are told apart by the parameters in which they differ.
    """
    try:
        index = read_json(set_dir / GRID_INDEX)
    except (OSError, ValueError):
        return {}
    if not isinstance(index, dict):
        return {}
    entries = index.get("pretrains")
    if not isinstance(entries, list):
        entries = [index.get("pretrain")]
    entries = [entry for entry in entries if isinstance(entry, dict) and isinstance(entry.get("id"), str)]
    if len(entries) <= 1:
        return {entry["id"]: "pretraining run" for entry in entries}
    params = [entry.get("params") if isinstance(entry.get("params"), dict) else {} for entry in entries]
    shown = [
        key
        for key in dict.fromkeys(key for p in params for key in p)
        if len({json.dumps(p.get(key), sort_keys=True, default=str) for p in params}) > 1
    ]
    return {
        entry["id"]: " ".join(["pretraining run", *(f"{key}={p.get(key)}" for key in shown)])
        for entry, p in zip(entries, params)
    }


def variants(set_dir: Path) -> dict[str, list[Path]]:
    """The set's finished runs by variant (a readable "key=value ..." label), lowest seed first."""
    runs = finished_runs(set_dir)
    params = {run: read_params(run) for run in runs}
    keys = _varying_keys(set_dir, params)
    pretrains = _pretrain_labels(set_dir)
    grouped: dict[str, list[Path]] = {}
    for run in runs:
        if run.name in pretrains:
            label = pretrains[run.name]
        else:
            label = " ".join(f"{key}={params[run].get(key)}" for key in keys) or "(one variant)"
        grouped.setdefault(label, []).append(run)
    for members in grouped.values():
        members.sort(key=lambda run: (tuple(params[run].get(key) or 0 for key in sorted(SEED_KEYS)), run.name))
    return dict(sorted(grouped.items()))


def choose_sample(set_dir: Path, k: int | None) -> list[tuple[str, Path]]:
    """K (variant, run) pairs, one per variant, covering the most values first; every variant when K is None."""
    grouped = variants(set_dir)
    remaining = dict(grouped)
    covered: set[str] = set()
    chosen: list[tuple[str, Path]] = []
    while remaining and (k is None or len(chosen) < k):
        # The variant adding most uncovered key=value pairs; ties go to the first label.
        label = max(remaining, key=lambda name: (len(set(name.split()) - covered), -list(remaining).index(name)))
        covered |= set(label.split())
        chosen.append((label, remaining.pop(label)[0]))
    return chosen


@dataclass
class SetReport:
    """One result set's sample and outcomes."""

    set_dir: Path
    runs_in_set: int
    with_fingerprint: int
    checked: list[tuple[str, Outcome]] = field(default_factory=list)

    @property
    def counts(self) -> Counter:
        return Counter(outcome.status for _, outcome in self.checked)

    @property
    def failed(self) -> bool:
        return any(outcome.status in FAILURES for _, outcome in self.checked)

    def line(self, root: Path) -> str:
        counts = self.counts
        shown = ", ".join(f"{counts[status]} {status}" for status in STATUS_ORDER if counts[status])
        compared = counts[VERIFIED] + counts[DIFFERS] + counts[MISSING]
        share = f"{counts[VERIFIED]} of {compared} fingerprinted runs reproduce" if compared else "no fingerprinted run checked"
        return (f"{self.set_dir.relative_to(root)}: {len(self.checked)} of {self.runs_in_set} runs checked "
                f"({self.with_fingerprint} with a fingerprint): {shown}; {share}")  # fmt: skip

    def record(self, root: Path, k: int | None, seconds: float) -> dict[str, Any]:
        """The content of ``verification.json``: names no folder of this machine."""
        dirty = uncommitted_library_changes()
        return {
            "format": FORMAT,
            "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "commit": current_commit(),
            "uncommitted_library_changes": None if dirty is None else bool(dirty),
            "device_name": device_name(torch.device("cpu")),
            "tolerance": fp.RELATIVE_TOLERANCE,
            "sample": k,
            "seconds": round(seconds, 1),
            "runs_in_set": self.runs_in_set,
            "with_fingerprint": self.with_fingerprint,
            "counts": {status: self.counts[status] for status in STATUS_ORDER},
            "checked": [
                {
                    "run_id": outcome.run_dir.name,
                    "variant": label,
                    "status": outcome.status,
                    "first_difference": outcome.first_difference,
                    "max_relative": outcome.comparison.max_relative if outcome.comparison is not None else None,
                    "detail": _no_paths(outcome.detail, root),
                    "seconds": round(outcome.seconds, 1),
                }
                for label, outcome in self.checked
            ],
        }


def _no_paths(text: str, root: Path) -> str:
    """A message without this machine's folders (the record is committed)."""
    for folder in {str(root.resolve()), str(Path.cwd())}:
        text = text.replace(folder + "/", "").replace(folder, ".")
    return text


@dataclass
class SampleReport:
    root: Path
    sets: list[SetReport]

    @property
    def exit_code(self) -> int:
        return 1 if any(report.failed for report in self.sets) else 0

    def totals(self) -> Counter:
        total: Counter = Counter()
        for report in self.sets:
            total.update(report.counts)
        return total


def verify_sample(
    root: str | Path,
    k: int | None,
    *,
    record: bool = True,
    root_dir: str | Path = ".",
    log: Log = print,
) -> SampleReport:
    """Verify K runs per result set under ``root`` (every run when K is None); print and record each set's outcome."""
    root = Path(root)
    reports = []
    for set_dir in result_sets(root):
        started = time.perf_counter()
        runs = finished_runs(set_dir)
        report = SetReport(set_dir, len(runs), sum(has_fingerprint(run) for run in runs))
        sources: dict[Path, Outcome] = {}
        for label, run in choose_sample(set_dir, k):
            outcome = verify_in_fresh_process(run, root_dir=root_dir, sources=sources)
            report.checked.append((label, outcome))
            first = f" ({outcome.first_difference})" if outcome.first_difference else ""
            log(f"  {outcome.status:<19} {run.relative_to(root)}  {label}{first}")
            if outcome.status in (DIFFERS, MISSING, UNAVAILABLE):
                log(f"  {'':<19} {outcome.detail}")
        log(report.line(root))
        if record:
            write_json(set_dir / VERIFICATION, report.record(root, k, time.perf_counter() - started))
        reports.append(report)
    result = SampleReport(root, reports)
    totals = result.totals()
    compared = totals[VERIFIED] + totals[DIFFERS] + totals[MISSING]
    log(f"{sum(len(r.checked) for r in reports)} runs checked in {len(reports)} result sets: "
        + ", ".join(f"{totals[s]} {s}" for s in STATUS_ORDER if totals[s])
        + (f"; {totals[VERIFIED]} of {compared} fingerprinted runs reproduce" if compared else ""))  # fmt: skip
    return result
