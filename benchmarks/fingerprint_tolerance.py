"""How far a run's fingerprint moves with the thread count, and how far with a real change.

The evidence behind ``engine/fingerprint.py``'s RELATIVE_TOLERANCE: for a few run settings
shaped like the studies' local profiles (on the built-in synthetic set), the largest relative
difference of the fingerprint's values (initial loss, the first 20 steps' losses, the loss
after them) between

- 1 and 2 threads (rounding only: reductions split differently), and
- the same threads with a change: a from-scratch BatchNorm's eps 1e-5 -> 1e-4, the torch_bn
  momentum 0.1 -> 0.2, or another label-noise draw (noise seed + 1).

    python benchmarks/fingerprint_tolerance.py --json benchmarks/results/fingerprint-tolerance-cpu.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from normtest_lib.config import make_config  # noqa: E402
from normtest_lib.data import label_noise  # noqa: E402
from normtest_lib.engine import fingerprint, prepare  # noqa: E402
from normtest_lib.engine.environment import device_name  # noqa: E402
from normtest_lib.layers import batchnorm  # noqa: E402

BASE = dict(dataset="synthetic", device="cpu", train_subset=1000, val_fraction=0.1, batch_size=128, lr=0.1,
            momentum=0.9, weight_decay=1e-4, epochs=10, eval_batch_size=128)  # fmt: skip
SETTINGS = {
    "cifar_resnet n=1 torch_bn, 20 % noise (study 3)": dict(model="cifar_resnet", depth_n=1, norm_layer="torch_bn",
                                                             label_noise=0.2, noise_seed=0),
    "cifar_resnet n=1 convnorm:240 (study 3)": dict(model="cifar_resnet", depth_n=1, conv_layer="convnorm:240",
                                                    norm_layer="none", label_noise=0.2, noise_seed=0),
    "cifar_resnet n=2 bn (study 2)": dict(model="cifar_resnet", depth_n=2, norm_layer="bn", momentum=0.0),
    "small torch_bn (study 1)": dict(model="small", norm_layer="torch_bn"),
}


@contextlib.contextmanager
def patched(owner: Any, name: str, value: Any) -> Iterator[None]:
    saved = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, saved)


def bn_eps(eps: float) -> contextlib.AbstractContextManager:
    init = batchnorm.BatchNorm.__init__

    def patched_init(self, num_features, eps_=1e-5, momentum=0.1):  # noqa: ANN001
        init(self, num_features, eps, momentum)

    return patched(batchnorm.BatchNorm, "__init__", patched_init)


def torch_bn_momentum(momentum: float) -> contextlib.AbstractContextManager:
    init = torch.nn.BatchNorm2d.__init__

    def patched_init(self, num_features, *args, **kwargs):  # noqa: ANN001
        init(self, num_features, *args, **{**kwargs, "momentum": momentum})

    return patched(torch.nn.BatchNorm2d, "__init__", patched_init)


def noise_seed_plus_one() -> contextlib.AbstractContextManager:
    draw = label_noise.noisy_labels

    def shifted(labels, classes, rate, kind, seed):  # noqa: ANN001
        return draw(labels, classes, rate, kind, seed + 1)

    return patched(prepare, "noisy_labels", shifted)


CHANGES: dict[str, tuple[Callable[[dict], bool], Callable[[], contextlib.AbstractContextManager]]] = {
    "bn eps 1e-5 -> 1e-4": (lambda s: s.get("norm_layer") == "bn", lambda: bn_eps(1e-4)),
    "torch_bn momentum 0.1 -> 0.2": (lambda s: s.get("norm_layer") == "torch_bn", lambda: torch_bn_momentum(0.2)),
    "label-noise seed + 1": (lambda s: s.get("label_noise", 0) > 0, noise_seed_plus_one),
}


def measure(settings: dict[str, Any]) -> dict[str, Any]:
    def compute(threads: int) -> fingerprint.Fingerprint:
        return fingerprint.recompute(make_config({**BASE, **settings, "num_threads": threads}), fingerprint.STEPS)

    started = time.perf_counter()
    one, two = compute(1), compute(2)
    threads = fingerprint.compare(one, two)
    result: dict[str, Any] = {
        "threads_1_vs_2": threads.max_relative,
        "threads_1_vs_2_within_tolerance": threads.ok,
        "threads_1_vs_2_smallest_margin": min(d.tolerance / d.relative for d in threads.differences if d.relative) if threads.max_relative else None,
        "threads_1_vs_2_by_value": {d.name: d.relative for d in threads.differences},
        "changes": {},
    }
    for change, (applies, patch) in CHANGES.items():
        if applies(settings):
            with patch():
                changed = compute(1)
            comparison = fingerprint.compare(one, changed)
            moved = [d for d in comparison.differences if d.relative > 0]
            result["changes"][change] = {
                "max_relative": comparison.max_relative,
                "min_nonzero_relative": min((d.relative for d in moved), default=0.0),
                "first_moved": moved[0].name if moved else None,
                "first_moved_relative": moved[0].relative if moved else 0.0,
                "detected_at": comparison.first_failure.name if comparison.first_failure else None,
                "by_value": {d.name: d.relative for d in comparison.differences},
            }
    result["seconds"] = time.perf_counter() - started
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    args = parser.parse_args()
    report = {
        "device_name": device_name(torch.device("cpu")),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "steps": fingerprint.STEPS,
        "eval_after": fingerprint.EVAL_AFTER,
        "tolerance_by_step": {step: fingerprint.tolerance_at(step) for step in range(fingerprint.STEPS + 1)},
        "settings": {},
    }
    for name, settings in SETTINGS.items():
        report["settings"][name] = measure(settings)
        print(name, json.dumps(report["settings"][name]), flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
