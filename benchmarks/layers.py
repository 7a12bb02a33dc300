"""Training throughput of cifar_resnet with each normalization layer, eager and compiled, in one process.

    python benchmarks/layers.py --device cpu [--batch 128] [--steps 8] [--repeats 3] [--modes ...] [--json out.json]

For every variant (named as ``norm_layer`` names it: ``torch_bn`` is PyTorch's
BatchNorm2d, the rest are written from scratch; ``convnorm`` is ConvNorm's
preconditioned convolution without a norm and ``convnorm+bn`` the same followed by
torch's BatchNorm2d, what the official ConvNorm computed), one whole training step of
``cifar_resnet`` (n=2, 14 layers) on one batch already on the device, as the engine
takes it: forward, cross-entropy, backward, SGD step, the layers' step hooks. Each
variant is measured in each mode (``--modes``):

- ``eager`` -> ``images_per_second``: on the CPU float32 in the default memory format
  (the figure earlier versions reported); on CUDA as training runs, with bf16 autocast
  and channels_last;
- ``channels_last`` -> ``channels_last_images_per_second``: eager, channels_last;
- ``compiled`` -> ``compiled_images_per_second``: ``torch.compile`` (inductor) in the
  memory format the engine uses by default on the device (``memory_format`` in the JSON),
  with autocast on CUDA as above;
- ``compiled_contiguous`` / ``compiled_channels_last``: compiled in the named format
  (for choosing that default; not measured unless asked for).

Compilation (20 to 40 s per network on the CPU) happens before any timing. All
networks then run interleaved, ``--repeats`` times, and the best pass of each is kept
(load from other processes only ever slows a pass down). The eager forward pass is
timed apart, so a slow layer shows whether its forward or its backward is what costs.

The JSON holds ``{"images_per_second": {"<variant>": ...}, "compiled_images_per_second":
{...}, "ratio_to_torch_bn": {...}, "forward_share": {...}, "engine_images_per_second": {...},
"targets": [...], ...}``. ``engine_images_per_second`` is each variant's figure in the mode the
engine trains it in on the device for a long run (``engine_mode``: ``compile: auto`` and
``channels_last: auto`` resolved as ``engine/compiling.py`` and ``engine/environment.py`` do):
compiled (in the default layout) on the CPU, except ConvNorm, which trains eagerly. ``targets`` checks issue 20's CPU targets on that figure (the
compiled one beside it): ``torch_bn`` at least 1.4x its eager figure, every from-scratch layer
at least 1.2x ``torch_bn``'s eager figure, ``convnorm`` at least 0.5x it.

``--threads N`` measures with N threads (default: the process's setting, all cores). A grid of
W workers on C cores runs each run with C / W threads (one on this project's 2-core machines
with 2 workers), so ``--threads 1`` gives the figures its runs see.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from normtest_lib.config import make_config
from normtest_lib.engine.compiling import compile_model, resolve_compile
from normtest_lib.engine.environment import Execution, default_channels_last, execution_context
from normtest_lib.engine.optim import bind_step_hooks, run_step_hooks
from normtest_lib.models import create_model
from normtest_lib.report.speed import network_name

VARIANTS = ("torch_bn", "bn", "in", "bin", "ln", "gn:c/4", "none", "convnorm", "convnorm+bn")
REFERENCE = "torch_bn"
FROM_SCRATCH = ("bn", "in", "ln", "gn:c/4", "bin")
# Variants that change the convolution: name -> (norm_layer, conv_layer). Every other variant is a
# norm_layer with the plain convolution.
CONV_VARIANTS = {"convnorm": ("none", "convnorm"), "convnorm+bn": ("torch_bn", "convnorm")}
# The network measured, recorded as network_name names it, so that a chapter can tell whether it is the one its study trains.
MODEL, DEPTH_N = "cifar_resnet", 2
# A run long enough that ``compile: auto`` compiles wherever it ever does: the engine's path for a long run.
LONG_RUN_IMAGES = 10**9


@dataclass(frozen=True)
class Mode:
    """How a network is run: compiled or eager, in which memory format (None: the device's default)."""

    key: str
    compiled: bool
    channels_last: bool | None


MODES = {
    "eager": Mode("images_per_second", False, None),
    "channels_last": Mode("channels_last_images_per_second", False, True),
    "compiled": Mode("compiled_images_per_second", True, None),
    "compiled_contiguous": Mode("compiled_contiguous_images_per_second", True, False),
    "compiled_channels_last": Mode("compiled_channels_last_images_per_second", True, True),
}
DEFAULT_MODES = ("eager", "channels_last", "compiled")


def layers_of(variant: str) -> tuple[str, str]:
    """The (norm_layer, conv_layer) a variant names."""
    return CONV_VARIANTS.get(variant, (variant, "conv"))


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def mode_channels_last(mode: Mode, device: torch.device) -> bool:
    """The memory format a mode runs in: eager keeps the format earlier figures used on the CPU
    (contiguous) and the training one on CUDA; compiled follows the engine's default."""
    if mode.channels_last is not None:
        return mode.channels_last
    if mode.compiled:
        return default_channels_last(device, compiled=True)
    return device.type == "cuda"


def engine_mode(variant: str, device: torch.device, measured: Sequence[str]) -> str | None:
    """Which of the ``measured`` modes runs ``variant`` as the engine trains it on ``device`` for a long run
    (``compile`` and ``channels_last`` left at ``auto``); None when none of them does."""
    norm_layer, conv_layer = layers_of(variant)
    compiled, _ = resolve_compile("auto", device, LONG_RUN_IMAGES, conv_layer, norm_layer)
    channels_last = default_channels_last(device, compiled=compiled, conv_layer=conv_layer)
    for name in measured:
        if MODES[name].compiled == compiled and mode_channels_last(MODES[name], device) == channels_last:
            return name
    return None


def step_timers(
    variant: str, batch: int, execution: Execution, steps: int, mode: Mode
) -> tuple[Callable[[], float], Callable[[], float]]:
    """(seconds of ``steps`` training steps, seconds of ``steps`` forward passes) for a fresh network."""
    device = execution.device
    norm_layer, conv_layer = layers_of(variant)
    module = create_model(MODEL, 10, norm_layer=norm_layer, conv_layer=conv_layer, depth_n=DEPTH_N).module
    memory_format = torch.channels_last if mode_channels_last(mode, device) else torch.contiguous_format
    module = module.to(device).to(memory_format=memory_format).train()
    model = compile_model(module)[0] if mode.compiled else module
    optimizer = torch.optim.SGD(module.parameters(), lr=0.01, momentum=0.9)
    hooks = bind_step_hooks(module)
    inputs = torch.randn(batch, 3, 32, 32, device=device).contiguous(memory_format=memory_format)
    targets = torch.randint(0, 10, (batch,), device=device)
    done = 0

    def train_steps() -> float:
        nonlocal done
        start = time.perf_counter()
        for _ in range(steps):
            with execution.autocast():
                loss = F.cross_entropy(model(inputs), targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            done += 1
            run_step_hooks(hooks, done)
        synchronize(device)
        return time.perf_counter() - start

    def forward_passes() -> float:
        start = time.perf_counter()
        with torch.no_grad(), execution.autocast():
            for _ in range(steps):
                model(inputs)
        synchronize(device)
        return time.perf_counter() - start

    train_steps()  # warm-up: compilation, allocator, kernels, lazy initialisation
    return train_steps, forward_passes


def measure(
    variants: Sequence[str], batch: int, steps: int, repeats: int, execution: Execution, modes: Sequence[str] = ("eager",)
) -> dict:
    # Every variant's network compiles the same forward code objects (one graph per variant, training and
    # no-grad), so under dynamo's default limit (8 graphs per code object) the later variants would fall back
    # to eager or to partly compiled graphs, which a run, one network per process, never meets.
    graphs = 2 * len(variants) * len(modes) + 8
    with torch._dynamo.config.patch(recompile_limit=graphs, accumulated_recompile_limit=max(graphs, 256)):
        timers = {
            (variant, name): step_timers(variant, batch, execution, steps, MODES[name])
            for name in modes
            for variant in variants
        }
        return _time_interleaved(timers, variants, batch, steps, repeats, execution, modes)


def _time_interleaved(timers: dict, variants: Sequence[str], batch: int, steps: int, repeats: int,
                      execution: Execution, modes: Sequence[str]) -> dict:
    """The best of ``repeats`` interleaved passes of every timer, summarized as :func:`measure` returns."""
    best_step = {key: float("inf") for key in timers}
    best_forward = dict(best_step)
    for _ in range(repeats):
        for key, (train_steps, forward_passes) in timers.items():
            best_step[key] = min(best_step[key], train_steps())
            if key[1] == "eager":
                best_forward[key] = min(best_forward[key], forward_passes())
    images = batch * steps
    figures: dict = {
        MODES[name].key: {variant: images / best_step[(variant, name)] for variant in variants} for name in modes
    }
    return summarize(figures, variants, execution.device, best_forward, best_step)


def summarize(
    figures: dict,
    variants: Sequence[str],
    device: torch.device,
    best_forward: dict | None = None,
    best_step: dict | None = None,
) -> dict:
    """Ratios, forward shares and targets from the measured modes' images per second.

    The compiled figure is the one in the engine's default memory format: measured as
    ``compiled``, or taken from ``compiled_contiguous``/``compiled_channels_last`` when those
    were measured (as when choosing that default) and ``compiled`` was not."""
    default_format = "compiled_channels_last" if default_channels_last(device, compiled=True) else "compiled_contiguous"
    if "compiled_images_per_second" not in figures and MODES[default_format].key in figures:
        figures["compiled_images_per_second"] = dict(figures[MODES[default_format].key])
    if "images_per_second" in figures:
        ips = figures["images_per_second"]
        figures["ratio_to_torch_bn"] = (
            {variant: ips[variant] / ips[REFERENCE] for variant in variants} if REFERENCE in ips else {}
        )
        if best_forward is not None and best_step is not None:
            figures["forward_share"] = {
                variant: best_forward[(variant, "eager")] / best_step[(variant, "eager")] for variant in variants
            }
    if "images_per_second" in figures and "compiled_images_per_second" in figures and REFERENCE in variants:
        eager_reference = figures["images_per_second"][REFERENCE]
        compiled = figures["compiled_images_per_second"]
        figures["compiled_ratio_to_torch_bn_eager"] = {v: compiled[v] / eager_reference for v in variants}
        figures["compiled_speedup"] = {v: compiled[v] / figures["images_per_second"][v] for v in variants}
    measured = [name for name, mode in MODES.items() if mode.key in figures]
    chosen = {variant: engine_mode(variant, device, measured) for variant in variants}
    chosen = {variant: name for variant, name in chosen.items() if name is not None}
    if chosen:
        figures["engine_mode"] = chosen
        figures["engine_images_per_second"] = {v: figures[MODES[name].key][v] for v, name in chosen.items()}
    if "images_per_second" in figures and chosen and REFERENCE in variants:
        eager_reference = figures["images_per_second"][REFERENCE]
        figures["engine_ratio_to_torch_bn_eager"] = {
            variant: ips / eager_reference for variant, ips in figures["engine_images_per_second"].items()
        }
        figures["targets"] = check_targets(figures)
    return figures


def check_targets(figures: dict) -> list[dict]:
    """Issue 20's CPU targets, each checked on the variant's figure in the mode the engine trains it in
    (``engine_mode``), with that ratio, the compiled one where measured, and whether it is met."""
    ratio = figures["engine_ratio_to_torch_bn_eager"]
    compiled = figures.get("compiled_ratio_to_torch_bn_eager", {})
    wanted = [(REFERENCE, 1.4)] + [(variant, 1.2) for variant in FROM_SCRATCH] + [("convnorm", 0.5)]
    return [
        {
            "variant": variant,
            "engine_mode": figures.get("engine_mode", {}).get(variant),
            "engine_vs_torch_bn_eager": ratio[variant],
            "compiled_vs_torch_bn_eager": compiled.get(variant),
            "target": target,
            "met": ratio[variant] >= target,
        }
        for variant, target in wanted
        if variant in ratio
    ]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=None, help="training steps per timed pass (8 on the CPU, 50 on CUDA)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved passes per variant; the best is kept")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS))
    parser.add_argument("--modes", nargs="+", choices=list(MODES), default=list(DEFAULT_MODES))
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: the process's setting)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    steps = args.steps or (50 if args.device == "cuda" else 8)

    # compile/channels_last are set per mode here; the context gives threads, precision and determinism.
    with execution_context(make_config(device=args.device, num_threads=args.threads)) as execution:
        figures = measure(args.variants, args.batch, steps, args.repeats, execution, args.modes)
        threads = execution.threads
    results = {
        "device": str(execution.device),
        "device_name": torch.cuda.get_device_name(execution.device) if execution.device.type == "cuda" else "cpu",
        "model": network_name(MODEL, DEPTH_N),
        "batch": args.batch,
        "steps": steps,
        "repeats": args.repeats,
        "threads": threads,
        "precision": execution.precision,
        "memory_format": {
            name: "channels_last" if mode_channels_last(MODES[name], execution.device) else "contiguous"
            for name in args.modes
        },
        "torch": torch.__version__,
        **figures,
    }
    print_figures(results, args.modes)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return results


def print_figures(results: dict, modes: Sequence[str]) -> None:
    print(f"images/s on {results['device_name']} ({results['threads']} threads, {results['precision']}, batch {results['batch']})")
    print(f"{'variant':>11}" + "".join(f"{name:>24}" for name in modes))
    for variant in results[MODES[modes[0]].key]:
        print(f"{variant:>11}" + "".join(f"{results[MODES[name].key][variant]:>24.1f}" for name in modes))
    for target in results.get("targets", []):
        verdict = "met" if target["met"] else "MISSED"
        print(f"{target['variant']:>11} as the engine trains it ({target['engine_mode']}) "
              f"{target['engine_vs_torch_bn_eager']:.2f}x torch_bn eager (target {target['target']}): {verdict}")


if __name__ == "__main__":
    main(sys.argv[1:])
