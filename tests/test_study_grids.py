"""The study grid files under params/: each profile expands into the runs its comment promises."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from normtest_lib.config import RunConfig
from normtest_lib.grid.spec import load_grid, profile_reasons, read_grid_file

PARAMS = Path(__file__).resolve().parents[1] / "params"
INPUT_NORMALIZATION = PARAMS / "input_normalization.yml"


def configs(profile: str, **kwargs):
    return [run.config for run in load_grid(INPUT_NORMALIZATION, profile, **kwargs).runs]


def test_study_1_paper_grid_is_the_published_protocol_with_three_seeds():
    runs = configs("paper")
    assert len(runs) == 240
    assert Counter(c.model for c in runs) == {m: 60 for m in ("resnet18", "resnet50", "densenet121", "densenet161")}
    assert {c.input_norm for c in runs} == {"finetune", "pretrain", "instance", "unit", "minmax"}
    assert {(c.dataset, str(c.data_root)) for c in runs} >= {("svhn", "data/svhn"), ("cifar100", "data/cifar100")}
    recipe = {(c.pretrained, c.optimizer, c.lr, c.weight_decay, c.schedule, c.epochs, c.batch_size, c.input_size,
               c.pad, c.flip) for c in runs}
    assert recipe == {("imagenet", "adam", 1e-3, 0.0, "cosine", 100, 256, None, 4, True)}
    assert {c.seed for c in runs} == {0, 1, 2}


def test_study_1_extended_adds_resolution_recipe_and_scratch_controls():
    runs = configs("extended")
    scratch = [c for c in runs if c.pretrained == "none"]
    assert len(runs) == 240 * 2 * 2 + len(scratch) and len(scratch) == 48
    assert {(c.input_norm, c.input_size, c.optimizer) for c in scratch} == {("finetune", None, "adam")}
    assert {c.input_size for c in runs} == {None, "pretrained"}
    assert {(c.optimizer, c.lr, c.warmup_epochs) for c in runs} == {("adam", 1e-3, 0), ("adamw", 1e-4, 5)}


def test_study_1_small_data_sweeps_set_size_and_statistics_size():
    runs = configs("small_data")
    assert len(runs) == 2 * (3 * 5 - 1) * 3
    cells = {(c.train_subset, c.input_norm, c.stats_subset) for c in runs}
    assert (450, "finetune", 10) in cells and (450, "finetune", 1000) not in cells
    assert (None, "pretrain", None) in cells and (4500, "finetune", 1000) in cells


def test_study_1_local_profile_has_two_sources_and_two_targets(tmp_path, monkeypatch):
    """Two pretraining runs on Tiny ImageNet at 32 px, one per norm_layer (batch norm and none), each
    fine-tuned from on CIFAR-10 and its dimmed copy under every setting, with a scratch arm, and a small-data
    arm on the dimmed copy only."""
    monkeypatch.chdir(tmp_path)  # data roots are relative to where the grid runs; they need only exist here
    for folder in ("data/cifar10-jpeg", "data/tiny-imagenet-200"):
        (tmp_path / folder).mkdir(parents=True)
    grid = load_grid(INPUT_NORMALIZATION, "local", runs_root="results")
    sources = {run.config.norm_layer: run for run in grid.pretrains}
    assert set(sources) == {"torch_bn", "none"}
    for source in sources.values():
        assert (source.config.dataset, source.config.input_size, source.config.model) == ("tiny_imagenet_200", 32, "cifar_resnet")
        assert source.config.pretrained == "none"
    runs = [run.config for run in grid.runs]
    assert len(runs) == 90 and {c.dataset for c in runs} == {"imagefolder", "imagefolder+dim"}
    for c in runs:  # each fine-tuning run starts from the source of its own network, or from scratch
        weights = f"results/input_normalization/local/{sources[c.norm_layer].id}/best.pt"
        assert c.pretrained in (weights, "none")
    full = [c for c in runs if c.train_subset == 1000]
    assert Counter((c.input_norm, c.pretrained == "none") for c in full) == {
        ("finetune", False): 12, ("pretrain", False): 12, ("instance", False): 12, ("unit", False): 12,
        ("minmax", False): 12, ("finetune", True): 12,
    }
    # Fine-tuning gets 480 optimizer steps at either size; the from-scratch control more, to fit its training set,
    # and so do unit and minmax inputs to the network without normalization layers (480 steps left them learning).
    steps = {(c.train_subset, c.pretrained == "none"): c.epochs * -(-c.train_subset // c.batch_size)
             for c in runs if not (c.norm_layer == "none" and c.input_norm in ("unit", "minmax"))}
    assert steps == {(1000, False): 480, (500, False): 480, (1000, True): 1200} and not any(c.probes for c in runs)
    longer = Counter((c.input_norm, c.epochs) for c in runs if c.norm_layer == "none" and c.input_norm in ("unit", "minmax"))
    assert longer == {("unit", 150): 6, ("minmax", 150): 6}
    assert {c.epochs for c in runs if c.norm_layer == "torch_bn" and c.input_norm in ("unit", "minmax")} == {60}
    small = Counter((c.input_norm, c.stats_subset, c.dataset) for c in runs if c.train_subset == 500)
    assert small == {("finetune", None, "imagefolder+dim"): 6, ("finetune", 10, "imagefolder+dim"): 6,
                     ("pretrain", None, "imagefolder+dim"): 6}
    # The same runs whichever root they are run into: committed results stay found.
    assert [run.id for run in load_grid(INPUT_NORMALIZATION, "local").runs] == [run.id for run in grid.runs]


@pytest.mark.parametrize("profile", ["smoke", "paper"])
def test_every_study_grid_has_the_profiles_the_book_needs(profile):
    for grid_file in sorted(PARAMS.glob("*.yml")):
        assert load_grid(grid_file, profile).runs, grid_file.name


NORMALIZATION_LAYERS = PARAMS / "normalization_layers.yml"


def test_study_2_paper_grid_is_the_published_protocol_with_three_seeds():
    runs = [run.config for run in load_grid(NORMALIZATION_LAYERS, "paper").runs]
    assert len(runs) == 21
    assert Counter(c.norm_layer for c in runs) == {n: 3 for n in ("torch_bn", "bn", "in", "bin", "ln", "gn:c/4", "none")}
    recipe = {(c.model, c.depth_n, c.dataset, c.val_fraction, c.optimizer, c.lr, c.momentum, c.weight_decay,
               c.schedule, tuple(c.milestones), c.gamma, c.epochs, c.batch_size, c.input_norm, c.pretrained) for c in runs}
    assert recipe == {("cifar_resnet", 2, "cifar10", 0.2, "sgd", 0.1, 0.0, 0.0, "multistep", (75, 95), 0.1, 100, 128,
                       "center", "none")}
    assert {tuple(c.probes) for c in runs if c.norm_layer == "bin"} == {("features", "layer_stats", "bin_gate")}


def test_study_2_extended_sweeps_batch_size_groups_and_depth():
    runs = [run.config for run in load_grid(NORMALIZATION_LAYERS, "extended").runs]
    assert len(runs) == 8 * 3 * 3 * 3
    assert {(c.batch_size, c.lr) for c in runs} == {(8, 0.00625), (32, 0.025), (128, 0.1)}
    assert {"gn:c/4", "gn:32"} <= {c.norm_layer for c in runs} and {c.depth_n for c in runs} == {2, 3, 5}
    assert {(c.momentum, c.weight_decay) for c in runs} == {(0.9, 5e-4)}


def test_study_2_local_profile_is_every_variant_on_cifar10_jpeg_with_a_batch_sweep(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data" / "cifar10-jpeg").mkdir(parents=True)
    runs = [run.config for run in load_grid(NORMALIZATION_LAYERS, "local", runs_root="results").runs]
    # The published epochs and schedule on a 3,000-image subset.
    assert len(runs) == 30 and {(c.dataset, c.train_subset, c.epochs, tuple(c.milestones)) for c in runs} == {
        ("imagefolder", 3000, 100, (75, 95))
    }
    # The small batch at the published 8, with the learning rate scaled linearly (0.1 x 8 / 128).
    assert Counter((c.norm_layer, c.batch_size, c.lr) for c in runs if c.batch_size != 128) == {
        ("bn", 8, 0.00625): 3, ("gn:c/4", 8, 0.00625): 3
    }
    with_momentum = [c for c in runs if c.momentum == 0.9]
    assert len({c.norm_layer for c in with_momentum if c.batch_size == 128}) == 7
    # The published optimizer (no momentum) only as torch_bn's evidence beside the main runs.
    assert Counter((c.norm_layer, c.momentum) for c in runs if c not in with_momentum) == {("torch_bn", 0.0): 3}


CONVNORM_LABEL_NOISE = PARAMS / "convnorm_label_noise.yml"
STUDY_3_VARIANTS = {("conv", "torch_bn"), ("convnorm", "none"), ("convnorm", "torch_bn")}


def test_study_3_paper_grid_is_the_course_papers_protocol_with_three_seeds():
    runs = [run.config for run in load_grid(CONVNORM_LABEL_NOISE, "paper").runs]
    assert len(runs) == 27
    assert Counter((c.conv_layer, c.norm_layer) for c in runs) == {v: 9 for v in STUDY_3_VARIANTS}
    assert Counter(c.label_noise for c in runs) == {0.0: 9, 0.1: 9, 0.2: 9}
    recipe = {(c.model, c.dataset, c.optimizer, c.lr, c.momentum, c.weight_decay, tuple(c.milestones), c.epochs,
               c.batch_size, c.input_norm, c.label_noise_kind, c.test_every_epoch) for c in runs}  # fmt: skip
    assert recipe == {("cifar_resnet18", "cifar10", "sgd", 0.1, 0.9, 1e-4, (40, 80), 100, 128, "finetune", "symmetric", True)}
    # Each seed draws its own noisy labels, shared by the three variants at that seed.
    assert {(c.seed, c.noise_seed) for c in runs} == {(0, 0), (1, 1), (2, 2)}
    assert {tuple(c.probes) for c in runs} == {("memorization",)}


def test_study_3_extended_adds_kinds_rates_and_cifar100_without_duplicate_clean_runs():
    runs = [run.config for run in load_grid(CONVNORM_LABEL_NOISE, "extended").runs]
    assert {(c.dataset, c.label_noise_kind) for c in runs if c.label_noise > 0} == {
        ("cifar10", "symmetric"), ("cifar10", "symmetric_exact"), ("cifar10", "asymmetric"),
        ("cifar100", "symmetric"), ("cifar100", "symmetric_exact"),
    }  # fmt: skip
    assert {c.label_noise for c in runs} == {0.0, 0.1, 0.2, 0.4}
    clean = [c for c in runs if c.label_noise == 0]
    assert len(clean) == 2 * 3 * 3  # one clean run per data set, variant and seed


def test_study_3_local_profile_reduces_network_data_and_epochs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data" / "cifar10-jpeg").mkdir(parents=True)
    runs = [run.config for run in load_grid(CONVNORM_LABEL_NOISE, "local", runs_root="results").runs]
    assert len(runs) == 27
    assert {(c.model, c.depth_n, c.dataset, c.train_subset, c.epochs, tuple(c.milestones)) for c in runs} == {
        ("cifar_resnet", 2, "imagefolder", 2000, 100, (40, 80))  # the published epochs and schedule
    }
    assert {(c.conv_layer.partition(":")[0], c.norm_layer) for c in runs} == STUDY_3_VARIANTS
    # ConvNorm's running average decays over the run's steps: 100 epochs of ceil(2,000 / 128) batches.
    assert {c.conv_layer for c in runs if c.conv_layer != "conv"} == {"convnorm:1600"}
    # The test split twice per run: at the epoch chosen on validation and at the last one.
    assert {(c.test_every_epoch, c.test_last_epoch) for c in runs} == {(False, True)}
    assert Counter(c.label_noise for c in runs) == {0.0: 9, 0.1: 9, 0.2: 9}


def test_every_local_profile_says_why_it_changes_each_parameter_it_gives_a_reason_for():
    for grid in sorted(PARAMS.glob("*.yml")):
        for key in profile_reasons(grid, "local") if "local" in read_grid_file(grid)["profiles"] else {}:
            assert key in RunConfig.model_fields, (grid.name, key)
    assert {"train_subset", "momentum", "batch_size"} <= set(profile_reasons(NORMALIZATION_LAYERS, "local"))
