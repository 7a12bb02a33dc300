"""Evidence for study 3's errata: the course paper's port of ConvNorm, its label noise, and a correction of this book.

The port of ConvNorm to the complex ``torch.fft`` API.

The official ConvNorm code (``models/prec_conv.py`` of shengliu66/ConvNorm) was written for the old
``torch.rfft``, which returned real tensors with a trailing dimension of size 2 (real and imaginary
parts). The course paper's code (``models/prec_conv.py`` of yashika-batra/convnorm, class ``PreConv``,
method ``preconditioning``) replaced the FFT calls with ``torch.fft.rfft2`` and ``irfft2``, whose spectra
are complex tensors, and kept the two helpers that did the old real/imaginary arithmetic (``complex_abs``
for |z|^2 and ``compl_mul_2D`` for the product) unchanged. :func:`published_port_preconditioner` and
:func:`published_port_precondition` re-implement, in our own code, what that file computes (neither
repository is copied; the official one has no license):

- the magnitude helper squares and sums over the last axis; on a complex spectrum that is the
  complex square (z^2, not |z|^2) summed over the last *frequency* axis;
- the product helper takes ``[..., 0]`` and ``[..., 1]`` as real and imaginary parts; on complex
  tensors those are the first two frequency columns, each scaled by the preconditioner, and the
  stacked result, read back by ``irfft2`` as a half spectrum of two columns, keeps only those.

:func:`energy_table` compares, for the same weights, the per-frequency energy of each output
channel's preconditioned filters (sum over input channels of |spectrum|^2): ConvNorm's point is
that it is 1 at every frequency, as ours is; the port's is not.

Label noise, computed from the runs.

- The nominal rate is not the real one: symmetric noise as published draws the new
  label from all K classes, the true one included, so only p(1 - 1/K) of the labels
  change. :func:`noise_rate_table` sets each run's measured rate (``noise_rate_actual``
  in its summary) beside both.
- The official code (``data_loader/cifar10.py``: ``train_val_split``, ``get_cifar10``) took its
  validation images from among its training images, gave them label noise at the same rate
  (a draw of their own) and chose checkpoints on them. :func:`official_validation_table` draws
  such a validation set from each run's own noisy training labels (``noisy_labels.csv``; the
  share of wrong labels is the same in expectation) and counts its wrong labels, beside the rate of the validation split the run really selected on
  (``noise_rate_actual_val``: 0 unless ``noisy_val``).
- The official code never saved its noisy labels, and drew them from the seed that
  also initialised the network. :func:`saved_labels_table` checks that every noisy
  run saved them (and that they give back its recorded rate);
  :func:`noise_seed_table` and :func:`noise_independent_of_seed` show that ours
  follow ``noise_seed`` alone.

Corrections to this book: the first edition's ConvNorm took its FFTs at the wrong size;
:func:`correction_table` measures what it computed against the published layer, and
:func:`superseded_table` counts the runs it made, which the book no longer reads.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable, Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from torch import nn
from torch.nn import functional as F

from ...data.label_noise import noisy_labels
from ...layers.convnorm import PreconditionedConv2d, fft_size, precondition, preconditioner
from ...run_files import NOISY_LABELS
from .analysis import add_variant, noise_label

# --- The port of ConvNorm to torch.fft: what its preconditioner does to a filter's energy ---------------

OURS = "ours"
PORT = "the course paper's port (re-implemented)"
# How close to 1 a frequency's energy must be to count as normalized (the tests' tolerance too).
TOLERANCE = 1e-3
# Both implementations are compared without an eps, as ConvNorm is defined (and as the official code
# ran): the question is whether the preconditioner normalizes. Our layer's eps (1e-5) turns an energy
# E into E / (E + eps), visible only where a filter has almost no energy (pass eps to see it).
EPS = 0.0

# (full convolution output maps (N, C_out, n_h, n_w), weight, eps) -> the preconditioned maps
Preconditioning = Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]


@torch.no_grad()
def published_port_preconditioner(weight: torch.Tensor, size: tuple[int, int], eps: float = EPS) -> torch.Tensor:
    """The port's preconditioner for ``weight`` on a ``size`` map: (C_out, n_h), complex.

    The old magnitude idiom on a complex spectrum (C_out, C_in, n_h, n_w // 2 + 1): ``pow(2)`` is the
    complex square and ``sum(-1)`` runs over the column frequencies, so one complex value per
    output channel and row frequency is left where ours has a real one per frequency.
    """
    spectrum = torch.fft.rfft2(weight.detach().float(), s=size)
    power = spectrum.pow(2).sum(-1)  # meant: |z|^2 over (re, im); here: sum of z^2 over the last frequency axis
    return (power.sum(dim=1) + eps).pow(-0.5)


@torch.no_grad()
def published_port_precondition(out: torch.Tensor, weight: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """The port's preconditioning of full convolution outputs ``out`` (N, C_out, n_h, n_w) by ``weight``."""
    size = (int(out.shape[-2]), int(out.shape[-1]))
    v = published_port_preconditioner(weight, size, eps)
    spectrum = torch.fft.rfft2(out.float(), s=size)
    pair = torch.stack([v, torch.zeros_like(v)], dim=-1)  # the preconditioner as a (re, im) pair
    # The old explicit complex product; on complex tensors [..., 0] and [..., 1] are frequency columns.
    real = spectrum[..., 0] * pair[..., 0] - spectrum[..., 1] * pair[..., 1]
    imag = spectrum[..., 0] * pair[..., 1] + spectrum[..., 1] * pair[..., 0]
    return torch.fft.irfft2(torch.stack([real, imag], dim=-1), s=size)


@torch.no_grad()
def ours_precondition(out: torch.Tensor, weight: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """Our layer's preconditioning of full convolution outputs (before its window, stride and affine)."""
    size = (int(out.shape[-2]), int(out.shape[-1]))
    return precondition(out, preconditioner(weight, size, eps))


@torch.no_grad()
def filter_energy(
    weight: torch.Tensor, size: tuple[int, int], preconditioning: Preconditioning, eps: float = EPS
) -> torch.Tensor:
    """Per output channel and frequency, the energy of the preconditioned filters: (C_out, n_h, n_w // 2 + 1).

    Preconditioning filters each output channel, so it commutes with the convolution: the
    preconditioned filter from input channel i is the preconditioning applied to the kernel W_.,i
    itself laid on the map (each input channel a batch element).
    """
    kernels = torch.zeros(weight.shape[1], weight.shape[0], *size, dtype=torch.float32)
    placed = weight.detach().float().transpose(0, 1)  # the torus is never smaller than the kernel
    kernels[..., : placed.shape[-2], : placed.shape[-1]] = placed
    filtered = preconditioning(kernels, weight, eps)
    return torch.fft.rfft2(filtered.float(), s=size).abs().square().sum(dim=0)


def energy_table(layers: Mapping[str, tuple[torch.Tensor, tuple[int, int]]], eps: float = EPS) -> pd.DataFrame:
    """Per layer (name -> (weight, FFT size)) and implementation: the min, max and mean over output channels and
    frequencies of the preconditioned filters' energy, and the share of frequencies within 1e-3 of 1."""
    rows = {}
    for name, (weight, size) in layers.items():
        for label, preconditioning in ((OURS, ours_precondition), (PORT, published_port_precondition)):
            energy = filter_energy(weight, size, preconditioning, eps)
            rows[(name, label)] = {
                "min": float(energy.min()),
                "max": float(energy.max()),
                "mean": float(energy.mean()),
                f"share within {TOLERANCE:g} of 1": float(((energy - 1).abs() <= TOLERANCE).float().mean()),
            }
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index = pd.MultiIndex.from_tuples(table.index, names=["layer", "implementation"])
    return table


@torch.no_grad()
def convnorm_layers(model: nn.Module, image_size: int = 32) -> dict[str, tuple[torch.Tensor, tuple[int, int]]]:
    """Each ConvNorm layer of ``model`` (module path -> (weight, FFT size)) for ``image_size`` inputs.

    The sizes come from one evaluation forward pass of a random image, read by hooks; the
    model's mode is restored and nothing is trained.
    """
    sizes: dict[str, tuple[int, int]] = {}
    handles = []
    for path, module in model.named_modules():
        if isinstance(module, PreconditionedConv2d):
            handles.append(module.register_forward_hook(_record_fft_size(path, sizes)))
    if not handles:
        raise ValueError(f"{type(model).__name__} has no ConvNorm layer (conv_layer 'convnorm')")
    was_training = model.training
    parameter = next(model.parameters())
    try:
        model.eval()
        model(torch.randn(1, 3, image_size, image_size, device=parameter.device, dtype=parameter.dtype))
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    modules = dict(model.named_modules())
    return {path: (modules[path].weight.detach(), size) for path, size in sizes.items()}


def _record_fft_size(path: str, sizes: dict[str, tuple[int, int]]) -> Callable:
    def hook(module: PreconditionedConv2d, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        height, width = inputs[0].shape[-2:]
        sizes[path] = fft_size((int(height), int(width)), module.kernel_size)

    return hook


def network_energy_table(
    model_name: str = "cifar_resnet18", image_size: int = 32, seed: int = 0, eps: float = EPS
) -> pd.DataFrame:
    """:func:`energy_table` for every ConvNorm layer of a freshly initialised ``model_name`` (study 3's ResNet18:
    20 layers), both implementations given the same weights."""
    from ...models import create_model

    torch.manual_seed(seed)
    model = create_model(model_name, 10, norm_layer="none", conv_layer="convnorm").module
    return energy_table(convnorm_layers(model, image_size), eps)


def channel_spectra(weight: torch.Tensor, size: tuple[int, int], channel: int = 0) -> Figure:
    """The preconditioned filters' energy per frequency for output channel ``channel``: ours beside the port's.

    Rows are row frequencies, columns the half spectrum's column frequencies; one colour scale
    for both panels, so ours reads as one flat colour at 1.
    """
    panels = {
        OURS: filter_energy(weight, size, ours_precondition)[channel],
        PORT: filter_energy(weight, size, published_port_precondition)[channel],
    }
    top = max(float(energy.max()) for energy in panels.values())
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.6), layout="constrained")
    for ax, (label, energy) in zip(axes, panels.items()):
        image = ax.imshow(energy.numpy(), vmin=0.0, vmax=max(top, 1.0), cmap="viridis", aspect="auto", origin="lower")
        ax.set_title(label)
        ax.set_xlabel("column frequency")
        ax.set_ylabel("row frequency")
    fig.colorbar(image, ax=axes, label="energy of the preconditioned filters")
    fig.suptitle(f"Output channel {channel}, {size[0]}x{size[1]} map")
    return fig


# --- Label noise: the nominal and the real rate, the validation split, saved labels and their seed -----------


def expected_rate(nominal: float, kind: str, num_classes: int) -> float:
    """The share of labels a kind of noise changes at nominal rate p: p(1 - 1/K) for
    ``symmetric`` (the new class may be the old one), p otherwise."""
    return nominal * (1.0 - 1.0 / num_classes) if kind == "symmetric" else nominal


def noise_rate_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per nominal rate and kind (runs above 0 % noise): the nominal and expected real rates
    and the measured one (mean, min and max over runs), in percent, with the number of runs."""
    noisy = runs[(runs["label_noise"].astype(float) > 0) & runs["noise_rate_actual"].notna()]
    if noisy.empty:
        raise ValueError("no run with label noise records noise_rate_actual")
    rows = []
    for (nominal, kind, classes), group in noisy.groupby(["label_noise", "label_noise_kind", "num_classes"]):
        measured = group["noise_rate_actual"].astype(float) * 100
        rows.append({
            "kind": kind, "nominal": f"{100 * float(nominal):g} %",
            "expected real (%)": 100 * expected_rate(float(nominal), kind, int(classes)),
            "measured, mean (%)": measured.mean(), "measured, min (%)": measured.min(),
            "measured, max (%)": measured.max(), "runs": len(group),
        })  # fmt: skip
    return pd.DataFrame(rows).set_index(["kind", "nominal"])


def official_validation_table(runs: pd.DataFrame, val_fraction: float = 0.1, seed: int = 0) -> pd.DataFrame:
    """Per nominal rate: the wrong labels of a validation set drawn, as the official code did,
    from the run's own noisy training images (``val_fraction`` of its ``noisy_labels.csv``
    rows), beside the noise of the validation split the run selected on, in percent
    (mean over the runs that saved their noisy labels)."""
    rng = np.random.default_rng(seed)
    rows = []
    for _, run in runs[runs["label_noise"].astype(float) > 0].iterrows():
        path = Path(run["path"]) / NOISY_LABELS
        if not path.is_file():
            continue
        labels = pd.read_csv(path)
        drawn = labels.iloc[rng.permutation(len(labels))[: max(1, int(round(val_fraction * len(labels))))]]
        rows.append({
            "nominal": f"{100 * float(run['label_noise']):g} %",
            "official-style validation: wrong labels (%)": 100 * float((drawn["label"] != drawn["noisy_label"]).mean()),
            "official-style validation: images also trained on (%)": 100.0,
            "ours: validation noise (%)": 100 * float(run.get("noise_rate_actual_val") or 0.0),
        })  # fmt: skip
    if not rows:
        raise ValueError(f"no run with label noise has its {NOISY_LABELS}")
    frame = pd.DataFrame(rows).sort_values("nominal", key=lambda text: text.str.rstrip(" %").astype(float), kind="stable")
    table = frame.groupby("nominal", sort=False).mean()
    return table.assign(runs=frame.groupby("nominal", sort=False).size())


def saved_labels_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per nominal rate (runs above 0 % noise): how many runs saved their noisy labels, and how many of
    those files give back the flip rate the run recorded (``noise_rate_actual``, to 1e-9)."""
    rows = []
    for _, run in runs[runs["label_noise"].astype(float) > 0].iterrows():
        path = Path(run["path"]) / NOISY_LABELS
        labels = pd.read_csv(path) if path.is_file() else None
        recorded = pd.to_numeric(pd.Series([run.get("noise_rate_actual")]), errors="coerce").iloc[0]
        rate = float((labels["label"] != labels["noisy_label"]).mean()) if labels is not None and len(labels) else np.nan
        rows.append({"nominal": _nominal(run["label_noise"]), "saved": labels is not None,
                     "matches": bool(abs(rate - recorded) <= 1e-9) if labels is not None else False})  # fmt: skip
    if not rows:
        raise ValueError("no run with label noise")
    frame = pd.DataFrame(rows)
    grouped = frame.groupby("nominal", sort=False)
    table = pd.DataFrame({
        "noisy runs": grouped.size(), f"with {NOISY_LABELS}": grouped["saved"].sum(),
        "files that give back the recorded rate": grouped["matches"].sum(),
    })  # fmt: skip
    return table.loc[sorted(table.index, key=lambda text: float(text.rstrip(" %")))]


