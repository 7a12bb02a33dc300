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


def _noisy_run(folder, rows, **columns) -> dict:
    folder.mkdir()
    pd.DataFrame(rows, columns=["index", "label", "noisy_label"]).to_csv(folder / "noisy_labels.csv", index=False)
    return {"path": str(folder), **columns}


def test_saved_labels_table_counts_saved_files_and_checks_them_against_the_recorded_rate(tmp_path):
    flipped_one_of_four = [(0, 1, 2), (1, 1, 1), (2, 0, 0), (3, 3, 3)]
    runs = pd.DataFrame([
        _noisy_run(tmp_path / "a", flipped_one_of_four, label_noise=0.2, noise_rate_actual=0.25),
        _noisy_run(tmp_path / "b", flipped_one_of_four, label_noise=0.2, noise_rate_actual=0.5),  # disagrees
        {"path": str(tmp_path / "none"), "label_noise": 0.1, "noise_rate_actual": 0.1},  # saved nothing
        {"path": str(tmp_path / "clean"), "label_noise": 0.0, "noise_rate_actual": 0.0},
    ])  # fmt: skip
    table = errata.saved_labels_table(runs)
    assert table.index.tolist() == ["10 %", "20 %"]
    assert table.loc["20 %"].tolist() == [2, 2, 1]
    assert table.loc["10 %"].tolist() == [1, 0, 0]
    with pytest.raises(ValueError, match="no run with label noise"):
        errata.saved_labels_table(runs.iloc[3:])


def test_noise_seed_table_counts_distinct_label_files_per_noise_seed(tmp_path):
    same, other = [(0, 1, 2), (1, 1, 1)], [(0, 1, 1), (1, 1, 2)]
    runs = pd.DataFrame([
        _noisy_run(tmp_path / "bn", same, label_noise=0.1, noise_seed=0, seed=0, variant="bn"),
        _noisy_run(tmp_path / "cn", same, label_noise=0.1, noise_seed=0, seed=0, variant="convnorm"),
        _noisy_run(tmp_path / "s1", other, label_noise=0.1, noise_seed=1, seed=1, variant="bn"),
    ])  # fmt: skip
    table = errata.noise_seed_table(runs)
    assert table.loc[("10 %", 0)].tolist() == [2, 2, 1, 1]
    assert table.loc[("10 %", 1)].tolist() == [1, 1, 1, 1]


def test_our_noise_follows_the_noise_seed_and_not_the_global_seed():
    table = errata.noise_independent_of_seed(rate=0.5, n=200)
    assert table.loc[(1, 0)].item() == 0  # another global seed, the same noise seed: the same labels
    assert table.loc[(0, 1)].item() > 0
