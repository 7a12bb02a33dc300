"""Where a run executes: device, threads, determinism, and the record of it in ``environment.json``.

Device-specific choices live here and branch on ``device.type`` only:

- bf16 autocast (``amp``) is used on CUDA only; on the CPU it is ignored (bf16 on CPUs
  without native support is slow, and a CPU run should give the reference float32 numbers);
- ``channels_last``: ``true``/``false`` as given, on any device; ``auto`` (the default) is
  the memory format that measured fastest: channels_last on CUDA, and on the CPU what
  :data:`CPU_CHANNELS_LAST` says for an eager and a compiled network (measured with
  ``benchmarks/layers.py --modes eager channels_last compiled_contiguous
  compiled_channels_last``), except that a ConvNorm network keeps the default layout on the
  CPU (its Fourier transforms read each channel's rows, which channels_last first copies
  out); it never changes the arithmetic's precision;
- ``compile`` (``auto`` by default) is resolved per run in ``compiling.py``, once the
  number of training images is known (:func:`resolve_speed`);
- precision is what the run records: ``fp32`` is float32, so TF32 (which cuDNN allows by
  default for convolutions, and matmuls may use) is switched off for the run, on every
  device (the flags only act on CUDA); ``bf16`` is bf16 autocast, with TF32 off too for
  what autocast keeps in float32;
- ``deterministic`` turns on ``torch.use_deterministic_algorithms`` (strict on
  the CPU, where resumed runs reproduce uninterrupted ones bit for bit; warn-only
  on CUDA, where some backward kernels have no deterministic version) and, on
  CUDA, disables cuDNN autotuning and sets ``CUBLAS_WORKSPACE_CONFIG``. cuBLAS reads
  that variable once per process, when it first creates a handle: a process that has
  already used CUDA gets a warning and ``cublas_workspace_config_late: true`` in
  ``environment.json`` (the grid sets it in every run's kernel before torch starts);
- ``num_threads`` sets ``torch.set_num_threads``; in deterministic mode the
  thread count is fixed for the run (the current count unless given), since
  CPU reductions may depend on it;
- on the CPU, denormal floats are flushed to zero (``torch.set_flush_denormal``):
  tiny values in weights, gradients or momentum buffers otherwise slow a CPU
  training step down by up to 3x (measured here on ResNet18), and values below
  1e-38 change no result that matters.

All global settings are restored when the run ends, so training from a
notebook leaves the kernel as it found it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import platform
import socket
import subprocess
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from ..config import RunConfig
from ..errors import ConfigError


# channels_last on the CPU, eager and compiled (benchmarks/layers.py, cifar_resnet n=2, batch 128, 2 threads,
# benchmarks/results/layers-cpu.json): eager, channels_last is faster for every normalization layer (torch_bn
# 1.44x, the from-scratch layers 1.06x to 1.18x, 2026-12-07); compiled, the default layout is (inductor's CPU
# kernels: torch_bn 818 vs 750 images/s, the from-scratch bn 827 vs 461, measured 2026-12-05).
CPU_CHANNELS_LAST = {False: True, True: False}
# ConvNorm's networks (eager under compile: auto) are slower on channels_last on the CPU: 0.77x and 0.86x
# for convnorm, 0.95x and 0.84x for convnorm+bn in two runs of benchmarks/layers.py on 2026-12-07 (its
# transforms start from (N * C * H, W) rows of the input, a copy of a channels_last tensor).


def is_convnorm(conv_layer: str) -> bool:
    """Whether a ``conv_layer`` setting (``<name>`` or ``<name>:<argument>``) is one of ConvNorm's layers."""
    return conv_layer.partition(":")[0].startswith("convnorm")


@dataclass(frozen=True)
class Execution:
    """The resolved execution settings of a run."""

    device: torch.device
    amp: bool
    channels_last: bool
    threads: int
    flush_denormal: bool = False
    compile: bool = False
    compile_reason: str | None = None
    cublas_workspace_config_late: bool = False

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.channels_last else torch.contiguous_format

    @property
    def precision(self) -> str:
        """The arithmetic of the forward passes: ``bf16`` (autocast) or ``fp32``; a run keeps one."""
        return "bf16" if self.amp else "fp32"

    def autocast(self) -> contextlib.AbstractContextManager:
        return precision_autocast(self.precision, self.device)


