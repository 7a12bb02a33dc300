"""SVHN (cropped digits, 32x32) train and test splits, through torchvision.

``root`` is the folder holding ``train_32x32.mat`` and ``test_32x32.mat``
(the ``extra`` split is not used). torchvision checks each file's md5 (kept)
and downloads only when ``download=True``; it also maps the official label 10
(digit 0) to 0, so labels are the digits themselves.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from scipy.io.matlab import MatReadError
from torchvision.datasets import SVHN

from ..errors import DatasetError
from .cifar import NETWORK_ERRORS, checked_split, integrity_error
from .registry import register
from .types import ImageDataset, Split

SPLITS = ("train", "test")
CLASSES = tuple(str(digit) for digit in range(10))
# What a damaged .mat file, or one without SVHN's X and y, raises while being read.
_READ_ERRORS = (OSError, MatReadError, ValueError, TypeError, KeyError, EOFError, IndexError, NotImplementedError)


@register(
    "svhn",
    needs_root=True,
    description="SVHN cropped digits (train/test, not extra): 73,257/26,032, 10 classes, 32x32",
    classes=CLASSES,
)
def read_svhn(root: Path | None, *, download: bool = False) -> ImageDataset:
    if root is None:
        raise DatasetError("data set 'svhn' needs a root: the folder holding train_32x32.mat and test_32x32.mat")
    root = Path(root).expanduser().resolve()
    train, test = (_read_split(root, split, download) for split in SPLITS)
    return ImageDataset(
        name="svhn",
        train=train,
        test=test,
        classes=CLASSES,
        native_size=(32, 32),
        source=str(root),
    )


def _read_split(root: Path, split: str, download: bool) -> Split:
    url, file_name, md5 = SVHN.split_list[split]
    path = root / file_name
    try:
        dataset = SVHN(str(root), split=split, download=download)
    except RuntimeError as error:  # torchvision: "Dataset not found or corrupted"
        raise integrity_error("svhn", [(path, md5)], url, download, error) from error
    except NETWORK_ERRORS as error:
        raise DatasetError(f"could not download {url} into {root} ({error}); svhn needs its official files") from error
    except _READ_ERRORS as error:
        raise DatasetError(
            f"cannot read {path} ({type(error).__name__}: {error}): it is truncated or not an SVHN .mat file; "
            "delete it and fetch it again (download=True)"
        ) from error
    images = np.asarray(dataset.data)  # torchvision already transposed X (H, W, C, N) to (N, C, H, W)
    if images.ndim != 4 or images.shape[1:] != (3, 32, 32) or images.dtype != np.uint8:
        raise DatasetError(f"{path}: X has shape {images.shape} and dtype {images.dtype}, not SVHN's 32x32x3xN uint8")
    labels = torch.from_numpy(np.asarray(dataset.labels, dtype=np.int64).reshape(-1))
    return checked_split(torch.from_numpy(np.ascontiguousarray(images)), labels, len(CLASSES), str(path))
