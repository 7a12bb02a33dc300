"""Grid files: ``params/<study>.yml`` -> validated runs with stable ids.

A grid file describes a study's runs::

    study: input_norm                         # runs go to runs/<study>/<profile>/<run id>/
    notebook: notebooks/run_experiment.ipynb  # optional; this is the default
    base: {dataset: synthetic, epochs: 100}   # settings every run shares (RunConfig keys)
    axes:                                     # crossed (cartesian product), in file order
      input_norm: [finetune, pretrain]
      seed: [0, 1, 2]
    zip:                                      # each group's lists have equal length and are
      - {model: [resnet18, resnet50],         # zipped, then crossed with the axes
         batch_size: [256, 128]}
    exclude:                                  # drop a run that matches every key of an entry
      - {model: resnet50, input_norm: pretrain}
    profiles:                                 # named overrides; every grid has smoke and paper
      smoke: {base: {epochs: 2, model: small}, axes: {seed: [0]}}
      paper: {}
      local:
        base: {train_subset: 3000}
        reasons:                              # why a parameter differs from the paper profile
          train_subset: "100 epochs of 40,000 images do not fit the machine's budget"

Expansion order: the first axis varies slowest, then the next axes, then the
zip groups in file order (``itertools.product`` over axes then zip groups).

Profiles (``--profile NAME`` picks one; each grid must define ``smoke`` and
``paper``, so the book's smoke build and the paper build work for every study):

- ``base`` merges into the base key by key;
- ``axes`` merges axis by axis: a profile axis replaces the file's axis of that
  name in place, a new name is added after the file's axes;
- ``zip`` and ``exclude`` replace the file's lists when the profile gives them;
- ``reasons`` (a profile's only, never run parameters) maps a run parameter to a sentence saying why
  this profile sets it differently from the published protocol: the chapters print it beside each
  change (:func:`profile_reasons`);
- a profile's setting of a parameter overrides the file's setting of that
  parameter wherever the file sets it: a key in the profile's ``base`` pins it
  (it is dropped from the file's axes and zip groups, so ``smoke`` above runs
  only the small model), and a profile axis or zip key replaces a file base
  value. Within one level (the file, or one profile) a parameter may appear in
  only one of base, axes and zip groups.

Exclusions compare a run's parameters before validation (so they can drop runs
that would not validate, such as ``input_norm: pretrain`` from scratch); a key
the grid does not set is compared with the RunConfig default.

Every expanded run must pass :func:`~normtest_lib.config.make_config`. Any
problem (YAML syntax, unknown keys, a missing profile, an axis that is not a
list, zip lists of unequal length, a run that fails validation) raises one
:class:`~normtest_lib.errors.ConfigError` naming the file, the profile and the
key, before any run starts.

Pretraining (``pretrain``): a mapping of run parameters for the run that the
grid's other runs start from. A run whose ``pretrained`` is ``"@pretrain"``
starts from that run's best-validation weights,
``<runs root>/<study>/<profile>/<pretraining run id>/best.pt`` (a path relative
to the working directory when the runs root is), so the runner executes the
pretraining run first (once: a finished one is skipped like any run) and the
others only once it has finished. A profile's ``pretrain`` merges into the
file's key by key. ``@pretrain`` without a ``pretrain`` section is an error::

    pretrain: {dataset: tiny_imagenet_200, model: cifar_resnet, epochs: 10}
    base: {dataset: cifar10-jpeg, model: cifar_resnet, pretrained: "@pretrain"}

Several pretraining runs (``follow``): the ``pretrain`` mapping may hold the key
``follow``, a list of run parameters (RunConfig keys, never ``pretrained``). A
run's pretraining run is then the mapping without ``follow`` plus, for each
followed key, that run's own value (its RunConfig default when the grid does
not set it; a followed key's value in the mapping is overridden). Each distinct
combination is one pretraining run with its own id (:func:`run_id`), run before
every run that starts from one; a profile's ``follow`` replaces the file's.
Without ``follow`` there is exactly one pretraining run::

    pretrain: {dataset: tiny_imagenet_200, model: cifar_resnet, epochs: 10, follow: [norm_layer]}
    base: {dataset: cifar10-jpeg, model: cifar_resnet, pretrained: "@pretrain"}
    axes: {norm_layer: [torch_bn, none]}  # two pretraining runs, each fine-tuned with its own norm_layer

Run identity: :func:`run_id` hashes a run's resolved parameters, so the same
run always lands in the same folder, whichever grid or profile asks for it.
"""

