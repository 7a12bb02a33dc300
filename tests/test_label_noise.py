"""Label noise: the kinds' real rates, the asymmetric map, the noise's own seed, which splits it touches,
the run's noisy_labels.csv and summary, and the memorization probe (tiny synthetic runs on the CPU)."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from torch import nn

from normtest_lib.api import load_run
from normtest_lib.config import make_config
from normtest_lib.data.cifar import CIFAR10_CLASSES
from normtest_lib.data.label_noise import (
    ASYMMETRIC_MAP,
    check_asymmetric_classes,
    flip_rate,
    noisy_labels,
    read_noisy_labels,
)
from normtest_lib.data.synthetic import CLASSES as SYNTHETIC_CLASSES
from normtest_lib.data.synthetic import load_synthetic
from normtest_lib.engine import prepare, train
from normtest_lib.engine.prepare import prepare_data
from normtest_lib.engine.probes import (
    MEMORIZATION_PER_GROUP,
    ProbeContext,
    memorization_probe,
    memorization_subset,
    read_probes,
)
from normtest_lib.engine.trained import load_trained, predict_split
from normtest_lib.errors import ConfigError
from normtest_lib.grid.spec import run_id

K = 10
MISSING_FOR_SYNTHETIC = "airplane, automobile, bird, cat, deer, dog, horse, truck"
TINY = dict(
    epochs=1,
    batch_size=40,
    train_subset=150,
    val_fraction=0.2,
    deterministic=True,
    device="cpu",
    eval_batch_size=64,
)
_DATA: dict = {}


def synthetic_data(name=None, root=None, download=False):
    """The synthetic set at 400 training / 100 test images, generated once."""
    if "synthetic" not in _DATA:
        _DATA["synthetic"] = load_synthetic(n_train=400, n_test=100)
    return _DATA["synthetic"]


def cifar_named_data(name=None, root=None, download=False):
    """The same pixels under CIFAR-10's class names, for the asymmetric map."""
    return dataclasses.replace(synthetic_data(), name="cifar10", classes=CIFAR10_CLASSES)


@pytest.fixture(autouse=True)
def small_synthetic(monkeypatch):
    monkeypatch.setattr(prepare, "load_dataset", synthetic_data)


def balanced_labels(per_class: int, k: int = K) -> torch.Tensor:
    """``per_class`` of each class, in a shuffled order (the noise must not depend on the order anyway)."""
    labels = torch.arange(k).repeat_interleave(per_class)
    return labels[torch.randperm(labels.numel(), generator=torch.Generator().manual_seed(5))]


# --- the kinds -------------------------------------------------------------------------


def test_symmetric_real_rate_is_p_times_one_minus_one_over_k():
    labels = balanced_labels(10_000)  # 100,000 labels
    for p in (0.1, 0.4):
        noisy = noisy_labels(labels, SYNTHETIC_CLASSES, p, "symmetric", noise_seed=0)
        # round(p * N) images redrawn; a tenth of them draw their own class back (binomial sd about 0.0006).
        assert flip_rate(labels, noisy) == pytest.approx(p * (1 - 1 / K), abs=0.003)
        assert noisy.dtype == torch.int64 and int(noisy.min()) >= 0 and int(noisy.max()) < K
    assert torch.equal(labels, balanced_labels(10_000))  # the input is not modified


def test_symmetric_exact_real_rate_is_p_and_never_keeps_the_class():
    labels = balanced_labels(10_000)
    noisy = noisy_labels(labels, SYNTHETIC_CLASSES, 0.37, "symmetric_exact", noise_seed=4)
    changed = labels != noisy
    assert int(changed.sum()) == 37_000  # exactly round(p * N): every chosen image changes class
    assert flip_rate(labels, noisy) == 0.37
    # The new class is uniform over the K - 1 others (each gets about 1/9 of a class's flips).
    from_zero = noisy[changed & (labels == 0)]
    counts = torch.bincount(from_zero, minlength=K)
    assert counts[0] == 0
    expected = from_zero.numel() / (K - 1)
    assert all(abs(int(c) - expected) < 5 * math.sqrt(expected) for c in counts[1:])


