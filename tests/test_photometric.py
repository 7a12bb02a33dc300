"""Photometric shifts (data/photometric.py) and the shifted data sets the registry resolves (``imagefolder+dim``).

The fabricated image folder is the one of test_dataset_statistics.py: two lossless 4x4 training
images, all (255, 102, 51) and all (0, 0, 153), and a test image all (7, 7, 7). Under ``dim``
(v * 0.35, halves up) they become (89, 36, 18), (0, 0, 54) and (2, 2, 2).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from normtest_lib.cli import main
from normtest_lib.config import make_config
from normtest_lib.data import check_root, dataset_names, get_spec, load_dataset, shifted_forms
from normtest_lib.data.photometric import SHIFTS, apply_shift, dim, scale_levels
from normtest_lib.data.registry import known_classes
from normtest_lib.errors import ConfigError, DatasetError
from normtest_lib.grid.spec import run_id
from normtest_lib.stats.channel import channel_stats
from normtest_lib.stats.record import compute_record

from test_dataset_statistics import BLUE, RED, SIZE, write_image_folder


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return write_image_folder(tmp_path / "data" / "two-colours", {"a": RED, "b": BLUE})


# --- the shift -------------------------------------------------------------------


def test_dim_scales_every_value_by_035_rounding_halves_up():
    # By hand: 255 * 0.35 = 89.25 -> 89; 128 -> 44.8 -> 45; 10 -> 3.5 -> 4 (a half, up);
    # 30 -> 10.5 -> 11; 3 -> 1.05 -> 1; 1 -> 0.35 -> 0; 0 -> 0; 100 -> 35; 200 -> 70.
    values = torch.tensor([255, 128, 10, 30, 3, 1, 0, 100, 200], dtype=torch.uint8)
    images = values.view(1, 1, 3, 3).expand(2, 3, 3, 3).contiguous()
    shifted = dim(images)
    assert shifted.dtype == torch.uint8 and shifted.shape == images.shape
    assert shifted[0, 0].flatten().tolist() == [89, 45, 4, 11, 1, 0, 0, 35, 70]
    assert torch.equal(shifted[1, 2], shifted[0, 0])  # every channel and image alike
    # Every level against float64 arithmetic with halves rounded up.
    levels = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16).expand(1, 3, 16, 16)
    expected = torch.floor(torch.arange(256, dtype=torch.float64) * 0.35 + 0.5 + 1e-9).to(torch.uint8)
    assert torch.equal(dim(levels)[0, 1].flatten(), expected)


def test_apply_shift_goes_chunk_by_chunk_and_leaves_the_input_alone():
    images = torch.randint(0, 256, (10, 3, 5, 5), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    before = images.clone()
    assert torch.equal(apply_shift("dim", images, chunk_size=3), dim(images))
    assert torch.equal(images, before)
    with pytest.raises(ValueError, match="uint8"):
        apply_shift("dim", images.float())
    with pytest.raises(ValueError, match="denominator"):
        scale_levels(images, 35, 101)


def test_every_shift_keeps_dtype_and_shape_and_says_what_it_stands_for():
    images = torch.randint(0, 256, (2, 3, 4, 4), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
    for name, shift in SHIFTS.items():
        out = shift(images)
        assert out.dtype == torch.uint8 and out.shape == images.shape, name
        assert shift.__doc__ and len(shift.__doc__.strip()) > 40, f"shift {name!r} needs a docstring"


# --- the shifted data set ---------------------------------------------------------


def test_imagefolder_dim_has_the_base_labels_and_classes_and_shifted_pixels(folder):
    base = load_dataset("imagefolder", folder)
    shifted = load_dataset("imagefolder+dim", folder)
    assert shifted.name == "imagefolder+dim"
    assert shifted.classes == base.classes == ("a", "b")
    assert shifted.native_size == base.native_size == (SIZE, SIZE) and shifted.source == base.source
    for split in ("train", "test"):
        assert torch.equal(shifted.split(split).labels, base.split(split).labels), split
    # By hand: (255, 102, 51) -> (89, 36, 18) [89.25, 35.7, 17.85]; (0, 0, 153) -> (0, 0, 54) [53.55]; 7 -> 2 [2.45].
    colours = {tuple(image[:, 0, 0].tolist()) for image in shifted.train.images}
    assert colours == {(89, 36, 18), (0, 0, 54)}
    assert shifted.test.images.unique().tolist() == [2]
    assert shifted.extra["base"] == "imagefolder" and shifted.extra["shift"] == "dim"
    # The base's decode cache is reused: the shifted load decoded nothing.
    assert shifted.extra["cache"] == "hit"


def test_shifted_statistics_are_035_times_the_base_up_to_rounding(folder):
    base = channel_stats(load_dataset("imagefolder", folder).train.images)
    shifted = channel_stats(load_dataset("imagefolder+dim", folder).train.images)
    for ours, theirs in ((shifted.mean, base.mean), (shifted.std, base.std)):
        for channel in range(3):
            # Rounding moves a pixel by at most half a level.
            assert ours[channel] == pytest.approx(0.35 * theirs[channel], abs=0.5 / 255), channel
    # Exactly, from the hand-shifted colours: R is 89 and 0, so mean = std = 44.5 / 255.
    assert shifted.mean[0] == pytest.approx(44.5 / 255) and shifted.std[0] == pytest.approx(44.5 / 255)


def test_shifted_record_is_named_after_its_base_and_shift(folder):
    project = folder.parents[1]
    record = compute_record("imagefolder+dim", folder, project_root=project)
    assert record.name == "two-colours+dim" and record.dataset == "imagefolder+dim" and record.published_as is None
    assert record.stats.mean[1] == pytest.approx(18 / 255)  # G: 36 and 0


def test_the_registry_resolves_shifted_names_without_listing_every_combination(folder):
    spec = get_spec("imagefolder+dim")
    assert spec.name == "imagefolder+dim" and spec.needs_root and "dim" in spec.description
    assert get_spec("synthetic+dim").needs_root is False
    assert known_classes("synthetic+dim") == known_classes("synthetic") is not None
    assert known_classes("imagefolder+dim") is None
    assert "imagefolder+dim" not in dataset_names() and shifted_forms() == ["<data set>+dim"]
    check_root("imagefolder+dim", folder)
    with pytest.raises(DatasetError, match=r"'imagefolder\+dim' needs a data root"):
        check_root("imagefolder+dim", None)


def test_normtest_datasets_shows_each_shift_once(capsys):
    assert main(["datasets"]) == 0
    lines = capsys.readouterr().out.splitlines()
    names = [line[:24].strip() for line in lines]  # the name column
    assert [name for name in names if "+" in name] == ["<data set>+dim"] and "imagefolder" in names
    assert any(line.startswith("<data set>+dim") and "Underexposed" in line for line in lines)


def test_unknown_shift_or_base_is_refused_naming_the_known_ones(folder):
    with pytest.raises(DatasetError, match=r"unknown photometric shift 'bright'.*known shifts: dim"):
        get_spec("imagefolder+bright")
    with pytest.raises(DatasetError, match=r"unknown data set 'imagefoldr'.*registered: .*imagefolder"):
        load_dataset("imagefoldr+dim", folder)
    with pytest.raises(ConfigError, match=r"unknown photometric shift 'bright'.*known shifts: dim"):
        make_config(dataset="imagefolder+bright", data_root=str(folder))
    with pytest.raises(ConfigError, match=r"'nowhere'.*imagefolder\+dim"):
        make_config(dataset="nowhere", data_root=str(folder))


# --- runs ---------------------------------------------------------------------------


def test_run_config_accepts_a_shifted_name_and_checks_its_root(folder, tmp_path):
    config = make_config(dataset="imagefolder+dim", data_root=str(folder))
    assert config.dataset == "imagefolder+dim"
    assert run_id(config) != run_id(make_config(dataset="imagefolder", data_root=str(folder)))
    with pytest.raises(ConfigError, match="does not exist"):
        make_config(dataset="imagefolder+dim", data_root=str(tmp_path / "nowhere"))


def test_existing_run_ids_do_not_change(folder):
    # Computed before shifted data sets existed (commit 14e486f); data_root is not part of a run's id.
    assert run_id(make_config(dataset="imagefolder", data_root=str(folder), model="cifar_resnet",
                              input_norm="finetune", epochs=3)) == "5cf66f59e33f"
    assert run_id(make_config(dataset="synthetic-dim", epochs=2)) == "a62ea2982790"