from __future__ import annotations

import difflib
import hashlib
import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from ..config import EXECUTION_ONLY_KEYS, RunConfig, make_config
from ..errors import ConfigError
from ..io import load_yaml, relative_path

TOP_LEVEL_KEYS = ("study", "notebook", "base", "axes", "zip", "exclude", "pretrain", "profiles")
PROFILE_KEYS = ("base", "axes", "zip", "exclude", "pretrain", "reasons")
# `pretrained: "@pretrain"` in a run starts it from the best weights of the grid's pretraining run.
PRETRAIN_PLACEHOLDER = "@pretrain"
# The key of a `pretrain` mapping listing the run parameters each pretraining run takes from its runs.
FOLLOW = "follow"
PRETRAIN_WEIGHTS = "best.pt"
REQUIRED_PROFILES = ("smoke", "paper")
DEFAULT_NOTEBOOK = "notebooks/run_experiment.ipynb"


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_PROJECT_ROOT = Path(__file__).resolve().parents[2]


def run_id(config: RunConfig) -> str:
    """A run's id: 12 hex digits of the SHA-256 of its canonical parameters.

    Canonical means the values of ``config.to_dict()`` that differ from
    RunConfig's defaults, without :data:`EXECUTION_ONLY_KEYS`, as JSON with
    sorted keys and no whitespace. It does not depend on the process, Python's
    hash seed or the order keys were given in. Leaving defaults out keeps
    committed results' folders valid when RunConfig gains a field; a new field's
    default must therefore reproduce the behaviour from before it existed.
    """
    return _hash(_identity(config))


def _identity(config: RunConfig) -> dict[str, Any]:
    defaults = _defaults()
    return {
        key: value
        for key, value in config.to_dict().items()
        if key not in EXECUTION_ONLY_KEYS and (key not in defaults or value != defaults[key])
    }


def _defaults() -> dict[str, Any]:
    return RunConfig.model_construct().to_dict()


def _hash(identity: Mapping[str, Any]) -> str:
    canonical = json.dumps(identity, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:12]


@dataclass(frozen=True)
class Run:
    """One validated run of a grid."""

    id: str
    config: RunConfig
    varying: dict[str, Any] = field(default_factory=dict)  # its values of the parameters that vary across the grid


@dataclass(frozen=True)
class Grid:
    """A grid file resolved for one profile."""

    path: Path
    study: str
    profile: str
    notebook: Path
    runs: tuple[Run, ...]
    varying_keys: tuple[str, ...]
    # The runs the others start from (``pretrained: "@pretrain"``), in the order first needed; not among ``runs``.
    # Without ``follow`` at most one; each one's ``varying`` holds its values of the followed keys.
    pretrains: tuple[Run, ...] = ()
    # The id of the pretraining run each run of ``runs`` that starts from one starts from.
    source_ids: Mapping[str, str] = field(default_factory=dict)
    # The ``follow`` keys of the profile's ``pretrain`` mapping.
    follow: tuple[str, ...] = ()

    @property
    def all_runs(self) -> tuple[Run, ...]:
        """Every run in execution order: the pretraining runs (if any) first."""
        return self.pretrains + self.runs

    def source_of(self, run_id: str) -> str | None:
        """The id of the pretraining run that run ``run_id`` starts from; None when it starts from none."""
        return self.source_ids.get(run_id)

    def index(self) -> dict[str, Any]:
        """The content of ``runs/<study>/<profile>/grid.json`` (read by the book).

        ``pretrain`` is the one pretraining run (None when there are none, or several);
        ``pretrains`` lists every pretraining run (empty when none).
        """
        entries = [{"id": run.id, "params": run.config.to_dict()} for run in self.pretrains]
        return {
            "study": self.study,
            "profile": self.profile,
            "grid_file": str(self.path),
            "notebook": str(relative_path(self.notebook)),
            "varying": list(self.varying_keys),
            "pretrain": entries[0] if len(entries) == 1 else None,
            "pretrains": entries,
            "runs": [{"id": run.id, "varying": run.varying, "params": run.config.to_dict()} for run in self.runs],
        }


