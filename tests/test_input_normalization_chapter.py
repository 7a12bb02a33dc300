"""Study 1's chapter executes end to end on fabricated results, with part of the data missing."""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import numpy as np
import papermill
import pytest
import yaml
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
STUDY = "input_normalization"
PRETRAIN_ID = "0123456789ab"
LOCAL_PRETRAIN_STATS = {"mean": [0.48, 0.45, 0.40], "std": [0.28, 0.27, 0.28], "n_images": 100}
ACCURACY = {"finetune": 0.70, "pretrain": 0.69, "instance": 0.60, "unit": 0.68, "minmax": 0.66}


def write_run(folder: Path, params: dict, summary: dict, test_acc: bool) -> None:
    folder.mkdir(parents=True)
    (folder / "params.yaml").write_text(yaml.safe_dump(params))
    (folder / "summary.json").write_text(json.dumps({"status": "complete", **summary}))
    final = summary["test_acc_at_best_val"]
    rows = [f"{e},{final * e / 3:.4f},{final * e / 3 - 0.01:.4f},{final * e / 3 if test_acc else ''}" for e in (1, 2, 3)]
    (folder / "history.csv").write_text("epoch,train_acc,val_acc,test_acc\n" + "\n".join(rows) + "\n")


def fabricate_local_profile(root: Path) -> None:
    profile = root / STUDY / "local"
    stats = LOCAL_PRETRAIN_STATS
    write_run(profile / PRETRAIN_ID, {"model": "small", "dataset": "tiny_imagenet_200", "input_size": 32, "epochs": 10,
                                      "pretrained": "none", "seed": 0},
              {"test_acc_at_best_val": 0.25, "best_val_acc": 0.26, "input_size": 32}, test_acc=True)
    common = {"model": "small", "dataset": "imagefolder", "data_root": "data/cifar10-jpeg", "epochs": 3,
              "pretrained": f"results/{STUDY}/local/{PRETRAIN_ID}/best.pt"}
    cells = [(None, s, None) for s in ACCURACY] + [(None, "scratch", None)]
    cells += [(450, "finetune", None), (450, "pretrain", None), (450, "finetune", 10)]
    for seed in (0, 1, 2):
        for subset, setting, images in cells:
            params = {**common, "seed": seed, "train_subset": subset, "stats_subset": images,
                      "input_norm": "finetune" if setting == "scratch" else setting}
            if setting == "scratch":
                params["pretrained"] = "none"
            accuracy = ACCURACY.get(setting, 0.5) - (0.2 if subset else 0) + seed / 100 + (images or 0) / 1000
            summary = {"test_acc_at_best_val": accuracy, "best_val_acc": accuracy, "n_train": subset or 45000, "best_epoch": 3,
                       "pretrain_stats": None if setting == "scratch" else stats, "model_source_sha256": "f" * 64}
            write_run(profile / f"{setting}-{subset}-{images}-{seed}", params, summary, test_acc=subset is None)


# Two networks pretrained on Tiny ImageNet, one per normalization layer (a grid's pretrain: {follow: [norm_layer]}).
SOURCES = {"torch_bn": "aaaaaaaaaaaa", "none": "bbbbbbbbbbbb"}
# Per source: finetune's accuracy and each setting's gap to it; pretrain gains 2 points from torch_bn and loses 2
# from none, so pooling the sources would give 0. The dimmed copy is 5 points harder throughout.
TWO_SOURCE_ACCURACY = {"torch_bn": (0.70, {"pretrain": 0.02, "instance": -0.10}),
                       "none": (0.60, {"pretrain": -0.02, "instance": -0.05})}


