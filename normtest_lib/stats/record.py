"""A data set's channel statistics and "Table 1" as a committed record, one JSON file per data set.

Computing Tiny ImageNet's Table 1 from its 100,000 images takes minutes on a
small CPU, and the images are not in a fresh clone; the book reads these
records instead. Layout (``results/dataset_statistics/<profile>/<name>.json``,
profile ``local`` for the project's local copies of the real data)::

    format            RECORD_FORMAT
    name              the data set as the book names it (file stem): ``cifar10-jpeg``, ``tiny_imagenet_200``
    dataset           registry name it was read with (``imagefolder``, ``tiny_imagenet_200``)
    data_root         the root it was read from, relative to the project (only the folder's name if outside it)
    data              ``real data`` or ``synthetic data`` (generated in code)
    published_as      registry name of the published statistics it compares with (``cifar10``), or null
    split             ``train``; channel_order ``RGB``; scale ``[0, 1]`` (raw statistics)
    n_images          images the statistics rest on; n_images_in_split: all of the split's
    sample            null (the whole split) or {"max_images", "seed"} of a seeded sample
    image_size        [height, width]
    stats             {"mean": [R, G, B], "std": [R, G, B]}: population std, [0, 1] scale
    level_counts      [[256 ints] x 3]: pixels per value 0..255 and channel (histograms, exact moments)
    pretrain_stats    what ``pretrain`` standardized with: {"name": "imagenet", "mean", "std"}
    table1            {setting: {"mean", "std"}} after every input setting (``pretrain``: the row published)
    image_checks      per-image checks of the input settings over the same images (``image_checks.py``):
                      unit against per-image min-max, constant channels, a zero border, BGR order
    computed_with     normtest version, git_commit, python, torch, numpy, pillow versions
    seconds           wall time of the computation (loading included)
    command           the ``normtest stats`` command that regenerates the file

Beside it, ``<name>.gallery.npz`` (:func:`write_record`, :func:`read_galleries`): a few training images of
the set (``images``, uint8 N x 3 x H x W, RGB) and their indices in the split as loaded (``indices``), drawn
by a fixed seed, so that the book shows real images beside its statistics without decoding the data set.

No machine path and no time stamp: rerunning on the same data and code
changes only ``seconds``.
"""

from __future__ import annotations

import dataclasses
import json
import platform
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Mapping, Sequence

import torch

from ..errors import DatasetError
from ..input_norm import SETTINGS
from .channel import ChannelStats, level_counts, stats_from_counts
from .image_checks import ImageChecks, compute_image_checks
from .normalized import sample_images, stats_after_settings
from .reference import IMAGENET, PUBLISHED

RECORD_FORMAT = 2  # 2: image_checks added
STATISTICS_FOLDER = "dataset_statistics"  # results/<this>/<profile>/
GALLERY_SUFFIX = ".gallery.npz"  # <name><this> beside <name>.json
GALLERY_IMAGES = 4  # images kept per data set: enough for the chapter's gallery, a few kB each
GALLERY_SEED = 1
DEFAULT_PROFILE = "local"
REAL, SYNTHETIC = "real data", "synthetic data"
CHANNEL_ORDER = "RGB"