def load_grid(path: str | Path, profile: str, runs_root: str | Path = "runs") -> Grid:
    """Read, resolve, expand and validate a grid file for one profile.

    ``runs_root`` is where the runner puts run folders; it locates the
    pretraining run's weights for runs that start from them.
    Raises :class:`ConfigError` naming the file, profile and key on any problem.
    """
    path = Path(path)
    spec = read_grid_file(path)
    where = _Where(path, profile)
    _check_structure(spec, where)
    study = spec.get("study", path.stem)
    if not isinstance(study, str) or not _NAME.match(study):
        raise where.error("study", f"expected a folder-safe name (letters, digits, _ . -), got {study!r}")
    notebook = _resolve_notebook(spec.get("notebook", DEFAULT_NOTEBOOK), where)
    resolved = resolve_profile(spec, profile, where)
    params_list = expand(resolved)
    if not params_list:
        raise where.error("exclude", "every run is excluded; the grid has no runs")
    pretrains, sources = _pretrain_runs(resolved, params_list, where)
    weights = {run.id: str(Path(runs_root) / study / profile / run.id / PRETRAIN_WEIGHTS) for run in pretrains}
    params_list = [
        {**params, "pretrained": weights[source.id]} if source is not None else params
        for params, source in zip(params_list, sources)
    ]
    tokens = {weights[run.id]: pretrain_token(run.id) for run in pretrains}
    runs = _validate(params_list, resolved, where, frozenset(tokens), tokens)
    varying_keys = _varying_keys(runs, resolved)
    runs = tuple(
        Run(run.id, run.config, {key: run.config.to_dict()[key] for key in varying_keys}) for run in runs
    )
    by_weights = {path: rid for rid, path in weights.items()}
    source_ids = {run.id: by_weights[run.config.pretrained] for run in runs if run.config.pretrained in by_weights}
    return Grid(path, study, profile, notebook, runs, varying_keys, pretrains, source_ids, resolved.follow)


def source_params(grid: "ResolvedGrid", params: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters of the pretraining run that a run (raw ``params``, ``pretrained: "@pretrain"``) starts from.

    The profile's ``pretrain`` mapping plus, for each ``follow`` key, the run's own
    value (the RunConfig default when the run does not set it).
    """
    return {**grid.pretrain, **{key: params.get(key, _default(key)) for key in grid.follow}}


def _pretrain_runs(
    grid: ResolvedGrid, params_list: list[dict[str, Any]], where: "_Where"
) -> tuple[tuple[Run, ...], list[Run | None]]:
    """The validated pretraining runs in the order first needed, and the one each run starts from (None: none).

    No pretraining run when no run starts from ``@pretrain``.
    """
    if not any(params.get("pretrained") == PRETRAIN_PLACEHOLDER for params in params_list):
        return (), [None] * len(params_list)
    if not grid.pretrain and not grid.follow:
        raise where.error(
            "pretrain", f'runs start from pretrained: "{PRETRAIN_PLACEHOLDER}", but the grid declares no pretrain run'
        )
    if grid.pretrain.get("pretrained") == PRETRAIN_PLACEHOLDER:
        raise where.error("pretrain.pretrained", "the pretraining run cannot start from itself")
    by_values: dict[str, Run] = {}  # canonical followed values -> its pretraining run
    by_id: dict[str, Run] = {}
    sources: list[Run | None] = []
    for params in params_list:
        if params.get("pretrained") != PRETRAIN_PLACEHOLDER:
            sources.append(None)
            continue
        values = {key: params.get(key, _default(key)) for key in grid.follow}
        canonical = json.dumps(values, sort_keys=True, default=str)
        if canonical not in by_values:
            by_values[canonical] = _one_pretrain_run(grid, params, values, by_id, where)
        sources.append(by_values[canonical])
    return tuple(by_id.values()), sources


def _one_pretrain_run(
    grid: ResolvedGrid, params: Mapping[str, Any], values: dict[str, Any], by_id: dict[str, Run], where: "_Where"
) -> Run:
    shown = ", ".join(f"{key}={value!r}" for key, value in values.items())
    name = f"pretrain ({shown})" if grid.follow else "pretrain"
    try:
        config = make_config(source_params(grid, params))
    except ConfigError as exc:
        raise ConfigError(f"{where.prefix()}: {name}: {exc}") from None
    rid = run_id(config)
    known = by_id.get(rid)
    if known is not None and known.config.to_dict() != config.to_dict():
        differing = sorted(k for k, v in config.to_dict().items() if known.config.to_dict().get(k) != v)
        raise where.error(
            f"pretrain.{FOLLOW}",
            f"pretraining runs differ only in execution-only keys ({', '.join(differing)}) and would share run "
            f"folder {rid}; do not follow them",
        )
    if known is None:
        by_id[rid] = Run(rid, config, {key: config.to_dict()[key] for key in grid.follow})
    return by_id[rid]


def read_grid_file(path: Path) -> dict[str, Any]:
    """``yaml.safe_load`` a grid file; syntax errors name the file and line."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"{path}: grid file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the grid file ({exc.strerror})") from None
    try:
        spec = load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        position = f" line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{path}:{position}: YAML syntax error: {problem}") from None
    if not isinstance(spec, dict):
        raise ConfigError(f"{path}: expected a mapping with study, base, axes, ... at the top, got {type(spec).__name__}")
    return spec


