"""Reject parameters a notebook does not declare.

papermill injects ``-p name value`` as an assignment after the cell tagged
``parameters`` and only *warns* when ``name`` is not one the notebook defines,
so a misspelt parameter would silently run the defaults. A notebook guards
against that in three steps::

    guard = ParameterGuard(globals())          # cell before the parameters cell
    datasets = ["synthetic"]                   # the cell tagged "parameters"
    # (papermill's injected cell lands here)
    params = guard.check(globals(), {"datasets": list})   # the next cell

:meth:`ParameterGuard.check` sees every name that appeared, or was re-bound,
after the guard was made, and raises :class:`ConfigError` for any that is not
declared, or whose value has the wrong type.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping

from .errors import ConfigError


class ParameterGuard:
    """A snapshot of a notebook's global names, taken just before its parameters."""

    def __init__(self, namespace: Mapping[str, Any]) -> None:
        # Holding the objects (not their ids) keeps identity comparisons valid:
        # a freed object's id could be reused by a new value.
        self._before = dict(namespace)

    def new_names(self, namespace: Mapping[str, Any]) -> set[str]:
        """Names bound since the snapshot, or bound to a different object.

        Names starting with an underscore are IPython's own (``_``, ``_i3``,
        ``_5``) and are ignored, as is the guard itself.
        """
        changed = set()
        for name, value in namespace.items():
            if name.startswith("_") or value is self:
                continue
            if name not in self._before or self._before[name] is not value:
                changed.add(name)
        return changed

    def check(self, namespace: Mapping[str, Any], declared: Mapping[str, type | tuple[type, ...]]) -> dict[str, Any]:
        """Return the declared parameters' values; raise for unknown, unset or mistyped ones.

        ``declared`` maps each parameter's name to the type(s) its value may have.
        """
        unknown = sorted(self.new_names(namespace) - set(declared))
        if unknown:
            raise ConfigError(
                f"unknown notebook parameter(s): {', '.join(unknown)}; "
                f"this notebook accepts: {', '.join(declared)}"
            )
        missing = [name for name in declared if name not in namespace]
        if missing:
            raise ConfigError(f"notebook parameter(s) {', '.join(missing)} are declared but never set in the parameters cell")
        for name, allowed in declared.items():
            if not isinstance(namespace[name], allowed):
                names = " or ".join(t.__name__ for t in (allowed if isinstance(allowed, tuple) else (allowed,)))
                raise ConfigError(f"notebook parameter {name} must be {names}, got {namespace[name]!r}")
        return {name: namespace[name] for name in declared}


def resolve_data_roots(
    datasets: Iterable[str], data_root: str | Path | Mapping[str, str | Path | None] | None
) -> dict[str, Path | None]:
    """Each data set's root from a notebook's ``data_root`` parameter.

    ``None`` gives every data set no root (the built-in synthetic ones need
    none); one folder is used for every data set; a mapping gives each its own
    root, and a data set it does not name gets ``None``. A mapping key that is
    not among ``datasets`` is an error, since it is almost certainly a typo.
    """
    datasets = list(datasets)
    if data_root is None:
        return {name: None for name in datasets}
    if isinstance(data_root, (str, Path)):
        return {name: Path(data_root) for name in datasets}
    if isinstance(data_root, Mapping):
        stray = sorted(set(data_root) - set(datasets))
        if stray:
            raise ConfigError(f"data_root names data set(s) {', '.join(stray)} that are not in datasets ({', '.join(datasets)})")
        return {name: Path(data_root[name]) if data_root.get(name) is not None else None for name in datasets}
    raise ConfigError(f"data_root must be None, a folder, or a mapping of data set name to folder; got {type(data_root).__name__}")
