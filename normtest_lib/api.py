"""The one-call Python interface for notebooks: run an experiment, read a run back.

    from normtest_lib.api import load_run, run_experiment
    summary = run_experiment("runs/try", model="small", epochs=3, progress=True)
    run = load_run("runs/try")
    run.history.plot(x="epoch", y=["train_acc", "val_acc"])
    run.probes  # per-epoch measurements (run parameter ``probes``), long: epoch, probe, name, value
    run.noisy_labels  # with label_noise > 0: index, label, noisy_label of each training image; else None
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from .config import RunConfig, make_config
from .engine import train
from .engine.loop import EpochCallback
from .engine.rundir import CHECKPOINT, HISTORY, NOISY_LABELS, PARAMS, PROBES, SUMMARY
from .errors import ConfigError
from .io import read_json, read_yaml


def run_experiment(
    out_dir: str | Path,
    *,
    progress: bool | None = None,
    on_epoch_end: EpochCallback | None = None,
    **params: Any,
) -> dict[str, Any]:
    """Validate ``params`` (the keys of RunConfig) and train them into ``out_dir``; return the summary.

    Rerunning with the same folder and parameters resumes an interrupted run,
    or returns the summary of a finished one without training again.
    ``progress``: by default one live bar per loop inside Jupyter, text bars in a
    terminal and none elsewhere (papermill batch runs pass False);
    ``on_epoch_end(row)`` receives each epoch's history row.
    """
    return train(make_config(params), out_dir, progress=progress, on_epoch_end=on_epoch_end)


def resolve_out_dir(out_dir: str | Path | None, config: RunConfig) -> Path:
    """The run folder: ``out_dir`` when given, else ``runs/interactive/<run id>`` in the project.

    The project is the checkout holding this package (the folder with
    ``pyproject.toml``), or the current folder when the package is installed
    elsewhere. The run id is the grid's (a hash of the parameters), so the
    same parameters always land in the same folder, and rerunning them resumes.
    """
    if out_dir is not None and str(out_dir) != "":
        return Path(out_dir)
    from .grid.spec import run_id

    checkout = Path(__file__).resolve().parent.parent
    project = checkout if (checkout / "pyproject.toml").is_file() else Path.cwd()
    return project / "runs" / "interactive" / run_id(config)


def pretrain(out_dir: str | Path, *, progress: bool | None = None, **params: Any) -> Path:
    """Train a source network for study 1 and return its checkpoint, ready for ``pretrained:``.

    The same engine as :func:`run_experiment`; the checkpoint records the source data
    set, the statistics its inputs were standardized with and its input size, which a
    fine-tuning run with ``input_norm: pretrain`` uses. Only the settings that
    standardize with statistics (``finetune``, ``center``, or ``pretrain`` from
    another start) leave statistics to record, so any other ``input_norm`` is
    refused up front.
    """
    config = make_config(params)
    if config.input_norm not in ("finetune", "center", "pretrain"):
        raise ConfigError(
            f"pretrain with input_norm {config.input_norm!r} records no statistics for a later "
            "input_norm 'pretrain'; use input_norm 'finetune' (the source set's own statistics)"
        )
    summary = train(config, out_dir, progress=progress)
    if summary["status"] != "complete":
        raise ConfigError(f"pretraining in {out_dir} ended with status {summary['status']!r}; see its summary.json")
    return Path(out_dir) / CHECKPOINT


PROBE_DTYPES = {"epoch": "int64", "probe": object, "name": object, "value": "float64"}  # probes.csv


def _no_probes() -> pd.DataFrame:
    """The probes of a run that took none: no rows, the columns of ``probes.csv``."""
    return pd.DataFrame({column: pd.Series(dtype=dtype) for column, dtype in PROBE_DTYPES.items()})


@dataclass(frozen=True)
class RunRecord:
    """A run folder read back: its parameters, per-epoch history, summary and probe measurements."""

    path: Path
    params: dict[str, Any]
    history: pd.DataFrame
    summary: dict[str, Any]
    # One row per number: epoch, probe, name, value; empty (with those columns) without probes.
    probes: pd.DataFrame = field(default_factory=_no_probes)
    # With label noise: the training images' index, label and noisy_label (noisy_labels.csv); None without.
    noisy_labels: pd.DataFrame | None = None

    @property
    def status(self) -> str:
        return str(self.summary.get("status"))


def load_run(out_dir: str | Path) -> RunRecord:
    """Read a run folder's ``params.yaml``, ``history.csv``, ``summary.json``, ``probes.csv``, ``noisy_labels.csv``."""
    path = Path(out_dir)
    missing = [name for name in (PARAMS, SUMMARY) if not (path / name).is_file()]
    if missing:
        raise ConfigError(f"{path} is not a run folder: {', '.join(missing)} missing")
    history_path = path / HISTORY
    history = pd.read_csv(history_path) if history_path.is_file() else pd.DataFrame()
    probes_path = path / PROBES
    probes = pd.read_csv(probes_path, dtype={"probe": str, "name": str}) if probes_path.is_file() else _no_probes()
    noisy_path = path / NOISY_LABELS
    noisy_labels = pd.read_csv(noisy_path, dtype="int64") if noisy_path.is_file() else None
    return RunRecord(path, read_yaml(path / PARAMS), history, read_json(path / SUMMARY), probes, noisy_labels)
