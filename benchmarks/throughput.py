"""Training throughput: the earlier works' input pipeline vs our engine vs the bare model step.

    python benchmarks/throughput.py --device cpu --model small [--images 4096] [--json out.json]

Images per epoch by default: 4096 (``small``) and 512 (``resnet18``), and a pass is one
epoch on the CPU; on CUDA a pass is as many epochs as make at least :data:`CUDA_STEPS`
optimizer steps (``--epochs-per-pass``), since a GPU step takes milliseconds and a pass of
4 steps would time mostly launch latency and the clock's own resolution.

Three measurements in one process, same model architecture, batch size, optimizer and device:

- ``reference_ips``: a torchvision ``Dataset`` over the same uint8 images, converted
  to PIL per image and transformed per image (RandomCrop(32, padding=4),
  RandomHorizontalFlip, ToTensor, Normalize), through a ``DataLoader`` with 0
  workers on the CPU, as the earlier works trained;
- ``engine_ips``: one training epoch of the engine (``train_one_epoch``: the
  device-resident loader, batch augmentation, normalization, the step);
- ``bare_ips``: forward, backward and optimizer step on one batch already in
  memory, on the device: the limit any input pipeline can reach.

Images are the built-in ``synthetic`` set (32 px). Warm-up is excluded: a few
batches for the reference and bare loops, a whole untimed epoch for the engine.
The three loops run ``--repeats`` times, interleaved, and the best pass of each
is reported: load from other processes only ever slows a pass down. The JSON
also holds every pass and, for the CPU, images per second of this process's
CPU time (``cpu_ips``), which other processes on a shared machine disturb less.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from normtest_lib.config import make_config
from normtest_lib.engine.environment import Execution, execution_context
from normtest_lib.engine.loop import build_session, train_one_epoch
from normtest_lib.models import create_model

WARMUP_BATCHES = 3
DEFAULT_IMAGES = {"small": 4096, "resnet18": 512}
CUDA_STEPS = 100
LOOPS = ("reference", "engine", "bare")

# A pass trains once over its images and returns how many it trained on, with the device idle.
Pass = Callable[[], int]


class UInt8ImageDataset(Dataset):
    """The earlier works' pattern: one PIL image and one transform call per sample."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform) -> None:
        self.arrays = images.permute(0, 2, 3, 1).contiguous().numpy()  # HWC, as PIL wants
        self.labels = labels.tolist()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        from PIL import Image

        return self.transform(Image.fromarray(self.arrays[index])), self.labels[index]


def make_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, execution: Execution):
    def step(inputs: torch.Tensor, labels: torch.Tensor) -> None:
        with execution.autocast():
            loss = F.cross_entropy(model(inputs), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def fresh_step(name: str, execution: Execution):
    """The training step of a new ``name`` network, set up as the engine sets up its own."""
    model = create_model(name, 10).module.to(execution.device)
    if execution.channels_last:
        model = model.to(memory_format=torch.channels_last)
    model.train()
    return make_step(model, torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9), execution)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reference_pass(name: str, session, batch_size: int, execution: Execution, epochs_per_pass: int = 1) -> Pass:
    from torchvision import transforms

    stats = session.data.finetune_stats
    transform = transforms.Compose(
        [
            transforms.RandomCrop(32, padding=4),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            transforms.Normalize(stats.mean, stats.std),
        ]
    )
    dataset = UInt8ImageDataset(session.data.train.images, session.data.train.labels, transform)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=0)
    step = fresh_step(name, execution)
    device = execution.device

    def train_on(batches) -> int:
        seen = 0
        for inputs, targets in batches:
            inputs = inputs.to(device, non_blocking=True).contiguous(memory_format=execution.memory_format)
            step(inputs, targets.to(device, non_blocking=True))
            seen += targets.numel()
        synchronize(device)
        return seen

    train_on(itertools.islice(loader, WARMUP_BATCHES))
    return lambda: sum(train_on(loader) for _ in range(epochs_per_pass))


