"""Tiny ImageNet-200 in its official layout, from the extracted folder or the zip.

Layout (``tiny-imagenet-200/``): ``wnids.txt`` (the 200 class ids),
``words.txt`` (id -> description), ``train/<wnid>/images/*.JPEG``,
``val/images/*.JPEG`` with ``val/val_annotations.txt`` (file name, then the
wnid, tab-separated), and ``test/images`` (unlabelled, not used). The labelled
val split serves as the test split. Labels index the sorted wnids; class names
are their ``words.txt`` descriptions. Grayscale JPEGs are converted to RGB, and
channels are in RGB order.

``root`` may be the ``tiny-imagenet-200`` folder, its parent, a folder holding
the official ``tiny-imagenet-200.zip`` (read in place, no extraction), or that
zip itself. With ``download=True`` and no extracted folder, the official zip
is fetched into ``root`` unless an intact copy (by its md5) is already there. The zip is checked against
the official md5 before its images are decoded; the extracted folder has no
published checksums, so its check is structural (every class, annotation and
file present, every image decodable and 64x64-consistent).

Decoded images are cached (``cache.py``), keyed by the copy's path and, for
the folder, its files' relative paths, sizes and modification times, for the
zip, its size and modification time.
"""

from __future__ import annotations

import contextlib
import os
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torchvision.datasets import utils as tv_utils

from ..errors import DatasetError
from .cache import Fingerprint, load_cached
from .decode import decode_images, is_image_name
from .registry import register
from .types import ImageDataset, Split

URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"
ZIP_NAME = "tiny-imagenet-200.zip"
# The md5 of the official zip (248,100,043 bytes), as used by torchvision-style readers.
ZIP_MD5 = "90528d7ca1a48142e341f4ef8d21d0de"
FOLDER_NAME = "tiny-imagenet-200"
# Bump when what this reader produces from the same files changes.
READER_VERSION = 1


class _Layout(Protocol):
    """Read access to the files of one Tiny ImageNet copy by their path relative to its top folder."""

    source: str
    advice: str

    def describe(self, relative: str) -> str: ...
    def read(self, relative: str) -> bytes: ...
    def read_text(self, relative: str) -> str: ...
    def list_dirs(self, relative: str) -> list[str]: ...
    def list_files(self, relative: str) -> list[str]: ...
    def add_to(self, fingerprint: Fingerprint) -> None: ...
    def verify(self) -> None: ...


@register(
    "tiny_imagenet_200",
    needs_root=True,
    description="Tiny ImageNet-200: 100,000 train / 10,000 labelled val as test, 200 classes, 64x64; folder or zip",
)
def read_tiny_imagenet(root: Path | None, *, download: bool = False) -> ImageDataset:
    """Read Tiny ImageNet-200 under ``root``; fetch the official zip only if ``download``."""
    if root is None:
        raise DatasetError(
            f"data set 'tiny_imagenet_200' needs a root: the folder holding {FOLDER_NAME}/ or {ZIP_NAME}"
        )
    with _open_layout(Path(root).expanduser().resolve(), download) as layout:
        wnids, classes = _read_classes(layout)
        train_names, train_labels = _train_files(layout, wnids)
        test_names, test_labels = _val_files(layout, wnids)
        fingerprint = Fingerprint("tiny_imagenet_200", READER_VERSION, layout.source)
        layout.add_to(fingerprint)

        def build() -> ImageDataset:
            layout.verify()
            train = decode_images(train_names, layout.read, describe=layout.describe, advice=layout.advice)
            size = (int(train.shape[2]), int(train.shape[3]))
            test = decode_images(test_names, layout.read, describe=layout.describe, advice=layout.advice, size=size)
            return ImageDataset(
                name="tiny_imagenet_200",
                train=Split(torch.from_numpy(train), torch.from_numpy(train_labels)),
                test=Split(torch.from_numpy(test), torch.from_numpy(test_labels)),
                classes=classes,
                native_size=size,
                source=layout.source,
                extra={"wnids": list(wnids), "test_split": "val"},
            )

        return load_cached("tiny_imagenet_200", fingerprint, build)


# --- finding the copy ------------------------------------------------------


@contextlib.contextmanager
def _open_layout(root: Path, download: bool) -> Iterator[_Layout]:
    if root.is_file() and root.suffix.lower() == ".zip":
        layout: _Layout = _ZipLayout(root)
    elif (root / FOLDER_NAME).is_dir():
        layout = _FolderLayout(root / FOLDER_NAME)
    elif (root.name == FOLDER_NAME and root.is_dir()) or (root / "wnids.txt").is_file():
        layout = _FolderLayout(root)
    elif (root / ZIP_NAME).is_file() or download:
        if download:  # like torchvision's readers: fetches only when the zip is absent or fails its md5
            _download(root)
        layout = _ZipLayout(root / ZIP_NAME)
    else:
        raise DatasetError(
            f"no Tiny ImageNet at {root}: expected {root / FOLDER_NAME}/ (extracted), {root / ZIP_NAME}, "
            f"or root pointing at the {FOLDER_NAME} folder itself; pass download=True to fetch {URL}"
        )
    try:
        yield layout
    finally:
        if isinstance(layout, _ZipLayout):
            layout.close()


