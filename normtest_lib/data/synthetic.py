"""The built-in data set: generated in code, deterministic, no files needed.

Each class is a grating of one of five orientations at one of two spatial
frequencies, drawn inside a soft disk at a random place over a smooth coloured
background, with a weak class-specific tint and pixel noise. A small CNN learns
it well above chance within a minute on a laptop CPU, and it is not trivially
separable (clutter, phase, position and frequency jitter).

Domains share the content generator but differ in per-channel mean and
contrast by design, so that the input-normalization question has a visible
answer: ``synthetic`` is the pretraining ``source`` domain with ImageNet-like
channel statistics; ``synthetic-dim``, ``synthetic-lowcontrast`` and
``synthetic-tinted`` are targets with shifted means and contrasts. The design
targets below set the generator; the statistics the book reports are always
computed from the generated pixels (clipping to [0, 1] moves them slightly).
"""

from __future__ import annotations

import hashlib
import math
import zlib
from dataclasses import dataclass
from pathlib import Path

import torch

from .registry import register
from .types import ImageDataset, Split

IMAGE_SIZE = 32
N_TRAIN = 6000
N_TEST = 2000
ORIENTATIONS = 5
FREQUENCIES = (0.09, 0.19)  # cycles per pixel
CLASSES = tuple(f"{deg}deg-{kind}" for kind in ("coarse", "fine") for deg in range(0, 180, 180 // ORIENTATIONS))
BASE_SEED = 20_261_121
# Difficulty: chosen so that the `small` CNN reaches roughly 80-90 % in a minute on a
# laptop CPU, not 100 %: a saturated task could not show any setting's effect.
ORIENTATION_JITTER = 0.25  # radians; neighbouring classes are 0.63 rad apart
FREQUENCY_JITTER = 0.2
GRATING_CONTRAST = 0.6
TINT = 0.25
PIXEL_NOISE = 1.1


@dataclass(frozen=True)
class Domain:
    """Design targets: per-channel mean and std of the pixels on the [0, 1] scale."""

    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    description: str


DOMAINS: dict[str, Domain] = {
    "source": Domain((0.485, 0.456, 0.406), (0.229, 0.224, 0.225), "pretraining domain, ImageNet-like statistics"),
    "dim": Domain((0.22, 0.20, 0.18), (0.10, 0.09, 0.09), "dark and low-contrast target"),
    "lowcontrast": Domain((0.50, 0.48, 0.45), (0.06, 0.06, 0.06), "ImageNet-like means, a quarter of the contrast"),
    "tinted": Domain((0.35, 0.55, 0.70), (0.20, 0.15, 0.10), "colour-shifted target with uneven channel contrast"),
}


def dataset_name(domain: str) -> str:
    return "synthetic" if domain == "source" else f"synthetic-{domain}"


def _seed(domain: str, split: str, seed: int) -> int:
    # crc32 is stable across processes and Python versions, unlike hash().
    return (BASE_SEED + seed * 1_000_003 + zlib.crc32(f"{domain}/{split}".encode())) % (2**63)


def _smooth_field(n: int, gen: torch.Generator, size: int) -> torch.Tensor:
    """Low-frequency coloured clutter, (n, 3, size, size), roughly zero mean and unit std."""
    coarse = torch.randn(n, 3, 4, 4, generator=gen)
    return torch.nn.functional.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)


def generate_split(n: int, domain: str = "source", split: str = "train", seed: int = 0, size: int = IMAGE_SIZE) -> Split:
    """Generate ``n`` images of ``domain``; the same arguments always give the same pixels."""
    target = DOMAINS[domain]
    gen = torch.Generator().manual_seed(_seed(domain, split, seed))
    labels = torch.arange(n) % len(CLASSES)
    labels = labels[torch.randperm(n, generator=gen)]
    orientation = (labels % ORIENTATIONS).float() * (math.pi / ORIENTATIONS)
    orientation = orientation + ORIENTATION_JITTER * torch.randn(n, generator=gen)
    frequency = torch.tensor(FREQUENCIES)[labels // ORIENTATIONS] * (1 + FREQUENCY_JITTER * torch.randn(n, generator=gen))
    phase = 2 * math.pi * torch.rand(n, generator=gen)

    coords = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    cos_t, sin_t = torch.cos(orientation).view(n, 1, 1), torch.sin(orientation).view(n, 1, 1)
    grating = torch.sin(2 * math.pi * frequency.view(n, 1, 1) * (xx * cos_t + yy * sin_t) + phase.view(n, 1, 1))

    center = (torch.rand(n, 2, generator=gen) - 0.5) * (size * 0.4)
    radius = size * (0.22 + 0.12 * torch.rand(n, generator=gen))
    dist = torch.sqrt((xx - center[:, 0].view(n, 1, 1)) ** 2 + (yy - center[:, 1].view(n, 1, 1)) ** 2)
    mask = torch.sigmoid((radius.view(n, 1, 1) - dist) / 1.5)

    # A weak per-class tint: informative, so per-image standardization removes a cue.
    tint_gen = torch.Generator().manual_seed(BASE_SEED)
    tints = TINT * torch.randn(len(CLASSES), 3, generator=tint_gen)
    luminance = torch.tensor([1.0, 1.0, 1.0]).view(1, 3, 1, 1)
    foreground = GRATING_CONTRAST * grating.unsqueeze(1) * luminance + tints[labels].view(n, 3, 1, 1)
    background = 0.9 * _smooth_field(n, gen, size)
    z = mask.unsqueeze(1) * foreground + (1 - mask.unsqueeze(1)) * background
    z = z + PIXEL_NOISE * torch.randn(n, 3, size, size, generator=gen)
    # Put every channel at zero mean and unit variance over the whole split, then apply the domain.
    z = (z - z.mean(dim=(0, 2, 3), keepdim=True)) / z.std(dim=(0, 2, 3), keepdim=True)
    mean = torch.tensor(target.mean).view(1, 3, 1, 1)
    std = torch.tensor(target.std).view(1, 3, 1, 1)
    pixels = (mean + std * z).clamp(0, 1).mul(255).round().to(torch.uint8)
    return Split(pixels, labels.to(torch.int64))


def load_synthetic(domain: str = "source", seed: int = 0, n_train: int = N_TRAIN, n_test: int = N_TEST) -> ImageDataset:
    return ImageDataset(
        name=dataset_name(domain),
        train=generate_split(n_train, domain, "train", seed),
        test=generate_split(n_test, domain, "test", seed),
        classes=CLASSES,
        native_size=(IMAGE_SIZE, IMAGE_SIZE),
        source="generated",
        extra={"domain": domain, "design_mean": DOMAINS[domain].mean, "design_std": DOMAINS[domain].std},
    )


def _register(domain: str) -> None:
    @register(
        dataset_name(domain),
        needs_root=False,
        description=f"built-in synthetic: {DOMAINS[domain].description}",
        classes=CLASSES,
    )
    def reader(root, *, download: bool = False) -> ImageDataset:  # noqa: ARG001 - files are never needed
        return load_cached_synthetic(domain)


def load_cached_synthetic(domain: str) -> ImageDataset:
    """The registered data set of ``domain``, generated once and then read from the disk cache.

    Generating a domain takes seconds and every run of a grid loads one; the cache key
    covers this module's source, so a change to the generator gives a new entry."""
    from .cache import Fingerprint, load_cached

    generator = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()
    fingerprint = Fingerprint("synthetic", domain, N_TRAIN, N_TEST, generator)
    return load_cached(dataset_name(domain), fingerprint, lambda: load_synthetic(domain))


for _domain in DOMAINS:
    _register(_domain)