@dataclass(frozen=True)
class ResolvedGrid:
    """A grid's sections after applying one profile (the input of :func:`expand`)."""

    base: dict[str, Any]
    axes: dict[str, list[Any]]
    zip: list[dict[str, list[Any]]]
    exclude: list[dict[str, Any]]
    pretrain: dict[str, Any] = field(default_factory=dict)  # the pretraining runs' shared parameters, without follow
    follow: tuple[str, ...] = ()  # the keys each pretraining run takes from the runs that start from it


def resolve_profile(spec: Mapping[str, Any], profile: str, where: "_Where | None" = None) -> ResolvedGrid:
    """Apply profile ``profile`` of a (structurally checked) grid spec; see the module docstring."""
    where = where or _Where(Path("<grid>"), profile)
    profiles = spec.get("profiles") or {}
    if profile not in profiles:
        known = ", ".join(sorted(profiles)) or "none"
        raise where.error("profiles", f"unknown profile {profile!r}; known profiles: {known}")
    overrides = profiles[profile] or {}

    file_base = dict(spec.get("base") or {})
    file_axes = dict(spec.get("axes") or {})
    file_zip = [dict(group) for group in spec.get("zip") or []]
    profile_base = dict(overrides.get("base") or {})
    profile_axes = dict(overrides.get("axes") or {})
    profile_zip = None if overrides.get("zip") is None else [dict(group) for group in overrides["zip"]]

    set_by_profile = set(profile_base) | set(profile_axes) | {key for group in profile_zip or [] for key in group}

    base = {key: value for key, value in file_base.items() if key not in set_by_profile}
    base.update(profile_base)

    axes: dict[str, list[Any]] = {}
    for name, values in file_axes.items():
        if name in profile_axes:
            axes[name] = profile_axes[name]
        elif name not in set_by_profile:
            axes[name] = values
    for name, values in profile_axes.items():
        axes.setdefault(name, values)

    if profile_zip is not None:
        zip_groups = profile_zip
    else:
        zip_groups = [{key: values for key, values in group.items() if key not in set_by_profile} for group in file_zip]
        zip_groups = [group for group in zip_groups if group]

    exclude = overrides.get("exclude") if overrides.get("exclude") is not None else spec.get("exclude") or []
    pretrain = {**(spec.get("pretrain") or {}), **(overrides.get("pretrain") or {})}
    follow = pretrain.pop(FOLLOW, None) or []
    _check_follow(follow, f"pretrain.{FOLLOW}", where)  # checked again here for callers that expand unchecked files
    return ResolvedGrid(base, axes, zip_groups, [dict(entry) for entry in exclude], pretrain, tuple(follow))


