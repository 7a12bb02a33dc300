"""report/protocol.py: what a profile changed against the published protocol, and why."""

from __future__ import annotations

import pandas as pd

from normtest_lib.report import protocol


def test_with_reasons_says_why_each_changed_parameter_changed_and_flags_a_missing_reason():
    table = pd.DataFrame({"paper": ["100", "40000", "sgd"], "local": ["100", "3000", "sgd, adam"],
                          "same": [True, False, False]}, index=pd.Index(["epochs", "train_subset", "optimizer"], name="parameter"))
    why = protocol.with_reasons(table, {"train_subset": "the budget", "epochs": "unused"})["why"]
    assert why.to_dict() == {"epochs": "", "train_subset": "the budget", "optimizer": "no reason given"}
