"""Study 2's errata evidence: the earlier work's frozen gate reproduced, and the gates of runs read back."""

from __future__ import annotations

import pandas as pd
import pytest

from normtest_lib.report.errata_layers import final_gates, recreated_gate_demo


def test_a_gate_re_created_in_forward_never_moves_and_ours_does():
    table = recreated_gate_demo(steps=20)
    defective, ours = table.iloc[0], table.iloc[1]
    assert (defective["rho mean"], defective["rho min"]) == (1.0, 1.0)
    assert ours["rho min"] < 0.99 and 0.0 <= ours["rho min"] <= ours["rho max"] <= 1.0


def test_final_gates_are_each_layers_last_epoch_mean_over_runs():
    rows = []
    for run, offset in (("a", 0.0), ("b", 0.2)):
        for epoch in (1, 2):
            for stat, value in (("mean", 0.9 - epoch / 10), ("min", 0.5), ("max", 1.0)):
                rows.append({"run_id": run, "epoch": epoch, "probe": "bin_gate", "name": f"stem.norm/{stat}",
                             "value": value - offset if stat == "mean" else value})
    rows.append({"run_id": "a", "epoch": 2, "probe": "features", "name": "p99", "value": 3.0})
    table = final_gates(pd.DataFrame(rows))
    assert table.loc["stem.norm", "mean"] == pytest.approx(((0.7) + (0.5)) / 2)
    assert table.loc["stem.norm", "runs"] == 2
    with pytest.raises(ValueError, match="no bin_gate"):
        final_gates(pd.DataFrame(rows[-1:]))
