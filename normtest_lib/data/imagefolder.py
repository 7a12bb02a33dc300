"""Any image-folder tree: ``root/{train,test}/<class>/<image>``.

Classes are the sorted folder names under ``train/``; ``test/`` uses the same
mapping and may hold a subset of them. Images may sit in sub-folders of a class
folder. Everything must decode, and all images must share one size. The real
CIFAR-10 JPEG copy (``cifar10-jpeg/``) is read this way, with ``root`` pointing
at that folder.

What a class folder may hold besides images (``decode.IMAGE_SUFFIXES``), so that
a data set is never read partially without a word:

- hidden files (``.DS_Store``, ...): ignored;
- text and metadata files (``README.md``, ``notes.txt``, ``labels.csv``,
  ``Thumbs.db``, ...; see ``_NOTE_SUFFIXES``): ignored with one warning per
  split, since they are harmless strays and not pictures the user meant to use;
- anything else (an unknown suffix such as ``.heic``, a file without suffix, a
  device or pipe): an error naming an example and the count, since it may be
  an image in a format this reader does not know;
- a broken symbolic link: an error naming it.

Images are decoded once and cached (``cache.py``), keyed by the root and the
files' relative paths, sizes and modification times.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..errors import DatasetError
from .cache import Fingerprint, load_cached
from .decode import IMAGE_SUFFIXES, decode_images, is_image_name
from .registry import register
from .types import ImageDataset, Split

# Bump when what this reader produces from the same files changes.
READER_VERSION = 1
SPLITS = ("train", "test")
_ADVICE = "replace or delete that file, or copy the data set again"

# Text and metadata files that may sit beside the images; ignored with a warning.
_NOTE_SUFFIXES = frozenset({".txt", ".md", ".rst", ".csv", ".tsv", ".json", ".xml", ".yaml", ".yml", ".ini", ".log"})
_NOTE_NAMES = frozenset({"thumbs.db", "desktop.ini"})

FileList = list[tuple[str, os.stat_result]]  # (path relative to root, stat), sorted


@dataclass
class _ClassScan:
    """One class folder's files, sorted into images, ignorable notes and the rest."""

    images: FileList = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # paths
    unreadable: list[str] = field(default_factory=list)  # paths


@register(
    "imagefolder",
    needs_root=True,
    description="any root/{train,test}/<class>/<image> tree (e.g. the CIFAR-10 JPEG copy); decoded once, then cached",
)
def read_imagefolder(root: Path | None, *, download: bool = False) -> ImageDataset:
    """Read ``root/train`` and ``root/test``; ``download`` is ignored (there is nothing to fetch)."""
    if root is None:
        raise DatasetError("data set 'imagefolder' needs a root: the folder holding train/ and test/")
    root = _check_layout(Path(root).expanduser().resolve())
    train_files = _scan_split(root, "train")
    test_files = _scan_split(root, "test")
    classes = tuple(sorted(train_files))
    unknown = sorted(set(test_files) - set(classes))
    if unknown:
        raise DatasetError(
            f"{root / 'test'} has class folders that {root / 'train'} lacks: {', '.join(unknown)}; "
            "every test class needs training images (add them or remove those folders)"
        )

    fingerprint = Fingerprint("imagefolder", READER_VERSION, root)
    for files in (*train_files.values(), *test_files.values()):
        for relative_name, stat in files:
            fingerprint.add_file(relative_name, stat)

    def build() -> ImageDataset:
        train = _decode_split(root, classes, train_files)
        test = _decode_split(root, classes, test_files, size=tuple(train.images.shape[2:]))
        return ImageDataset(
            name="imagefolder",
            train=train,
            test=test,
            classes=classes,
            native_size=(int(train.images.shape[2]), int(train.images.shape[3])),
            source=str(root),
        )

    return load_cached("imagefolder", fingerprint, build)


