"""Label noise: which training labels a run replaces, and with what.

The noise is a function of ``(noise_seed, kind, rate)`` and the data set's
training split *as loaded*: it is drawn over all of that split's images,
identified by their index in it, never over the run's own (shuffled,
subsetted, validation-reduced) training split. So the same ``noise_seed`` gives
every image the same noisy label whatever the run's ``seed``, model or
learning rate, and whichever images the run holds out for validation: runs
paired by seed are compared on the same corrupted labels, and the corruption
does not vary with the initialisation (the official ConvNorm code drew both
from one seed).

Kinds (K classes, rate p):

- ``symmetric`` (as published): ``round(p * N)`` images of the N, chosen
  uniformly, get a class drawn uniformly from all K classes, their own
  included, so the real flip rate is about ``p * (1 - 1/K)``;
- ``symmetric_exact``: the same images get a class drawn uniformly from the
  K - 1 *other* classes: the real flip rate is ``p`` (up to rounding);
- ``asymmetric`` (the published CIFAR-10 map, by class name): for each source
  class of :data:`ASYMMETRIC_MAP`, ``round(p * n_c)`` of its n_c images get the
  mapped class. A data set whose class names lack any of the map's classes is
  refused (:func:`check_asymmetric_classes`).

One seeded permutation of the N images ranks them; the first ``round(p * N)``
(per source class for ``asymmetric``: the first of that class) are chosen, and
each image's replacement class is its own draw, made for every image whether
chosen or not. Hence the levels are nested: the images noisy at 10 % are
noisy at 20 % too, with the same noisy labels, and ``symmetric`` and
``symmetric_exact`` corrupt the same images.

Counts are exact over the whole training split as loaded; a run's training
split (the rest after the validation hold-out and ``train_subset``) holds its
random share of them, which is why a run records the rate it actually trained
with (``noise_rate_actual`` in ``summary.json``).
"""

from __future__ import annotations

import csv
import hashlib
import math
from pathlib import Path
from typing import Literal, Sequence

import torch

NoiseKind = Literal["symmetric", "symmetric_exact", "asymmetric"]
NOISE_KINDS: tuple[str, ...] = ("symmetric", "symmetric_exact", "asymmetric")

# The published CIFAR-10 asymmetric noise: visually similar classes, source -> target.
ASYMMETRIC_MAP: dict[str, str] = {
    "truck": "automobile",
    "bird": "airplane",
    "cat": "dog",
    "dog": "cat",
    "deer": "horse",
}


def asymmetric_map_text() -> str:
    return ", ".join(f"{source}->{target}" for source, target in ASYMMETRIC_MAP.items())


def missing_asymmetric_classes(classes: Sequence[str]) -> list[str]:
    """The classes of :data:`ASYMMETRIC_MAP` (sources and targets) that ``classes`` lacks, sorted."""
    needed = set(ASYMMETRIC_MAP) | set(ASYMMETRIC_MAP.values())
    return sorted(needed - set(classes))


def check_asymmetric_classes(classes: Sequence[str], dataset: str) -> None:
    """Raise ValueError naming the map's classes that data set ``dataset`` (with ``classes``) lacks."""
    missing = missing_asymmetric_classes(classes)
    if missing:
        shown = ", ".join(classes[:12]) + (f", ... ({len(classes)} in all)" if len(classes) > 12 else "")
        raise ValueError(
            f"label_noise_kind 'asymmetric' flips CIFAR-10 classes by name ({asymmetric_map_text()}); "
            f"data set {dataset!r} has no class named {', '.join(missing)} (its classes: {shown}); "
            "use label_noise_kind 'symmetric' or 'symmetric_exact' for it"
        )


def noise_generator(noise_seed: int) -> torch.Generator:
    """The one CPU stream label noise draws from; it depends on ``noise_seed`` only (not on ``seed``).

    The kind and the rate are left out on purpose: they decide how the draws are
    used, so noise levels are nested and the symmetric kinds corrupt the same images.
    """
    digest = hashlib.sha256(f"label_noise/{noise_seed}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") % (2**63))


def _count(rate: float, n: int) -> int:
    """round(rate * n), halves up (not Python's round-half-even), so counts are easy to check by hand."""
    return int(math.floor(rate * n + 0.5))


