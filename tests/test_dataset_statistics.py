"""Committed data set statistics: the record a data set's statistics are written as, read back, and tabled.

The fabricated image folder has two lossless images whose statistics are checked by hand:
one image all (255, 102, 51), one all (0, 0, 153). On the [0, 1] scale, R is 1 and 0 (mean 0.5,
std 0.5), G is 0.4 and 0 (mean 0.2, std 0.2), B is 0.2 and 0.6 (mean 0.4, std 0.2).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from normtest_lib.cli import main
from normtest_lib.data import load_dataset
from normtest_lib.errors import DatasetError
from normtest_lib.input_norm import SETTINGS
from normtest_lib.report import stats_tables
from normtest_lib.stats.channel import ChannelStats, level_counts, stats_from_counts
from normtest_lib.stats.normalized import affine_stats
from normtest_lib.stats.record import (
    REAL,
    RECORD_FORMAT,
    SYNTHETIC,
    compute_record,
    gather_records,
    project_relative,
    read_record,
    read_records,
    statistics_folder,
    write_record,
)
from normtest_lib.stats.reference import IMAGENET, PUBLISHED, PUBLISHED_TABLE1

SIZE = 4  # pixels per side of each fabricated image
RED, BLUE = (255, 102, 51), (0, 0, 153)
HAND_MEAN, HAND_STD = (0.5, 0.2, 0.4), (0.5, 0.2, 0.2)


def write_image_folder(root: Path, train: dict[str, tuple[int, int, int]], test_classes=("a",)) -> Path:
    """``root/{train,test}/<class>/0.png``: one flat-coloured PNG per class (PNG: no compression loss)."""
    for label, colour in train.items():
        (root / "train" / label).mkdir(parents=True)
        Image.new("RGB", (SIZE, SIZE), colour).save(root / "train" / label / "0.png")
    for label in test_classes:
        (root / "test" / label).mkdir(parents=True)
        Image.new("RGB", (SIZE, SIZE), (7, 7, 7)).save(root / "test" / label / "0.png")
    return root


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project folder holding data/two-colours/ (the fabricated image folder)."""
    write_image_folder(tmp_path / "data" / "two-colours", {"a": RED, "b": BLUE})
    return tmp_path


# --- the writer -----------------------------------------------------------------


def test_record_of_a_fabricated_folder_has_the_hand_computed_statistics(project):
    record = compute_record("imagefolder", project / "data" / "two-colours", project_root=project)
    assert record.name == "two-colours" and record.dataset == "imagefolder" and record.data == REAL
    assert record.data_root == "data/two-colours" and record.split == "train"
    assert record.n_images == record.n_images_in_split == 2 and record.sample is None
    assert record.image_size == (SIZE, SIZE) and record.published_as is None
    assert record.stats.mean == pytest.approx(HAND_MEAN, abs=1e-12)
    assert record.stats.std == pytest.approx(HAND_STD, abs=1e-12)
    # Every pixel counted once, at its value: R half at 0 and half at 255, G at 0 and 102, B at 51 and 153.
    counts = record.counts
    pixels = SIZE * SIZE
    assert counts[0, 0] == counts[0, 255] == counts[1, 0] == counts[1, 102] == pixels
    assert counts[2, 51] == counts[2, 153] == pixels and int(counts.sum()) == 3 * 2 * pixels
    assert list(record.table1) == list(SETTINGS)
    assert record.table1["unit"].mean == pytest.approx(HAND_MEAN) and record.table1["none"].std == pytest.approx(
        tuple(255 * s for s in HAND_STD)
    )
    expected_pretrain = [(m - im) / s for m, im, s in zip(HAND_MEAN, IMAGENET.mean, IMAGENET.std)]
    assert record.table1["pretrain"].mean == pytest.approx(expected_pretrain, abs=1e-6)
    assert record.table1["finetune"].mean == pytest.approx((0, 0, 0), abs=1e-6)
    assert record.table1["finetune"].std == pytest.approx((1, 1, 1), abs=1e-6)
    # Each image is flat: per-image standardization leaves 0 everywhere (its eps keeps 0 / 0 away).
    assert record.table1["instance"].std == pytest.approx((0, 0, 0), abs=1e-4)
    # The same images' per-image checks: both flat (every channel constant), neither spans 0..255.
    checks = record.image_checks
    assert checks.n_images == 2 and checks.constant_channel == 2 and checks.spanning_full_range == 0
    assert checks.mean_channel_range == 0.0 and checks.own_mean == pytest.approx(HAND_MEAN)
    bgr_mean = [(m - im) / s for m, im, s in zip(HAND_MEAN[::-1], IMAGENET.mean, IMAGENET.std)]
    assert checks.bgr_pretrain.mean == pytest.approx(bgr_mean, abs=1e-6)