def test_symmetric_kinds_corrupt_the_same_images_and_levels_are_nested():
    labels = balanced_labels(1000)
    symmetric = noisy_labels(labels, SYNTHETIC_CLASSES, 0.3, "symmetric", noise_seed=2)
    exact = noisy_labels(labels, SYNTHETIC_CLASSES, 0.3, "symmetric_exact", noise_seed=2)
    assert bool(((labels != symmetric) <= (labels != exact)).all())
    low = noisy_labels(labels, SYNTHETIC_CLASSES, 0.1, "symmetric_exact", noise_seed=2)
    noisy_at_low = labels != low
    assert torch.equal(low[noisy_at_low], exact[noisy_at_low])  # noisy at 10 %: same noisy label at 30 %


def test_asymmetric_flips_only_the_mapped_classes_at_rate_p_each():
    labels = balanced_labels(1000)
    index = {name: i for i, name in enumerate(CIFAR10_CLASSES)}
    noisy = noisy_labels(labels, CIFAR10_CLASSES, 0.3, "asymmetric", noise_seed=1)
    for name, i in index.items():
        members = labels == i
        changed = members & (noisy != labels)
        if name in ASYMMETRIC_MAP:
            assert int(changed.sum()) == 300  # round(0.3 * 1000) of each source class
            assert bool((noisy[changed] == index[ASYMMETRIC_MAP[name]]).all())
        else:
            assert int(changed.sum()) == 0
    assert flip_rate(labels, noisy) == pytest.approx(5 * 300 / 10_000)


def test_asymmetric_is_by_class_name_not_index():
    names = tuple(reversed(CIFAR10_CLASSES))  # truck is class 0 here, airplane class 9
    labels = balanced_labels(100)
    noisy = noisy_labels(labels, names, 0.5, "asymmetric")
    truck, automobile = names.index("truck"), names.index("automobile")
    changed = noisy != labels
    assert int((changed & (labels == truck)).sum()) == 50
    assert bool((noisy[changed & (labels == truck)] == automobile).all())
    assert set(noisy[changed].tolist()) == {names.index(target) for target in ASYMMETRIC_MAP.values()}


def test_asymmetric_refusal_names_the_missing_classes():
    with pytest.raises(ValueError, match=f"has no class named {MISSING_FOR_SYNTHETIC}"):
        check_asymmetric_classes(SYNTHETIC_CLASSES, "synthetic")
    partial = ("cat", "dog", "frog")
    with pytest.raises(ValueError, match="no class named airplane, automobile, bird, deer, horse, truck "):
        check_asymmetric_classes(partial, "pets")
    check_asymmetric_classes(CIFAR10_CLASSES, "cifar10")


def test_noise_depends_on_noise_seed_only():
    labels = balanced_labels(500)
    first = noisy_labels(labels, SYNTHETIC_CLASSES, 0.2, "symmetric", noise_seed=3)
    assert torch.equal(first, noisy_labels(labels, SYNTHETIC_CLASSES, 0.2, "symmetric", noise_seed=3))
    assert not torch.equal(first, noisy_labels(labels, SYNTHETIC_CLASSES, 0.2, "symmetric", noise_seed=4))
    assert torch.equal(noisy_labels(labels, SYNTHETIC_CLASSES, 0.0, "symmetric", noise_seed=3), labels)


# --- the run schema --------------------------------------------------------------------


