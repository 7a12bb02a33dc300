"""Evidence for the label-noise errata, against hand computations."""

import pandas as pd
import pytest

from normtest_lib.report import errata_label_noise as errata


def test_expected_rate_of_published_symmetric_noise_is_p_times_one_minus_one_over_k():
    assert errata.expected_rate(0.2, "symmetric", 10) == pytest.approx(0.18)
    assert errata.expected_rate(0.2, "symmetric_exact", 10) == pytest.approx(0.2)


def test_noise_rate_table_sets_measured_beside_nominal_and_expected():
    runs = pd.DataFrame({
        "label_noise": [0.0, 0.2, 0.2], "label_noise_kind": ["symmetric"] * 3, "num_classes": [10] * 3,
        "noise_rate_actual": [0.0, 0.17, 0.19],
    })  # fmt: skip
    table = errata.noise_rate_table(runs)
    row = table.loc[("symmetric", "20 %")]
    assert row["expected real (%)"] == pytest.approx(18.0)
    assert row["measured, mean (%)"] == pytest.approx(18.0) and row["measured, max (%)"] == pytest.approx(19.0)
    assert row["runs"] == 2
    with pytest.raises(ValueError, match="noise_rate_actual"):
        errata.noise_rate_table(runs.iloc[:1])


def test_official_validation_counts_the_wrong_labels_of_images_drawn_from_the_noisy_training_set(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    # 10 images, every one flipped: any validation drawn from them is 100 % wrong.
    pd.DataFrame({"index": range(10), "label": [0] * 10, "noisy_label": [1] * 10}).to_csv(run / "noisy_labels.csv", index=False)
    runs = pd.DataFrame({"label_noise": [0.2], "path": [str(run)], "noise_rate_actual_val": [0.0]})
    table = errata.official_validation_table(runs, val_fraction=0.5)
    assert table.loc["20 %", "official-style validation: wrong labels (%)"] == 100.0
    assert table.loc["20 %", "ours: validation noise (%)"] == 0.0
    with pytest.raises(ValueError, match="noisy_labels.csv"):
        errata.official_validation_table(runs.assign(path=str(tmp_path / "missing")))
