"""One registry maps a data set's name to its reader.

Readers register themselves with :func:`register`; :func:`load_dataset` is the
one call that returns any of them as an :class:`ImageDataset`.

Every registered data set also exists photometrically shifted, as
``<registered name>+<shift>`` with a shift of :data:`photometric.SHIFTS`
(``imagefolder+dim``): the base's reader, then the shift on both splits
(:func:`photometric.shifted_dataset`). Those names are resolved on demand by
:func:`get_spec`, not registered: :func:`dataset_names` lists the registered
names only, :func:`shifted_forms` the pattern of the shifted ones
(``<data set>+dim``), so that no listing multiplies every base by every shift.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable

from ..errors import DatasetError
from . import photometric
from .types import ImageDataset

Reader = Callable[..., ImageDataset]


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    reader: Reader
    needs_root: bool
    description: str
    # The class names when the code knows them before loading (None: only the files say),
    # so the run schema can check settings that depend on them, such as asymmetric label noise.
    classes: tuple[str, ...] | None = None


_REGISTRY: dict[str, DatasetSpec] = {}


def register(
    name: str, *, needs_root: bool, description: str, classes: tuple[str, ...] | None = None
) -> Callable[[Reader], Reader]:
    """Decorator: register ``reader(root, download=...)`` under ``name``.

    ``classes``: the class names, in label order, when they are fixed in code
    (the reader's result must then carry the same names).
    """

    def decorate(reader: Reader) -> Reader:
        _REGISTRY[name] = DatasetSpec(name, reader, needs_root, description, classes)
        return reader

    return decorate


def _ensure_readers_imported() -> None:
    # Importing the reader modules fills the registry; done lazily so that
    # importing the registry alone stays cheap.
    from . import cifar, imagefolder, svhn, synthetic, tiny_imagenet  # noqa: F401


def dataset_names() -> list[str]:
    """The registered data sets, sorted; each also exists shifted (:func:`shifted_forms`)."""
    _ensure_readers_imported()
    return sorted(_REGISTRY)


def shifted_forms() -> list[str]:
    """The shifted names as patterns, one per shift: ``["<data set>+dim"]``."""
    return [photometric.shifted_name("<data set>", shift) for shift in photometric.shift_names()]


def known_names() -> str:
    """What an error lists as the known data sets: the registered ones and the shifted forms."""
    return (
        f"{', '.join(dataset_names())}; or any of them with a photometric shift, "
        f"{' or '.join(shifted_forms())} (e.g. {photometric.shifted_name('imagefolder', photometric.shift_names()[0])})"
    )


def get_spec(name: str) -> DatasetSpec:
    """The spec of a registered data set, or of a shifted one (``<registered name>+<shift>``)."""
    _ensure_readers_imported()
    if name in _REGISTRY:
        return _REGISTRY[name]
    parts = photometric.split_name(name)
    if parts is None:
        raise DatasetError(f"unknown data set {name!r}; known: {known_names()}")
    base_name, shift = parts
    if base_name not in _REGISTRY:
        raise DatasetError(
            f"unknown data set {base_name!r} in {name!r}: a shifted data set is <registered name>+<shift>; "
            f"registered: {', '.join(dataset_names())}"
        )
    if shift not in photometric.SHIFTS:
        raise DatasetError(
            f"unknown photometric shift {shift!r} in data set {name!r}; known shifts: {', '.join(photometric.shift_names())}"
        )
    base = _REGISTRY[base_name]
    return DatasetSpec(
        name,
        partial(_read_shifted, base.reader, shift, name),
        base.needs_root,
        f"{base_name} with the {shift!r} shift: {photometric.describe(shift)}",
        base.classes,
    )


def _read_shifted(base_reader: Reader, shift: str, name: str, root: Path | None, *, download: bool) -> ImageDataset:
    # The base's reader (and so its decode cache), then the shift: cheap next to decoding.
    return photometric.shifted_dataset(base_reader(root, download=download), shift, name)


def known_classes(name: str) -> tuple[str, ...] | None:
    """The class names of data set ``name`` if known without loading it, else None."""
    return get_spec(name).classes


def check_root(name: str, root: str | Path | None, download: bool = False) -> None:
    """Fail early, before any loading, when a data set that needs files has no usable root."""
    spec = get_spec(name)
    if not spec.needs_root:
        return
    if root is None:
        raise DatasetError(f"data set {name!r} needs a data root (--root / data_root)")
    if not download and not Path(root).exists():
        raise DatasetError(
            f"data root {str(root)!r} for data set {name!r} does not exist; "
            "point data_root at the folder holding the data, or allow downloading (download=True)"
        )


def load_dataset(name: str, root: str | Path | None = None, *, download: bool = False) -> ImageDataset:
    """Return the training and test splits of data set ``name``.

    ``root`` is the folder holding the files (ignored by ``synthetic``);
    ``download`` allows fetching the official files into ``root`` when they are
    missing. Errors name the path and what to do about it.
    """
    spec = get_spec(name)
    check_root(name, root, download)
    dataset = spec.reader(Path(root) if root is not None else None, download=download)
    for split_name in ("train", "test"):
        if len(dataset.split(split_name)) == 0:
            raise DatasetError(f"data set {name!r} at {root}: the {split_name} split is empty")
    return dataset