def test_config_refuses_bad_noise_settings():
    with pytest.raises(ConfigError, match="label_noise: Input should be less than 1"):
        make_config(label_noise=1.0)
    with pytest.raises(ConfigError, match="label_noise: Input should be greater than or equal to 0"):
        make_config(label_noise=-0.1)
    with pytest.raises(ConfigError, match="label_noise_kind: Input should be 'symmetric', 'symmetric_exact' or"):
        make_config(label_noise=0.1, label_noise_kind="pairflip")
    with pytest.raises(ConfigError, match="label_noise_rate: unknown parameter"):
        make_config(label_noise_rate=0.1)
    with pytest.raises(ConfigError, match="noise_seed: Input should be a valid integer"):
        make_config(noise_seed="one")
    with pytest.raises(ConfigError, match="noisy_val: true needs a validation split"):
        make_config(noisy_val=True, val_fraction=0.0)


def test_config_refuses_asymmetric_noise_on_a_data_set_without_the_map(tmp_path):
    with pytest.raises(ConfigError, match=f"data set 'synthetic' has no class named {MISSING_FOR_SYNTHETIC}"):
        make_config(label_noise=0.1, label_noise_kind="asymmetric")
    # Without noise the kind is only a setting: fine. CIFAR-10's names are known before loading.
    make_config(label_noise=0.0, label_noise_kind="asymmetric")
    make_config(label_noise=0.1, label_noise_kind="asymmetric", dataset="cifar10", data_root=str(tmp_path))


def test_default_noise_settings_leave_run_ids_unchanged():
    defaults = dict(label_noise=0, label_noise_kind="symmetric", noise_seed=0, noisy_val=False)
    assert run_id(make_config(**defaults, lr=0.1)) == run_id(make_config(lr=0.1))
    assert run_id(make_config(label_noise=0.1)) != run_id(make_config())
    assert run_id(make_config(label_noise=0.1, noise_seed=1)) != run_id(make_config(label_noise=0.1))


# --- where the noise goes --------------------------------------------------------------


def by_index(index: torch.Tensor, labels: torch.Tensor) -> dict[int, int]:
    return dict(zip(index.tolist(), labels.tolist()))


def test_noisy_run_trains_on_the_clean_runs_images_with_only_training_labels_changed():
    clean = prepare_data(make_config(val_fraction=0.2, train_subset=200, seed=3))
    noisy = prepare_data(make_config(val_fraction=0.2, train_subset=200, seed=3, label_noise=0.4))
    assert torch.equal(noisy.train_index, clean.train_index) and torch.equal(noisy.val_index, clean.val_index)
    assert torch.equal(noisy.train.images, clean.train.images)
    assert noisy.finetune_stats == clean.finetune_stats
    assert torch.equal(noisy.train_labels_original, clean.train.labels)
    assert 0.25 < noisy.noise_rate_actual == flip_rate(clean.train.labels, noisy.train.labels) < 0.45
    # Validation (by default) and test keep their labels.
    assert torch.equal(noisy.val.labels, clean.val.labels) and noisy.val_labels_original is None
    assert torch.equal(noisy.test.labels, synthetic_data().test.labels)
    assert noisy.noise_rate_actual_val == 0.0 and clean.noise_rate_actual == 0.0
    assert clean.train_labels_original is None


def test_noisy_val_gives_validation_the_same_noise():
    params = dict(val_fraction=0.25, seed=1, label_noise=0.4, label_noise_kind="symmetric_exact")
    data = prepare_data(make_config(params, noisy_val=True))
    full = noisy_labels(synthetic_data().train.labels, SYNTHETIC_CLASSES, 0.4, "symmetric_exact", noise_seed=0)
    assert torch.equal(data.val.labels, full[data.val_index])
    assert torch.equal(data.val_labels_original, synthetic_data().train.labels[data.val_index])
    assert data.noise_rate_actual_val == flip_rate(data.val_labels_original, data.val.labels) > 0.25
    assert torch.equal(data.test.labels, synthetic_data().test.labels)
    assert torch.equal(data.train.labels, prepare_data(make_config(params)).train.labels)


