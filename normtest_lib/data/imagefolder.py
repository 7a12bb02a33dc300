"""Any image-folder tree: ``root/{train,test}/<class>/<image>``.

Classes are the sorted folder names under ``train/``; ``test/`` uses the same
mapping and may hold a subset of them. Images may sit in sub-folders of a class
folder. Files without an image suffix (see ``decode.IMAGE_SUFFIXES``) and
hidden files are ignored; everything else must decode, and all images must
share one size. The real CIFAR-10 JPEG copy (``cifar10-jpeg/``) is read this
way, with ``root`` pointing at that folder.

Images are decoded once and cached (``cache.py``), keyed by the root and the
files' relative paths, sizes and modification times.
"""

from __future__ import annotations

import os
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

FileList = list[tuple[str, os.stat_result]]  # (path relative to root, stat), sorted


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
    for entry in sorted(os.scandir(split_dir), key=lambda e: e.name):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            files = _image_files(Path(entry.path), f"{split}/{entry.name}")
            if not files:
                raise DatasetError(
                    f"class folder {entry.path} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))}): "
                    "add its images or remove the folder"
                )
            classes[entry.name] = files
        elif is_image_name(entry.name):
            raise DatasetError(f"image {entry.path} is not inside a class folder: move it to {split_dir}/<class>/")
    if not classes:
        raise DatasetError(f"{split_dir} has no class folders: expected {split_dir}/<class>/<image>")
    return classes


def _image_files(folder: Path, relative: str) -> FileList:
    """Image files under ``folder`` (recursively, sorted), named relative to the data set's root."""
    found: FileList = []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            found.extend(_image_files(Path(entry.path), f"{relative}/{entry.name}"))
        elif entry.is_file() and is_image_name(entry.name):
            found.append((f"{relative}/{entry.name}", entry.stat()))
    return found


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
