"""``torch.compile`` for a run: whether it pays, the compiled model with an eager fallback, its cache.

``compile: auto`` (the default) compiles a run whose training is long enough to repay the
compilation, and leaves a short one eager. The rule, on the images a run trains on
(``epochs * n_train``, counted before it starts):

- CPU: compile from :data:`BREAK_EVEN_IMAGES` ``["cpu"]`` = 150,000 images on. Measured on the
  project's 2-core machines (``cifar_resnet`` n=2, batch 128; ``benchmarks/layers.py`` and
  ../shared/TOOLCHAIN.md): compiling one graph takes 20 to 40 s, and a run compiles two (its
  training and its evaluation graph), 40 to 80 s; a compiled step saves from 0.7 ms per image
  (``torch_bn``, 477 -> 722 images/s) to 1.9 ms (``bin``, 306 -> 841). At the smallest saving
  the break-even is 60,000 to 115,000 images; ConvNorm, which gains least, needs more. The
  smoke profiles (a few thousand images) stay eager; study 2's local runs (300,000: 3,000 images
  for 100 epochs), study 3's local `bn` runs (200,000) and the published 100-epoch protocols
  (millions) compile (each run's ``environment.json`` records it).
- CUDA: from 2,000,000 images on. A step of the small CIFAR networks takes a few milliseconds
  on a GPU, where compiling removes mostly kernel launches (about 20 us per image saved at
  most) against a similar 40 to 80 s of compilation; the published 100-epoch protocols compile,
  a short check run does not.
- any other device (``mps``): eager.
- CPU, a network whose normalization is PyTorch's own batch norm or none (``norm_layer: torch_bn`` or
  ``none``): from :data:`CPU_SMALL_GAIN_BREAK_EVEN` = 1,000,000 images on. oneDNN's eager kernels in
  channels_last (``environment.default_channels_last``) already do most of what inductor would:
  ``torch_bn`` eager channels_last against compiled measured 492 against 519 and 498 against 500
  images/s at one thread (how a 2-worker grid runs each run), 928 against 847, 934 against 949 and
  972 against 924 at two (``benchmarks/results/layers-cpu-1thread.json``, ``layers-cpu.json`` and the
  passes before them; ``none`` 557 against 572 and 561 against 552 at one thread). At the 5 % a step
  gains at one thread in the better pass (none in the other), 40 to 80 s of compiling are repaid
  after 380,000 to 760,000 images; study 2's 300,000-image runs train faster eagerly. The
  from-scratch layers (1.7x to 2.0x compiled) are where compiling pays.
- a network with ConvNorm (``conv_layer: convnorm...``): eager on every device. Inductor generates
  no code for its complex matrix products (it falls back to eager kernels for them), and each layer's
  first training forward sizes its running preconditioner, which changes a guarded buffer shape
  per layer and runs into dynamo's recompile limit; measured on the CPU, compiled ConvNorm was no
  faster than eager (``benchmarks/results/layers-cpu.json``).

``compile: true`` or ``false`` overrides the rule. Whatever was decided is recorded in
``environment.json`` (``compile``: the resolved value, ``compile_reason``: why).

A network that cannot be compiled here (no C compiler, an operation inductor does not
support) trains eagerly instead: :func:`compile_model` returns the module itself, or a
:class:`CompiledWithFallback` that switches to it when the first compiled forward pass
raises; either way the reason is logged as a warning, never a silent slowdown.

Compiled code is cached on disk (inductor's FX graph cache and AOTAutograd cache, on by
default in torch 2.14): :func:`cache_env` points a grid's kernels at one folder under its
runs root, so the second run of a grid with the same network reuses the first one's kernels.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from .environment import is_convnorm

logger = logging.getLogger(__name__)

BREAK_EVEN_IMAGES: dict[str, int] = {"cpu": 150_000, "cuda": 2_000_000}
# Normalization layers whose networks gain little from compiling on the CPU, and the images that repay it there.
CPU_SMALL_GAIN_NORMS = frozenset({"torch_bn", "none"})
CPU_SMALL_GAIN_BREAK_EVEN = 1_000_000
# The folder under a grid's profile folder (<runs root>/<study>/<profile>/) where its runs' kernels share compiled code.
CACHE_FOLDER = ".compile-cache"
CACHE_ENV_VAR = "TORCHINDUCTOR_CACHE_DIR"


def resolve_compile(
    setting: bool | str,
    device: torch.device,
    images_to_train: int,
    conv_layer: str = "conv",
    norm_layer: str | None = None,
) -> tuple[bool, str]:
    """(whether to compile, why) for the run's ``compile`` setting: ``True``/``False`` as given,
    ``"auto"`` by the rule in this module's docstring (``norm_layer`` None: decided by size alone)."""
    if isinstance(setting, bool):
        return setting, f"compile: {str(setting).lower()} in the run's parameters"
    if is_convnorm(conv_layer):
        return False, "compile: auto; eager with ConvNorm, which compiling does not speed up (complex products, recompiles)"
    threshold = BREAK_EVEN_IMAGES.get(device.type)
    if threshold is None:
        return False, f"compile: auto; eager on {device.type}, where compiling is not measured"
    network = ""
    if device.type == "cpu" and norm_layer in CPU_SMALL_GAIN_NORMS:
        threshold, network = CPU_SMALL_GAIN_BREAK_EVEN, f" a norm_layer {norm_layer} network"
    decision = images_to_train >= threshold
    relation = "at least" if decision else "fewer than"
    return decision, (
        f"compile: auto; {images_to_train} training images, {relation} the {threshold} that repay "
        f"compiling{network} on {device.type}"
    )