def _nominal(rate: object) -> str:
    return f"{100 * float(rate):g} %"


def noise_seed_table(runs: pd.DataFrame, variant: str = "variant") -> pd.DataFrame:
    """Per nominal rate and ``noise_seed`` (runs above 0 % noise that saved their labels): the runs, the
    distinct ``variant`` values and ``seed`` values among them, and the distinct noisy-label files.

    One file per row means every run of that row, whatever its network and
    initialisation, trained on the same noisy labels; the labels follow
    ``noise_seed`` and nothing else.
    """
    noisy = runs[runs["label_noise"].astype(float) > 0]
    rows = []
    for _, run in noisy.iterrows():
        path = Path(run["path"]) / NOISY_LABELS
        if path.is_file():
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            rows.append({"nominal": _nominal(run["label_noise"]), "noise_seed": int(run["noise_seed"]),
                         "variant": run[variant], "seed": int(run["seed"]), "file": digest})  # fmt: skip
    if not rows:
        raise ValueError(f"no run with label noise has its {NOISY_LABELS}")
    frame = pd.DataFrame(rows)
    grouped = frame.groupby(["nominal", "noise_seed"], sort=False)
    table = pd.DataFrame({
        "runs": grouped.size(), "variants": grouped["variant"].nunique(), "seeds": grouped["seed"].nunique(),
        "distinct noisy-label files": grouped["file"].nunique(),
    })  # fmt: skip
    order = sorted(table.index, key=lambda key: (float(key[0].rstrip(" %")), key[1]))
    return table.loc[order]


