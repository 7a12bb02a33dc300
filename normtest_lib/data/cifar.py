"""CIFAR-10 and CIFAR-100 from the official python pickles, through torchvision.

``root`` is the folder holding ``cifar-10-batches-py/`` (``cifar-100-python/``)
or that folder itself. torchvision's readers check every file against the
official md5s (kept: a damaged file is reported, never read) and fetch the
official archive only when ``download=True``. The batches are Python pickles,
and unpickling can run code from the file: the md5 check is what makes reading
them safe, so it is never bypassed.

The conversion to (N, 3, 32, 32) is one array transpose, no per-image loop.
"""

from __future__ import annotations

import http.client
import pickle
import urllib.error
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torchvision.datasets import CIFAR10, CIFAR100
from torchvision.datasets import utils as tv_utils

from ..errors import DatasetError
from .registry import register
from .types import ImageDataset, Split

# What a failed download raises (URLError covers DNS failures and HTTP errors).
NETWORK_ERRORS = (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError)
# What a damaged pickle or a file that is not a CIFAR batch raises while being read.
_READ_ERRORS = (OSError, pickle.UnpicklingError, EOFError, ValueError, KeyError, TypeError, AttributeError, IndexError)


# The class names of the official files' batches.meta, in label order (known before loading, for the run schema).
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


@register(
    "cifar10",
    needs_root=True,
    description="CIFAR-10 (official python pickles): 50,000/10,000, 10 classes, 32x32",
    classes=CIFAR10_CLASSES,
)
def read_cifar10(root: Path | None, *, download: bool = False) -> ImageDataset:
    return _read_cifar(CIFAR10, "cifar10", root, download)


@register(
    "cifar100",
    needs_root=True,
    description="CIFAR-100 (official python pickles): 50,000/10,000, 100 fine classes, 32x32",
)
def read_cifar100(root: Path | None, *, download: bool = False) -> ImageDataset:
    return _read_cifar(CIFAR100, "cifar100", root, download)


def _read_cifar(cls: type[CIFAR10], name: str, root: Path | None, download: bool) -> ImageDataset:
    if root is None:
        raise DatasetError(f"data set {name!r} needs a root: the folder holding {cls.base_folder}/")
    root = Path(root).expanduser().resolve()
    if root.name == cls.base_folder and not (root / cls.base_folder).is_dir():
        root = root.parent  # root points at the batches folder itself
    folder = root / cls.base_folder
    files = [(folder / file_name, md5) for file_name, md5 in [*cls.train_list, *cls.test_list]]
    files.append((folder / cls.meta["filename"], cls.meta["md5"]))
    try:
        train = cls(str(root), train=True, download=download)
        test = cls(str(root), train=False, download=False)
    except RuntimeError as error:  # torchvision: "Dataset not found or corrupted"
        raise integrity_error(name, files, cls.url, download, error) from error
    except NETWORK_ERRORS as error:
        raise DatasetError(
            f"could not download {cls.url} into {root} ({error}); {name} needs its official archive"
        ) from error
    except _READ_ERRORS as error:
        raise DatasetError(
            f"cannot read the {name} batches in {folder} ({type(error).__name__}: {error}): a file is truncated or not "
            f"an official batch; delete {folder} and fetch it again (download=True)"
        ) from error
    classes = tuple(train.classes)
    return ImageDataset(
        name=name,
        train=_split(train, len(classes), folder),
        test=_split(test, len(classes), folder),
        classes=classes,
        native_size=(32, 32),
        source=str(folder),
    )


def _split(dataset: CIFAR10, num_classes: int, folder: Path) -> Split:
    # torchvision keeps (N, 32, 32, 3) HWC; one transpose gives CHW.
    images = torch.from_numpy(np.ascontiguousarray(dataset.data.transpose(0, 3, 1, 2)))
    labels = torch.from_numpy(np.asarray(dataset.targets, dtype=np.int64))
    return checked_split(images, labels, num_classes, str(folder))


def checked_split(images: torch.Tensor, labels: torch.Tensor, num_classes: int, where: str) -> Split:
    """A Split, after checking that labels match the images in number and range."""
    if labels.shape != (images.shape[0],):
        raise DatasetError(f"{where}: {images.shape[0]} images but {labels.numel()} labels; the files are damaged")
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise DatasetError(
            f"{where}: labels range over {int(labels.min())}..{int(labels.max())}, outside 0..{num_classes - 1}; "
            "the files are damaged"
        )
    return Split(images, labels)


def integrity_error(
    name: str, files: Sequence[tuple[Path, str]], url: str, download: bool, error: Exception
) -> DatasetError:
    """Turn torchvision's "not found or corrupted" into the first missing or damaged file and what to do."""
    problem = str(error)
    for path, md5 in files:
        if not path.is_file():
            problem = f"{path} is missing"
            break
        if not tv_utils.check_integrity(str(path), md5):
            problem = f"{path} fails its md5 check (expected {md5}): it is truncated or damaged"
            break
    if download:
        return DatasetError(f"{name}: {problem} even after downloading {url}; delete the files and try again")
    return DatasetError(f"{name}: {problem}; pass download=True to fetch the official files from {url}")
