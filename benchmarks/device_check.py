"""One command for a machine with a GPU: everything the CPU cannot check, in under 10 minutes on one H100.

    make device-check                       # = python benchmarks/device_check.py
    python benchmarks/device_check.py --device cpu --tiny --root /tmp/check   # the same steps, tiny, on the CPU

Steps, in order (``--steps`` picks some; each writes its files as soon as it ends):

1. ``tests``: ``pytest -m cuda`` (tests/test_cuda.py: TF32 off in fp32 runs, a bf16 run's
   predictions against its test accuracy, the run device's RNG state, compiled training
   on the device) -> ``benchmarks/results/device-check-tests.txt``;
2. ``layers``: ``benchmarks/layers.py`` eager and compiled, bf16 autocast and channels_last
   as training runs -> ``benchmarks/results/layers-<device>.json``;
3. ``throughput``: ``benchmarks/throughput.py`` for ``small`` and ``resnet18`` ->
   ``benchmarks/results/throughput-<device>-<model>.json``;
4. ``runs``: one short real-data run per study, each study's ``local`` profile's first
   run that starts from scratch, cut to :data:`SHORT_RUN` (CIFAR-10 JPEG, no Tiny
   ImageNet: study 1's from-scratch control stands for it) ->
   ``results/<study>/gpu/<run id>/`` (a normal run folder; the weights are git-ignored).

``benchmarks/results/device-check-<device>.json`` records each step's status, seconds and files.

What the device needs besides the repository: the CIFAR-10 JPEG copy at
``data/cifar10-jpeg/`` (git-ignored; ``make data`` extracts it from
``../shared/data/cifar10-jpeg.tar.gz``), or that 19 MB archive itself at
``data/cifar10-jpeg.tar.gz`` (git-ignored: copy it there, it is extracted on first use).
``--tiny`` replaces the real data with the built-in synthetic set, so the CPU check needs
neither; the runs then go to ``results/<study>/gpu-tiny/``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[1]
STUDIES = ("input_normalization", "normalization_layers", "convnorm_label_noise")
STEPS = ("tests", "layers", "throughput", "runs")
CIFAR_JPEG = "cifar10-jpeg"
# A short real-data run: 3 epochs of at most 10,000 images (about 240 optimizer steps at batch 128).
SHORT_RUN = {"epochs": 3, "train_subset": 10_000}
TINY_RUN = {"epochs": 1, "train_subset": 128, "dataset": "synthetic", "data_root": None}


@dataclass
class Check:
    """Where a device check writes, and how big it is."""

    device: str
    root: Path
    tiny: bool
    log: Callable[[str], None] = print
    record: dict[str, Any] = field(default_factory=dict)

    @property
    def bench_dir(self) -> Path:
        return self.root / "benchmarks" / "results"

    @property
    def profile(self) -> str:
        return "gpu-tiny" if self.tiny else "gpu"


def run_tests(check: Check) -> list[Path]:
    out = check.bench_dir / "device-check-tests.txt"
    # The tiny check runs only the CUDA file (the whole suite's collection takes longer than the check).
    target = "tests/test_cuda.py" if check.tiny else "tests"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-m", "cuda", "-q", "-rs", "-p", "no:cacheprovider", target],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    out.write_text(result.stdout + result.stderr)
    if result.returncode not in (0, 5):  # 5: nothing selected
        raise RuntimeError(f"pytest -m cuda failed (exit {result.returncode}); see {out}")
    return [out]


def run_layers(check: Check) -> list[Path]:
    out = check.bench_dir / f"layers-{check.device}.json"
    args = ["--device", check.device, "--json", str(out), "--modes", "eager", "compiled"]
    if check.tiny:
        args = ["--device", check.device, "--json", str(out), "--modes", "eager", "--batch", "4", "--steps", "1",
                "--repeats", "1", "--variants", "torch_bn", "bn"]  # fmt: skip
    _benchmark("layers").main(args)
    return [out]


def run_throughput(check: Check) -> list[Path]:
    outs = []
    for model in ("small", "resnet18"):
        out = check.bench_dir / f"throughput-{check.device}-{model}.json"
        args = ["--device", check.device, "--model", model, "--json", str(out)]
        if check.tiny:
            args += ["--images", "128", "--repeats", "1"]
        _benchmark("throughput").main(args)
        outs.append(out)
    return outs


def run_studies(check: Check) -> list[Path]:
    from normtest_lib.engine import train
    from normtest_lib.grid.spec import run_id

    if not check.tiny:
        ensure_cifar_jpeg(REPO / "data")
    folders = []
    for study in STUDIES:
        config = short_run_config(study, check.device, check.tiny)
        folder = check.root / "results" / study / check.profile / run_id(config)
        check.log(f"  {study}: {folder}")
        summary = train(config, folder, progress=False)
        if summary["status"] != "complete":
            raise RuntimeError(f"{study}'s short run ended {summary['status']}: {summary.get('error')}")
        folders.append(folder)
    return folders


def short_run_config(study: str, device: str, tiny: bool, base: Path = REPO):
    """The ``local`` profile's first from-scratch run of ``study``, cut short, on ``device``;
    its data root (``data/...``) taken relative to ``base``."""
    from normtest_lib.config import make_config
    from normtest_lib.grid.spec import expand, read_grid_file, resolve_profile

    spec = read_grid_file(REPO / "params" / f"{study}.yml")
    candidates = [p for p in expand(resolve_profile(spec, "local")) if p.get("pretrained", "none") == "none"]
    if not candidates:
        raise RuntimeError(f"params/{study}.yml's local profile has no run that starts from scratch")
    cut = TINY_RUN if tiny else SHORT_RUN
    own_subset = candidates[0].get("train_subset")
    params = {**candidates[0], **cut, "device": device}
    params["train_subset"] = min(cut["train_subset"], own_subset or cut["train_subset"])  # never more than the profile's
    if params.get("data_root"):
        params["data_root"] = str(base / params["data_root"])
    if params.get("schedule") == "multistep":
        params["milestones"] = [params["epochs"]]  # the lr drop at the end: the short run keeps its lr
    return make_config(params)


def ensure_cifar_jpeg(data: Path) -> None:
    """data/cifar10-jpeg/, extracted from data/cifar10-jpeg.tar.gz or ../shared/data/ when absent."""
    if (data / CIFAR_JPEG).is_dir():
        return
    for archive in (data / f"{CIFAR_JPEG}.tar.gz", REPO.parent / "shared" / "data" / f"{CIFAR_JPEG}.tar.gz"):
        if archive.is_file():
            data.mkdir(parents=True, exist_ok=True)
            with tarfile.open(archive) as tar:
                tar.extractall(data, filter="data")
            return
    raise FileNotFoundError(
        f"{data / CIFAR_JPEG} is missing: run `make data`, or copy cifar10-jpeg.tar.gz into {data}"
    )


def _benchmark(name: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


STEP_FUNCTIONS = {"tests": run_tests, "layers": run_layers, "throughput": run_throughput, "runs": run_studies}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--tiny", action="store_true", help="tiny sizes and synthetic data (the CPU test of this script)")
    parser.add_argument("--root", type=Path, default=REPO, help="where benchmarks/results/ and results/ are written")
    parser.add_argument("--steps", nargs="+", choices=STEPS, default=list(STEPS))
    args = parser.parse_args(argv)

    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("device-check: no CUDA device here; use --device cpu --tiny to try the steps on the CPU")
    check = Check(args.device, args.root.resolve(), args.tiny)
    check.bench_dir.mkdir(parents=True, exist_ok=True)
    check.record = {
        "device": args.device,
        "device_name": torch.cuda.get_device_name() if args.device == "cuda" else "cpu",
        "torch": torch.__version__,
        "tiny": args.tiny,
        "steps": {},
    }
    summary_path = check.bench_dir / f"device-check-{args.device}{'-tiny' if args.tiny else ''}.json"
    failed = False
    for step in args.steps:
        check.log(f"device-check: {step} ...")
        start = time.perf_counter()
        try:
            files = STEP_FUNCTIONS[step](check)
            entry = {"status": "ok", "files": [str(_relative(f, check.root)) for f in files]}
        except Exception as exc:  # noqa: BLE001 - one failing step must not hide the others' results
            failed = True
            entry = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
        entry["seconds"] = round(time.perf_counter() - start, 1)
        check.record["steps"][step] = entry
        check.log(f"device-check: {step} {entry['status']} in {entry['seconds']} s")
        summary_path.write_text(json.dumps(check.record, indent=2) + "\n")
    if failed:
        raise SystemExit(f"device-check: a step failed; see {summary_path}")
    return check.record


def _relative(path: Path, root: Path) -> Path:
    try:
        return path.resolve().relative_to(root)
    except ValueError:
        return path


if __name__ == "__main__":
    main(sys.argv[1:])
