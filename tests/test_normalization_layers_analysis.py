"""Study 2's analysis (studies/normalization_layers/analysis.py): the metrics table, the layer order, the main batch."""

from __future__ import annotations

import pandas as pd

from normtest_lib.studies.normalization_layers import analysis


def test_metrics_table_has_our_mean_std_and_the_published_values_beside():
    runs = pd.DataFrame.from_records(
        [{"run_id": f"{layer}{seed}", "status": "complete", "seed": seed, "norm_layer": layer, "test": acc + seed / 100}
         for layer, acc in (("torch_bn", 0.80), ("none", 0.70)) for seed in (0, 1)]
    )
    runs.attrs["param_columns"] = ["norm_layer", "seed"]
    published = pd.DataFrame({"test acc.": [0.879, 0.849], "macro-F1": [None, None]}, index=["torch_bn", "none"])
    styler = analysis.metrics_table(runs, {"test acc.": "test", "val acc.": "absent"}, published, order=["none", "torch_bn"])
    table = styler.data
    assert list(table.index) == ["none", "torch_bn"]
    assert table.loc["torch_bn", ("ours", "test acc.")] == "80.5 ± 0.7 (n=2)"
    assert table.loc["none", ("published", "test acc.")] == "84.9"
    assert ("published", "macro-F1") not in table.columns  # nothing published there
    assert "font-weight: bold" in styler.to_html()


def test_layers_are_ordered_as_the_chapter_lists_them_and_compared_at_the_commonest_batch_size():
    assert analysis.layer_order(["none", "zz", "bn", "torch_bn", "aa"]) == ["torch_bn", "bn", "none", "aa", "zz"]
    assert analysis.main_batch_size(pd.DataFrame({"batch_size": [128, 128, 32, 512]})) == 128