def bare_pass(name: str, n_images: int, batch_size: int, execution: Execution, epochs_per_pass: int = 1) -> Pass:
    step = fresh_step(name, execution)
    device = execution.device
    inputs = torch.randn(batch_size, 3, 32, 32, device=device).contiguous(memory_format=execution.memory_format)
    targets = torch.randint(0, 10, (batch_size,), device=device)
    steps = max(1, n_images // batch_size) * epochs_per_pass

    def train_steps(count: int) -> int:
        for _ in range(count):
            step(inputs, targets)
        synchronize(device)
        return count * batch_size

    train_steps(WARMUP_BATCHES)
    return lambda: train_steps(steps)


def engine_pass(session, epochs_per_pass: int = 1) -> Pass:
    epochs = itertools.count()
    train_one_epoch(session, next(epochs))  # warm-up epoch, untimed
    # train_one_epoch ends with .item(), so the device has finished when it returns.
    return lambda: sum(train_one_epoch(session, next(epochs))[2] for _ in range(epochs_per_pass))


def timed(one_pass: Pass) -> tuple[float, float]:
    """(images per wall-clock second, images per second of this process's CPU time)."""
    wall, cpu = time.perf_counter(), time.process_time()
    images = one_pass()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return images / wall, images / cpu


def default_epochs_per_pass(device: str, n_images: int, batch: int) -> int:
    """1 on the CPU; on CUDA enough epochs for CUDA_STEPS optimizer steps per timed pass."""
    if device != "cuda":
        return 1
    return max(1, -(-CUDA_STEPS // max(1, n_images // batch)))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--model", choices=["small", "resnet18"], default="small")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--images", type=int, default=None, help="images per epoch (default: 4096 small, 512 resnet18)")
    parser.add_argument(
        "--epochs-per-pass", type=int, default=None, help="epochs per timed pass (default: 1 on the CPU, 100 steps on CUDA)"
    )
    parser.add_argument("--repeats", type=int, default=5, help="interleaved passes per loop; the best is kept")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    n_images = args.images or DEFAULT_IMAGES[args.model]
    epochs_per_pass = args.epochs_per_pass or default_epochs_per_pass(args.device, n_images, args.batch)

    config = make_config(
        dataset="synthetic",
        model=args.model,
        device=args.device,
        batch_size=args.batch,
        train_subset=n_images,
        val_fraction=0.0,
        lr=0.01,
        weight_decay=0.0,
    )
    with execution_context(config) as execution:
        session = build_session(config, execution)
        execution = session.execution  # as resolved for the run (memory format): all three loops use it
        passes = {
            "reference": reference_pass(args.model, session, args.batch, execution, epochs_per_pass),
            "engine": engine_pass(session, epochs_per_pass),
            "bare": bare_pass(args.model, n_images, args.batch, execution, epochs_per_pass),
        }
        figures = {key: [] for key in LOOPS}
        for _ in range(args.repeats):
            for key in LOOPS:
                figures[key].append(timed(passes[key]))

    results = {
        "device": str(execution.device),
        "device_name": torch.cuda.get_device_name(execution.device) if execution.device.type == "cuda" else "cpu",
        "model": args.model,
        "batch": args.batch,
        "n_images": n_images,
        "epochs_per_pass": epochs_per_pass,
        "threads": execution.threads,
        "repeats": args.repeats,
        **{f"{key}_ips": max(wall for wall, _ in figures[key]) for key in LOOPS},
        "cpu_ips": {key: max(cpu for _, cpu in figures[key]) for key in LOOPS},
        "passes_ips": {key: [wall for wall, _ in figures[key]] for key in LOOPS},
    }
    results["engine_vs_bare"] = results["engine_ips"] / results["bare_ips"]
    results["engine_vs_reference"] = results["engine_ips"] / results["reference_ips"]

    print(f"{args.model} on {results['device']} ({execution.threads} threads), batch {args.batch}, "
          f"{n_images} images per pass, best of {args.repeats}")
    print(f"{'loop':<11}{'images/s':>10}{'x bare':>8}{'images/cpu-s':>14}{'x bare':>8}")
    cpu = results["cpu_ips"]
    for key in LOOPS:
        wall = results[f"{key}_ips"]
        print(f"{key:<11}{wall:>10.1f}{wall / results['bare_ips']:>8.2f}{cpu[key]:>14.1f}{cpu[key] / cpu['bare']:>8.2f}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