def precision_autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """The forward passes' arithmetic for a recorded precision: bf16 autocast, or float32 as is."""
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


@contextlib.contextmanager
def no_tf32() -> Iterator[None]:
    """Float32 convolutions and matmuls in float32, not TF32 (cuDNN allows TF32 by default);
    the previous flags are restored afterwards. The flags exist, and act, only for CUDA."""
    saved = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def resolve_speed(execution: Execution, config: RunConfig, images_to_train: int) -> Execution:
    """``execution`` with ``compile`` resolved (``compiling.resolve_compile``) and, for
    ``channels_last: auto``, the memory format that is fastest with that choice."""
    from .compiling import resolve_compile

    compiled, reason = resolve_compile(
        config.compile, execution.device, images_to_train, config.conv_layer, config.norm_layer
    )
    channels_last = config.channels_last
    if channels_last == "auto":
        channels_last = default_channels_last(execution.device, compiled=compiled, conv_layer=config.conv_layer)
    return dataclasses.replace(execution, compile=compiled, compile_reason=reason, channels_last=channels_last)


def to_memory_format(model: torch.nn.Module, execution: Execution) -> torch.nn.Module:
    """``model`` in the run's memory format. A model with lazy parameters (shapes unknown until its
    first forward pass) keeps its own: they cannot be converted, and channels_last only speeds up."""
    lazy = any(isinstance(p, torch.nn.parameter.UninitializedParameter) for p in model.parameters())
    if execution.channels_last and not lazy:
        return model.to(memory_format=torch.channels_last)
    return model


def default_channels_last(device: torch.device, *, compiled: bool, conv_layer: str = "conv") -> bool:
    """``channels_last: auto``: the memory format that measured fastest on the device for a network
    with ``conv_layer`` convolutions (module docstring)."""
    if device.type == "cuda":
        return True
    if device.type == "cpu":
        return CPU_CHANNELS_LAST[compiled] and not is_convnorm(conv_layer)
    return False


def resolve_device(name: str) -> torch.device:
    """``auto`` is CUDA when available, else the CPU; an unavailable device is a ConfigError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device: {name!r} requested but CUDA is not available here; use device='auto' or 'cpu'")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ConfigError(f"device: {name!r} does not exist ({torch.cuda.device_count()} CUDA devices)")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device: {name!r} requested but MPS is not available here; use device='auto' or 'cpu'")
    return device


@contextlib.contextmanager
def execution_context(config: RunConfig) -> Iterator[Execution]:
    """Apply the run's thread, precision and determinism settings; restore the previous ones afterwards."""
    device = resolve_device(config.device)
    with no_tf32():
        yield from _applied_settings(config, device)


def _applied_settings(config: RunConfig, device: torch.device) -> Iterator[Execution]:
    saved = (
        torch.get_num_threads(),
        torch.are_deterministic_algorithms_enabled(),
        torch.backends.cudnn.benchmark,
        torch.backends.cudnn.deterministic,
        os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )
    cublas_late = False
    try:
        if config.num_threads is not None:
            torch.set_num_threads(config.num_threads)
        if config.deterministic:
            if device.type == "cuda" and saved[4] is None:
                cublas_late = _cuda_used_before()
                os.environ["CUBLAS_WORKSPACE_CONFIG"] = ":4096:8"
            # CUDA lacks deterministic kernels for a few backward passes (adaptive average
            # pooling among them): warn there instead of failing; the CPU has them all.
            torch.use_deterministic_algorithms(True, warn_only=device.type != "cpu")
        flush_denormal = device.type == "cpu" and torch.set_flush_denormal(True)
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = not config.deterministic
            torch.backends.cudnn.deterministic = config.deterministic
        on_cuda = device.type == "cuda"
        # auto: the eager choice until resolve_speed knows whether the run compiles.
        channels_last = config.channels_last
        if channels_last == "auto":
            channels_last = default_channels_last(device, compiled=config.compile is True, conv_layer=config.conv_layer)
        yield Execution(
            device=device,
            amp=config.amp and on_cuda,
            channels_last=channels_last,
            threads=torch.get_num_threads(),
            flush_denormal=flush_denormal,
            compile=config.compile is True,
            cublas_workspace_config_late=cublas_late,
        )
    finally:
        if device.type == "cpu":
            torch.set_flush_denormal(False)  # torch's default; it has no getter to restore from
        torch.set_num_threads(saved[0])
        torch.use_deterministic_algorithms(saved[1], warn_only=saved[5])
        torch.backends.cudnn.benchmark = saved[2]
        torch.backends.cudnn.deterministic = saved[3]
        if saved[4] is None:
            os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)