class CompiledWithFallback:
    """Calls the compiled module; if a call raises before any compiled call has succeeded, warns
    with the reason and calls the eager module from then on.

    Compilation happens lazily, at the first forward pass (and again for a new mode or input
    shape); failing there leaves the module untouched, since a forward pass that raises while
    compiling has computed nothing. An error after compiled calls have succeeded is a real
    error and propagates.
    """

    def __init__(self, module: nn.Module, compiled: Callable[..., Any]) -> None:
        self.module = module
        self.compiled = compiled
        self.fallback_reason: str | None = None
        self._succeeded = False

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.fallback_reason is not None:
            return self.module(*args, **kwargs)
        try:
            result = self.compiled(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - any compiler failure: train eagerly, say why
            if self._succeeded:
                raise
            self.fallback_reason = _describe(exc)
            _warn_fallback(self.fallback_reason)
            return self.module(*args, **kwargs)
        self._succeeded = True
        return result

    # The engine reads a few module attributes through its step model.
    def __getattr__(self, name: str) -> Any:
        return getattr(self.module, name)


def compile_model(module: nn.Module) -> tuple[nn.Module | CompiledWithFallback, str | None]:
    """(the model to call for training and evaluation, the reason it is eager or None).

    ``torch.compile`` itself failing (an unsupported platform) gives the eager module back;
    a failure at the first compiled call falls back inside :class:`CompiledWithFallback`.
    """
    try:
        compiled = torch.compile(module)
    except Exception as exc:  # noqa: BLE001 - see CompiledWithFallback
        reason = _describe(exc)
        _warn_fallback(reason)
        return module, reason
    return CompiledWithFallback(module, compiled), None


def _describe(exc: Exception) -> str:
    """The exception's type and first line: compiler errors run to pages of generated code."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def _warn_fallback(reason: str) -> None:
    message = f"torch.compile failed, training eagerly instead ({reason})"
    logger.warning(message)
    warnings.warn(message, RuntimeWarning, stacklevel=3)


def cache_env(profile_folder: str | os.PathLike[str]) -> dict[str, str]:
    """Environment variables for a run's kernel: inductor's cache in ``<profile folder>/.compile-cache``,
    shared by the runs of one grid profile, unless the caller set a cache folder of its own."""
    if os.environ.get(CACHE_ENV_VAR):
        return {}
    return {CACHE_ENV_VAR: str(Path(profile_folder).resolve() / CACHE_FOLDER)}