def expand(grid: ResolvedGrid) -> list[dict[str, Any]]:
    """The raw parameter dicts of a resolved grid, in expansion order, exclusions dropped."""
    axis_names = list(grid.axes)
    axis_values = [grid.axes[name] for name in axis_names]
    zip_rows = [[dict(zip(group, row)) for row in zip(*group.values())] for group in grid.zip]
    runs = []
    for combination in itertools.product(*axis_values, *zip_rows):
        params = dict(grid.base)
        params.update(zip(axis_names, combination[: len(axis_names)]))
        for row in combination[len(axis_names) :]:
            params.update(row)
        if not any(_matches(params, entry) for entry in grid.exclude):
            runs.append(params)
    return runs


def _matches(params: Mapping[str, Any], entry: Mapping[str, Any]) -> bool:
    return all(params.get(key, _default(key)) == value for key, value in entry.items())


def _default(key: str) -> Any:
    return RunConfig.model_fields[key].get_default(call_default_factory=True)


def pretrain_token(pretrain_id: str) -> str:
    """What a run started from the grid's pretraining run hashes in place of the weights' path.

    The path depends on the runs root (``runs/`` or ``results/``); the pretraining
    run's id does not, so a run keeps its id whichever root it is run into.
    """
    return f"{PRETRAIN_PLACEHOLDER}:{pretrain_id}"


def _validate(
    params_list: list[dict[str, Any]],
    grid: ResolvedGrid,
    where: "_Where",
    pending: frozenset[str] = frozenset(),
    pretrained_as: Mapping[str, str] | None = None,
) -> list[Run]:
    """make_config every run; one error for all failures; duplicates dropped, id clashes refused.

    ``pending``: checkpoint paths that the grid's pretraining runs will write, valid before they exist;
    ``pretrained_as``: what runs starting from each of them hash instead of that path.
    """
    grid_keys = list(grid.axes) + [key for group in grid.zip for key in group]
    runs: list[Run] = []
    seen: dict[str, dict[str, Any]] = {}
    failures: list[tuple[dict[str, Any], str]] = []
    for params in params_list:
        try:
            config = make_config(params, pending_checkpoints=pending)
        except ConfigError as exc:
            failures.append(({key: params[key] for key in grid_keys if key in params}, str(exc)))
            continue
        identity = _identity(config)
        if pretrained_as and config.pretrained in pretrained_as:
            identity["pretrained"] = pretrained_as[config.pretrained]
        rid = _hash(identity)
        if rid in seen:
            if seen[rid] != config.to_dict():
                differing = sorted(k for k, v in config.to_dict().items() if seen[rid].get(k) != v)
                raise where.error(
                    ", ".join(differing),
                    f"runs differ only in execution-only keys ({', '.join(differing)}) and would share run "
                    f"folder {rid}; vary these per machine on the command line, not in a grid",
                )
            continue  # a profile pinned a key and made two runs identical: run it once
        seen[rid] = config.to_dict()
        runs.append(Run(rid, config))
    if failures:
        params, message = failures[0]
        more = f"\n({len(failures)} of {len(params_list)} runs are invalid; the first is shown)" if len(failures) > 1 else ""
        shown = ", ".join(f"{key}={value!r}" for key, value in params.items()) or "(the base settings)"
        raise ConfigError(f"{where.prefix()}: run {shown}: {message}{more}")
    return runs


def _varying_keys(runs: list[Run], grid: ResolvedGrid) -> tuple[str, ...]:
    """Parameters whose value differs between runs: axes and zip keys first, in file order."""
    dicts = [run.config.to_dict() for run in runs]
    differs = {
        key
        for key in dicts[0]
        if len({json.dumps(d[key], sort_keys=True) for d in dicts}) > 1
    }
    declared = list(grid.axes) + [key for group in grid.zip for key in group]
    ordered = [key for key in declared if key in differs]
    return tuple(ordered + sorted(differs - set(ordered)))


