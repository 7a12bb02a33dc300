"""Predicting with a trained run: ``normtest predict --checkpoint RUN_DIR --input ... --output FILE``.

Inputs are a CSV in the earlier work's format (no header, one image a row: 3,072
integers 0..255 in CIFAR's channel-planar order, the 1,024 R values, then G,
then B, each plane row-major 32x32) or an image folder ``<class>/<image>``
(classes sorted by name, as torchvision's ImageFolder does). The run's own
input pipeline and its best-validation weights (``load_trained``) give one
class index per image; when labels are known, :func:`classification_metrics`
scores them. Every file is written only after everything else succeeded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from .data.decode import decode_images
from .data.imagefolder import _scan_split
from .engine.environment import no_tf32, precision_autocast, resolve_device
from .engine.loader import InputPipeline
from .engine.trained import Which, load_trained
from .errors import NormtestError
from .io import write_json, write_text
from .metrics import classification_metrics
from .run_files import BEST, CHECKPOINT

CSV_SIDE = 32
CSV_VALUES = 3 * CSV_SIDE * CSV_SIDE  # 3,072


class PredictError(NormtestError):
    """An input, labels file or run folder that predictions cannot be made from."""


def read_csv_images(path: str | Path) -> torch.Tensor:
    """The images of a CSV file as uint8 (N, 3, 32, 32), rows in file order.

    Raises PredictError naming the file and the 1-based row of the first row that
    does not hold 3,072 integers in 0..255.
    """
    path = Path(path)
    rows = [_csv_row(path, number, line) for number, line in _numbered_lines(path)]
    if not rows:
        raise PredictError(f"{path} holds no images: expected one row of {CSV_VALUES} values per image")
    # A row is the three planes one after the other, so a reshape is the planar layout.
    return torch.from_numpy(np.stack(rows)).view(-1, 3, CSV_SIDE, CSV_SIDE)


def read_image_folder(path: str | Path) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """The images of ``path/<class>/<image>`` as uint8 (N, 3, H, W), their labels (int64) and the classes.

    Classes are the sorted folder names and labels their positions; images come class
    by class, sorted by path. Raises DatasetError/PredictError when there are no
    images, a file is not a readable image, or the images differ in size.
    """
    root = Path(path).expanduser().resolve()
    if not root.is_dir():
        raise PredictError(f"image folder {root} does not exist")
    # The image-folder data set's scan of one split folder is exactly this layout, with all
    # its checks (stray files, empty classes, broken links), so reuse it rather than copy it.
    files_by_class = _scan_split(root.parent, root.name)
    classes = sorted(files_by_class)
    paths = [str(root.parent / relative) for name in classes for relative, _ in files_by_class[name]]
    labels = [index for index, name in enumerate(classes) for _ in files_by_class[name]]
    images = decode_images(paths, lambda path: Path(path).read_bytes(), advice="replace or delete that file")
    return torch.from_numpy(images), torch.tensor(labels, dtype=torch.int64), classes


def read_labels(path: str | Path, n: int) -> torch.Tensor:
    """The class indices of a text file, one integer per line, as int64 (n,).

    Raises PredictError naming the file when a line is not a non-negative integer or
    the file does not hold exactly ``n`` labels.
    """
    path = Path(path)
    labels = []
    for number, line in _numbered_lines(path):
        try:
            label = int(line)
        except ValueError:
            raise PredictError(f"{path}, line {number}: {line.strip()!r} is not an integer class index") from None
        if label < 0:
            raise PredictError(f"{path}, line {number}: class index {label} is negative")
        labels.append(label)
    if len(labels) != n:
        raise PredictError(f"{path} holds {len(labels)} label(s) for {n} images: one label per image is needed")
    return torch.tensor(labels, dtype=torch.int64)


def predict(
    run_dir: str | Path,
    images: torch.Tensor,
    device: str | torch.device = "auto",
    batch_size: int = 512,
    which: Which = "best",
) -> torch.Tensor:
    """The predicted class index (int64, on the CPU) of each uint8 (N, 3, H, W) image.

    The network and input pipeline are the run's (``load_trained``): ``which="best"``
    is the best-validation weights, ``"last"`` the last epoch's. Evaluation mode, in the
    precision the run recorded (``bf16`` autocast, or float32 without TF32), so the
    run's own test images give its recorded test accuracy.
    """
    model, pipeline = _load_run(run_dir, which, device)
    return _class_scores(model, pipeline, images, batch_size, run_precision(run_dir, which)).argmax(dim=1)


def run_predict(
    run_dir: str | Path,
    input_path: str | Path,
    output_path: str | Path,
    *,
    labels_path: str | Path | None = None,
    json_path: str | Path | None = None,
    which: Which = "best",
    device: str | torch.device = "auto",
    batch_size: int = 512,
) -> tuple[torch.Tensor, dict[str, Any] | None]:
    """Predict every image of ``input_path`` into ``output_path`` (one class index a line); return
    the predictions and, when labels are known, their metrics (also written to ``json_path``).

    Labels come from ``labels_path`` when given, else from an image folder's class folders.
    Nothing is written unless everything succeeded, so an error leaves existing files as they were.
    """
    source = Path(input_path)
    for target in (output_path, json_path):
        if target is not None and Path(target).is_dir():
            raise PredictError(f"output {target} is a folder: give a file name")
    if json_path is not None and labels_path is None and not source.is_dir():
        raise PredictError(f"--json {json_path} needs labels: give --labels FILE or an image folder of classes")
    # The network first: a wrong run folder is reported before a large input is read.
    model, pipeline = _load_run(run_dir, which, device)
    if source.is_dir():
        images, labels, _ = read_image_folder(source)
        label_source = f"the class folders of {source}"
    elif source.is_file():
        images, labels, label_source = read_csv_images(source), None, ""
    else:
        raise PredictError(f"input {source} does not exist: give a CSV file or an image folder")
    if labels_path is not None:
        labels, label_source = read_labels(labels_path, len(images)), str(labels_path)

    scores = _class_scores(model, pipeline, images, batch_size, run_precision(run_dir, which))
    if labels is not None and int(labels.max()) >= scores.shape[1]:
        raise PredictError(
            f"label {int(labels.max())} from {label_source} is not a class of {_checkpoint_path(run_dir, which)}, "
            f"which has {scores.shape[1]} classes (0..{scores.shape[1] - 1})"
        )
    predictions = scores.argmax(dim=1)
    metrics = classification_metrics(labels, predictions) if labels is not None else None
    write_text(output_path, "".join(f"{int(p)}\n" for p in predictions))
    if json_path is not None:
        write_json(json_path, metrics)
    return predictions, metrics


def run_precision(run_dir: str | Path, which: Which = "best") -> str:
    """The precision the run computed in (``bf16`` or ``fp32``), as its weights file records it;
    ``fp32`` for a file from before precisions were recorded."""
    from .checkpoint import load_checkpoint

    return str(load_checkpoint(_checkpoint_path(run_dir, which)).get("precision") or "fp32")


def _checkpoint_path(run_dir: str | Path, which: str) -> Path:
    return Path(run_dir) / (BEST if which == "best" else CHECKPOINT)


def _load_run(run_dir: str | Path, which: Which, device: str | torch.device) -> tuple[nn.Module, InputPipeline]:
    """``load_trained`` with errors that always name the file, and a clear one for a missing folder."""
    run_dir = Path(run_dir)
    if which not in ("best", "last"):
        raise PredictError(f"which: {which!r} is not one of best, last")
    if run_dir.is_file():
        raise PredictError(f"{run_dir} is a file, not a run folder: give the run folder that holds it")
    if not run_dir.is_dir():
        raise PredictError(f"run folder {run_dir} does not exist")
    path = _checkpoint_path(run_dir, which)
    resolved = resolve_device(str(device))  # outside the try: its errors are about the device, not the file
    try:
        return load_trained(run_dir, which=which, device=resolved)
    except NormtestError as exc:
        if str(path) in str(exc):
            raise
        raise PredictError(f"{path}: {exc}") from None
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        # load_trained trusts the recorded model block's keys; a file lacking one is unusable.
        raise PredictError(f"{path} records an incomplete or unusable model ({exc!r})") from None


def _class_scores(
    model: nn.Module, pipeline: InputPipeline, images: torch.Tensor, batch_size: int, precision: str = "fp32"
) -> torch.Tensor:
    """The logits (N, classes) as float32 on the CPU, evaluated batch by batch in input order,
    in ``precision`` (the run's)."""
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3 or len(images) == 0:
        raise PredictError(f"images must be non-empty uint8 (N, 3, H, W), got {images.dtype} {tuple(images.shape)}")
    if batch_size < 1:
        raise PredictError(f"batch size must be at least 1, got {batch_size}")
    size = pipeline.trained_size
    if pipeline.resize_to is None and size is not None and tuple(images.shape[-2:]) != (size, size):
        raise PredictError(
            f"the run was trained on {size}x{size} images at their native size; "
            f"these are {images.shape[-2]}x{images.shape[-1]}"
        )
    device = next(model.parameters()).device
    model.eval()
    scores = []
    with torch.no_grad(), no_tf32():
        for start in range(0, len(images), batch_size):
            batch = images[start : start + batch_size].to(device)
            with precision_autocast(precision, device):
                scores.append(model(pipeline(batch)).float().cpu())
    return torch.cat(scores)


def _numbered_lines(path: Path) -> Iterator[tuple[int, str]]:
    """The file's non-blank lines with their 1-based numbers; blank lines are allowed only at the end."""
    try:
        with open(path, encoding="utf-8-sig") as handle:  # -sig: a spreadsheet's byte-order mark is no value
            first_blank = None
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    first_blank = first_blank or number
                elif first_blank is not None:
                    raise PredictError(f"{path}, row {first_blank}: the line is empty")
                else:
                    yield number, line
    except (OSError, UnicodeDecodeError) as exc:
        raise PredictError(f"cannot read {path} as text: {exc}") from None


def _csv_row(path: Path, row: int, line: str) -> np.ndarray:
    """One CSV row as 3,072 uint8 values, or a PredictError naming the first bad value."""
    fields = line.split(",")
    if len(fields) != CSV_VALUES:
        raise PredictError(
            f"{path}, row {row}: {len(fields)} values, expected {CSV_VALUES} (3 planes of {CSV_SIDE}x{CSV_SIDE})"
        )
    try:  # fast path: numpy parses the whole row at once
        values = np.array(fields, dtype=np.int64)
        if values.min() >= 0 and values.max() <= 255:
            return values.astype(np.uint8)
    except (ValueError, OverflowError):
        pass
    # Slow path, taken only for a bad row (or one numpy's parser refuses): name the first bad value.
    parsed = []
    for column, text in enumerate(fields, start=1):
        try:
            value = int(text)
        except ValueError:
            raise PredictError(f"{path}, row {row}, value {column}: {text.strip()!r} is not an integer") from None
        if not 0 <= value <= 255:
            raise PredictError(f"{path}, row {row}, value {column}: {value} is outside 0..255")
        parsed.append(value)
    return np.array(parsed, dtype=np.uint8)