def fabricate_two_sources(root: Path) -> None:
    """The local profile rerun with two pretraining sources, fine-tuned on the JPEG copy and its dimmed copy
    (``imagefolder+dim``): every setting on both, the small-data sweep and the from-scratch control on the first."""
    profile = root / STUDY / "local"
    for norm_layer, run_id in SOURCES.items():
        write_run(profile / run_id, {"model": "small", "dataset": "tiny_imagenet_200", "input_size": 32, "epochs": 10,
                                     "pretrained": "none", "seed": 0, "norm_layer": norm_layer},
                  {"test_acc_at_best_val": 0.25, "best_val_acc": 0.26, "input_size": 32}, test_acc=True)
        finetune, gaps = TWO_SOURCE_ACCURACY[norm_layer]
        cells = [(dataset, None, setting, None) for dataset in ("imagefolder", "imagefolder+dim")
                 for setting in ("finetune", *gaps)]
        cells += [("imagefolder", None, "scratch", None), ("imagefolder", 450, "finetune", None),
                  ("imagefolder", 450, "pretrain", None), ("imagefolder", 450, "finetune", 10)]
        for seed in (0, 1, 2):
            for dataset, subset, setting, images in cells:
                params = {"model": "small", "dataset": dataset, "data_root": "data/cifar10-jpeg", "epochs": 3,
                          "norm_layer": norm_layer, "seed": seed, "train_subset": subset, "stats_subset": images,
                          "input_norm": "finetune" if setting == "scratch" else setting,
                          "pretrained": "none" if setting == "scratch" else f"results/{STUDY}/local/{run_id}/best.pt"}
                accuracy = (finetune + gaps.get(setting, 0.0) - (0.05 if "+" in dataset else 0) - (0.2 if subset else 0)
                            + seed / 100 + (images or 0) / 1000 - (0.3 if setting == "scratch" else 0))
                summary = {"test_acc_at_best_val": accuracy, "best_val_acc": accuracy, "n_train": subset or 45000,
                           "best_epoch": 3, "pretrain_stats": None if setting == "scratch" else LOCAL_PRETRAIN_STATS,
                           "model_source_sha256": run_id * 5 + "0000"}
                write_run(profile / f"{norm_layer}-{dataset}-{setting}-{subset}-{images}-{seed}", params, summary,
                          test_acc=subset is None)


def write_imagefolder(root: Path, per_class: int = 6) -> None:
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for label in ("cat", "dog"):
            folder = root / split / label
            folder.mkdir(parents=True)
            for index in range(per_class):
                Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(folder / f"{index}.png")


def execute_chapter(study: str, project: Path, parameters: dict | None = None) -> str:
    """Execute ``notebooks/<study>.ipynb`` in ``project`` (its results/ and data/); the executed cells as JSON text.

    ``parameters`` default to the study's grid from this repository (``project`` has none).
    """
    output = project / "chapter.ipynb"
    if parameters is None:
        parameters = {"grid_file": str(REPO / "params" / f"{study}.yml")}
    papermill.execute_notebook(
        str(REPO / "notebooks" / f"{study}.ipynb"), str(output), cwd=str(project), progress_bar=False,
        kernel_name="python3", parameters=parameters,
    )
    return json.dumps(nbformat.read(output, as_version=4).cells)


def figure_captions() -> dict[str, str]:
    """``{glue key: caption}`` of every ``{glue:figure}`` directive of the chapter."""
    notebook = nbformat.read(REPO / "notebooks" / f"{STUDY}.ipynb", as_version=4)
    markdown = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "markdown")
    return dict(re.findall(r"```\{glue:figure\} (\w+)\n(.*?)```", markdown, flags=re.S))


def glued_outputs(text: str) -> dict[str, dict]:
    """``{glue key: output data}`` of an executed chapter (:func:`execute_chapter`'s text)."""
    return {o["metadata"]["scrapbook"]["name"]: o["data"] for cell in json.loads(text) if cell["cell_type"] == "code"
            for o in cell["outputs"] if "scrapbook" in o.get("metadata", {})}


def test_every_figure_caption_names_the_runs_behind_it():
    # The count glued as <key>_runs says how many runs converged (converged.runs_behind); the slow test below
    # checks the glued text itself.
    captions = figure_captions()
    assert {"answer_figure", "history_grid", "small_data_size", "small_data_stats"} <= set(captions)
    for key, caption in captions.items():
        assert f"Runs behind the figure: {{glue:text}}`{key}_runs`." in caption, key


