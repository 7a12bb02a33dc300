"""Training throughput of cifar_resnet with each normalization layer, in one process.

    python benchmarks/layers.py --device cpu [--batch 128] [--steps 8] [--repeats 3] [--json out.json]

For every variant (named as ``norm_layer`` names it: ``torch_bn`` is PyTorch's
BatchNorm2d, the rest are written from scratch; ``convnorm`` is ConvNorm's
preconditioned convolution without a norm and ``convnorm+bn`` the same followed by
torch's BatchNorm2d, what the official ConvNorm computed), one whole training step of
``cifar_resnet`` (n=2, 14 layers) on one batch already on the device: forward,
cross-entropy, backward, SGD step. The variants run interleaved, ``--repeats``
times, and the best pass of each is kept (load from other processes only ever
slows a pass down). Each variant's forward share of the step is timed apart, so
a slow layer shows whether its forward or its backward is what costs.

The JSON holds ``{"images_per_second": {"<variant>": ...}, "ratio_to_torch_bn":
{...}, "forward_share": {...}, ...}``. The target on the CPU: every from-scratch
normalization layer at least half of ``torch_bn``'s throughput (the two ConvNorm
variants, whose cost is their FFTs, are measured beside them without a target).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from normtest_lib.config import make_config
from normtest_lib.engine.environment import execution_context
from normtest_lib.models import create_model

VARIANTS = ("torch_bn", "bn", "in", "bin", "ln", "gn:c/4", "none", "convnorm", "convnorm+bn")
REFERENCE = "torch_bn"
# Variants that change the convolution: name -> (norm_layer, conv_layer). Every other variant is a
# norm_layer with the plain convolution.
CONV_VARIANTS = {"convnorm": ("none", "convnorm"), "convnorm+bn": ("torch_bn", "convnorm")}


def layers_of(variant: str) -> tuple[str, str]:
    """The (norm_layer, conv_layer) a variant names."""
    return CONV_VARIANTS.get(variant, (variant, "conv"))


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def step_timers(variant: str, batch: int, device: torch.device, steps: int) -> tuple[Callable[[], float], Callable[[], float]]:
    """(seconds of ``steps`` training steps, seconds of ``steps`` forward passes) for a fresh network."""
    norm_layer, conv_layer = layers_of(variant)
    model = create_model("cifar_resnet", 10, norm_layer=norm_layer, conv_layer=conv_layer, depth_n=2).module
    model = model.to(device).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    inputs = torch.randn(batch, 3, 32, 32, device=device)
    targets = torch.randint(0, 10, (batch,), device=device)

    def train_steps() -> float:
        start = time.perf_counter()
        for _ in range(steps):
            loss = F.cross_entropy(model(inputs), targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        synchronize(device)
        return time.perf_counter() - start

    def forward_passes() -> float:
        start = time.perf_counter()
        with torch.no_grad():
            for _ in range(steps):
                model(inputs)
        synchronize(device)
        return time.perf_counter() - start

    train_steps()  # warm-up: allocator, kernels, lazy initialisation
    return train_steps, forward_passes


def measure(variants: Sequence[str], batch: int, steps: int, repeats: int, device: torch.device) -> dict:
    timers = {variant: step_timers(variant, batch, device, steps) for variant in variants}
    best_step = {variant: float("inf") for variant in variants}
    best_forward = dict(best_step)
    for _ in range(repeats):
        for variant, (train_steps, forward_passes) in timers.items():
            best_step[variant] = min(best_step[variant], train_steps())
            best_forward[variant] = min(best_forward[variant], forward_passes())
    images = batch * steps
    ips = {variant: images / seconds for variant, seconds in best_step.items()}
    return {
        "images_per_second": ips,
        "ratio_to_torch_bn": {variant: ips[variant] / ips[REFERENCE] for variant in variants} if REFERENCE in ips else {},
        "forward_share": {variant: best_forward[variant] / best_step[variant] for variant in variants},
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=8, help="training steps per timed pass")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved passes per variant; the best is kept")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS))
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)

    with execution_context(make_config(device=args.device)) as execution:
        figures = measure(args.variants, args.batch, args.steps, args.repeats, execution.device)
        threads = execution.threads
    results = {
        "device": str(execution.device),
        "device_name": torch.cuda.get_device_name(execution.device) if execution.device.type == "cuda" else "cpu",
        "model": "cifar_resnet n=2",
        "batch": args.batch,
        "steps": args.steps,
        "repeats": args.repeats,
        "threads": threads,
        **figures,
    }
    for variant, ips in figures["images_per_second"].items():
        ratio = figures["ratio_to_torch_bn"].get(variant, float("nan"))
        share = figures["forward_share"][variant]
        print(f"{variant:>11}  {ips:8.1f} images/s  {ratio:5.2f}x torch_bn  forward {share:4.0%} of the step")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