def _resolve_notebook(value: Any, where: "_Where") -> Path:
    """A relative notebook path is looked up in the working directory, then the project root."""
    if not isinstance(value, str) or not value:
        raise where.error("notebook", f"expected the path of a notebook, got {value!r}")
    path = Path(value)
    candidates = [path] if path.is_absolute() else [Path.cwd() / path, _PROJECT_ROOT / path]
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    raise where.error("notebook", f"{value} not found (looked in: {', '.join(str(c) for c in candidates)})")


# --- structural checks ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Where:
    """Where in which file a problem is, for error messages."""

    path: Path
    profile: str

    def prefix(self) -> str:
        return f"{self.path} (profile {self.profile!r})"

    def error(self, key: str, message: str) -> ConfigError:
        return ConfigError(f"{self.prefix()}: {key}: {message}")


def _check_structure(spec: Mapping[str, Any], where: _Where) -> None:
    _check_keys(spec, TOP_LEVEL_KEYS, "", where, what="top-level key")
    profiles = spec.get("profiles")
    if not isinstance(profiles, dict):
        raise where.error(
            "profiles", f"expected a mapping of named overrides with at least {' and '.join(REQUIRED_PROFILES)}"
        )
    missing = [name for name in REQUIRED_PROFILES if name not in profiles]
    if missing:
        raise where.error("profiles", f"every grid needs the profiles {', '.join(REQUIRED_PROFILES)}; missing: {', '.join(missing)}")
    _check_sections(spec, "", where)
    for name, overrides in profiles.items():
        if not isinstance(name, str) or not _NAME.match(name):
            raise where.error("profiles", f"profile name {name!r} is not a folder-safe name (letters, digits, _ . -)")
        if overrides is None:
            continue
        if not isinstance(overrides, dict):
            raise where.error(f"profiles.{name}", f"expected a mapping with {', '.join(PROFILE_KEYS)}, got {overrides!r}")
        _check_keys(overrides, PROFILE_KEYS, f"profiles.{name}.", where, what="profile key")
        _check_sections(overrides, f"profiles.{name}.", where)
        _check_reasons(overrides.get("reasons"), f"profiles.{name}.reasons", where)


def _check_reasons(reasons: Any, name: str, where: _Where) -> None:
    if reasons is None:
        return
    if not isinstance(reasons, dict):
        raise where.error(name, f"expected a mapping of run parameter: why this profile changes it, got {reasons!r}")
    for key, text in reasons.items():
        _check_param(key, f"{name}.{key}", where)
        if not isinstance(text, str) or not text.strip():
            raise where.error(f"{name}.{key}", f"expected a sentence saying why, got {text!r}")


def profile_reasons(path: str | Path, profile: str) -> dict[str, str]:
    """The ``reasons`` a grid file's profile gives for the parameters it changes (empty when it gives none).

    Raises :class:`ConfigError` as :func:`load_grid` does for a malformed file or an unknown profile."""
    path = Path(path)
    spec = read_grid_file(path)
    where = _Where(path, profile)
    _check_structure(spec, where)
    profiles = spec["profiles"]
    if profile not in profiles:
        raise where.error("profiles", f"unknown profile {profile!r}; known profiles: {', '.join(sorted(profiles))}")
    return {key: text.strip() for key, text in ((profiles[profile] or {}).get("reasons") or {}).items()}


def _check_keys(mapping: Mapping[str, Any], allowed: tuple[str, ...], prefix: str, where: _Where, *, what: str) -> None:
    for key in mapping:
        if key not in allowed:
            raise where.error(f"{prefix}{key}", f"unknown {what}; allowed: {', '.join(allowed)}")


