"""One registry maps a data set's name to its reader.

Readers register themselves with :func:`register`; :func:`load_dataset` is the
one call that returns any of them as an :class:`ImageDataset`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import DatasetError
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
    _ensure_readers_imported()
    return sorted(_REGISTRY)


def get_spec(name: str) -> DatasetSpec:
    _ensure_readers_imported()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise DatasetError(f"unknown data set {name!r}; known: {', '.join(sorted(_REGISTRY))}") from None


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