def noise_independent_of_seed(rate: float = 0.2, num_classes: int = 10, n: int = 1000) -> pd.DataFrame:
    """The noisy labels our code draws, under two global torch seeds (what a run's ``seed`` sets before it
    builds the network) and two ``noise_seed`` values: how many of ``n`` labels differ from the first draw."""
    labels = torch.arange(n) % num_classes
    classes = [str(k) for k in range(num_classes)]
    draws = {}
    for seed, noise_seed in ((0, 0), (1, 0), (0, 1)):
        torch.manual_seed(seed)
        draws[(seed, noise_seed)] = noisy_labels(labels, classes, rate, "symmetric", noise_seed)
    first = draws[(0, 0)]
    rows = [{"seed": seed, "noise_seed": noise_seed, "labels that differ from seed 0, noise_seed 0": int((noisy != first).sum())}
            for (seed, noise_seed), noisy in draws.items()]  # fmt: skip
    return pd.DataFrame(rows).set_index(["seed", "noise_seed"])


# --- Corrections to this book: the first edition's ConvNorm -------------------------------------
#
# The first edition convolved with the layer's own padding p and took its FFTs at that output's
# size, (H + 2p - k + 1) x (W + 2p - k + 1), instead of the full convolution's (H + k - 1) x
# (W + k - 1) torus. It is re-created here (the code that made study 3's earlier runs, commit
# 0de5806, `layers/convnorm.py`), only to measure what it computed against the published layer.
FIRST_EDITION = "first edition (FFT at the padded output's size)"
PUBLISHED = "published construction (this edition)"
FILTER_KINDS = ("random initialisation", "box blur", "edge filter")


