"""Size a grid profile by measurement: two epochs of each variant, projected to the whole profile.

    python benchmarks/profile_cost.py params/convnorm_label_noise.yml --profile local [--workers 2]
        [--epochs 2] [--json benchmarks/results/profile-cost-convnorm_label_noise-local.json]

Runs that differ only in parameters that leave an epoch's work unchanged (seed, label noise,
learning rate and schedule, input setting, epochs: ``normtest_lib/grid/cost.py``) are one
variant. The script trains each variant for ``--epochs`` epochs (2 by default) with the final
code, exactly as the grid would run it (same parameters, compile decision and threads: each of
``--workers`` concurrent measurements gets cores // workers threads, as the local executor gives
each of its workers), except that a run starting from pretrained weights starts from scratch
here (the weights need not exist yet; the arithmetic is the same). The first epoch, which
includes compiling, and the last, a steady one, project each run
(first + (epochs - 1) x steady) and the profile's wall time on ``--workers`` workers. Other load
on the machine slows every figure: the load average before and after is printed and recorded.

``--from-runs RUNS_ROOT`` reads a variant's cost from the grid's own run of it instead, where one
under ``RUNS_ROOT/<study>/<profile>/<id>/history.csv`` has two epochs or more (of those, the one
that started last by ``environment.json``, so that the newest code sizes it: its first epoch and
the median of the later ones, ``grid.cost.cost_from_history``), and trains only the other
variants. A long variant (a pretraining source) is then sized by the run that trains it, on the
workers and threads the grid gave it, not by two epochs trained beside it. Each variant records
where its figures come from (``measured_from``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


class _Measured(Exception):
    """Raised after the measured epochs to stop a run early."""


def measure_variant(params: dict[str, Any], epochs: int, threads: int, folder: str) -> list[dict[str, Any]]:
    """Train ``params`` for its first ``epochs`` epochs in ``folder``; its history rows."""
    from normtest_lib.config import make_config
    from normtest_lib.engine import train

    params = {**params, "num_threads": threads}
    if params.get("pretrained") not in (None, "none"):
        params["pretrained"] = "none"
        if params.get("input_norm") == "pretrain":
            params["input_norm"] = "finetune"
    rows: list[dict[str, Any]] = []

    def stop_after(row: dict[str, Any]) -> None:
        rows.append(row)
        if len(rows) >= epochs:
            raise _Measured

    try:
        train(make_config(params), Path(folder), on_epoch_end=stop_after, progress=False)
    except _Measured:
        pass
    return rows


def _grid_run_epochs(root: Path | None, study: str, profile: str, ids: list[str]) -> tuple[str, list[dict]] | None:
    """(run id, history rows) of the newest of ``ids`` whose run under ``root`` has two epochs or more: the one
    that started last (``environment.json``), so made by the newest code; the first in grid order among equals."""
    if root is None:
        return None
    from normtest_lib.engine.history import read_history
    from normtest_lib.engine.rundir import RunFolder

    found = []
    for run_id in ids:
        folder = RunFolder(root / study / profile / run_id)
        rows = read_history(folder.history) if folder.history.is_file() else []
        if len(rows) >= 2:
            starts = folder.read_environment()
            found.append((str(starts[0].get("time") or "") if starts else "", run_id, rows))
    if not found:
        return None
    _, run_id, rows = max(found, key=lambda run: run[0])  # max keeps the first of equals
    return run_id, rows


def _median(values) -> float | None:
    present = [value for value in values if value is not None]
    return statistics.median(present) if present else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("grid", type=Path)
    parser.add_argument("--profile", default="local")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=2, help="epochs measured per variant (at least 2)")
    parser.add_argument("--only", nargs="*", default=None, help="measure only the variants with these indices")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--from-runs", type=Path, default=None, metavar="RUNS_ROOT",
                        help="read a variant's epochs from the grid's own run of it under this runs root where it has two or more")
    args = parser.parse_args(argv)
    if args.epochs < 2:
        parser.error("--epochs: at least 2 (the first includes compiling; a later one is the steady rate)")

    from normtest_lib.grid.cost import EpochCost, cost_from_history, group_variants, makespan
    from normtest_lib.grid.executors import cpu_count
    from normtest_lib.grid.spec import load_grid

    grid = load_grid(args.grid, args.profile)
    runs = {run.id: run for run in grid.all_runs}
    groups = group_variants((run.id, run.config.to_dict()) for run in grid.all_runs)
    variants = [(index, ids) for index, ids in enumerate(groups.values()) if args.only is None or str(index) in args.only]
    from_runs = {index: found for index, ids in variants
                 if (found := _grid_run_epochs(args.from_runs, grid.study, grid.profile, ids)) is not None}  # fmt: skip
    to_train = [(index, ids) for index, ids in variants if index not in from_runs]
    threads = max(1, cpu_count() // args.workers)
    print(f"{grid.study} / {grid.profile}: {len(runs)} runs, {len(groups)} variants ({len(from_runs)} read from the "
          f"grid's runs); {args.workers} concurrent measurements of {threads} thread(s); load {os.getloadavg()[0]:.2f}")  # fmt: skip
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="profile-cost-") as tmp, ProcessPoolExecutor(
        args.workers, mp_context=get_context("spawn")
    ) as pool:
        futures = {
            index: pool.submit(measure_variant, runs[ids[0]].config.to_dict(), args.epochs, threads, f"{tmp}/{index}")
            for index, ids in to_train
        }
        measured = {index: future.result() for index, future in futures.items()}
    load_after = os.getloadavg()[0]

    records, durations = [], []
    for index, ids in variants:
        if index in from_runs:
            source, rows = from_runs[index]
            cost = cost_from_history(rows)
            assert cost is not None
            later = rows[1:]
            rate = _median(row["images_per_second"] for row in later)
            probes = _median(row["probe_seconds"] for row in later)
            measured_from = f"run {source} ({len(rows)} epochs)"
        else:
            rows = measured[index]
            cost = EpochCost(first=rows[0]["seconds"], steady=rows[-1]["seconds"])
            rate, probes = rows[-1]["images_per_second"], rows[-1]["probe_seconds"]
            measured_from = f"{args.epochs} epochs trained here"
        config = runs[ids[0]].config
        seconds = [cost.run_seconds(runs[run_id].config.epochs) for run_id in ids]
        durations += seconds
        records.append({
            "variant": index,
            "example_run": ids[0],
            "differs_by": {key: config.to_dict()[key] for key in grid.varying_keys if key in config.to_dict()},
            "runs": len(ids),
            "measured_from": measured_from,
            "first_epoch_seconds": cost.first,
            "steady_epoch_seconds": cost.steady,
            "train_images_per_second": rate,
            "probe_seconds_per_epoch": probes,
            "run_seconds": seconds,
        })  # fmt: skip
        print(f"  variant {index}: {len(ids)} runs like {ids[0]} {records[-1]['differs_by']}: first epoch "
              f"{cost.first:.1f} s, then {cost.steady:.1f} s/epoch ({rate or 0:.0f} img/s training, probes "
              f"{probes or 0:.1f} s), from {measured_from}; {sum(seconds) / 3600:.2f} h of runs")  # fmt: skip
    wall = makespan(durations, args.workers)
    total = sum(durations)
    print(f"profile: {total / 3600:.2f} h of runs; about {wall / 3600:.2f} h of wall time on {args.workers} workers; "
          f"load {load_before:.2f} before, {load_after:.2f} after")  # fmt: skip
    if args.json:
        import torch

        args.json.parent.mkdir(parents=True, exist_ok=True)
        report = {
            "grid": str(args.grid), "profile": args.profile, "workers": args.workers, "threads": threads,
            "epochs_measured": args.epochs, "processor": platform.processor() or platform.machine(),
            "torch": torch.__version__, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "load_average_before": load_before, "load_average_after": load_after,
            "variants": records, "variants_from_runs": len(from_runs), "total_run_seconds": total, "wall_seconds": wall,
        }  # fmt: skip
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