def test_written_record_names_no_machine_path_and_records_the_code(project):
    record = compute_record("imagefolder", project / "data" / "two-colours", published_as="cifar10", project_root=project)
    path = write_record(record, project / "results" / "dataset_statistics" / "local", project_root=project)
    assert path == statistics_folder(project / "results") / "two-colours.json"
    text = path.read_text()
    assert str(project) not in text and "/tmp/" not in text
    data = json.loads(text)
    assert data["format"] == RECORD_FORMAT == 2 and data["channel_order"] == "RGB" and data["split"] == "train"
    assert data["computed_with"]["torch"] == torch.__version__ and "git_commit" in data["computed_with"]
    assert data["pretrain_stats"]["name"] == "imagenet" and data["pretrain_stats"]["mean"] == list(IMAGENET.mean)
    assert data["command"] == (
        "normtest stats imagefolder --root data/two-colours --published cifar10 --out results/dataset_statistics/local"
    )
    back = read_record(path)
    assert back.stats == record.stats and back.table1 == record.table1 and back.level_counts == record.level_counts
    assert back.image_checks.to_dict() == record.image_checks.to_dict()
    assert list(back.table1) == list(SETTINGS)  # the file's keys are sorted; the settings keep their order


def test_a_seeded_sample_is_recorded_as_one(project):
    record = compute_record("imagefolder", project / "data" / "two-colours", max_images=1, seed=3, project_root=project)
    assert record.n_images == 1 and record.n_images_in_split == 2
    assert record.sample == {"max_images": 1, "seed": 3}
    assert record.stats.mean in (pytest.approx((1.0, 0.4, 0.2)), pytest.approx((0.0, 0.0, 0.6)))
    command = write_record(record, project / "out", project_root=project).read_text()
    assert "--max-images 1 --seed 3" in command


def test_a_synthetic_set_is_recorded_as_synthetic_data_and_a_published_set_compares_with_itself(tmp_path):
    record = compute_record("synthetic-dim", max_images=50)
    assert record.data == SYNTHETIC and record.data_root is None and record.published_as is None
    assert PUBLISHED.get("synthetic-dim") is None


def test_project_relative_keeps_a_symlinked_root_inside_the_project(tmp_path):
    elsewhere = tmp_path / "elsewhere" / "data"
    (elsewhere / "set").mkdir(parents=True)
    project = tmp_path / "project"
    project.mkdir()
    (project / "data").symlink_to(elsewhere)
    assert project_relative(project / "data" / "set", project) == "data/set"
    assert project_relative("data/set", project) == "data/set"
    assert project_relative(tmp_path / "other" / "set", project) == "set"  # outside: only its name


