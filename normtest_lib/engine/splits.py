"""Seeded, stratified selections of image indices.

Each class gets a share of the selection proportional to its size, rounded
by the largest-remainder method so that the shares add up to exactly the
requested number. Within a class the images are taken in the order of one
seeded permutation, so two selections drawn with the same seed take their
images from the front of the same per-class order.
"""

from __future__ import annotations

import torch


def stratified_counts(class_counts: torch.Tensor, total: int) -> torch.Tensor:
    """How many of each class a stratified selection of ``total`` items takes.

    Exact integer arithmetic: each class gets floor(n_c * total / N), and the
    remaining items go to the classes with the largest remainders (ties to
    the lower class index).
    """
    class_counts = class_counts.to(torch.int64)
    n = int(class_counts.sum())
    if not 0 <= total <= n:
        raise ValueError(f"cannot select {total} of {n} items")
    if n == 0:
        return torch.zeros_like(class_counts)
    scaled = class_counts * total
    quota = scaled // n
    remainder = scaled % n
    missing = total - int(quota.sum())
    order = torch.sort(remainder, descending=True, stable=True).indices
    quota[order[:missing]] += 1
    return quota


def _class_ranks(labels: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Each item's position within its class in a seeded random order (0 = first)."""
    n = labels.numel()
    perm = torch.randperm(n, generator=gen)
    # Stable sort of the permuted labels groups the classes and keeps the random order inside each.
    order = perm[torch.sort(labels[perm], stable=True).indices]
    sorted_labels = labels[order]
    class_start = torch.searchsorted(sorted_labels, sorted_labels, right=False)
    ranks = torch.empty(n, dtype=torch.int64)
    ranks[order] = torch.arange(n) - class_start
    return ranks


def stratified_select(labels: torch.Tensor, count: int, gen: torch.Generator) -> torch.Tensor:
    """Indices (ascending) of a stratified random selection of ``count`` items of ``labels``."""
    labels = labels.to(torch.int64).cpu()
    if labels.numel() == 0:
        return torch.zeros(0, dtype=torch.int64)
    quota = stratified_counts(torch.bincount(labels), count)
    ranks = _class_ranks(labels, gen)
    return torch.nonzero(ranks < quota[labels]).flatten()


def stratified_split(labels: torch.Tensor, fraction: float, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Split indices into (kept, held out) with ``round(fraction * N)`` held out, stratified.

    Both index tensors are ascending and together cover ``range(N)`` exactly once.
    """
    n = labels.numel()
    held_count = int(round(fraction * n))
    held = stratified_select(labels, held_count, gen)
    mask = torch.ones(n, dtype=torch.bool)
    mask[held] = False
    return torch.nonzero(mask).flatten(), held
