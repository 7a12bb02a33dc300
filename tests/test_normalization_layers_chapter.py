"""Study 2's chapter executes end to end on fabricated results."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from test_book import built_book, executed_chapter  # noqa: F401 (a fixture)

STUDY = "normalization_layers"
ACCURACY = {"torch_bn": 0.70, "bn": 0.70, "in": 0.62, "bin": 0.69, "ln": 0.63, "gn:c/4": 0.65, "none": 0.60}
LAYERS = ("stem.norm", "stages.0.0.norm1")


def probe_rows(layer: str, epochs: int) -> list[str]:
    rows = []
    for epoch in range(1, epochs + 1):
        rows += [f"{epoch},features,{name},{value * epoch}" for name, value in (("p01", 0.0), ("p20", 0.1), ("p80", 0.5), ("p99", 1.0))]
        if layer != "none":
            rows += [f"{epoch},layer_stats,{path}/{stat},{0.1 * epoch}" for path in LAYERS for stat in ("mean", "std")]
        if layer == "bin":
            rows += [f"{epoch},bin_gate,{path}/{stat},{1 - 0.1 * epoch}" for path in LAYERS for stat in ("mean", "min", "max")]
    return rows


def fabricate(root: Path) -> None:
    cells = [(layer, 128) for layer in ACCURACY] + [("bn", 32), ("gn:c/4", 32)]
    for seed in (0, 1, 2):
        for layer, batch in cells:
            folder = root / STUDY / "local" / f"{layer.replace(':', '').replace('/', '')}-{batch}-{seed}"
            folder.mkdir(parents=True)
            params = {"model": "cifar_resnet", "depth_n": 2, "dataset": "imagefolder", "norm_layer": layer, "seed": seed,
                      "batch_size": batch, "epochs": 3, "train_subset": 8000, "milestones": [2, 3]}
            (folder / "params.yaml").write_text(yaml.safe_dump(params))
            accuracy = ACCURACY[layer] + seed / 100 - (0.02 if batch == 32 and layer == "bn" else 0)
            summary = {"status": "complete", "test_acc_at_best_val": accuracy, "best_val_acc": accuracy + 0.01,
                       "best_epoch": 3, "test_micro_f1_at_best_val": accuracy, "test_macro_f1_at_best_val": accuracy - 0.01}
            (folder / "summary.json").write_text(json.dumps(summary))
            history = [f"{e},{accuracy * e / 3 + 0.1:.4f},{accuracy * e / 3:.4f}" for e in (1, 2, 3)]
            (folder / "history.csv").write_text("epoch,train_acc,val_acc\n" + "\n".join(history) + "\n")
            (folder / "probes.csv").write_text("epoch,probe,name,value\n" + "\n".join(probe_rows(layer, 3)) + "\n")


@pytest.mark.slow
def test_the_chapter_runs_on_fabricated_results(built_book):
    # The book build executed the chapter on fabricate()'s runs (test_book.fabricate_study_results).
    text = json.dumps(executed_chapter(built_book, STUDY).cells)
    # in is 8 points under torch_bn in every seed; bn is identical to it.
    assert "`in` -8.0 [-8.0, -8.0]" in text
    assert "No benchmark figures" in text
    assert "errata-layers-bin-gate" in text  # the errata section links to the errata chapter (tested there)
    assert "87.9" in text  # the published torch_bn test accuracy, from the data file
    assert "27 of the 30 runs in the `local` profile's grid are complete" in text  # report/counts.py's words
    assert 'href=\\"glossary.html#glossary-norm-layers\\"' in text  # the captions link the layers' glossary section
