"""Data sets as uint8 tensors: one registry, one loading call."""

from .registry import check_root, dataset_names, get_spec, load_dataset, register, shifted_forms
from .types import ImageDataset, Split

__all__ = ["ImageDataset", "Split", "check_root", "dataset_names", "get_spec", "load_dataset", "register", "shifted_forms"]
