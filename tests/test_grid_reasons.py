"""A grid profile's reasons: why it changes a parameter against the published protocol."""

from __future__ import annotations

import re

import pytest

from normtest_lib.errors import ConfigError
from normtest_lib.grid.spec import load_grid, profile_reasons


def test_a_profile_gives_a_reason_per_changed_parameter(tmp_path):
    path = tmp_path / "g.yml"
    path.write_text(
        "study: s\nbase: {dataset: synthetic, epochs: 100}\nprofiles:\n  smoke: {}\n  paper: {}\n"
        "  local:\n    base: {epochs: 5}\n    reasons: {epochs: ' the budget '}\n"
    )
    assert profile_reasons(path, "local") == {"epochs": "the budget"}
    assert profile_reasons(path, "paper") == {}
    # Reasons are not run parameters: the runs are those of the profile without them.
    assert [run.config.epochs for run in load_grid(path, "local").runs] == [5]


@pytest.mark.parametrize(
    "reasons, message",
    [("{epoch: why}", "unknown run parameter; did you mean 'epochs'"), ("{epochs: ''}", "expected a sentence"),
     ("[epochs]", "expected a mapping of run parameter")],
)
def test_a_malformed_reason_is_refused_naming_it(tmp_path, reasons, message):
    path = tmp_path / "g.yml"
    path.write_text(f"study: s\nbase: {{dataset: synthetic}}\nprofiles:\n  smoke: {{}}\n  paper: {{}}\n  local: {{reasons: {reasons}}}\n")
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_grid(path, "local")