def _download(root: Path) -> None:
    try:
        tv_utils.download_url(URL, str(root), ZIP_NAME, ZIP_MD5)
    except (OSError, RuntimeError) as error:  # URLError is an OSError; a bad md5 a RuntimeError
        raise DatasetError(
            f"could not download {URL} into {root} ({error}); fetch {ZIP_NAME} by hand and put it in {root}"
        ) from error


class _FolderLayout:
    """The extracted ``tiny-imagenet-200`` folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.source = str(folder)
        self.advice = f"re-extract {ZIP_NAME} so that {folder} is complete"
        self._stats: dict[str, os.stat_result] = {}

    def describe(self, relative: str) -> str:
        return str(self.folder / relative)

    def read(self, relative: str) -> bytes:
        with open(self.folder / relative, "rb") as handle:
            return handle.read()

    def read_text(self, relative: str) -> str:
        path = self.folder / relative
        if not path.is_file():
            raise DatasetError(f"{path} is missing; {self.advice}")
        self._stats[relative] = path.stat()
        return _text(path.read_bytes(), str(path), self.advice)

    def list_dirs(self, relative: str) -> list[str]:
        return sorted(entry.name for entry in self._scan(relative) if entry.is_dir())

    def list_files(self, relative: str) -> list[str]:
        names = []
        for entry in self._scan(relative):
            if entry.is_file():
                names.append(entry.name)
                self._stats[f"{relative}/{entry.name}"] = entry.stat()
        return sorted(names)

    def _scan(self, relative: str) -> list[os.DirEntry]:
        path = self.folder / relative
        if not path.is_dir():
            raise DatasetError(f"{path} is missing; {self.advice}")
        with os.scandir(path) as entries:
            return [entry for entry in entries if not entry.name.startswith(".")]

    def add_to(self, fingerprint: Fingerprint) -> None:
        fingerprint.add("folder")
        for relative in sorted(self._stats):
            fingerprint.add_file(relative, self._stats[relative])

    def verify(self) -> None:
        """No published per-file checksums: the structural checks and decoding are the check."""


class _ZipLayout:
    """The official zip, read member by member without extracting it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.source = str(path)
        self.advice = f"the zip is damaged: delete {path} and download it again (download=True)"
        try:
            self._zip = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as error:
            raise DatasetError(f"cannot open {path} as a zip archive ({error}); {self.advice}") from error
        names = self._zip.namelist()
        tops = sorted((name for name in names if name.rsplit("/", 1)[-1] == "wnids.txt"), key=lambda n: n.count("/"))
        if not tops:
            self._zip.close()
            raise DatasetError(f"{path} holds no wnids.txt: it is not the Tiny ImageNet-200 archive; {self.advice}")
        self._prefix = tops[0][: -len("wnids.txt")]
        self._files: dict[str, list[str]] = {}  # folder -> names of the files directly in it
        self._dirs: dict[str, set[str]] = {}  # folder -> names of its sub-folders
        for name in names:
            if not name.startswith(self._prefix) or name == self._prefix:
                continue
            is_dir = name.endswith("/")
            parts = name[len(self._prefix) :].rstrip("/").split("/")
            folder_parts = parts if is_dir else parts[:-1]
            for depth in range(len(folder_parts)):
                self._dirs.setdefault("/".join(folder_parts[:depth]), set()).add(folder_parts[depth])
            files = self._files.setdefault("/".join(folder_parts), [])
            if not is_dir:
                files.append(parts[-1])

    def close(self) -> None:
        self._zip.close()

    def describe(self, relative: str) -> str:
        return f"{self.path}:{self._prefix}{relative}"

    def read(self, relative: str) -> bytes:
        try:
            return self._zip.read(self._prefix + relative)
        except KeyError:
            raise DatasetError(f"{self.describe(relative)} is missing; {self.advice}") from None
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as error:
            raise DatasetError(f"cannot read {self.describe(relative)} ({error}); {self.advice}") from error

    def read_text(self, relative: str) -> str:
        return _text(self.read(relative), self.describe(relative), self.advice)

    def list_dirs(self, relative: str) -> list[str]:
        if relative not in self._dirs:
            raise DatasetError(f"{self.describe(relative)}/ is missing; {self.advice}")
        return sorted(name for name in self._dirs[relative] if not name.startswith("."))

    def list_files(self, relative: str) -> list[str]:
        if relative not in self._files and relative not in self._dirs:
            raise DatasetError(f"{self.describe(relative)}/ is missing; {self.advice}")
        return sorted(name for name in self._files.get(relative, []) if not name.startswith("."))

    def add_to(self, fingerprint: Fingerprint) -> None:
        stat = self.path.stat()
        fingerprint.add("zip", self._prefix, stat.st_size, stat.st_mtime_ns)

    def verify(self) -> None:
        if not tv_utils.check_integrity(str(self.path), ZIP_MD5):
            raise DatasetError(
                f"{self.path} fails its md5 check (expected {ZIP_MD5}): it is damaged or not the official archive; "
                f"delete it and download it again (download=True), or extract it and point root at {FOLDER_NAME}/"
            )


