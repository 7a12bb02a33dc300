"""``normtest verify RUN_DIR``: does the current code still compute what a run recorded?

The run's ``fingerprint.json`` (``engine/fingerprint.py``) is recomputed from its
``params.yaml`` with the threads, device and memory format it recorded (``channels_last``
left at ``auto`` is read from its first start in ``environment.json``: the layout it trained
in, whatever ``auto`` resolves to now), and compared value by value
within ``fingerprint.RELATIVE_TOLERANCE``. Nothing is written into the run folder: the
recomputation writes no file, and what must be trained (``--epochs``, a rebuilt source)
goes to a temporary folder that is removed afterwards.

Outcomes (:class:`Outcome`, with the command's exit code):

- ``verified`` (0): every value within tolerance (and, with ``--epochs N``, the first N
  history rows identical);
- ``differs`` (1): a value beyond it; the first one is named ("step 3");
- ``missing fingerprint`` (1): no ``fingerprint.json`` although the commit that made the
  run records one (it was lost, or the run was made elsewhere);
- ``no fingerprint`` (3): made before fingerprints existed (its commit has no
  ``engine/fingerprint.py``); only a rerun gives it one;
- ``source verified`` (4): a run started from another run's weights that are not here
  (weights are never committed): the source's fingerprint verified, this run's own was not
  recomputed; ``--rebuild-source`` retrains the source into a temporary folder first, which
  costs the source's whole training time (its ``summary.json`` seconds, printed);
- ``unavailable`` (5): cannot be recomputed here (its data is absent, or it was recorded on
  a device this machine lacks).

A folder that is not a run (no ``params.yaml``, unreadable parameters) is a ConfigError
(exit 2) naming the problem.

``--epochs N`` reruns N whole epochs and expects identical history rows, which holds only on
the processor model and thread count the run recorded: elsewhere it is skipped, saying why.
"""

from __future__ import annotations

import math
import multiprocessing
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
import yaml

from ..config import RunConfig, make_config
from ..engine import fingerprint as fp
from ..engine.environment import device_name
from ..engine.history import COLUMNS, read_history
from ..errors import ConfigError, DatasetError, NormtestError
from ..io import read_json, read_yaml
from ..run_files import ENVIRONMENT, FINGERPRINT, HISTORY, PARAMS, SUMMARY
from .provenance import commit_records_fingerprints

Log = Callable[[str], None]

VERIFIED = "verified"
DIFFERS = "differs"
MISSING = "missing fingerprint"
NO_FINGERPRINT = "no fingerprint"
SOURCE_VERIFIED = "source verified"
UNAVAILABLE = "unavailable"
EXIT_CODES = {VERIFIED: 0, DIFFERS: 1, MISSING: 1, NO_FINGERPRINT: 3, SOURCE_VERIFIED: 4, UNAVAILABLE: 5}
FAILURES = frozenset({DIFFERS, MISSING})  # what CI and --rerun-stale act on
# History columns that a rerun on the same processor reproduces bit for bit (not the timings).
EXACT_COLUMNS = tuple(c for c in COLUMNS if c not in ("seconds", "images_per_second", "probe_seconds"))


@dataclass
class Outcome:
    """What verifying one run found."""

    run_dir: Path
    status: str
    detail: str
    comparison: fp.Comparison | None = None
    source: "Outcome | None" = None
    epochs_detail: str | None = None
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.status]

    @property
    def first_difference(self) -> str | None:
        failure = self.comparison.first_failure if self.comparison is not None else None
        return failure.name if failure is not None else None

    def report_lines(self) -> list[str]:
        """The recorded and recomputed values with their relative differences, then the verdict."""
        lines = []
        if self.source is not None:
            lines += [f"source run {self.source.run_dir}:"] + [f"  {line}" for line in self.source.report_lines()]
        if self.comparison is not None:
            lines.append(f"{'value':<22} {'recorded':>20} {'recomputed':>20} {'relative':>10} {'tolerance':>10}")
            for row in self.comparison.differences:
                flag = "" if row.within else "  <-- differs"
                lines.append(f"{row.name:<22} {_number(row.recorded):>20} {_number(row.recomputed):>20} "
                             f"{_relative(row.relative):>10} {_relative(row.tolerance):>10}{flag}")  # fmt: skip
        if self.epochs_detail:
            lines.append(self.epochs_detail)
        lines.append(f"{self.status}: {self.detail}")
        return lines


def _number(value: float | None) -> str:
    return "non-finite" if value is None else repr(value)


def _relative(value: float) -> str:
    return "inf" if math.isinf(value) else f"{value:.1e}"


# --- reading a run folder ------------------------------------------------------------------