def _check_sections(spec: Mapping[str, Any], prefix: str, where: _Where) -> None:
    """Types of base/axes/zip/exclude, parameter names, zip lengths, and one place per key."""
    for section in ("base", "pretrain"):
        mapping = spec.get(section)
        if mapping is not None and not isinstance(mapping, dict):
            raise where.error(f"{prefix}{section}", f"expected a mapping of run parameters, got {mapping!r}")
        for key in mapping or {}:
            if section == "pretrain" and key == FOLLOW:
                _check_follow(mapping[key], f"{prefix}{section}.{key}", where)
            else:
                _check_param(key, f"{prefix}{section}.{key}", where)
    base = spec.get("base")

    axes = spec.get("axes")
    if axes is not None and not isinstance(axes, dict):
        raise where.error(f"{prefix}axes", f"expected a mapping of parameter: [values], got {axes!r}")
    for key, values in (axes or {}).items():
        _check_param(key, f"{prefix}axes.{key}", where)
        _check_values(values, f"{prefix}axes.{key}", where)
        _check_unique(values, f"{prefix}axes.{key}", where, what="value")

    zip_groups = spec.get("zip")
    if zip_groups is not None and not isinstance(zip_groups, list):
        raise where.error(f"{prefix}zip", f"expected a list of groups {{param: [values], ...}}, got {zip_groups!r}")
    for index, group in enumerate(zip_groups or []):
        name = f"{prefix}zip[{index}]"
        if not isinstance(group, dict) or not group:
            raise where.error(name, f"expected a non-empty mapping of parameter: [values], got {group!r}")
        for key, values in group.items():
            _check_param(key, f"{name}.{key}", where)
            _check_values(values, f"{name}.{key}", where)
        lengths = {key: len(values) for key, values in group.items()}
        if len(set(lengths.values())) > 1:
            shown = ", ".join(f"{key} has {n}" for key, n in lengths.items())
            raise where.error(name, f"zipped lists must have equal length: {shown}")
        _check_unique([dict(zip(group, row)) for row in zip(*group.values())], name, where, what="row")

    exclude = spec.get("exclude")
    if exclude is not None and not isinstance(exclude, list):
        raise where.error(f"{prefix}exclude", f"expected a list of {{param: value, ...}} entries, got {exclude!r}")
    for index, entry in enumerate(exclude or []):
        name = f"{prefix}exclude[{index}]"
        if not isinstance(entry, dict) or not entry:
            raise where.error(name, f"expected a non-empty mapping of parameter: value, got {entry!r}")
        for key in entry:
            _check_param(key, f"{name}.{key}", where)

    # One level may set a parameter in only one place.
    places: dict[str, str] = {}
    sections = [("base", base or {}), ("axes", axes or {})]
    sections += [(f"zip[{index}]", group) for index, group in enumerate(zip_groups or [])]
    for section, mapping in sections:
        for key in mapping:
            if key in places:
                raise where.error(
                    f"{prefix}{section}.{key}", f"{key} is also set in {prefix}{places[key]}; set it in one place"
                )
            places[key] = section


def _check_param(key: Any, name: str, where: _Where) -> None:
    if key in RunConfig.model_fields:
        return
    hint = difflib.get_close_matches(str(key), list(RunConfig.model_fields), n=1)
    suggestion = f"; did you mean {hint[0]!r}?" if hint else "; see RunConfig in normtest_lib/config.py"
    raise where.error(name, f"unknown run parameter{suggestion}")


def _check_follow(follow: Any, name: str, where: _Where) -> None:
    """``pretrain.follow``: a list of run parameters, each once, never ``pretrained``."""
    if not isinstance(follow, list) or not all(isinstance(key, str) for key in follow):
        raise where.error(name, f"expected a list of run parameters (RunConfig keys), got {follow!r}")
    for key in follow:
        if key not in RunConfig.model_fields:
            hint = difflib.get_close_matches(key, list(RunConfig.model_fields), n=1)
            suggestion = f"; did you mean {hint[0]!r}?" if hint else "; see RunConfig in normtest_lib/config.py"
            raise where.error(name, f"{key!r} is not a run parameter{suggestion}")
        if key == "pretrained":
            raise where.error(name, "'pretrained' cannot be followed: a pretraining run cannot start from itself")
    _check_unique(follow, name, where, what="key")


def _check_values(values: Any, name: str, where: _Where) -> None:
    if not isinstance(values, list):
        raise where.error(name, f"expected a list of values, got {values!r} (write [{values!r}] for one value)")
    if not values:
        raise where.error(name, "the list is empty, so the grid would have no runs")


def _check_unique(values: list[Any], name: str, where: _Where, *, what: str) -> None:
    canonical = [json.dumps(value, sort_keys=True, default=str) for value in values]
    for value, text in zip(values, canonical):
        if canonical.count(text) > 1:
            raise where.error(name, f"the {what} {value!r} is listed twice")
