"""The in-memory form every data set reader returns."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass(frozen=True)
class Split:
    """One split: ``images`` uint8 (N, 3, H, W) in RGB, ``labels`` int64 (N,)."""

    images: torch.Tensor
    labels: torch.Tensor

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4 or self.images.shape[1] != 3:
            raise ValueError(f"images must be uint8 (N, 3, H, W), got {self.images.dtype} {tuple(self.images.shape)}")
        if self.labels.dtype != torch.int64 or self.labels.shape != (self.images.shape[0],):
            raise ValueError(f"labels must be int64 (N,), got {self.labels.dtype} {tuple(self.labels.shape)}")

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def subset(self, index: torch.Tensor) -> "Split":
        return Split(self.images[index], self.labels[index])


@dataclass(frozen=True)
class ImageDataset:
    """A named data set's training and test splits with their metadata.

    ``native_size`` is (height, width); ``source`` says where the pixels came
    from (a path, a URL, or ``generated``).
    """

    name: str
    train: Split
    test: Split
    classes: tuple[str, ...]
    native_size: tuple[int, int]
    source: str
    extra: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def split(self, name: str) -> Split:
        if name not in ("train", "test"):
            raise ValueError(f"unknown split {name!r}: use 'train' or 'test'")
        return getattr(self, name)