def test_cli_writes_the_record_and_prints_the_same_numbers(project, capsys, monkeypatch):
    monkeypatch.chdir(project)
    assert main(["stats", "imagefolder", "--root", "data/two-colours", "--out", "results/dataset_statistics/local",
                 "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    written = read_records(project / "results" / "dataset_statistics" / "local")["two-colours"]
    assert printed["mean"] == list(written.stats.mean) == pytest.approx(HAND_MEAN)
    assert printed["normalized"]["pretrain"]["mean"] == list(written.table1["pretrain"].mean)


# --- bad input --------------------------------------------------------------------


def test_a_missing_data_folder_is_one_clear_error_naming_it(tmp_path, capsys):
    missing = tmp_path / "no-such-folder"
    with pytest.raises(DatasetError, match="no-such-folder.*does not exist"):
        compute_record("imagefolder", missing)
    assert main(["stats", "imagefolder", "--root", str(missing), "--out", str(tmp_path / "out")]) == 2
    assert str(missing) in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # nothing written


def test_a_missing_or_broken_results_folder_is_an_error_naming_it(tmp_path):
    missing = tmp_path / "results" / "dataset_statistics" / "local"
    with pytest.raises(DatasetError, match=f"no data set statistics at {missing}"):
        read_records(missing)
    missing.mkdir(parents=True)
    assert read_records(missing) == {}
    (missing / "broken.json").write_text("{not json")
    with pytest.raises(DatasetError, match="broken.json cannot be read"):
        read_records(missing)
    (missing / "broken.json").write_text(json.dumps({"format": 99}))
    with pytest.raises(DatasetError, match="broken.json is not a data set statistics record"):
        read_records(missing)


def test_bad_names_are_refused_before_any_loading(tmp_path):
    with pytest.raises(DatasetError, match="plain file stem"):
        compute_record("imagefolder", tmp_path / "missing", name="../elsewhere")
    with pytest.raises(DatasetError, match="no published statistics named 'cifar-10'"):
        compute_record("imagefolder", tmp_path / "missing", published_as="cifar-10")


# --- level counts -----------------------------------------------------------------


def test_statistics_from_level_counts_equal_those_from_the_pixels():
    images = torch.randint(0, 256, (13, 3, 5, 6), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    counts = level_counts(images, chunk_size=4)
    assert counts.shape == (3, 256) and int(counts.sum()) == images.numel()
    as_float = images.numpy().astype(np.float64) / 255
    stats = stats_from_counts(counts, 13)
    np.testing.assert_allclose(stats.mean, as_float.mean(axis=(0, 2, 3)), atol=1e-12)
    np.testing.assert_allclose(stats.std, as_float.std(axis=(0, 2, 3)), atol=1e-12)
    with pytest.raises(ValueError, match="3, 256"):
        stats_from_counts(torch.zeros(3, 255, dtype=torch.int64))


def test_affine_stats_refuse_per_image_settings():
    with pytest.raises(ValueError, match="need the pixels"):
        affine_stats(IMAGENET, "instance")


# --- the reader's tables --------------------------------------------------------------


@pytest.fixture
def records(project) -> dict:
    """Two committed records: the fabricated folder as 'cifar10-jpeg' (published as cifar10) and a synthetic set."""
    folder = project / "results" / "dataset_statistics" / "local"
    write_record(compute_record("imagefolder", project / "data" / "two-colours", name="cifar10-jpeg",
                                published_as="cifar10", project_root=project), folder, project_root=project)
    write_record(compute_record("synthetic-dim", max_images=40), folder, project_root=project)
    return read_records(folder)


def test_records_table1_beside_the_published_rows_with_the_difference(records):
    table1 = stats_tables.records_table1_frame(records)
    assert list(table1.index) == [(name, s) for name in ("cifar10-jpeg", "synthetic-dim") for s in SETTINGS]
    assert tuple(table1.loc[("cifar10-jpeg", "unit"), "mean"]) == pytest.approx(HAND_MEAN)
    comparison = stats_tables.table1_comparison(table1, stats_tables.records_published_table1(records))
    published = comparison.loc[("cifar10-jpeg", "pretrain", "published")]
    assert tuple(published["mean"]) == PUBLISHED_TABLE1["cifar10"].mean  # from the library's record, under our name
    difference = comparison.loc[("cifar10-jpeg", "pretrain", "difference")]
    expected = np.array(table1.loc[("cifar10-jpeg", "pretrain"), "std"]) - np.array(PUBLISHED_TABLE1["cifar10"].std)
    np.testing.assert_allclose(difference["std"].to_numpy(), expected)
    assert set(comparison.loc["synthetic-dim"].index.get_level_values("source")) == {"computed"}
    sentence = stats_tables.published_difference_sentence(comparison)
    assert f"and {np.abs(expected).max():.2f} in the standard deviations" in sentence
    assert "`cifar10-jpeg`" in sentence and "synthetic-dim" not in sentence


def test_records_table1_for_other_pretraining_statistics_equals_the_one_from_images(records, project):
    other = ChannelStats((0.3, 0.3, 0.3), (0.1, 0.2, 0.3))
    from_record = stats_tables.records_table1_frame({"c": records["cifar10-jpeg"]}, pretrain_stats=other)
    images = torch.stack([torch.tensor(c, dtype=torch.uint8).view(3, 1, 1).expand(3, SIZE, SIZE) for c in (RED, BLUE)])
    from_images = stats_tables.table1_frame({"c": images}, pretrain_stats=other)
    pd.testing.assert_frame_equal(from_record, from_images, atol=1e-6)


def test_records_stats_frame_and_the_data_label(records):
    frame = stats_tables.records_stats_frame(records)
    assert list(frame.index) == [("cifar10-jpeg", "computed"), ("cifar10-jpeg", "published"), ("synthetic-dim", "computed")]
    assert tuple(frame.loc[("cifar10-jpeg", "published"), "std"]) == PUBLISHED["cifar10"].std
    labelled = stats_tables.label_data(frame, {name: record.data for name, record in records.items()})
    assert labelled.index.names == ["data", "dataset", "source"]
    assert list(labelled.index.get_level_values("data")) == [REAL, REAL, SYNTHETIC]
    caption = stats_tables.data_caption(labelled, "statistics")
    assert caption.startswith("Real data and synthetic data: statistics. Names: see the glossary's ")
    assert 'href="glossary.html#glossary-datasets"' in caption  # the data sets' section (tests/test_glossary_links.py)
    provenance = stats_tables.records_provenance(records)
    assert provenance.loc[(REAL, "cifar10-jpeg"), "images"] == 2
    assert provenance.loc[(SYNTHETIC, "synthetic-dim"), "sample"] == "seeded sample (seed 0)"


def test_gathered_records_read_the_committed_one_compute_the_others_and_name_the_missing(project):
    committed = compute_record("imagefolder", project / "data" / "two-colours", name="recorded", project_root=project)
    write_record(committed, statistics_folder(project / "results"), project_root=project)
    roots = {"recorded": "data/nowhere", "two-colours": str(project / "data" / "two-colours"), "absent": "data/absent"}
    gathered = gather_records(roots, project / "results", registry_names={"two-colours": "imagefolder"},
                              published_as={"two-colours": "cifar10"})
    assert list(gathered.committed) == ["recorded"]  # read, though its images are not here
    assert list(gathered.computed) == ["two-colours"] and gathered.computed["two-colours"].published_as == "cifar10"
    assert gathered.missing == {"absent": "data/absent"}
    assert list(gathered.records) == ["recorded", "two-colours"]
    assert gathered.records["two-colours"].stats.mean == pytest.approx(HAND_MEAN, abs=1e-12)
    # A sample must come from the images: the committed record (a whole split) is not used for it.
    sampled = gather_records(roots, project / "results", registry_names={"two-colours": "imagefolder"}, max_images=1)
    assert not sampled.committed and list(sampled.computed) == ["two-colours"]
    assert set(sampled.missing) == {"recorded", "absent"}


# --- the gallery beside a record, and where the published rows come from ----------------------------------------


def test_a_written_record_keeps_a_few_of_its_images_beside_it(project):
    from normtest_lib.stats.record import GALLERY_SUFFIX, pick_gallery, read_galleries

    record = compute_record("imagefolder", project / "data" / "two-colours", name="cifar10-jpeg", project_root=project)
    folder = statistics_folder(project / "results")
    write_record(record, folder, project_root=project)
    assert (folder / f"cifar10-jpeg{GALLERY_SUFFIX}").is_file()
    galleries = read_galleries(folder)
    assert list(galleries) == ["cifar10-jpeg"] and read_records(folder).keys() == galleries.keys()  # not a record
    # The two images (one red, one blue), exactly as the reader loads them.
    loaded = load_dataset("imagefolder", project / "data" / "two-colours").train.images
    assert torch.equal(galleries["cifar10-jpeg"], loaded[list(pick_gallery(len(loaded)))])
    assert pick_gallery(1000) == pick_gallery(1000) and len(pick_gallery(1000)) == 4  # fixed by its seed
    assert read_galleries(project / "nowhere") == {}


def test_agreement_decimals_count_the_decimals_every_value_shares():
    ours = ChannelStats((0.48024, 0.44806, 0.39750), (0.27644, 0.26886, 0.28159))
    assert stats_tables.agreement_decimals(ours, PUBLISHED["tiny_imagenet_200"]) == 4  # at most 4e-5 apart
    assert stats_tables.agreement_decimals(ours, ChannelStats((0.46, 0.46, 0.43), (0.27,) * 3)) == 1  # 0.0325 apart
    assert stats_tables.agreement_decimals(ours, ChannelStats((0.4803,) * 3, (0.2764,) * 3)) == 0  # blue: 0.08
    assert stats_tables.agreement_decimals(ours, ours) == 6


def test_the_published_rows_are_said_to_be_the_earlier_work_s_typed_statistics(records):
    from normtest_lib.report.references import reference

    sentence = stats_tables.published_source_sentence(records)
    assert "`stats.py`" in sentence and reference("normalization-test").url in sentence
    # The fabricated set is nothing like CIFAR-10: its row differs, by the largest of the six gaps.
    stats, published = records["cifar10-jpeg"].stats, PUBLISHED["cifar10"]
    gap = max(abs(a - b) for a, b in zip((*stats.mean, *stats.std), (*published.mean, *published.std)))
    assert f"`cifar10-jpeg`'s published row differs from ours by at most {gap:.4f}" in sentence
    # A record whose statistics equal the published ones to 4 decimals is said to check ours, not to measure anything.
    equal = {"tiny": dataclasses.replace(records["cifar10-jpeg"], published_as="tiny_imagenet_200",
                                        stats=PUBLISHED["tiny_imagenet_200"])}
    assert "equals ours to 6 decimals" in stats_tables.published_source_sentence(equal)
    assert "not an independent measurement" in stats_tables.published_source_sentence(equal)
    assert "None of these" in stats_tables.published_source_sentence({"synthetic-dim": records["synthetic-dim"]})