@pytest.mark.slow
def test_the_chapter_runs_on_partial_results_and_without_tiny_imagenet(tmp_path, monkeypatch):
    monkeypatch.setenv("NORMTEST_CACHE_DIR", str(tmp_path / "cache"))
    fabricate_local_profile(tmp_path / "results")
    write_imagefolder(tmp_path / "data" / "cifar10-jpeg")
    text = execute_chapter(STUDY, tmp_path)
    assert "Neither committed statistics nor images on this machine (run `make data`): tiny_imagenet_200" in text
    assert "computed from images here: cifar10-jpeg." in text  # no committed statistics in this project
    assert "pretrained in this profile on `tiny_imagenet_200` at 32 px for 10 epochs" in text
    # instance is 10 points under finetune in every seed: the generated sentence must say it exceeds the spread.
    assert "`instance` -10.0 [-10.0, -10.0]" in text
    assert "`finetune, stats from 10` (train_images 450) +2.0" in text and "(train_images 45000) +2.0" not in text
    assert "81.0" not in text  # no typed-in number from elsewhere
    assert "finetune, stats from 10" in text
    glued = glued_outputs(text)
    for key in figure_captions():
        assert "converged" in glued[f"{key}_runs"]["application/papermill.record/text/plain"], key


@pytest.mark.slow
def test_without_images_table1_comes_from_the_committed_statistics(tmp_path, monkeypatch):
    from test_dataset_statistics_chapter import fabricate_statistics

    from normtest_lib.report import stats_tables
    from normtest_lib.stats.channel import ChannelStats
    from normtest_lib.stats.reference import PUBLISHED_TABLE1

    monkeypatch.setenv("NORMTEST_CACHE_DIR", str(tmp_path / "cache"))
    fabricate_local_profile(tmp_path / "results")
    records = fabricate_statistics(tmp_path)
    assert not (tmp_path / "data").exists()  # a fresh clone: no images, only committed results
    text = execute_chapter(STUDY, tmp_path)
    assert "Read from `results/dataset_statistics/local`: cifar10-jpeg, tiny_imagenet_200; computed from images here: none." in text
    # The published row stands beside the committed one, with the difference.
    assert f"{PUBLISHED_TABLE1['tiny_imagenet_200'].mean[0]:.2f}" in text and "difference" in text
    # This profile's Table 1 under the pretraining run's statistics, from the record alone.
    glued = glued_outputs(text)
    local = glued["table1_local"]["application/papermill.record/text/html"]
    recorded = ChannelStats.from_dict(LOCAL_PRETRAIN_STATS)
    expected = stats_tables.records_table1_frame({"cifar10-jpeg": records["cifar10-jpeg"]}, pretrain_stats=recorded)
    for value in expected.loc[("cifar10-jpeg", "pretrain")]:
        assert f"{round(value, 2) + 0.0:.2f}" in local


@pytest.mark.slow
def test_the_chapter_compares_two_pretraining_sources_apart(tmp_path, monkeypatch):
    monkeypatch.setenv("NORMTEST_CACHE_DIR", str(tmp_path / "cache"))
    fabricate_two_sources(tmp_path / "results")
    write_imagefolder(tmp_path / "data" / "cifar10-jpeg")
    text = execute_chapter(STUDY, tmp_path)
    # One sentence per source, each with its record.
    assert "The `torch_bn` cells: cifar10-jpeg and cifar10-jpeg+dim fine-tuned from a `small` pretrained" in text
    assert "The `none` cells: cifar10-jpeg and cifar10-jpeg+dim fine-tuned from a `small` pretrained" in text
    # Paired within each (source, data set): never the pooled 0.
    assert "by +2.0 [+2.0, +2.0] points for the `torch_bn` network on `cifar10-jpeg`" in text
    assert "by -2.0 [-2.0, -2.0] points for the `none` network on `cifar10-jpeg+dim`" in text
    assert "`instance` (source network torch_bn, data cifar10-jpeg) -10.0 [-10.0, -10.0]" in text
    assert "`instance` (source network none, data cifar10-jpeg+dim) -5.0 [-5.0, -5.0]" in text
    assert "`finetune, stats from 10` (source network none, data cifar10-jpeg, train_images 450) +3.0" in text
    # The profile's count in the words of the landing page and the errata (report/counts.py), pretraining runs apart,
    # and the tables' captions link the glossary sections of their names.
    assert "62 of the 92 runs in the `local` profile's grid are complete (2 pretraining runs and 60 fine-tuning runs)" in text
    assert 'href=\\"glossary.html#glossary-input-settings\\"' in text