def _cuda_used_before() -> bool:
    """True (with a warning) when this process initialised CUDA before the run set
    CUBLAS_WORKSPACE_CONFIG: cuBLAS may have fixed its workspace already, so its matmuls
    may not be deterministic."""
    if not torch.cuda.is_initialized():
        return False
    warnings.warn(
        "deterministic: CUDA was already initialised in this process before CUBLAS_WORKSPACE_CONFIG was set, "
        "so cuBLAS may not be deterministic; set CUBLAS_WORKSPACE_CONFIG=:4096:8 before starting Python "
        "(normtest run does so for every run)",
        RuntimeWarning,
        stacklevel=4,
    )
    return True


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return _cpu_model() or platform.processor() or platform.machine()


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def git_commit() -> str | None:
    """The commit of the checkout holding this package, or None outside a git checkout."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if result.returncode != 0:
        return None
    return result.stdout.strip() or None


def environment_info(execution: Execution, config: RunConfig) -> dict[str, Any]:
    """The contents of ``environment.json``."""
    import torchvision

    return {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "hostname": socket.gethostname(),
        "git_commit": git_commit(),
        "device": str(execution.device),
        "device_name": device_name(execution.device),
        "cuda": torch.version.cuda if execution.device.type == "cuda" else None,
        "threads": execution.threads,
        "flush_denormal": execution.flush_denormal,
        "deterministic": config.deterministic,
        "amp_bf16": execution.amp,
        "precision": execution.precision,
        "channels_last": execution.channels_last,
        "channels_last_setting": config.channels_last,
        "compile": execution.compile,
        "compile_setting": config.compile,
        "compile_reason": execution.compile_reason,
        # TF32 is off in every run (module docstring); recorded because cuDNN's default is on.
        "tf32": False,
        "cublas_workspace_config": os.environ.get("CUBLAS_WORKSPACE_CONFIG") if execution.device.type == "cuda" else None,
        "cublas_workspace_config_late": execution.cublas_workspace_config_late,
    }


def in_jupyter_kernel() -> bool:
    """True inside a Jupyter kernel (JupyterLab, or papermill's kernel), False in a terminal or a script.

    The same test ``tqdm.auto`` makes to choose its notebook bar (an ipywidgets
    widget that updates in place) over text lines on stderr.
    """
    ipython = sys.modules.get("IPython")
    get_ipython = getattr(ipython, "get_ipython", None)
    shell = get_ipython() if get_ipython is not None else None
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def show_progress(progress: bool | None) -> bool:
    """Whether to show progress bars; ``None`` means: where a person is watching.

    - ``True``/``False``: as given. Batch runs pass ``False``: ``normtest run``
      gives every papermill-executed run notebook ``progress=False``, so executed
      notebooks and logs hold no bars.
    - ``None`` inside a Jupyter kernel: shown, as one live notebook bar per
      loop (``tqdm.auto`` with ipywidgets; without ipywidgets tqdm warns and
      falls back to text bars).
    - ``None`` elsewhere: shown only when stderr is a terminal, so Dask
      workers and redirected output stay quiet.
    """
    if progress is not None:
        return progress
    if in_jupyter_kernel():
        return True
    stream = sys.stderr
    return bool(stream is not None and hasattr(stream, "isatty") and stream.isatty())