def read_params(run_dir: Path) -> dict[str, Any]:
    """The run's ``params.yaml``; a ConfigError naming the problem when the folder is not a run."""
    if not run_dir.is_dir():
        raise ConfigError(f"{run_dir} is not a folder; give a run folder (holding {PARAMS})")
    path = run_dir / PARAMS
    if not path.is_file():
        raise ConfigError(f"{run_dir} holds no {PARAMS}: it is not a run folder (a run folder is "
                          f"<root>/<study>/<profile>/<run id>/, written by normtest train or normtest run)")  # fmt: skip
    try:
        params = read_yaml(path)
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path} cannot be read ({exc})") from None
    if not isinstance(params, dict):
        raise ConfigError(f"{path} does not hold run parameters (a mapping of key: value)")
    return params


def _read_dict(path: Path) -> dict[str, Any]:
    try:
        data = read_json(path)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def made_at(run_dir: Path) -> str | None:
    """The git commit the run's first start recorded (``environment.json``)."""
    starts = _read_dict(run_dir / ENVIRONMENT).get("starts") or []
    return starts[0].get("git_commit") if starts and isinstance(starts[0], dict) else None


def has_fingerprint(run_dir: Path) -> bool:
    return (run_dir / FINGERPRINT).is_file()


def _resolve(path: str, root_dir: Path) -> str:
    """A path from the params, as seen from ``root_dir`` when it is relative (as committed runs record it)."""
    return path if Path(path).is_absolute() else str(root_dir / path)


def is_checkpoint_path(pretrained: Any) -> bool:
    return isinstance(pretrained, str) and pretrained not in ("none", "imagenet")


def source_run_dir(params: dict[str, Any], root_dir: Path) -> Path | None:
    """The run folder whose weights this run started from (``pretrained: <run>/best.pt``), if it is one."""
    if not is_checkpoint_path(params.get("pretrained")):
        return None
    folder = Path(_resolve(params["pretrained"], root_dir)).parent
    return folder if (folder / PARAMS).is_file() else None


# --- verifying -------------------------------------------------------------------------------


def verify_run(
    run_dir: str | Path,
    *,
    root_dir: str | Path = ".",
    epochs: int = 0,
    rebuild_source: bool = False,
    tolerance: float = fp.RELATIVE_TOLERANCE,
    log: Log = lambda line: None,
    sources: dict[Path, Outcome] | None = None,
) -> Outcome:
    """Verify one run folder; see the module docstring. Raises ConfigError for a folder that is not a run.

    ``sources`` caches the outcomes of source runs (by resolved folder) across calls.
    """
    started = time.perf_counter()
    run_dir, root_dir = Path(run_dir), Path(root_dir)
    params = read_params(run_dir)
    recorded = fp.read_fingerprint(run_dir / FINGERPRINT)
    if recorded is None:
        outcome = _without_fingerprint(run_dir)
    else:
        with tempfile.TemporaryDirectory(prefix="normtest-verify-") as scratch:
            outcome = _recompute_and_compare(run_dir, params, recorded, root_dir, Path(scratch), epochs,
                                             rebuild_source, tolerance, log, sources)  # fmt: skip
    outcome.seconds = time.perf_counter() - started
    return outcome


def _without_fingerprint(run_dir: Path) -> Outcome:
    commit = made_at(run_dir)
    records = commit_records_fingerprints(commit)
    if records:
        return Outcome(run_dir, MISSING, f"no {FINGERPRINT}, but commit {commit[:7]} that made it records one; "
                                         "rerun it (normtest run ... --rerun-stale does not: it has nothing to compare)")  # fmt: skip
    why = "" if records is False else (
        " (its commit cannot be checked here: " + ("none recorded" if not commit else f"{commit[:7]} is not in this clone") + ")"
    )
    return Outcome(run_dir, NO_FINGERPRINT, f"made before fingerprints existed; rerun it to verify{why}")


def recorded_layout(run_dir: Path, params: dict[str, Any]) -> dict[str, Any]:
    """``{"channels_last": <bool>, "compile": <bool>}``: what the run's first start resolved each ``auto`` to,
    as its ``environment.json`` records it; a key is left out when the run set it or recorded none. Like the
    thread count, the layout and compiled kernels split reductions differently, so a recomputation (or a
    rerun of whole epochs) in another one differs by more than rounding, whatever ``auto`` resolves to now."""
    starts = _read_dict(run_dir / ENVIRONMENT).get("starts") or []
    first = starts[0] if starts and isinstance(starts[0], dict) else {}
    return {
        key: first[key]
        for key in ("channels_last", "compile")
        if params.get(key, "auto") == "auto" and isinstance(first.get(key), bool)
    }


