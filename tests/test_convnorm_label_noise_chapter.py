"""Study 3's chapter executes end to end on fabricated results."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from test_book import built_book, executed_chapter  # noqa: F401 (a fixture)

STUDY = "convnorm_label_noise"
VARIANTS = {"bn": ("conv", "torch_bn", 0.80), "convnorm": ("convnorm:500", "none", 0.76), "convnorm+bn": ("convnorm:500", "torch_bn", 0.79)}
EPOCHS = 12


def fabricate(root: Path) -> None:
    for seed in (0, 1, 2):
        for noise in (0.0, 0.1, 0.2):
            for name, (conv, norm, base) in VARIANTS.items():
                folder = root / STUDY / "local" / f"{name}-{noise}-{seed}"
                folder.mkdir(parents=True)
                params = {"model": "cifar_resnet", "depth_n": 1, "dataset": "imagefolder", "conv_layer": conv, "norm_layer": norm,
                          "label_noise": noise, "label_noise_kind": "symmetric", "seed": seed, "noise_seed": seed,
                          "epochs": EPOCHS, "train_subset": 5000, "milestones": [8, 11]}  # fmt: skip
                (folder / "params.yaml").write_text(yaml.safe_dump(params))
                # Noise costs bn 10 points per 10 %, convnorm 5: convnorm loses less.
                accuracy = base - noise * (1.0 if name == "bn" else 0.5) + seed / 100
                # The last epoch's weights lose 10 points per 10 % noise to memorization: 2 points at 20 %.
                summary = {"status": "complete", "test_acc_at_best_val": accuracy, "best_val_acc": accuracy, "best_epoch": EPOCHS,
                           "final_test_acc": accuracy - noise / 10,
                           "noise_rate_actual": noise * 0.9, "noise_rate_actual_val": 0.0, "num_classes": 10}  # fmt: skip
                (folder / "summary.json").write_text(json.dumps(summary))
                history = [f"{e},{accuracy * e / EPOCHS:.4f},{accuracy * e / EPOCHS:.4f}" for e in range(1, EPOCHS + 1)]
                (folder / "history.csv").write_text("epoch,val_acc,test_acc\n" + "\n".join(history) + "\n")
                rows = []
                for e in range(1, EPOCHS + 1):
                    if noise:
                        rows += [f"{e},memorization,flipped_fit_noisy,{0.05 * e}", f"{e},memorization,flipped_fit_true,{0.5}"]
                    rows += [f"{e},memorization,clean_acc,{accuracy}"]
                (folder / "probes.csv").write_text("epoch,probe,name,value\n" + "\n".join(rows) + "\n")
                if noise:
                    flipped = int(100 * noise * 0.9)
                    labels = [f"{i},{i % 10},{(i + 1) % 10 if i < flipped else i % 10}" for i in range(100)]
                    (folder / "noisy_labels.csv").write_text("index,label,noisy_label\n" + "\n".join(labels) + "\n")


@pytest.mark.slow
def test_the_chapter_runs_on_fabricated_results(built_book):
    # The book build executed the chapter on fabricate()'s runs (test_book.fabricate_study_results).
    text = json.dumps(executed_chapter(built_book, STUDY).cells)
    assert "81.0 \\u00b1 1.0 (n=3)" in text  # bn without noise: 0.80, 0.81, 0.82 (the JSON text escapes ±)
    assert "94.5" in text  # the published bn accuracy, from the data file
    assert "`convnorm` (label noise 20 %) +6.0 [+6.0, +6.0]" in text  # 67 against bn's 61 at 20 % noise
    assert "No ConvNorm figures" in text  # the fabricated project has no benchmark file
    assert "changes" in text and "not the published protocol" in text
    assert "2.0 \\u00b1 0.0 (n=3)" in text  # chosen minus last epoch at 20 % noise, every variant
    assert "at 20 % noise, `bn` 60 %, `convnorm` 60 %, `convnorm+bn` 60 %. Chance is about 10 %" in text
    assert "27 of the 27 runs in the `local` profile's grid are complete" in text  # report/counts.py's words
    assert 'href=\\"glossary.html#glossary-study-labels\\"' in text  # the captions link the variants' glossary section
