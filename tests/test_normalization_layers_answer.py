"""Study 2's answer (studies/normalization_layers/answer.py): its sentences against hand-computed differences."""

from __future__ import annotations

import pandas as pd

from normtest_lib.studies.normalization_layers.answer import normalization_layers_finding
from test_findings import METRIC, layer_runs, with_verdicts


def test_layers_finding_states_each_comparison_against_its_hand_computed_difference():
    published = pd.Series({"torch_bn": 0.879, "ln": 0.849})
    finding = normalization_layers_finding(layer_runs(), METRIC, "local", published, 7, 18, published_epochs=100)
    assert "(`bn`) matches PyTorch's (`torch_bn`): +0.0 [+0.0, +0.0] points" in finding.answer
    assert "(`bin`) against `bn`: +2.0 [+2.0, +2.0] points, beyond the seed-to-seed spread, which supports" in finding.answer
    assert "`ln` -10.0 [-10.0, -10.0] points" in finding.answer
    assert "after 100 epochs, were `ln` -3.0" in finding.answer and "trains 8 epochs" in finding.answer
    assert "3 seeds per layer" in finding.certainty
    assert finding.evidence.startswith("**Real data**: 12 complete runs of the `local` profile")
    assert "changes 7 of 18 parameters" in finding.evidence


def test_unconverged_layer_runs_are_worded_as_learning_speed_never_as_better():
    finding = normalization_layers_finding(with_verdicts(layer_runs(), False), METRIC, "local")
    assert "how fast each layer learns in the first 8 epochs (learning speed), not which layer is better" in finding.answer
    assert "None of these 12 runs converged" in finding.answer
    assert "Slower to learn than `torch_bn` in the first 8 epochs, beyond the spread: `ln` -10.0" in finding.answer
    assert "cannot test the earlier claim that BIN is the best layer" in finding.answer
    assert "supports" not in finding.answer and "Behind `torch_bn`" not in finding.answer


def test_converged_layer_runs_are_compared_as_trained_networks():
    finding = normalization_layers_finding(with_verdicts(layer_runs(), True), METRIC, "local")
    assert "learning speed" not in finding.answer and "in the first" not in finding.answer
    assert "Behind `torch_bn`, beyond the spread: `ln` -10.0" in finding.answer
    assert "which supports the earlier claim that BIN is the best layer" in finding.answer