def test_same_noise_seed_same_noisy_labels_whatever_seed_split_or_model():
    runs = [
        prepare_data(make_config(label_noise=0.3, seed=0)),
        prepare_data(make_config(label_noise=0.3, seed=7, lr=0.2, model="cifar_resnet")),
        prepare_data(make_config(label_noise=0.3, seed=2, val_fraction=0.4, train_subset=100)),
        prepare_data(make_config(label_noise=0.3, seed=5, val_fraction=0.0)),
    ]
    reference = by_index(runs[-1].train_index, runs[-1].train.labels)  # every image of the split as loaded
    for data in runs:
        noisy = by_index(data.train_index, data.train.labels)
        assert all(reference[i] == label for i, label in noisy.items())
    # The splits differ, yet images they share carry the same noisy label; another noise_seed differs.
    assert not torch.equal(runs[0].train_index, runs[1].train_index)
    other = prepare_data(make_config(label_noise=0.3, seed=0, noise_seed=1))
    assert torch.equal(other.train_index, runs[0].train_index)
    assert not torch.equal(other.train.labels, runs[0].train.labels)


def test_noise_is_keyed_to_the_image_not_its_position():
    labels = synthetic_data().train.labels
    noisy = noisy_labels(labels, SYNTHETIC_CLASSES, 0.3, "symmetric", noise_seed=0)
    data = prepare_data(make_config(label_noise=0.3, seed=4, val_fraction=0.3, train_subset=120))
    assert torch.equal(data.train.labels, noisy[data.train_index])
    assert torch.equal(data.train_labels_original, labels[data.train_index])


def test_asymmetric_on_names_known_only_after_loading_is_refused_before_training(monkeypatch, tmp_path):
    config = make_config(dataset="imagefolder", data_root=str(tmp_path), label_noise=0.2, label_noise_kind="asymmetric")
    with pytest.raises(ConfigError, match=f"data set 'imagefolder' has no class named {MISSING_FOR_SYNTHETIC}"):
        prepare_data(config)
    monkeypatch.setattr(prepare, "load_dataset", cifar_named_data)
    data = prepare_data(config)
    changed = data.train.labels != data.train_labels_original
    sources = {CIFAR10_CLASSES.index(name) for name in ASYMMETRIC_MAP}
    assert changed.any() and set(data.train_labels_original[changed].tolist()) <= sources


# --- the run folder and the memorization probe -----------------------------------------


@pytest.fixture(scope="module")
def noisy_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("noisy")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(prepare, "load_dataset", synthetic_data)
        config = make_config(TINY, label_noise=0.2, probes=["memorization"])
        summary = train(config, out)
    return out, summary, config


def test_noisy_run_writes_its_noisy_labels_and_real_rate(noisy_run):
    out, summary, config = noisy_run
    assert (out / "noisy_labels.csv").read_text().splitlines()[0] == "index,label,noisy_label"
    assert not (out / "noisy_val_labels.csv").exists()
    saved = read_noisy_labels(out / "noisy_labels.csv")
    data = prepare_data(config)
    assert saved["index"].tolist() == sorted(data.train_index.tolist()) and len(saved["index"]) == 150
    assert torch.equal(saved["label"], synthetic_data().train.labels[saved["index"]])
    assert torch.equal(saved["noisy_label"], data.train.labels)
    assert summary["noise_rate_actual"] == flip_rate(saved["label"], saved["noisy_label"]) > 0.05
    assert summary["noise_rate_actual_val"] == 0.0 and summary["n_train"] == 150
    assert load_run(out).noisy_labels.to_dict("list") == {name: saved[name].tolist() for name in saved}


def test_memorization_probe_matches_a_hand_computation(noisy_run):
    out, summary, config = noisy_run
    rows = {row["name"]: row["value"] for row in read_probes(out / "probes.csv") if row["probe"] == "memorization"}
    assert set(rows) == {"flipped_fit_noisy", "flipped_fit_true", "clean_acc", "n_flipped", "n_clean"}
    data = prepare_data(config)
    model, pipeline = load_trained(out, "last")  # the one epoch's weights, which the probe measured
    predictions = predict_split(model, pipeline, data.train, 32)
    noisy, original = data.train.labels, data.train_labels_original
    flipped = noisy != original
    assert rows["n_flipped"] == int(flipped.sum()) == round(summary["noise_rate_actual"] * 150)
    assert rows["n_clean"] == int((~flipped).sum())
    assert rows["flipped_fit_noisy"] == pytest.approx(float((predictions[flipped] == noisy[flipped]).double().mean()))
    assert rows["flipped_fit_true"] == pytest.approx(float((predictions[flipped] == original[flipped]).double().mean()))
    assert rows["clean_acc"] == pytest.approx(float((predictions[~flipped] == noisy[~flipped]).double().mean()))