def _config_here(params: dict[str, Any], recorded: fp.Fingerprint, root_dir: Path, **overrides: Any) -> RunConfig:
    """The run's config, computed with its recorded threads and device, paths seen from ``root_dir``."""
    values = {**params, "num_threads": recorded.threads, "device": recorded.device, "download": False}
    if values.get("data_root"):
        values["data_root"] = _resolve(str(values["data_root"]), root_dir)
    if is_checkpoint_path(values.get("pretrained")):
        values["pretrained"] = _resolve(values["pretrained"], root_dir)
    values.update(overrides)
    return make_config(values)


def _unavailable_device(recorded: fp.Fingerprint) -> str | None:
    if recorded.device == "cuda" and not torch.cuda.is_available():
        return f"recorded on CUDA ({recorded.device_name}, {recorded.precision}); this machine has no CUDA device"
    if recorded.device not in ("cpu", "cuda"):
        return f"recorded on device type {recorded.device!r}, which verify does not recompute on"
    return None


def _recompute_and_compare(
    run_dir: Path,
    params: dict[str, Any],
    recorded: fp.Fingerprint,
    root_dir: Path,
    scratch: Path,
    epochs: int,
    rebuild_source: bool,
    tolerance: float,
    log: Log,
    sources: dict[Path, Outcome] | None,
) -> Outcome:
    problem = _unavailable_device(recorded)
    if problem:
        return Outcome(run_dir, UNAVAILABLE, problem)
    overrides: dict[str, Any] = recorded_layout(run_dir, params)
    source_outcome = None
    if is_checkpoint_path(params.get("pretrained")):
        weights, source_outcome = _source_weights(run_dir, params, root_dir, scratch, rebuild_source, tolerance, log,
                                                  sources if sources is not None else {})
        if weights is None:
            assert source_outcome is not None
            return _from_source(run_dir, params, source_outcome, root_dir)
        overrides["pretrained"] = str(weights)
    try:
        config = _config_here(params, recorded, root_dir, **overrides)
        log(f"recomputing {len(recorded.steps)} steps of {run_dir} ({recorded.threads} threads, {recorded.device})")
        recomputed = fp.recompute(config, len(recorded.steps), eval_after=recorded.eval_after)
    except DatasetError as exc:
        return Outcome(run_dir, UNAVAILABLE, f"its data cannot be loaded here: {exc}", source=source_outcome)
    comparison = fp.compare(recorded, recomputed, tolerance)
    outcome = Outcome(run_dir, VERIFIED, "", comparison, source=source_outcome)
    failure = comparison.first_failure
    if failure is not None:
        outcome.status = DIFFERS
        outcome.detail = (f"{failure.name} differs by {_relative(failure.relative)} relative (tolerance "
                          f"{_relative(failure.tolerance)}): the current code no longer computes what this run recorded")  # fmt: skip
        return outcome
    outcome.detail = (f"{len(comparison.differences)} values within tolerance (base {tolerance:.0e} relative, "
                      f"widening with the step; largest difference {_relative(comparison.max_relative)})")  # fmt: skip
    if epochs > 0:
        _check_epochs(outcome, config, recorded, run_dir, scratch, epochs, log)
    return outcome


def _source_weights(
    run_dir: Path, params: dict[str, Any], root_dir: Path, scratch: Path, rebuild: bool, tolerance: float, log: Log,
    sources: dict[Path, Outcome],
) -> tuple[Path | None, Outcome | None]:
    """The weights this run started from: the recorded file when it is here (same SHA-256), else rebuilt if asked.

    Returns (weights or None, the source's verification when one was needed).
    """
    from ..models.factory import file_sha256

    weights = Path(_resolve(params["pretrained"], root_dir))
    expected = _read_dict(run_dir / SUMMARY).get("model_source_sha256")
    if weights.is_file() and (expected is None or file_sha256(weights) == expected):
        return weights, None
    source_dir = source_run_dir(params, root_dir)
    if source_dir is None:
        missing = Outcome(weights.parent, UNAVAILABLE, f"the start weights {params['pretrained']} are not here "
                                                      "and are not another run's, so they cannot be rebuilt")  # fmt: skip
        return None, missing
    key = source_dir.resolve()
    if key not in sources:
        sources[key] = verify_or_error(source_dir, root_dir=root_dir, tolerance=tolerance, log=log)
    source = sources[key]
    if not rebuild or source.status != VERIFIED:
        return None, source
    source_params = read_params(source_dir)
    rebuilt_dir = scratch / "source"
    log(f"rebuilding the source run {source_dir} into a temporary folder ({_cost(source_dir)})")
    from ..engine import train

    source_config = _config_here(source_params, fp.read_fingerprint(source_dir / FINGERPRINT), root_dir,
                                 **recorded_layout(source_dir, source_params))
    train(source_config, rebuilt_dir, progress=False)
    rebuilt = rebuilt_dir / Path(params["pretrained"]).name
    if expected is not None and file_sha256(rebuilt) != expected:
        log(f"the rebuilt {rebuilt.name} differs from the file the run started from (SHA-256): expected "
            "on another processor or thread count; the fingerprint comparison decides")  # fmt: skip
    return rebuilt, source