def noisy_labels(
    labels: torch.Tensor,
    classes: Sequence[str],
    rate: float,
    kind: NoiseKind | str = "symmetric",
    noise_seed: int = 0,
) -> torch.Tensor:
    """The labels of a whole training split after label noise (a new int64 tensor; ``labels`` is unchanged).

    ``labels[i]`` is image i's label in the training split as loaded, ``classes``
    the data set's class names (K = len(classes)); see the module docstring for
    what each kind does. ``rate`` 0 returns a copy of ``labels``.
    """
    if kind not in NOISE_KINDS:
        raise ValueError(f"unknown label noise kind {kind!r}; known: {', '.join(NOISE_KINDS)}")
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"label noise rate must lie in [0, 1), got {rate}")
    labels = labels.to(torch.int64).cpu()
    k = len(classes)
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= k):
        raise ValueError(f"labels range over {int(labels.min())}..{int(labels.max())}, outside 0..{k - 1}")
    noisy = labels.clone()
    n = labels.numel()
    if rate == 0.0 or n == 0:
        return noisy

    gen = noise_generator(noise_seed)
    order = torch.randperm(n, generator=gen)  # the images ranked for corruption
    uniform = torch.randint(0, k, (n,), generator=gen)  # symmetric: each image's draw from all K classes
    other = torch.randint(0, max(k - 1, 1), (n,), generator=gen)  # symmetric_exact: an offset to another class

    if kind == "asymmetric":
        check_asymmetric_classes(classes, "this data set")
        index = {name: i for i, name in enumerate(classes)}
        ranked_labels = labels[order]
        for source, target in ASYMMETRIC_MAP.items():
            members = order[ranked_labels == index[source]]  # this class's images, in rank order
            chosen = members[: _count(rate, members.numel())]
            noisy[chosen] = index[target]
        return noisy

    if kind == "symmetric_exact" and k < 2:
        raise ValueError("label_noise_kind 'symmetric_exact' needs at least 2 classes")
    chosen = order[: _count(rate, n)]
    if kind == "symmetric":
        noisy[chosen] = uniform[chosen]
    else:
        noisy[chosen] = (labels[chosen] + 1 + other[chosen]) % k
    return noisy


def flip_rate(original: torch.Tensor, noisy: torch.Tensor) -> float:
    """The fraction of labels that differ from the originals (0.0 for none)."""
    if original.shape != noisy.shape:
        raise ValueError(f"label tensors differ in shape: {tuple(original.shape)} and {tuple(noisy.shape)}")
    if original.numel() == 0:
        return 0.0
    return float((original.cpu() != noisy.cpu()).double().mean())


# --- noisy_labels.csv -------------------------------------------------------------------

NOISY_LABEL_COLUMNS = ("index", "label", "noisy_label")


def format_noisy_labels(index: torch.Tensor, original: torch.Tensor, noisy: torch.Tensor) -> str:
    """``noisy_labels.csv`` text: one row per image, ordered by ``index`` (its index in the split as loaded).

    Every image of the split is listed, changed or not, so the file alone gives
    both the real flip rate and the clean labels a later analysis may need.
    """
    index, original, noisy = (t.to(torch.int64).cpu() for t in (index, original, noisy))
    order = torch.argsort(index)
    lines = [",".join(NOISY_LABEL_COLUMNS)]
    lines.extend(
        f"{i},{label},{noisy_label}"
        for i, label, noisy_label in zip(index[order].tolist(), original[order].tolist(), noisy[order].tolist())
    )
    return "\n".join(lines) + "\n"


def write_noisy_labels(path: str | Path, index: torch.Tensor, original: torch.Tensor, noisy: torch.Tensor) -> None:
    """Write ``noisy_labels.csv`` atomically (see :func:`format_noisy_labels`)."""
    from ..io import write_text

    write_text(path, format_noisy_labels(index, original, noisy))


def read_noisy_labels(path: str | Path) -> dict[str, torch.Tensor]:
    """The columns of a ``noisy_labels.csv`` as int64 tensors, by name."""
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    return {
        column: torch.tensor([int(row[column]) for row in rows], dtype=torch.int64) for column in NOISY_LABEL_COLUMNS
    }