def test_clean_run_records_no_noise(tmp_path):
    summary = train(make_config(TINY, probes=["memorization"]), tmp_path)
    assert summary["noise_rate_actual"] == 0.0 and not (tmp_path / "noisy_labels.csv").exists()
    assert load_run(tmp_path).noisy_labels is None
    rows = {row["name"]: row["value"] for row in read_probes(tmp_path / "probes.csv")}
    assert set(rows) == {"clean_acc", "n_flipped", "n_clean"}
    assert rows["n_flipped"] == 0 and rows["n_clean"] == 150


def test_noisy_val_run_writes_the_validation_labels_too(tmp_path):
    summary = train(make_config(TINY, label_noise=0.3, noisy_val=True, val_fraction=0.5), tmp_path)
    saved = read_noisy_labels(tmp_path / "noisy_val_labels.csv")
    assert len(saved["index"]) == summary["n_val"] == 200
    assert summary["noise_rate_actual_val"] == flip_rate(saved["label"], saved["noisy_label"]) > 0


class OneHotOfFirstPixel(nn.Module):
    """Predicts the class written into each image's first pixel: predictions chosen by hand."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.one_hot(x[:, 0, 0, 0].long(), K).float()


def probe_context(predicted, noisy, original, eval_batch_size=3):
    from normtest_lib.data.types import Split

    n = len(predicted)
    images = torch.zeros(n, 3, 2, 2, dtype=torch.uint8)
    images[:, 0, 0, 0] = torch.tensor(predicted, dtype=torch.uint8)
    split = Split(images, torch.tensor(noisy))
    return ProbeContext(
        model=OneHotOfFirstPixel(),
        train=split,
        train_labels_original=torch.tensor(original) if original is not None else None,
        val=None,
        test=split,
        pipeline=lambda images: images.float(),
        device=torch.device("cpu"),
        epoch=1,
        eval_batch_size=eval_batch_size,
    )


def test_memorization_probe_by_hand():
    # Images 0-3 flipped (noisy != original): predicted noisy, noisy, true, other class.
    # Images 4-8 clean: 3 of 5 predicted right.
    original = [1, 2, 3, 4, 0, 0, 5, 6, 7]
    noisy = [9, 8, 7, 6, 0, 0, 5, 6, 7]
    predicted = [9, 8, 3, 1, 0, 1, 5, 2, 7]
    values = memorization_probe(probe_context(predicted, noisy, original))
    assert values == {
        "flipped_fit_noisy": 0.5,
        "flipped_fit_true": 0.25,
        "clean_acc": 0.6,
        "n_flipped": 4.0,
        "n_clean": 5.0,
    }
    clean = memorization_probe(probe_context(predicted, noisy, None))
    assert clean == {"clean_acc": 5 / 9, "n_flipped": 0.0, "n_clean": 9.0}


def test_memorization_subset_is_fixed_and_capped_per_group():
    flipped = torch.zeros(30_000, dtype=torch.bool)
    flipped[::5] = True  # 6,000 flipped, 24,000 clean
    chosen = memorization_subset(flipped)
    assert torch.equal(chosen, memorization_subset(flipped))
    assert torch.equal(chosen, chosen.sort().values)
    assert int(flipped[chosen].sum()) == MEMORIZATION_PER_GROUP == int((~flipped[chosen]).sum())
    small = torch.tensor([True, False, False, True])
    assert memorization_subset(small).tolist() == [0, 1, 2, 3]