def _check_layout(root: Path) -> Path:
    if not root.is_dir():
        raise DatasetError(f"image-folder root {root} does not exist or is not a folder")
    missing = [split for split in SPLITS if not (root / split).is_dir()]
    if missing:
        candidates = [child for child in sorted(root.iterdir()) if all((child / s).is_dir() for s in SPLITS)]
        hint = f"; did you mean {candidates[0]}?" if candidates else ""
        raise DatasetError(
            f"{root} is not an image-folder data set: {' and '.join(str(root / s) for s in missing)} missing; "
            f"expected {root}/train/<class>/<image> and {root}/test/<class>/<image>{hint}"
        )
    return root


def _scan_split(root: Path, split: str) -> dict[str, FileList]:
    """Class name -> that class's image files in ``root/split``; errors on empty classes or stray images."""
    split_dir = root / split
    classes: dict[str, FileList] = {}
    notes: list[str] = []
    for entry in sorted(os.scandir(split_dir), key=lambda e: e.name):
        if entry.name.startswith("."):
            continue
        _check_link(entry)
        if entry.is_dir():
            scan = _ClassScan()
            _collect(Path(entry.path), f"{split}/{entry.name}", scan)
            _check_class(entry.path, scan)
            classes[entry.name] = scan.images
            notes.extend(scan.notes)
        elif is_image_name(entry.name):
            raise DatasetError(f"image {entry.path} is not inside a class folder: move it to {split_dir}/<class>/")
    if not classes:
        raise DatasetError(f"{split_dir} has no class folders: expected {split_dir}/<class>/<image>")
    if notes:
        warnings.warn(
            f"{split_dir}: ignored {len(notes)} text/metadata file(s) in class folders, e.g. {notes[0]}",
            stacklevel=2,
        )
    return classes


def _collect(folder: Path, relative: str, scan: _ClassScan) -> None:
    """Sort the files under ``folder`` (recursively, sorted) into ``scan``; image names relative to the root."""
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if entry.name.startswith("."):
            continue
        _check_link(entry)
        if entry.is_dir():
            _collect(Path(entry.path), f"{relative}/{entry.name}", scan)
        elif entry.is_file() and is_image_name(entry.name):
            scan.images.append((f"{relative}/{entry.name}", entry.stat()))
        elif entry.is_file() and _is_note(entry.name):
            scan.notes.append(entry.path)
        else:
            scan.unreadable.append(entry.path)


def _check_class(path: str, scan: _ClassScan) -> None:
    suffixes = ", ".join(sorted(IMAGE_SUFFIXES))
    if scan.unreadable:
        raise DatasetError(
            f"class folder {path} holds {len(scan.unreadable)} file(s) that are not images this reader knows, "
            f"e.g. {scan.unreadable[0]}; images must have one of the suffixes {suffixes}: convert those files "
            "(e.g. HEIC to PNG) or delete them, so that the data set is not read partially"
        )
    if not scan.images:
        raise DatasetError(f"class folder {path} holds no images ({suffixes}): add its images or remove the folder")


def _check_link(entry: os.DirEntry) -> None:
    if entry.is_symlink() and not os.path.exists(entry.path):
        raise DatasetError(
            f"{entry.path} is a broken symbolic link (to {os.readlink(entry.path)}): fix or delete it"
        )


def _is_note(name: str) -> bool:
    return name.lower() in _NOTE_NAMES or os.path.splitext(name)[1].lower() in _NOTE_SUFFIXES


def _decode_split(
    root: Path, classes: tuple[str, ...], files_by_class: dict[str, FileList], size: tuple[int, int] | None = None
) -> Split:
    names: list[str] = []
    labels: list[np.ndarray] = []
    for class_name, files in files_by_class.items():
        names.extend(str(root / relative_name) for relative_name, _ in files)
        labels.append(np.full(len(files), classes.index(class_name), dtype=np.int64))
    images = decode_images(names, _read_file, advice=_ADVICE, size=size)
    return Split(torch.from_numpy(images), torch.from_numpy(np.concatenate(labels)))


def _read_file(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()