@dataclass(frozen=True)
class StatisticsRecord:
    """One data set's committed statistics; see the module docstring for the file's fields."""

    name: str
    dataset: str
    data_root: str | None
    data: str
    published_as: str | None
    split: str
    n_images: int
    n_images_in_split: int
    sample: dict[str, int] | None
    image_size: tuple[int, int]
    stats: ChannelStats
    level_counts: tuple[tuple[int, ...], ...]
    pretrain_stats: ChannelStats
    pretrain_name: str
    table1: dict[str, ChannelStats]
    image_checks: ImageChecks
    computed_with: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    command: str = ""
    # A few of the split's images and their indices (module docstring): written beside the JSON, not in it.
    gallery: torch.Tensor | None = field(default=None, compare=False, repr=False)
    gallery_indices: tuple[int, ...] = field(default=(), compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": RECORD_FORMAT,
            "name": self.name,
            "dataset": self.dataset,
            "data_root": self.data_root,
            "data": self.data,
            "published_as": self.published_as,
            "split": self.split,
            "channel_order": CHANNEL_ORDER,
            "scale": "[0, 1]",
            "n_images": self.n_images,
            "n_images_in_split": self.n_images_in_split,
            "sample": self.sample,
            "image_size": list(self.image_size),
            "stats": _triplets(self.stats),
            "level_counts": [list(row) for row in self.level_counts],
            "pretrain_stats": {"name": self.pretrain_name, **_triplets(self.pretrain_stats)},
            "table1": {setting: _triplets(stats) for setting, stats in self.table1.items()},
            "image_checks": self.image_checks.to_dict(),
            "computed_with": self.computed_with,
            "seconds": round(self.seconds, 1),
            "command": self.command,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "StatisticsRecord":
        n_images = int(data["n_images"])
        pretrain = data["pretrain_stats"]
        return cls(
            name=str(data["name"]),
            dataset=str(data["dataset"]),
            data_root=data.get("data_root"),
            data=str(data["data"]),
            published_as=data.get("published_as"),
            split=str(data["split"]),
            n_images=n_images,
            n_images_in_split=int(data["n_images_in_split"]),
            sample=data.get("sample"),
            image_size=tuple(int(v) for v in data["image_size"]),
            stats=ChannelStats.from_dict({**data["stats"], "n_images": n_images}),
            level_counts=tuple(tuple(int(v) for v in row) for row in data["level_counts"]),
            pretrain_stats=ChannelStats.from_dict(pretrain),
            pretrain_name=str(pretrain.get("name", "")),
            table1={s: ChannelStats.from_dict({**data["table1"][s], "n_images": n_images}) for s in _in_order(data["table1"])},
            image_checks=ImageChecks.from_dict(data["image_checks"]),
            computed_with=dict(data.get("computed_with") or {}),
            seconds=float(data.get("seconds", 0.0)),
            command=str(data.get("command", "")),
        )

    @property
    def counts(self) -> torch.Tensor:
        """``level_counts`` as an int64 (3, 256) tensor."""
        return torch.tensor(self.level_counts, dtype=torch.int64)


def _in_order(settings: Mapping[str, Any]) -> list[str]:
    # The file's keys are sorted alphabetically; tables list the settings in SETTINGS order.
    return sorted(settings, key=lambda s: (SETTINGS.index(s), s) if s in SETTINGS else (len(SETTINGS), s))


def _triplets(stats: ChannelStats) -> dict[str, list[float]]:
    return {"mean": list(stats.mean), "std": list(stats.std)}


def statistics_folder(results_root: str | Path = "results", profile: str = DEFAULT_PROFILE) -> Path:
    """Where the records of ``profile`` live: ``<results_root>/dataset_statistics/<profile>``."""
    return Path(results_root) / STATISTICS_FOLDER / profile


def compute_record(
    dataset: str,
    root: str | Path | None = None,
    *,
    name: str | None = None,
    published_as: str | None = None,
    split: str = "train",
    max_images: int | None = None,
    seed: int = 0,
    download: bool = False,
    pretrain_stats: ChannelStats = IMAGENET,
    pretrain_name: str = "imagenet",
    settings: Sequence[str] = SETTINGS,
    project_root: str | Path = ".",
) -> StatisticsRecord:
    """Load ``dataset`` (registry name) from ``root`` and compute its record.

    ``name`` defaults to the book's label (an ``imagefolder`` set is named by
    its folder, ``cifar10-jpeg``); ``published_as`` to ``dataset`` when the
    earlier works published statistics under that name. ``max_images`` draws a
    seeded sample (:func:`sample_images`), recorded as such. A missing or
    broken root is a :class:`DatasetError` naming the path (from the reader).
    """
    from ..data import load_dataset

    if name is not None:
        _check_name(name)
    if published_as is not None and published_as not in PUBLISHED:
        raise DatasetError(f"no published statistics named {published_as!r}; known: {', '.join(sorted(PUBLISHED))}")
    start = time.perf_counter()
    loaded = load_dataset(dataset, root, download=download)
    images = sample_images(loaded.split(split).images, max_images, seed=seed)
    gallery_indices = pick_gallery(len(loaded.split(split)))
    counts = level_counts(images)
    raw = stats_from_counts(counts, int(images.shape[0]))
    table1 = stats_after_settings(images, settings, pretrain_stats, raw_stats=raw)
    relative_root = project_relative(root, project_root) if root is not None else None
    n_in_split = len(loaded.split(split))
    sampled = max_images is not None and max_images < n_in_split
    return StatisticsRecord(
        name=name or default_name(dataset, relative_root),
        dataset=dataset,
        data_root=relative_root,
        data=SYNTHETIC if loaded.source == "generated" else REAL,
        published_as=published_as if published_as is not None else (dataset if dataset in PUBLISHED else None),
        split=split,
        n_images=raw.n_images,
        n_images_in_split=n_in_split,
        sample={"max_images": int(max_images), "seed": int(seed)} if sampled else None,
        image_size=tuple(int(v) for v in images.shape[2:]),
        stats=raw,
        level_counts=tuple(tuple(int(v) for v in row) for row in counts.tolist()),
        pretrain_stats=pretrain_stats,
        pretrain_name=pretrain_name,
        table1=table1,
        image_checks=compute_image_checks(images, pretrain_stats),
        computed_with=code_versions(),
        seconds=time.perf_counter() - start,
        gallery=loaded.split(split).images[list(gallery_indices)].clone(),
        gallery_indices=gallery_indices,
    )


def pick_gallery(n_images: int, count: int = GALLERY_IMAGES, seed: int = GALLERY_SEED) -> tuple[int, ...]:
    """The indices of the gallery's images in a split of ``n_images``: ``count`` drawn by a fixed seed, sorted."""
    generator = torch.Generator().manual_seed(seed)
    return tuple(sorted(int(i) for i in torch.randperm(n_images, generator=generator)[:count]))


def default_name(dataset: str, data_root: str | None) -> str:
    """The book's name of a data set: the registry name, an ``imagefolder`` set's folder name."""
    from ..report.labels import dataset_label

    return dataset_label({"dataset": dataset, "data_root": data_root})


def _check_name(name: str) -> str:
    # The name is the file's stem: a separator would write elsewhere.
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise DatasetError(f"data set name {name!r} must be a plain file stem (no '/', no leading '.')")
    return name


def project_relative(path: str | Path, project_root: str | Path = ".") -> str:
    """``path`` as the project names it: relative to ``project_root``, else only its folder's name.

    Lexically first, so that a root reached through a symbolic link inside the
    project (``data -> /elsewhere/data``) keeps its project-relative name.
    """
    path, project = Path(path), Path(project_root)
    if not path.is_absolute():
        return PurePosixPath(*path.parts).as_posix()
    for base in (project.absolute(), project.resolve()):
        for candidate in (path, path.resolve()):
            try:
                return candidate.relative_to(base).as_posix()
            except ValueError:
                continue
    return path.name


def code_versions() -> dict[str, Any]:
    """The code the numbers came from: normtest's version and commit, and the libraries that decode and sum."""
    import numpy
    import PIL

    from .. import __version__
    from ..engine.environment import git_commit

    return {
        "normtest": __version__,
        "git_commit": git_commit(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "pillow": PIL.__version__,
    }


def write_record(record: StatisticsRecord, folder: str | Path, project_root: str | Path = ".") -> Path:
    """Write ``record`` as ``<folder>/<name>.json`` (atomically), with the command that regenerates it."""
    from ..io import write_json

    path = Path(folder) / f"{record.name}.json"
    command = regenerate_command(record, project_relative(folder, project_root))
    write_json(path, dataclasses.replace(record, command=command).to_dict())
    if record.gallery is not None:
        write_gallery(Path(folder) / f"{record.name}{GALLERY_SUFFIX}", record.gallery, record.gallery_indices)
    return path


def write_gallery(path: Path, images: torch.Tensor, indices: Sequence[int]) -> None:
    """``images`` (uint8 N x 3 x H x W) and their ``indices`` in the split, as a compressed ``.npz`` (atomically)."""
    import numpy as np

    from ..io import atomic_path

    with atomic_path(path) as partial, open(partial, "wb") as handle:
        np.savez_compressed(handle, images=images.numpy(), indices=np.asarray(indices, dtype=np.int64))


def read_galleries(folder: str | Path) -> dict[str, torch.Tensor]:
    """Each data set's gallery images in ``folder`` by name (none when the folder or the files are absent)."""
    import numpy as np

    galleries = {}
    for path in sorted(Path(folder).glob(f"*{GALLERY_SUFFIX}")) if Path(folder).is_dir() else ():
        with np.load(path, allow_pickle=False) as data:  # no pickles: the file holds two plain arrays
            images = torch.from_numpy(data["images"].copy())
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
            raise DatasetError(f"{path} does not hold uint8 images (N, 3, H, W); regenerate it with `normtest stats`")
        galleries[path.name.removesuffix(GALLERY_SUFFIX)] = images
    return galleries


def regenerate_command(record: StatisticsRecord, folder: str) -> str:
    """The ``normtest stats`` command line that computes ``record`` again into ``folder``."""
    words = ["normtest", "stats", record.dataset]
    if record.data_root is not None:
        words += ["--root", record.data_root]
    if record.name != default_name(record.dataset, record.data_root):
        words += ["--name", record.name]
    if record.split != "train":
        words += ["--split", record.split]
    if record.published_as is not None and record.published_as != record.dataset:
        words += ["--published", record.published_as]
    if record.sample is not None:
        words += ["--max-images", str(record.sample["max_images"]), "--seed", str(record.sample["seed"])]
    words += ["--out", folder]
    return " ".join(shlex.quote(word) for word in words)


def read_record(path: str | Path) -> StatisticsRecord:
    """One record; a file that is not one is a :class:`DatasetError` naming it."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DatasetError(f"data set statistics file {path} cannot be read: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != RECORD_FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise DatasetError(
            f"{path} is not a data set statistics record of format {RECORD_FORMAT} (found {found!r}); "
            "regenerate it with the command in its 'command' field or the README"
        )
    try:
        return StatisticsRecord.from_dict(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise DatasetError(f"data set statistics file {path} lacks or garbles a field: {exc!r}") from None


def read_records(folder: str | Path) -> dict[str, StatisticsRecord]:
    """Every record in ``folder`` by name, sorted by name (a base before its shifted copy: ``cifar10-jpeg``,
    ``cifar10-jpeg+dim``); a missing folder is a :class:`DatasetError` naming it."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(
            f"no data set statistics at {folder}: it is not a folder. Generate them with "
            f"`normtest stats DATASET --root DIR --out {folder}` (README, Data and downloads)"
        )
    paths = sorted(folder.glob("*.json"), key=lambda path: path.stem)  # by path, '+' would sort before '.json'
    records = [read_record(path) for path in paths if not path.name.startswith(".")]
    return {record.name: record for record in records}


@dataclass(frozen=True)
class GatheredRecords:
    """The records of some data sets, and where each came from (see :func:`gather_records`)."""

    folder: Path  # where committed records are read from
    committed: dict[str, StatisticsRecord]  # read from ``folder``: whole training splits
    computed: dict[str, StatisticsRecord]  # computed now from the images on this machine
    missing: dict[str, str]  # name -> root: neither a usable record nor the images

    @property
    def records(self) -> dict[str, StatisticsRecord]:
        return {**self.committed, **self.computed}


def gather_records(
    data_roots: Mapping[str, str],
    results_root: str | Path = "results",
    *,
    registry_names: Mapping[str, str] | None = None,
    published_as: Mapping[str, str] | None = None,
    max_images: int | None = None,
) -> GatheredRecords:
    """Each data set's record (``data_roots``: the book's name -> its image folder): the committed one
    in ``<results_root>/dataset_statistics/local/``, else one computed now from its images.

    A committed record covers the whole training split, so with ``max_images`` (a seeded sample)
    every record is computed from the images. ``registry_names`` maps a name to the reader that
    loads it (default: the name itself), ``published_as`` to the published statistics it stands for.
    """
    registry_names, published_as = registry_names or {}, published_as or {}
    folder = statistics_folder(results_root)
    found = read_records(folder) if folder.is_dir() and max_images is None else {}
    committed = {name: found[name] for name in data_roots if name in found}
    computed = {
        name: compute_record(registry_names.get(name, name), root, name=name, published_as=published_as.get(name),
                             max_images=max_images)
        for name, root in data_roots.items()
        if name not in committed and Path(root).is_dir()
    }
    missing = {name: root for name, root in data_roots.items() if name not in committed and name not in computed}
    return GatheredRecords(folder, committed, computed, missing)
