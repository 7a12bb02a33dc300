"""The run folder: what is in it decides whether a run starts, resumes, or is already done.

Rules (ARCHITECTURE.md, "A run"):

- a folder whose ``params.yaml`` differs from the new config is refused, untouched;
  the keys that only say where and how fast a run executes (``data_root``,
  ``download``, ``device``, ``num_threads``: the grid's ``EXECUTION_ONLY_KEYS``,
  left out of run ids) may differ, so a run can resume on another machine;
- a folder holding run results but no ``params.yaml`` is refused, untouched
  (other files, such as the notebook papermill writes there, are fine);
- ``summary.json`` saying ``complete`` or ``diverged`` means the run is finished:
  rerunning returns that summary and changes nothing;
- otherwise an existing ``checkpoint.pt`` is resumed from, else training starts afresh.

``environment.json`` is ``{"starts": [...]}``: one entry per start or resume of the
run (``kind`` "start" or "resume", ``time`` in UTC, ``from_epoch``, then the
environment), so a run resumed on another machine keeps the record of both.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import yaml

from ..config import EXECUTION_ONLY_KEYS, RunConfig
from ..errors import ConfigError
from ..io import read_json, read_yaml, write_json, write_yaml
from ..run_files import (  # noqa: F401 - re-exported
    BEST,
    CHECKPOINT,
    ENVIRONMENT,
    FINGERPRINT,
    FINISHED,
    HISTORY,
    NOISY_LABELS,
    NOISY_VAL_LABELS,
    PARAMS,
    PROBES,
    SUMMARY,
)

RESULT_FILES = (HISTORY, SUMMARY, CHECKPOINT, BEST, PROBES, NOISY_LABELS, NOISY_VAL_LABELS, FINGERPRINT)

State = Literal["new", "resume", "finished"]


class RunFolder:
    """Paths and the start/resume decision of one run folder."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @property
    def params(self) -> Path:
        return self.path / PARAMS

    @property
    def history(self) -> Path:
        return self.path / HISTORY

    @property
    def summary(self) -> Path:
        return self.path / SUMMARY

    @property
    def checkpoint(self) -> Path:
        return self.path / CHECKPOINT

    @property
    def best(self) -> Path:
        return self.path / BEST

    @property
    def probes(self) -> Path:
        return self.path / PROBES

    @property
    def noisy_labels(self) -> Path:
        return self.path / NOISY_LABELS

    @property
    def noisy_val_labels(self) -> Path:
        return self.path / NOISY_VAL_LABELS

    @property
    def fingerprint(self) -> Path:
        return self.path / FINGERPRINT

    @property
    def environment(self) -> Path:
        return self.path / ENVIRONMENT

    def state(self, config: RunConfig) -> State:
        """Decide what to do with this folder for ``config``; raise ConfigError to refuse it."""
        if self.path.exists() and not self.path.is_dir():
            raise ConfigError(f"run folder {self.path} is a file; choose a folder path")
        if self.params.exists():
            self._check_same_params(config)
        else:
            present = [name for name in RESULT_FILES if (self.path / name).exists()]
            if present:
                raise ConfigError(
                    f"run folder {self.path} holds {', '.join(present)} but no {PARAMS}; "
                    "it is not a normtest run folder (or a damaged one); choose another folder"
                )
            return "new"
        if self._recorded_status() in FINISHED:
            return "finished"
        return "resume" if self.checkpoint.exists() else "new"

    def _recorded_status(self) -> str | None:
        try:
            summary = self.read_summary()
        except (OSError, ValueError):  # absent, or unreadable: the run did not finish
            return None
        return summary.get("status") if isinstance(summary, dict) else None

    def _check_same_params(self, config: RunConfig) -> None:
        try:
            saved = read_yaml(self.params)
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"{self.params} cannot be read ({exc}); choose another run folder") from None
        if not isinstance(saved, dict):
            raise ConfigError(f"{self.params} does not hold run parameters; choose another run folder")
        current = config.to_dict()
        missing = object()
        differences = [
            f"{key}: {saved.get(key, '(absent)')!r} in the folder, {current.get(key, '(absent)')!r} now"
            for key in sorted((set(saved) | set(current)) - EXECUTION_ONLY_KEYS)
            if saved.get(key, missing) != current.get(key, missing)
        ]
        if differences:
            raise ConfigError(
                f"run folder {self.path} holds a run with different parameters; it was left untouched. "
                "Use another folder, or delete this one to start over.\n  " + "\n  ".join(differences)
            )

    def read_summary(self) -> dict[str, Any]:
        return read_json(self.summary)

    def write_params(self, config: RunConfig) -> None:
        write_yaml(self.params, config.to_dict())

    def write_summary(self, summary: dict[str, Any]) -> None:
        write_json(self.summary, summary)

    def read_environment(self) -> list[dict[str, Any]]:
        """The recorded starts of the run, oldest first; [] when none (or unreadable)."""
        try:
            recorded = read_json(self.environment)
        except (OSError, ValueError):
            return []
        if isinstance(recorded, dict) and isinstance(recorded.get("starts"), list):
            return list(recorded["starts"])
        if isinstance(recorded, dict):  # written before starts were kept: one entry of unknown kind
            return [{"kind": None, "time": None, **recorded}]
        return []

    def add_environment(self, info: dict[str, Any], *, from_epoch: int) -> None:
        """Append this start (``from_epoch`` 0) or resume to ``environment.json``."""
        entry = {
            "kind": "start" if from_epoch == 0 else "resume",
            "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "from_epoch": from_epoch,
            **info,
        }
        write_json(self.environment, {"starts": [*self.read_environment(), entry]})