@torch.no_grad()
def first_edition_convnorm(x: torch.Tensor, weight: torch.Tensor, padding: int, stride: int) -> torch.Tensor:
    """The first edition's preconditioned convolution without its affine (eps 0), in ``x``'s precision."""
    out = F.conv2d(x, weight, None, 1, padding)
    size = (int(out.shape[-2]), int(out.shape[-1]))
    return precondition(out, preconditioner(_wrapped(weight, size), size, eps=0.0))[..., ::stride, ::stride]


def _wrapped(weight: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """A kernel larger than the map, wrapped onto it as the first edition did (taps a period apart add up)."""
    height, width = size
    kh, kw = weight.shape[-2:]
    if kh <= height and kw <= width:
        return weight
    padded = F.pad(weight, (0, -kw % width, 0, -kh % height))
    return padded.unflatten(-2, (-1, height)).sum(-3).unflatten(-1, (-1, width)).sum(-2)


@torch.no_grad()
def published_convnorm(x: torch.Tensor, weight: torch.Tensor, padding: int, stride: int) -> torch.Tensor:
    """This edition's layer (the published construction) without its affine (eps 0), in ``x``'s precision."""
    out_channels, in_channels, k, _ = weight.shape
    layer = PreconditionedConv2d(in_channels, out_channels, k, stride, padding, eps=0.0).to(x.dtype)
    layer.weight.copy_(weight)
    full = F.conv2d(x, weight, None, 1, k - 1) if k > 1 else F.conv2d(x, weight, None, stride, padding)
    return layer.normalized(full, (int(x.shape[-2]), int(x.shape[-1])))


def example_filters(kind: str, out_channels: int, in_channels: int, k: int, seed: int = 0) -> torch.Tensor:
    """float64 filters of one kind: Conv2d's random initialisation, box blurs or horizontal edge filters, each slice
    with a random gain in [0.5, 1.5] and a 5 % random perturbation (so that no frequency has exactly zero energy)."""
    generator = torch.Generator().manual_seed(seed)
    bound = 1 / (in_channels * k * k) ** 0.5  # Conv2d's default initialisation
    noise = (torch.rand(out_channels, in_channels, k, k, generator=generator, dtype=torch.float64) * 2 - 1) * bound
    if kind == FILTER_KINDS[0]:
        return noise
    gains = torch.rand(out_channels, in_channels, 1, 1, generator=generator, dtype=torch.float64) + 0.5
    if kind == FILTER_KINDS[1]:
        shape = torch.full((k, k), 1.0 / k**2, dtype=torch.float64)
    elif kind == FILTER_KINDS[2]:
        shape = torch.zeros(k, k, dtype=torch.float64)
        shape[:, 0], shape[:, -1] = -1.0, 1.0
    else:
        raise ValueError(f"unknown filter kind {kind!r}; known: {', '.join(FILTER_KINDS)}")
    return gains * shape + 0.05 * noise / bound * shape.abs().max()


@torch.no_grad()
def operator_norms(construction: Callable, weight: torch.Tensor, size: int, padding: int, stride: int) -> torch.Tensor:
    """Each output channel's operator norm (largest singular value), from its explicit matrix on ``size`` maps."""
    in_channels = weight.shape[1]
    basis = torch.eye(in_channels * size * size, dtype=torch.float64).view(-1, in_channels, size, size)
    out = construction(basis, weight, padding, stride)  # (inputs, C_out, h, w)
    matrices = out.flatten(2).permute(1, 2, 0)  # (C_out, outputs, inputs)
    return torch.linalg.matrix_norm(matrices, ord=2)


def correction_table(size: int = 16, in_channels: int = 3, out_channels: int = 4, seed: int = 0) -> pd.DataFrame:
    """The first edition's ConvNorm against the published one, per kind of 3x3 filter (padding 1, stride 1,
    ``size`` x ``size`` maps): the largest per-channel operator norm of each (the published layer's is at most 1)
    and the relative difference of their outputs on random maps, in float64."""
    rows = {}
    images = torch.randn(8, in_channels, size, size, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    for kind in FILTER_KINDS:
        weight = example_filters(kind, out_channels, in_channels, 3, seed)
        old, new = (c(images, weight, 1, 1) for c in (first_edition_convnorm, published_convnorm))
        rows[kind] = {
            f"largest operator norm, {FIRST_EDITION}": float(operator_norms(first_edition_convnorm, weight, size, 1, 1).max()),
            f"largest operator norm, {PUBLISHED}": float(operator_norms(published_convnorm, weight, size, 1, 1).max()),
            "relative difference of the outputs (%)": float(100 * (old - new).norm() / new.norm()),
        }
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = f"3x3 filters, {in_channels} -> {out_channels} channels, {size}x{size} maps"
    return table


def superseded_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Runs a correction took out of the book (``results.superseded_runs``), counted per profile, variant and
    nominal noise level, with the seeds among them."""
    if runs.empty:
        return pd.DataFrame(columns=["runs", "seeds"])
    runs = add_variant(runs).assign(noise=lambda frame: frame["label_noise"].astype(float).map(noise_label))
    grouped = runs.groupby(["profile", "variant", "noise"])
    table = pd.DataFrame({
        "runs": grouped.size(),
        "seeds": grouped["seed"].agg(lambda seeds: ", ".join(str(s) for s in sorted(set(seeds)))),
    })  # fmt: skip
    table.index.names = ["profile", "variant", "label noise"]
    return table
