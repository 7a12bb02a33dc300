"""Study 2's errata evidence: the earlier work's frozen gate reproduced, and the gates of runs read back."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from normtest_lib.studies.normalization_layers.errata import (
    EARLIER_FLAG_COLUMN,
    HistoryKeepingBN,
    autograd_nodes,
    batch_size_table,
    data_dir_cut_table,
    earlier_data_root,
    eval_batch_size_demo,
    final_gates,
    flag_parsing_table,
    recreated_gate_demo,
    running_stats_history_demo,
    sys_path_edits,
    test_counts,
)


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


def test_running_statistics_with_history_grow_a_graph_and_ours_hold_none():
    table = running_stats_history_demo(steps=(1, 5))
    defective, ours = table.iloc[0], table.iloc[1]
    assert 0 < defective["after 1 step"] < defective["after 5 steps"]
    assert ours.tolist() == [0, 0]


def test_history_keeping_bn_keeps_the_batch_moments_and_their_history():
    layer = HistoryKeepingBN(2)
    x = torch.randn(4, 2, 3, 3, requires_grad=True)
    layer.train()(x)
    assert layer.running_mean.grad_fn is not None and autograd_nodes(layer.running_mean) > 0
    assert layer.running_mean.detach() == pytest.approx(0.1 * x.detach().mean(dim=(0, 2, 3)), abs=1e-6)
    assert autograd_nodes(torch.zeros(2)) == 0


def test_an_evaluated_image_depends_on_its_batch_only_with_the_defect():
    table = eval_batch_size_demo(eval_batch_sizes=(1, 16, 128), steps=5)
    ours, defective = table.loc["ours (bn)"], table.iloc[1]
    assert (ours < 1e-5).all()
    # n / (n - 1) from the evaluation batch: the fewer images, the larger the error.
    assert defective["eval batch 1"] > defective["eval batch 16"] > defective["eval batch 128"] > 1e-5


def test_flags_kept_as_text_turn_on_for_false_and_ours_do_not():
    table = flag_parsing_table(("False", "true", "0"))
    assert table[EARLIER_FLAG_COLUMN].tolist() == [True, True, True]  # any text is not False
    ours = table["ours, --set flip=..."]
    assert ours["False"] == "False" and ours["true"] == "True"
    assert ours["0"].startswith("refused: flip:")


def test_the_earlier_data_folder_cut_works_only_for_its_readme_s_example(tmp_path):
    assert earlier_data_root("./dataset/cifar-10-batches-py") == "./dataset/"
    assert earlier_data_root("./dataset/cifar-10-batches-py/") == "./dataset/c"  # one character too few cut
    assert earlier_data_root("/data/cifar10") == ""  # shorter than 19 characters: nothing left
    table = data_dir_cut_table(("./dataset/cifar-10-batches-py", "./dataset/cifar-10-batches-py/", str(tmp_path)))
    works = table["the folder holding cifar-10-batches-py"]
    assert works.tolist() == [True, False, False]
    assert table.loc["./dataset/cifar-10-batches-py/", "the earlier work looked in"] == "'./dataset/c'"
    assert table["ours (data_root)"].str.startswith("refused: ").all()  # no CIFAR-10 in any of them: said, not guessed
    assert str(tmp_path) in table.loc[str(tmp_path), "ours (data_root)"]


def test_sys_path_edits_are_found_in_the_syntax_tree(tmp_path):
    (tmp_path / "hack.py").write_text("import sys\nsys.path.insert(0, '..')\nsys.path += ['x']\nprint(sys.path.index('x'))\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "clean.py").write_text("import os\npath = os.path.join('a', 'b')\n")
    edits = sys_path_edits(tmp_path)
    assert edits["line"].tolist() == [2, 3] and edits["file"].tolist() == ["hack.py", "hack.py"]
    assert edits.attrs["files"] == 2
    assert sys_path_edits(tmp_path / "sub").empty


def test_test_counts_count_test_functions_per_test_file(tmp_path):
    (tmp_path / "test_a.py").write_text("def test_one():\n    pass\n\ndef helper():\n    pass\n\nclass TestB:\n    def test_two(self):\n        pass\n")
    (tmp_path / "conftest.py").write_text("def test_not_a_test_file():\n    pass\n")
    assert test_counts(tmp_path)["tests"].to_dict() == {"test_a.py": 2}


def test_batch_size_table_is_mean_std_over_seeds_per_variant_and_batch_size():
    runs = pd.DataFrame({
        "norm_layer": ["bn", "bn", "gn", "bn"], "batch_size": [32, 32, 32, 128], "seed": [0, 1, 0, 0],
        "status": ["complete"] * 4, "test_acc_at_best_val": [0.5, 0.7, 0.4, 0.6],
    })  # fmt: skip
    table = batch_size_table(runs, "test_acc_at_best_val")
    assert table.loc["bn", "batch 32"] == "60.0 ± 14.1 (n=2)"
    assert table.loc["gn", "batch 128"] == "–" and table.loc["bn", "batch 128"] == "60.0 (n=1)"