def _text(data: bytes, where: str, advice: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DatasetError(f"{where} is not UTF-8 text ({error}); {advice}") from error


# --- the index: classes, files, labels ----------------------------------------


def _read_classes(layout: _Layout) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(sorted wnids, their words.txt descriptions)."""
    listed = [line.strip() for line in layout.read_text("wnids.txt").splitlines() if line.strip()]
    if not listed:
        raise DatasetError(f"{layout.describe('wnids.txt')} lists no classes; {layout.advice}")
    duplicates = sorted({wnid for wnid in listed if listed.count(wnid) > 1})
    if duplicates:
        raise DatasetError(f"{layout.describe('wnids.txt')} lists {', '.join(duplicates)} twice; {layout.advice}")
    wnids = tuple(sorted(listed))
    words = {}
    for line in layout.read_text("words.txt").splitlines():
        wnid, _, description = line.partition("\t")
        words[wnid.strip()] = description.strip()
    missing = [wnid for wnid in wnids if not words.get(wnid)]
    if missing:
        raise DatasetError(
            f"{layout.describe('words.txt')} has no description for {', '.join(missing[:5])}"
            f"{' ...' if len(missing) > 5 else ''}; {layout.advice}"
        )
    return wnids, tuple(words[wnid] for wnid in wnids)


def _train_files(layout: _Layout, wnids: tuple[str, ...]) -> tuple[list[str], np.ndarray]:
    folders = set(layout.list_dirs("train"))
    unexpected = sorted(folders - set(wnids))
    missing = sorted(set(wnids) - folders)
    if unexpected or missing:
        detail = "; ".join(
            part
            for part in (
                f"class folders missing: {', '.join(missing[:5])}" if missing else "",
                f"folders not in wnids.txt: {', '.join(unexpected[:5])}" if unexpected else "",
            )
            if part
        )
        raise DatasetError(f"{layout.describe('train')} does not match wnids.txt ({detail}); {layout.advice}")
    names: list[str] = []
    labels: list[np.ndarray] = []
    for label, wnid in enumerate(wnids):
        folder = f"train/{wnid}/images"
        images = [f"{folder}/{name}" for name in layout.list_files(folder) if is_image_name(name)]
        if not images:
            raise DatasetError(f"{layout.describe(folder)} holds no images; {layout.advice}")
        names.extend(images)
        labels.append(np.full(len(images), label, dtype=np.int64))
    return names, np.concatenate(labels)


def _val_files(layout: _Layout, wnids: tuple[str, ...]) -> tuple[list[str], np.ndarray]:
    """The labelled val images, in val_annotations.txt order."""
    annotations = "val/val_annotations.txt"
    where = layout.describe(annotations)
    label_of = {wnid: index for index, wnid in enumerate(wnids)}
    present = {name for name in layout.list_files("val/images") if is_image_name(name)}
    names: list[str] = []
    labels: list[int] = []
    seen: set[str] = set()
    for line_number, line in enumerate(layout.read_text(annotations).splitlines(), start=1):
        if not line.strip():
            continue
        columns = line.split("\t")
        if len(columns) < 2:
            raise DatasetError(f"{where} line {line_number} has no tab-separated class column; {layout.advice}")
        file_name, wnid = columns[0].strip(), columns[1].strip()
        if wnid not in label_of:
            raise DatasetError(f"{where} line {line_number}: class {wnid!r} is not in wnids.txt; {layout.advice}")
        if file_name not in present:
            raise DatasetError(
                f"{where} line {line_number} names {file_name}, which {layout.describe('val/images')} lacks; "
                f"{layout.advice}"
            )
        if file_name in seen:
            raise DatasetError(f"{where} line {line_number} annotates {file_name} a second time; {layout.advice}")
        seen.add(file_name)
        names.append(f"val/images/{file_name}")
        labels.append(label_of[wnid])
    unlabelled = sorted(present - seen)
    if unlabelled:
        raise DatasetError(
            f"{len(unlabelled)} images in {layout.describe('val/images')} have no line in {where} "
            f"(e.g. {unlabelled[0]}); {layout.advice}"
        )
    if not names:
        raise DatasetError(f"{where} annotates no images; {layout.advice}")
    return names, np.asarray(labels, dtype=np.int64)
