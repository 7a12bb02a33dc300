"""benchmarks/profile_cost.py: which of the grid's own runs sizes a variant (``--from-runs``)."""

from __future__ import annotations

import json
from pathlib import Path

import script_loader


def _run(root: Path, run_id: str, epochs: int, started: str | None) -> None:
    run_dir = root / "study" / "local" / run_id
    run_dir.mkdir(parents=True)
    lines = ["epoch,train_loss,seconds,images_per_second,probe_seconds"]
    lines += [f"{epoch},1.0,{10.0 * epoch},100.0,1.0" for epoch in range(1, epochs + 1)]
    (run_dir / "history.csv").write_text("\n".join(lines) + "\n")
    if started is not None:
        (run_dir / "environment.json").write_text(json.dumps({"starts": [{"time": started}]}))


def test_the_newest_run_with_two_epochs_sizes_a_variant(tmp_path: Path) -> None:
    profile_cost = script_loader.load_script("benchmarks/profile_cost.py", "benchmark_profile_cost")
    _run(tmp_path, "old", 100, "2026-12-06T13:59:33+00:00")  # made by older code
    _run(tmp_path, "new", 100, "2026-12-07T22:29:00+00:00")
    _run(tmp_path, "newest_but_one_epoch", 1, "2026-12-08T00:00:00+00:00")  # too short to give a steady rate
    _run(tmp_path, "unrecorded", 100, None)
    run_id, rows = profile_cost._grid_run_epochs(tmp_path, "study", "local", ["old", "new", "newest_but_one_epoch", "unrecorded"])
    assert run_id == "new" and len(rows) == 100
    # Among runs with no recorded start, the first in grid order; none long enough: None.
    assert profile_cost._grid_run_epochs(tmp_path, "study", "local", ["unrecorded"])[0] == "unrecorded"
    assert profile_cost._grid_run_epochs(tmp_path, "study", "local", ["newest_but_one_epoch", "missing"]) is None
    assert profile_cost._grid_run_epochs(None, "study", "local", ["new"]) is None
