"""Named photometric shifts of a data set's images: real images whose channel statistics differ from the source's.

A shift is a fixed, deterministic transform of uint8 (N, 3, H, W) RGB images,
applied to each image on its own (never depending on other images, the split
or a seed), so that it can run chunk by chunk. The registry offers every
registered data set under ``<data set>+<shift>`` (``imagefolder+dim``): the
base reader's training and test splits with the shift applied to both
(:func:`shifted_dataset`); the base's decode cache is reused, since the shift
runs after loading.

Study 1 asks whether fine-tuning should standardize with the pretraining
statistics or the target's own. That question has an answer to find only when
the two differ; the local target (the CIFAR-10 JPEG copy) has nearly the
source's (Tiny ImageNet's) statistics. A shifted copy keeps the target's
content and labels and moves its statistics, as far as a grayscale digit set's
are from ImageNet's.

Adding a shift is one function (uint8 images in, uint8 images of the same
shape out; its docstring says what natural shift it stands for, its first line
is what ``normtest datasets`` shows) and one entry in :data:`SHIFTS`.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import torch

from ..errors import DatasetError
from .types import ImageDataset, Split

SEPARATOR = "+"
CHUNK = 4096  # images per step: int16 arithmetic needs twice a chunk's bytes, never twice a data set's

Shift = Callable[[torch.Tensor], torch.Tensor]

# What a base data set's ``extra`` says about its own pixels, which a shift makes untrue
# (the synthetic sets' design targets): not carried over to the shifted set.
_PIXEL_KEYS = ("design_mean", "design_std")


def scale_levels(images: torch.Tensor, numerator: int, denominator: int) -> torch.Tensor:
    """Every channel value times ``numerator / denominator``, rounded to the nearest level, halves up.

    Exact integer arithmetic, ``(v * numerator + denominator // 2) // denominator``
    with an even ``denominator``, so the result does not depend on floating-point rounding.
    """
    if numerator < 0 or denominator <= 0 or denominator % 2 or numerator > denominator:
        raise ValueError(f"scale_levels needs 0 <= numerator <= denominator, denominator even; got {numerator}/{denominator}")
    wide = images.to(torch.int32) if 255 * numerator + denominator // 2 > torch.iinfo(torch.int16).max else images.to(torch.int16)
    return torch.div(wide * numerator + denominator // 2, denominator, rounding_mode="floor").to(torch.uint8)


def dim(images: torch.Tensor) -> torch.Tensor:
    """Underexposed by about 1.5 stops: night-time or underexposed photographs.

    Every channel value times 0.35 (log2(1/0.35) = 1.51 stops), rounded to the
    nearest uint8 level with halves rounded up: ``(v * 35 + 50) // 100``, so 255
    becomes 89, 128 becomes 45 and 10 becomes 4. A linear scaling of the stored
    (gamma-encoded) values, as a camera's underexposure or a darkened photograph
    gives to first order: channel means fall from about 0.47 to about 0.17 of full
    scale and standard deviations shrink by the same factor, while the colour
    balance and the content are kept.
    """
    return scale_levels(images, 35, 100)


# name -> transform. One entry per shift; the name is what follows the '+' in a data set's name.
SHIFTS: dict[str, Shift] = {
    "dim": dim,
}


def shift_names() -> list[str]:
    return sorted(SHIFTS)


def describe(shift: str) -> str:
    """The first line of the shift's docstring: the natural shift it stands for."""
    doc = (get_shift(shift).__doc__ or "").strip()
    return doc.splitlines()[0].rstrip(".") if doc else shift


def get_shift(name: str) -> Shift:
    try:
        return SHIFTS[name]
    except KeyError:
        raise DatasetError(f"unknown photometric shift {name!r}; known shifts: {', '.join(shift_names())}") from None


def split_name(name: str) -> tuple[str, str] | None:
    """``("imagefolder", "dim")`` for ``"imagefolder+dim"``; None for a name without the separator."""
    if SEPARATOR not in name:
        return None
    base, shift = name.split(SEPARATOR, 1)
    return base, shift


def shifted_name(base: str, shift: str) -> str:
    return f"{base}{SEPARATOR}{shift}"


def apply_shift(shift: str, images: torch.Tensor, chunk_size: int = CHUNK) -> torch.Tensor:
    """``images`` (uint8 (N, 3, H, W)) under shift ``shift``, chunk by chunk, as a new tensor."""
    transform = get_shift(shift)
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"a photometric shift needs uint8 (N, 3, H, W) images, got {images.dtype} {tuple(images.shape)}")
    out = torch.empty_like(images)
    for start in range(0, images.shape[0], chunk_size):
        chunk = images[start:start + chunk_size]
        shifted = transform(chunk)
        if shifted.dtype != torch.uint8 or shifted.shape != chunk.shape:
            raise ValueError(f"shift {shift!r} returned {shifted.dtype} {tuple(shifted.shape)} for {tuple(chunk.shape)} uint8")
        out[start:start + chunk_size] = shifted
    return out


def shifted_dataset(base: ImageDataset, shift: str, name: str) -> ImageDataset:
    """``base`` with ``shift`` applied to both splits' images, named ``name``.

    Labels, classes, native size and source are the base's; ``extra`` keeps the
    base's (its cache status included) except what described the unshifted
    pixels, and adds ``base`` (the base data set's name) and ``shift``.
    """
    extra = {key: value for key, value in base.extra.items() if key not in _PIXEL_KEYS}
    return dataclasses.replace(
        base,
        name=name,
        train=Split(apply_shift(shift, base.train.images), base.train.labels),
        test=Split(apply_shift(shift, base.test.images), base.test.labels),
        extra={**extra, "base": base.name, "shift": shift},
    )
