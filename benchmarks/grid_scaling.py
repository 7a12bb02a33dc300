"""Grid throughput with 1 vs 2 local workers.

    python benchmarks/grid_scaling.py [--runs 4] [--train-subset 200] [--epochs 1] [--workers 1 2] [--repeats 1] [--json out.json]

Runs the same grid of small runs (``small`` model, ``synthetic`` data,
``--train-subset`` images, ``--epochs`` epochs, one run per seed, CPU) with
the local executor at each worker count, each into a fresh runs folder, and
prints runs per minute and the speedup over the first worker count. The
executor gives each of ``w`` workers ``cores // w`` threads, so the workers
never oversubscribe the cores; what parallel workers gain is the
single-threaded part of a run (kernel start, imports, Python overhead, the
notebook's figures). With ``--repeats``, the worker counts alternate and the
best pass of each is reported (load from other processes only slows a pass
down). The wall time includes loading the grid and starting the workers, as a
user sees it. The target is a speedup of at least 1.6 with 2 workers
on a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--train-subset", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--notebook", default=None, help="default: notebooks/run_experiment.ipynb")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)

    from normtest_lib.grid.executors import cpu_count
    from normtest_lib.grid.spec import DEFAULT_NOTEBOOK
    from normtest_lib.grid.runner import run_grid

    notebook = Path(args.notebook or Path(__file__).resolve().parent.parent / DEFAULT_NOTEBOOK)
    walls: dict[int, list[float]] = {workers: [] for workers in args.workers}
    with tempfile.TemporaryDirectory(prefix="grid-scaling-") as tmp:
        grid_file = Path(tmp) / "scaling.yml"
        grid_file.write_text(
            f"study: scaling\nnotebook: {notebook}\n"
            f"base: {{model: small, dataset: synthetic, train_subset: {args.train_subset}, "
            f"epochs: {args.epochs}, device: cpu}}\n"
            f"axes: {{seed: {list(range(args.runs))}}}\n"
            "profiles: {smoke: {}, paper: {}}\n"
        )
        for repeat in range(args.repeats):
            for workers in args.workers:
                report = run_grid(
                    grid_file, "paper", workers=workers, gpus=[], runs_root=Path(tmp) / f"runs-{workers}-{repeat}",
                    progress=False, log=lambda line: None,
                )  # fmt: skip
                if report.failed or report.done != args.runs:
                    errors = "; ".join(sorted({record.error or "" for record in report.records if record.error}))
                    print(f"{workers} worker(s): {report.summary_line()}: {errors}", file=sys.stderr)
                    return 1
                walls[workers].append(report.wall_seconds)

    results = [
        {"workers": workers, "wall_seconds": min(times), "all_wall_seconds": times, "runs_per_minute": 60 * args.runs / min(times)}
        for workers, times in walls.items()
    ]

    base = results[0]["runs_per_minute"]
    for result in results:
        result["speedup"] = result["runs_per_minute"] / base
    print(f"grid: {args.runs} runs (small model, {args.train_subset} images, {args.epochs} epoch(s)) on {cpu_count()} cores")
    for result in results:
        print(
            f"  {result['workers']} worker(s): {result['wall_seconds']:6.1f} s, "
            f"{result['runs_per_minute']:5.2f} runs/min, speedup {result['speedup']:.2f}x"
        )
    print("target: speedup >= 1.6x with 2 workers on 2 cores")
    if args.json:
        args.json.write_text(json.dumps({"runs": args.runs, "cores": cpu_count(), "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