def _cost(source_dir: Path) -> str:
    seconds = _read_dict(source_dir / SUMMARY).get("seconds")
    return f"it trained for {seconds / 60:.0f} min when it was made" if isinstance(seconds, (int, float)) else "its cost is not recorded"


def _from_source(run_dir: Path, params: dict[str, Any], source: Outcome, root_dir: Path) -> Outcome:
    """A run whose start weights are absent takes its source's verdict; its own fingerprint waits for them."""
    if source.status == VERIFIED:
        detail = (f"its start weights {params['pretrained']} are not here (weights are never committed); "
                  f"the source run's fingerprint verified. --rebuild-source retrains the source to check this "
                  f"run's own ({_cost(source.run_dir)})")  # fmt: skip
        return Outcome(run_dir, SOURCE_VERIFIED, detail, source=source)
    if source.status in FAILURES:
        return Outcome(run_dir, DIFFERS, f"the source run it started from {source.status}: {source.detail}", source=source)
    return Outcome(run_dir, source.status, f"its source run: {source.detail}", source=source)


def _check_epochs(
    outcome: Outcome, config: RunConfig, recorded: fp.Fingerprint, run_dir: Path, scratch: Path, epochs: int, log: Log
) -> None:
    """Rerun ``epochs`` whole epochs into ``scratch`` and expect the recorded history rows, bit for bit."""
    from ..engine import train

    here = device_name(torch.device(recorded.device))
    if here != recorded.device_name:
        outcome.epochs_detail = (f"--epochs {epochs} skipped: the run was recorded on {recorded.device_name}, this is "
                                 f"{here}; whole epochs agree only on the same processor model")  # fmt: skip
        return
    wanted = min(epochs, config.epochs)
    rows: list[dict[str, Any]] = []

    class _Enough(Exception):
        pass

    def stop_after(row: dict[str, Any]) -> None:
        rows.append(row)
        if len(rows) >= wanted:
            raise _Enough

    log(f"rerunning {wanted} epochs of {run_dir}")
    try:
        train(config, scratch / "epochs", progress=False, on_epoch_end=stop_after)
    except _Enough:
        pass
    recorded_rows = read_history(run_dir / HISTORY)[:wanted]
    rerun_rows = read_history(scratch / "epochs" / HISTORY)[:wanted]
    for old, new in zip(recorded_rows, rerun_rows):
        for column in EXACT_COLUMNS:
            if old.get(column) != new.get(column):
                outcome.status = DIFFERS
                outcome.detail = (f"epoch {old['epoch']}: {column} {old.get(column)!r} recorded, {new.get(column)!r} "
                                  "rerun; the fingerprint agreed, so the change acts later in training")  # fmt: skip
                outcome.epochs_detail = f"--epochs {wanted}: rows differ from epoch {old['epoch']} on"
                return
    outcome.epochs_detail = f"--epochs {wanted}: {len(rerun_rows)} history rows identical to the recorded ones"


def verify_or_error(run_dir: str | Path, **kwargs: Any) -> Outcome:
    """:func:`verify_run`, with any NormtestError raised for the run turned into ``unavailable``: for samples."""
    try:
        return verify_run(run_dir, **kwargs)
    except NormtestError as exc:
        return Outcome(Path(run_dir), UNAVAILABLE, str(exc))


# Whether verify_in_fresh_process starts a new interpreter; False verifies in this process (tests that patch a
# layer, which a new interpreter would not see, set it).
ISOLATE = True


def verify_in_fresh_process(run_dir: str | Path, *, root_dir: str | Path = ".",
                            sources: dict[Path, Outcome] | None = None) -> Outcome:
    """:func:`verify_or_error` in a new interpreter (``spawn``), the source outcomes it adds to ``sources``
    brought back: what a sample or a stale check verifies run after run.

    Each run was made in its own papermill kernel, and each verification must not see what an earlier one left
    in the process either. Measured here: study 2's from-scratch ``bn`` run ``aa4a62dc7dd6`` verified exactly on
    its own and after study 2's other runs, but twice differed by 4.3e-5 in its logit RMS after 2 steps when
    study 3's runs had been verified before it in the same process. A new interpreter costs a few seconds
    (importing torch) per run."""
    sources = {} if sources is None else sources
    if not ISOLATE:
        return verify_or_error(run_dir, root_dir=root_dir, sources=sources)
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        outcome, found = pool.apply(_verify_with_sources, (Path(run_dir), Path(root_dir), sources))
    sources.update(found)
    return outcome


def _verify_with_sources(run_dir: Path, root_dir: Path, sources: dict[Path, Outcome]) -> tuple[Outcome, dict]:
    return verify_or_error(run_dir, root_dir=root_dir, sources=sources), sources
