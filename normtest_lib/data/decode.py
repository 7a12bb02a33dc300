"""Decoding image files into one uint8 (N, 3, H, W) RGB array.

Pillow decodes every format (its JPEG decoder is libjpeg-turbo) and converts
grayscale, palette, CMYK and alpha images to RGB; channels come out in RGB
order. torchvision.io decodes JPEGs about 1.5x faster, but its image decoding
is deprecated since torchvision 0.29 (it warns on every call and points to
TorchCodec), so it is not used.

Decoding is serial on purpose. Measured on the project's 2-core machines,
20,000 Tiny ImageNet JPEGs with the other core busy: serial 2.8-5.5 s, a
2-thread pool 3.7-5.0 s (the per-image work is short and mostly holds the
GIL), a 2-process pool 3.3-6.6 s forked and 4.4-7.4 s spawned (worker start-up
and copying results back, and it competes with whatever else runs). Decoded
data sets are cached (``cache.py``), so this cost is paid once per data set.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import DatasetError

# File name suffixes read as images (lower case); anything else is not an image. All are
# formats Pillow reads (.jfif/.jpe are JPEG; .avif needs Pillow 11.2+, which this project has).
IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".gif", ".webp", ".avif", ".tif", ".tiff", ".ppm", ".pgm",
     ".pbm", ".pnm"}
)
# Pillow's modes for 16-bit grayscale (PNG, TIFF).
_HIGH_DEPTH_GRAY = frozenset({"I", "I;16", "I;16B", "I;16L"})


def is_image_name(name: str) -> bool:
    """True when ``name`` has an image suffix and is not a hidden file."""
    base = os.path.basename(name)
    return not base.startswith(".") and os.path.splitext(base)[1].lower() in IMAGE_SUFFIXES


def decode_bytes(data: bytes) -> np.ndarray:
    """Decode one encoded image to a uint8 (3, H, W) RGB array.

    Raises ``OSError``/``ValueError``/... from Pillow on a broken file (a
    truncated JPEG or PNG raises: Pillow does not fill in missing data unless
    ``ImageFile.LOAD_TRUNCATED_IMAGES`` is set); :func:`decode_images` turns
    those into a :class:`DatasetError` naming the file.
    """
    if not data:
        raise ValueError("the file is empty")
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        if image.mode in _HIGH_DEPTH_GRAY:
            # convert("RGB") would clip 16-bit values at 255; scale to 8 bits instead.
            gray = np.asarray(image).astype(np.uint32)
            gray = ((gray * 255 + 32767) // 65535).clip(0, 255).astype(np.uint8)
            return np.broadcast_to(gray, (3, *gray.shape))
        rgb = image if image.mode == "RGB" else image.convert("RGB")
        return np.asarray(rgb).transpose(2, 0, 1)


def decode_images(
    names: Sequence[str],
    read: Callable[[str], bytes],
    *,
    describe: Callable[[str], str] = str,
    advice: str,
    size: tuple[int, int] | None = None,
) -> np.ndarray:
    """Decode every image in ``names`` into one uint8 (N, 3, H, W) RGB array.

    ``read(name)`` returns a file's bytes; ``describe(name)`` is how errors
    name it (a path, or ``archive.zip:member``); ``advice`` says what the user
    should do about a broken file. All images must share one size, ``size``
    (height, width) when given, else the first image's: the split has to be
    one tensor.
    """
    if not names:
        raise DatasetError(f"no images to decode ({advice})")
    out: np.ndarray | None = None
    first_name = names[0]
    for index, name in enumerate(names):
        pixels = _decode_one(name, read, describe, advice)
        if out is None:
            height, width = size if size is not None else pixels.shape[1:]
            out = np.empty((len(names), 3, height, width), dtype=np.uint8)
        if pixels.shape != out.shape[1:]:
            expected = f"{out.shape[2]}x{out.shape[3]}"
            reference = f"the expected {expected}" if size else f"{describe(first_name)} ({expected})"
            raise DatasetError(
                f"image {describe(name)} is {pixels.shape[1]}x{pixels.shape[2]} (height x width), unlike {reference}: "
                "all images of a data set must have one size, so resize them beforehand"
            )
        out[index] = pixels
    assert out is not None
    return out


def _decode_one(name: str, read: Callable[[str], bytes], describe: Callable[[str], str], advice: str) -> np.ndarray:
    try:
        data = read(name)
    except OSError as error:
        raise DatasetError(f"cannot read {describe(name)}: {error}; {advice}") from error
    try:
        return decode_bytes(data)
    except (OSError, ValueError, SyntaxError, UnidentifiedImageError, Image.DecompressionBombError) as error:
        reason = str(error) or type(error).__name__
        raise DatasetError(
            f"cannot decode image {describe(name)} ({reason}): it is truncated or corrupt; {advice}"
        ) from error
