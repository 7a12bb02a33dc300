"""Every reader on small files in the official formats, written by the tests themselves.

Checks: pixels and labels round-trip (exactly for pickles, .mat and PNG,
approximately for JPEG), channels come out in RGB order, metadata, the cache,
and that every kind of bad input raises a DatasetError naming the file and the
remedy, without touching the network.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import shutil
import threading
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
import torchvision.datasets.cifar
import torchvision.datasets.svhn
import torchvision.datasets.utils
from PIL import Image
from torchvision.datasets import CIFAR10, CIFAR100, SVHN

from normtest_lib.data import ImageDataset, Split, cache, dataset_names, decode, load_dataset, tiny_imagenet
from normtest_lib.errors import DatasetError

RED, BLUE = 230, 20  # channel values far apart: a BGR mix-up swaps them


@pytest.fixture
def no_network(monkeypatch):
    """Fail the test if anything tries to download."""

    def fail(*args, **kwargs):
        raise AssertionError("the network was used")

    monkeypatch.setattr(torchvision.datasets.utils, "download_url", fail)
    monkeypatch.setattr(torchvision.datasets.utils, "download_and_extract_archive", fail)
    monkeypatch.setattr(torchvision.datasets.cifar, "download_and_extract_archive", fail)
    monkeypatch.setattr(torchvision.datasets.svhn, "download_url", fail)
    monkeypatch.setattr(urllib.request, "urlopen", fail)


@pytest.fixture
def offline(monkeypatch):
    """Downloads are attempted but the network is unreachable."""

    def unreachable(*args, **kwargs):
        raise urllib.error.URLError("network is unreachable (test)")

    monkeypatch.setattr(urllib.request, "urlopen", unreachable)


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def rgb_pattern(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Random HWC pixels with a red channel high and a blue channel low."""
    pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    pixels[..., 0] = rng.integers(200, 256, (height, width))
    pixels[..., 2] = rng.integers(0, 50, (height, width))
    return pixels


def assert_rgb_order(images: torch.Tensor) -> None:
    """The images were written by rgb_pattern: red high, blue low. BGR would swap them."""
    assert images[:, 0].float().mean() > 200
    assert images[:, 2].float().mean() < 50


def save_image(path: Path, pixels: np.ndarray, **options) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, **options)


def truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def test_readers_are_registered():
    assert {"cifar10", "cifar100", "svhn", "tiny_imagenet_200", "imagefolder"} <= set(dataset_names())


def test_unknown_name_and_missing_root_are_errors(tmp_path):
    with pytest.raises(DatasetError, match="unknown data set 'cifar11'"):
        load_dataset("cifar11", tmp_path)
    with pytest.raises(DatasetError, match="needs a data root"):
        load_dataset("cifar10", None)
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset("tiny_imagenet_200", tmp_path / "nowhere")


# --- CIFAR-10 / CIFAR-100 --------------------------------------------------------


def write_cifar10(root: Path, rng: np.random.Generator, per_batch: int = 3) -> dict[str, np.ndarray]:
    """The official cifar-10-batches-py layout; returns the CHW images and labels written."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    written = {"train_images": [], "train_labels": [], "test_images": [], "test_labels": []}
    for file_name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        images = np.stack([rgb_pattern(rng, 32, 32).transpose(2, 0, 1) for _ in range(per_batch)])
        labels = rng.integers(0, 10, per_batch).tolist()
        batch = {"batch_label": file_name, "labels": labels, "data": images.reshape(per_batch, 3072), "filenames": []}
        (folder / file_name).write_bytes(pickle.dumps(batch, protocol=2))
        split = "test" if file_name == "test_batch" else "train"
        written[f"{split}_images"].append(images)
        written[f"{split}_labels"].extend(labels)
    meta = {"label_names": [f"class{i}" for i in range(10)], "num_cases_per_batch": per_batch, "num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return {
        "train_images": np.concatenate(written["train_images"]),
        "train_labels": np.asarray(written["train_labels"]),
        "test_images": np.concatenate(written["test_images"]),
        "test_labels": np.asarray(written["test_labels"]),
    }


def write_cifar100(root: Path, rng: np.random.Generator, n: int = 4) -> dict[str, np.ndarray]:
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    written = {}
    for split in ("train", "test"):
        images = np.stack([rgb_pattern(rng, 32, 32).transpose(2, 0, 1) for _ in range(n)])
        fine = rng.integers(0, 100, n).tolist()
        batch = {"data": images.reshape(n, 3072), "fine_labels": fine, "coarse_labels": [f // 5 for f in fine]}
        (folder / split).write_bytes(pickle.dumps(batch, protocol=2))
        written[f"{split}_images"], written[f"{split}_labels"] = images, np.asarray(fine)
    meta = {
        "fine_label_names": [f"fine{i}" for i in range(100)],
        "coarse_label_names": [f"coarse{i}" for i in range(20)],
    }
    (folder / "meta").write_bytes(pickle.dumps(meta, protocol=2))
    return written


def trust_written_files(monkeypatch, cls: type, folder: Path) -> None:
    """Point torchvision's md5 lists at the files the test wrote: the check itself stays on."""
    monkeypatch.setattr(cls, "train_list", [[name, md5(folder / name)] for name, _ in cls.train_list])
    monkeypatch.setattr(cls, "test_list", [[name, md5(folder / name)] for name, _ in cls.test_list])
    monkeypatch.setattr(cls, "meta", {**cls.meta, "md5": md5(folder / cls.meta["filename"])})


@pytest.fixture
def cifar10_root(tmp_path, monkeypatch):
    written = write_cifar10(tmp_path, np.random.default_rng(0))
    trust_written_files(monkeypatch, CIFAR10, tmp_path / "cifar-10-batches-py")
    return tmp_path, written


def assert_round_trip(dataset, written) -> None:
    for split in ("train", "test"):
        assert torch.equal(dataset.split(split).images, torch.from_numpy(written[f"{split}_images"]))
        assert torch.equal(dataset.split(split).labels, torch.from_numpy(written[f"{split}_labels"]).long())


def test_cifar10_round_trips_pixels_labels_and_classes(cifar10_root, no_network):
    root, written = cifar10_root
    dataset = load_dataset("cifar10", root)
    assert_round_trip(dataset, written)
    assert dataset.train.images.shape == (15, 3, 32, 32) and dataset.train.images.is_contiguous()
    assert dataset.classes == tuple(f"class{i}" for i in range(10))
    assert dataset.native_size == (32, 32)
    assert_rgb_order(dataset.train.images)


def test_cifar10_root_may_be_the_batches_folder(cifar10_root, no_network):
    root, written = cifar10_root
    assert_round_trip(load_dataset("cifar10", root / "cifar-10-batches-py"), written)


def test_cifar10_with_download_allowed_does_not_fetch_intact_files(cifar10_root, monkeypatch):
    root, written = cifar10_root
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: pytest.fail("downloaded intact files"))
    assert_round_trip(load_dataset("cifar10", root, download=True), written)


def test_cifar100_round_trips_fine_labels(tmp_path, monkeypatch, no_network):
    written = write_cifar100(tmp_path, np.random.default_rng(1))
    trust_written_files(monkeypatch, CIFAR100, tmp_path / "cifar-100-python")
    dataset = load_dataset("cifar100", tmp_path)
    assert_round_trip(dataset, written)
    assert dataset.num_classes == 100 and dataset.classes[7] == "fine7"


def test_cifar10_damaged_file_fails_the_md5_check(cifar10_root, no_network):
    root, _ = cifar10_root
    path = root / "cifar-10-batches-py" / "data_batch_3"
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(DatasetError, match=r"data_batch_3 fails its md5 check.*download=True"):
        load_dataset("cifar10", root)


def test_cifar10_missing_file_asks_for_download_without_fetching(cifar10_root, no_network):
    root, _ = cifar10_root
    (root / "cifar-10-batches-py" / "test_batch").unlink()
    with pytest.raises(DatasetError, match=r"test_batch is missing; pass download=True"):
        load_dataset("cifar10", root)


def test_cifar10_nothing_there_without_download(tmp_path, no_network):
    with pytest.raises(DatasetError, match=r"cifar-10-batches-py/data_batch_1 is missing; pass download=True"):
        load_dataset("cifar10", tmp_path)


def test_cifar10_failed_download_is_a_dataset_error(tmp_path, offline):
    with pytest.raises(DatasetError, match=r"could not download https://www.cs.toronto.edu/\S+cifar-10"):
        load_dataset("cifar10", tmp_path, download=True)


def test_cifar10_truncated_pickle_with_matching_md5_is_an_error(tmp_path, monkeypatch, no_network):
    write_cifar10(tmp_path, np.random.default_rng(2))
    truncate(tmp_path / "cifar-10-batches-py" / "data_batch_2")
    trust_written_files(monkeypatch, CIFAR10, tmp_path / "cifar-10-batches-py")  # the md5 now matches the stub
    with pytest.raises(DatasetError, match=r"cannot read the cifar10 batches in .*truncated"):
        load_dataset("cifar10", tmp_path)


# --- SVHN ------------------------------------------------------------------------


def write_svhn(root: Path, rng: np.random.Generator, n: dict[str, int]) -> dict[str, np.ndarray]:
    """train_32x32.mat / test_32x32.mat: X (32, 32, 3, N) uint8, y (N, 1) with 10 for the digit 0."""
    written = {}
    for split, count in n.items():
        images = np.stack([rgb_pattern(rng, 32, 32) for _ in range(count)], axis=-1)  # (32, 32, 3, N)
        digits = np.arange(count) % 10
        y = np.where(digits == 0, 10, digits).reshape(count, 1).astype(np.uint8)
        scipy.io.savemat(root / f"{split}_32x32.mat", {"X": images, "y": y})
        written[f"{split}_images"] = images.transpose(3, 2, 0, 1)
        written[f"{split}_labels"] = digits
    return written


def trust_svhn_files(monkeypatch, root: Path) -> None:
    split_list = {split: [url, name, md5(root / name) if (root / name).exists() else checksum]
                  for split, (url, name, checksum) in SVHN.split_list.items()}  # fmt: skip
    monkeypatch.setattr(SVHN, "split_list", split_list)


def test_svhn_round_trips_and_maps_label_10_to_digit_0(tmp_path, monkeypatch, no_network):
    written = write_svhn(tmp_path, np.random.default_rng(3), {"train": 12, "test": 1})
    trust_svhn_files(monkeypatch, tmp_path)
    dataset = load_dataset("svhn", tmp_path)
    assert_round_trip(dataset, written)
    assert dataset.train.labels[:11].tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0]
    assert dataset.classes == tuple("0123456789")
    assert_rgb_order(dataset.train.images)


def test_svhn_damaged_file_fails_the_md5_check(tmp_path, monkeypatch, no_network):
    write_svhn(tmp_path, np.random.default_rng(4), {"train": 3, "test": 3})
    trust_svhn_files(monkeypatch, tmp_path)
    with open(tmp_path / "test_32x32.mat", "r+b") as handle:
        handle.seek(300)
        handle.write(b"\x00\x01\x02\x03")
    with pytest.raises(DatasetError, match=r"test_32x32.mat fails its md5 check"):
        load_dataset("svhn", tmp_path)


def test_svhn_missing_file_asks_for_download_without_fetching(tmp_path, monkeypatch, no_network):
    write_svhn(tmp_path, np.random.default_rng(5), {"train": 3})
    trust_svhn_files(monkeypatch, tmp_path)
    with pytest.raises(DatasetError, match=r"test_32x32.mat is missing; pass download=True"):
        load_dataset("svhn", tmp_path)


def test_svhn_truncated_file_with_matching_md5_is_an_error(tmp_path, monkeypatch, no_network):
    write_svhn(tmp_path, np.random.default_rng(6), {"train": 3, "test": 3})
    truncate(tmp_path / "train_32x32.mat")
    trust_svhn_files(monkeypatch, tmp_path)
    with pytest.raises(DatasetError, match=r"cannot read .*train_32x32.mat .*truncated"):
        load_dataset("svhn", tmp_path)


def test_svhn_failed_download_is_a_dataset_error(tmp_path, offline):
    with pytest.raises(
        DatasetError, match=r"could not download http://ufldl.stanford.edu/housenumbers/train_32x32.mat"
    ):
        load_dataset("svhn", tmp_path, download=True)


# --- image folders ----------------------------------------------------------------


def write_image_folder(root: Path, rng: np.random.Generator, layout: dict[str, dict[str, int]], size=(8, 6)) -> dict:
    """PNG images in root/<split>/<class>/NNNN.png; returns {split: (CHW images, class names)} in reading order."""
    written = {}
    for split, classes in layout.items():
        images, names = [], []
        for class_name in sorted(classes):
            for index in range(classes[class_name]):
                pixels = rgb_pattern(rng, *size)
                save_image(root / split / class_name / f"{index:04d}.png", pixels)
                images.append(pixels.transpose(2, 0, 1))
                names.append(class_name)
        written[split] = (np.stack(images), names)
    return written


@pytest.fixture
def folder_root(tmp_path):
    root = tmp_path / "pictures"
    layout = {"train": {"cat": 3, "ant": 2, "dog": 2}, "test": {"dog": 2, "ant": 1}}  # test lacks "cat"
    return root, write_image_folder(root, np.random.default_rng(7), layout)


def test_image_folder_round_trips_png_exactly(folder_root):
    root, written = folder_root
    dataset = load_dataset("imagefolder", root)
    assert dataset.classes == ("ant", "cat", "dog")
    assert dataset.native_size == (8, 6)
    for split in ("train", "test"):
        images, class_names = written[split]
        assert torch.equal(dataset.split(split).images, torch.from_numpy(images))
        # the test split uses the training mapping although it lacks "cat"
        assert dataset.split(split).labels.tolist() == [dataset.classes.index(name) for name in class_names]
    assert_rgb_order(dataset.train.images)


def test_image_folder_reads_jpeg_grayscale_and_palette_images_as_rgb(tmp_path):
    root = tmp_path / "mixed"
    colour = np.zeros((16, 16, 3), dtype=np.uint8)
    colour[..., 0], colour[..., 1], colour[..., 2] = RED, 120, BLUE
    save_image(root / "train" / "a" / "colour.jpg", colour, quality=95)
    save_image(root / "train" / "a" / "gray.jpeg", np.full((16, 16), 77, dtype=np.uint8))
    save_image(root / "train" / "b" / "palette.gif", colour)
    save_image(root / "test" / "b" / "rgba.png", np.dstack([colour, np.full((16, 16), 9, np.uint8)]))
    dataset = load_dataset("imagefolder", root)
    means = dataset.train.images.float().mean(dim=(2, 3))
    assert means[0].tolist() == pytest.approx([RED, 120, BLUE], abs=3)  # JPEG: approximately
    assert means[1].tolist() == pytest.approx([77, 77, 77], abs=1)
    assert means[2].tolist() == pytest.approx([RED, 120, BLUE], abs=3)
    assert dataset.test.images[0].float().mean(dim=(1, 2)).tolist() == [RED, 120, BLUE]
    assert dataset.train.labels.tolist() == [0, 0, 1]


def test_image_folder_accepts_nested_files_and_ignores_notes_with_a_warning(folder_root):
    root, written = folder_root
    (root / "train" / "cat" / "notes.txt").write_text("not an image")
    (root / "train" / "dog" / "Thumbs.db").write_bytes(b"\0")
    (root / "train" / "cat" / ".DS_Store").write_bytes(b"\0")
    save_image(root / "train" / "cat" / "more" / "extra.png", written["train"][0][0].transpose(1, 2, 0))
    with pytest.warns(UserWarning, match=r"train: ignored 2 text/metadata file\(s\) .*e\.g\. .*cat/notes.txt"):
        dataset = load_dataset("imagefolder", root)
    assert dataset.train.labels.tolist() == [0, 0, 1, 1, 1, 1, 2, 2]


@pytest.mark.parametrize("names", [["photo.heic"], ["a.heic", "b.xyz", "noext"]])
def test_image_folder_unknown_files_are_an_error_with_example_and_count(folder_root, names):
    root, _ = folder_root
    for name in names:
        (root / "train" / "dog" / "deeper").mkdir(parents=True, exist_ok=True)
        (root / "train" / "dog" / "deeper" / name).write_bytes(b"\0\1\2")
    first = sorted(names)[0]
    with pytest.raises(DatasetError, match=rf"train/dog holds {len(names)} file\(s\) .*e\.g\. .*deeper/{first};"):
        load_dataset("imagefolder", root)


def test_image_folder_reads_jfif_files_as_jpeg(tmp_path):
    root = tmp_path / "jfif"
    for split in ("train", "test"):
        path = root / split / "a" / "photo.jfif"
        path.parent.mkdir(parents=True)
        Image.fromarray(np.full((8, 8, 3), 200, dtype=np.uint8)).save(path, format="JPEG", quality=95)
    dataset = load_dataset("imagefolder", root)
    assert dataset.train.images.shape == (1, 3, 8, 8)
    assert dataset.train.images.float().mean().item() == pytest.approx(200, abs=2)


def test_image_folder_broken_symlink_is_an_error_naming_it(folder_root):
    root, _ = folder_root
    link = root / "train" / "cat" / "0007.png"
    link.symlink_to(root / "nowhere.png")
    with pytest.raises(DatasetError, match=r"cat/0007.png is a broken symbolic link"):
        load_dataset("imagefolder", root)
    link.unlink()
    (root / "test" / "gone").symlink_to(root / "no-folder")
    with pytest.raises(DatasetError, match=r"test/gone is a broken symbolic link"):
        load_dataset("imagefolder", root)


def test_image_folder_test_class_unknown_to_training_is_an_error(folder_root):
    root, written = folder_root
    save_image(root / "test" / "emu" / "0000.png", written["train"][0][0].transpose(1, 2, 0))
    with pytest.raises(DatasetError, match=r"class folders that .*train lacks: emu"):
        load_dataset("imagefolder", root)


def test_image_folder_images_of_different_sizes_are_an_error(folder_root):
    root, _ = folder_root
    save_image(root / "train" / "dog" / "0009.png", np.zeros((9, 6, 3), dtype=np.uint8))
    with pytest.raises(DatasetError, match=r"dog/0009.png is 9x6 .*unlike .*ant/0000.png \(8x6\)"):
        load_dataset("imagefolder", root)
    (root / "train" / "dog" / "0009.png").unlink()
    save_image(root / "test" / "dog" / "0009.png", np.zeros((6, 8, 3), dtype=np.uint8))
    with pytest.raises(DatasetError, match=r"test/dog/0009.png is 6x8"):
        load_dataset("imagefolder", root)


def test_image_folder_empty_class_folder_is_an_error(folder_root):
    root, _ = folder_root
    (root / "test" / "cat").mkdir()
    (root / "test" / "cat" / "readme.txt").write_text("images to come")
    with pytest.raises(DatasetError, match=r"class folder .*test/cat holds no images"):
        load_dataset("imagefolder", root)


@pytest.mark.parametrize("suffix", ["png", "jpg"])
def test_image_folder_truncated_image_is_an_error_naming_it(folder_root, suffix):
    root, written = folder_root
    path = root / "train" / "cat" / f"0005.{suffix}"
    save_image(path, written["train"][0][0].transpose(1, 2, 0))
    truncate(path)
    with pytest.raises(DatasetError, match=rf"cannot decode image .*cat/0005.{suffix} .*truncated or corrupt"):
        load_dataset("imagefolder", root)


def test_image_folder_wrong_layout_is_an_error_with_a_hint(folder_root):
    root, _ = folder_root
    with pytest.raises(DatasetError, match=rf"test missing; .*did you mean {root}\?"):
        load_dataset("imagefolder", root.parent)
    stray = root / "train" / "stray.png"
    save_image(stray, np.zeros((8, 6, 3), dtype=np.uint8))
    with pytest.raises(DatasetError, match="stray.png is not inside a class folder"):
        load_dataset("imagefolder", root)


def test_image_folder_without_classes_is_an_error(tmp_path):
    (tmp_path / "train").mkdir()
    (tmp_path / "test").mkdir()
    with pytest.raises(DatasetError, match="has no class folders"):
        load_dataset("imagefolder", tmp_path)


# --- the cache --------------------------------------------------------------------


def test_cache_folder_comes_from_the_environment_or_home(monkeypatch, tmp_path):
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path / "elsewhere"))
    assert cache.cache_dir() == tmp_path / "elsewhere"
    monkeypatch.delenv(cache.CACHE_ENV)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cache.cache_dir() == tmp_path / ".cache" / "normtest"


def forbid_decoding(monkeypatch) -> None:
    monkeypatch.setattr(decode, "decode_bytes", lambda *a, **k: pytest.fail("decoded instead of using the cache"))


def test_second_load_is_served_from_the_cache(folder_root, monkeypatch, isolated_dataset_cache):
    root, _ = folder_root
    first = load_dataset("imagefolder", root)
    assert first.extra["cache"] == "miss"
    assert Path(first.extra["cache_entry"]).parent == isolated_dataset_cache / "datasets"
    forbid_decoding(monkeypatch)
    second = load_dataset("imagefolder", root)
    assert second.extra["cache"] == "hit"
    assert torch.equal(second.train.images, first.train.images) and torch.equal(second.test.labels, first.test.labels)
    assert (second.classes, second.native_size, second.source) == (first.classes, first.native_size, first.source)


def test_changed_source_file_invalidates_the_cache(folder_root):
    root, _ = folder_root
    first = load_dataset("imagefolder", root)
    path = root / "train" / "ant" / "0000.png"
    save_image(path, np.full((8, 6, 3), 5, dtype=np.uint8))
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))  # a clearly later mtime
    second = load_dataset("imagefolder", root)
    assert second.extra["cache"] == "miss"
    assert int(second.train.images[0].max()) == 5 and int(first.train.images[0].max()) > 5
    # the stale entry of the same source was removed
    assert not Path(first.extra["cache_entry"]).exists() and Path(second.extra["cache_entry"]).exists()


@pytest.mark.parametrize("damage", ["truncate", "flip", "meta"])
def test_damaged_cache_entry_is_ignored_and_rebuilt(folder_root, damage):
    root, written = folder_root
    entry = Path(load_dataset("imagefolder", root).extra["cache_entry"])
    images_file = entry / "train_images.npy"
    if damage == "truncate":
        truncate(images_file, keep=0.7)
    elif damage == "flip":  # same size and header, one pixel changed: only the checksum sees it
        data = bytearray(images_file.read_bytes())
        data[-1] ^= 0xFF
        images_file.write_bytes(bytes(data))
    else:
        (entry / "meta.json").write_text("{not json")
    with pytest.warns(UserWarning, match="damaged data set cache entry"):
        rebuilt = load_dataset("imagefolder", root)
    assert rebuilt.extra["cache"] == "miss"
    assert torch.equal(rebuilt.train.images, torch.from_numpy(written["train"][0]))
    assert load_dataset("imagefolder", root).extra["cache"] == "hit"


def test_unwritable_cache_only_warns(folder_root, monkeypatch, tmp_path):
    root, written = folder_root
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(cache.CACHE_ENV, str(blocker))
    with pytest.warns(UserWarning, match="could not write the data set cache"):
        dataset = load_dataset("imagefolder", root)
    assert torch.equal(dataset.train.images, torch.from_numpy(written["train"][0]))


def test_cache_files_load_without_pickle(folder_root):
    root, _ = folder_root
    entry = Path(load_dataset("imagefolder", root).extra["cache_entry"])
    for name in ("train_images", "train_labels", "test_images", "test_labels"):
        np.load(entry / f"{name}.npy", allow_pickle=False)


# --- Tiny ImageNet -------------------------------------------------------------------

TINY_WNIDS = ["n03000002", "n01000001", "n02000003"]  # wnids.txt order; labels follow the sorted order
TINY_WORDS = {"n01000001": "goldfish, Carassius auratus", "n02000003": "tabby, tabby cat", "n03000002": "school bus"}


def tiny_colour(label: int, index: int) -> tuple[int, int, int]:
    """A flat colour per image (JPEG keeps flat colours within a few levels), red high and blue low."""
    return (RED - 10 * label, 60 + 40 * index, BLUE + 5 * label)


def write_tiny_imagenet(parent: Path, size: int = 16, train_per_class: int = 2) -> Path:
    """The official tiny-imagenet-200 layout under ``parent``, with one grayscale training JPEG."""
    top = parent / "tiny-imagenet-200"
    top.mkdir(parents=True)
    (top / "wnids.txt").write_text("\n".join(TINY_WNIDS) + "\n")
    words = {"n00000009": "entity", **TINY_WORDS}
    (top / "words.txt").write_text("".join(f"{wnid}\t{text}\n" for wnid, text in words.items()))
    for label, wnid in enumerate(sorted(TINY_WNIDS)):
        (top / "train" / wnid).mkdir(parents=True)
        (top / "train" / wnid / f"{wnid}_boxes.txt").write_text("")
        for index in range(train_per_class):
            pixels = np.empty((size, size, 3), dtype=np.uint8)
            pixels[...] = tiny_colour(label, index)
            save_image(top / "train" / wnid / "images" / f"{wnid}_{index}.JPEG", pixels, format="JPEG", quality=95)
    gray = top / "train" / sorted(TINY_WNIDS)[2] / "images" / f"{sorted(TINY_WNIDS)[2]}_{train_per_class - 1}.JPEG"
    save_image(gray, np.full((size, size), 90, dtype=np.uint8), format="JPEG", quality=95)
    annotations = []
    for index, wnid in enumerate(["n02000003", "n01000001", "n03000002", "n02000003"]):
        label = sorted(TINY_WNIDS).index(wnid)
        pixels = np.empty((size, size, 3), dtype=np.uint8)
        pixels[...] = tiny_colour(label, index)
        save_image(top / "val" / "images" / f"val_{index}.JPEG", pixels, format="JPEG", quality=95)
        annotations.append(f"val_{index}.JPEG\t{wnid}\t0\t0\t{size - 1}\t{size - 1}\n")
    (top / "val" / "val_annotations.txt").write_text("".join(annotations))
    save_image(top / "test" / "images" / "test_0.JPEG", np.zeros((size, size, 3), np.uint8), format="JPEG")
    return top


def zip_folder(folder: Path, zip_path: Path) -> None:
    """Zip ``folder`` the way the official archive is: members under ``tiny-imagenet-200/``, folders listed."""
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            archive.write(path, f"{folder.name}/{path.relative_to(folder).as_posix()}" + ("/" if path.is_dir() else ""))


@pytest.fixture
def tiny_root(tmp_path):
    return write_tiny_imagenet(tmp_path / "data")


def assert_tiny_contents(dataset) -> None:
    assert dataset.classes == ("goldfish, Carassius auratus", "tabby, tabby cat", "school bus")
    assert dataset.extra["wnids"] == sorted(TINY_WNIDS)
    assert dataset.native_size == (16, 16)
    assert dataset.train.labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert dataset.test.labels.tolist() == [1, 0, 2, 1]  # val_annotations.txt order
    means = dataset.train.images.float().mean(dim=(2, 3))
    expected = [tiny_colour(label, index) for label in range(3) for index in range(2)]
    expected[-1] = (90, 90, 90)  # the grayscale JPEG, replicated to three channels
    assert means.tolist() == [pytest.approx(list(colour), abs=3) for colour in expected]
    test_means = dataset.test.images.float().mean(dim=(2, 3))
    assert test_means.tolist() == [
        pytest.approx(list(tiny_colour(label, i)), abs=3) for i, label in enumerate([1, 0, 2, 1])
    ]


def test_tiny_imagenet_reads_the_folder_or_its_parent(tiny_root, no_network):
    assert_tiny_contents(load_dataset("tiny_imagenet_200", tiny_root))
    from_parent = load_dataset("tiny_imagenet_200", tiny_root.parent)
    assert_tiny_contents(from_parent)
    assert from_parent.source == str(tiny_root) and from_parent.extra["cache"] == "hit"


def test_tiny_imagenet_reads_the_official_zip_in_place(tiny_root, tmp_path, monkeypatch, no_network):
    zip_root = tmp_path / "zipped"
    zip_root.mkdir()
    zip_folder(tiny_root, zip_root / "tiny-imagenet-200.zip")
    monkeypatch.setattr(tiny_imagenet, "ZIP_MD5", md5(zip_root / "tiny-imagenet-200.zip"))
    from_zip = load_dataset("tiny_imagenet_200", zip_root)
    assert_tiny_contents(from_zip)
    assert from_zip.source == str(zip_root / "tiny-imagenet-200.zip")
    assert not (zip_root / "tiny-imagenet-200").exists()  # nothing was extracted
    from_folder = load_dataset("tiny_imagenet_200", tiny_root)
    assert torch.equal(from_zip.train.images, from_folder.train.images)
    assert torch.equal(from_zip.test.images, from_folder.test.images)
    assert load_dataset("tiny_imagenet_200", zip_root / "tiny-imagenet-200.zip").extra["cache"] == "hit"


def test_tiny_imagenet_zip_failing_its_md5_is_an_error(tiny_root, tmp_path, no_network):
    zip_folder(tiny_root, tmp_path / "tiny-imagenet-200.zip")  # not the official bytes
    with pytest.raises(DatasetError, match=r"tiny-imagenet-200.zip fails its md5 check .*download=True"):
        load_dataset("tiny_imagenet_200", tmp_path)


def test_tiny_imagenet_truncated_zip_is_an_error(tiny_root, tmp_path, no_network):
    zip_folder(tiny_root, tmp_path / "tiny-imagenet-200.zip")
    truncate(tmp_path / "tiny-imagenet-200.zip", keep=0.6)
    with pytest.raises(DatasetError, match=r"cannot open .*tiny-imagenet-200.zip as a zip archive"):
        load_dataset("tiny_imagenet_200", tmp_path)


def test_tiny_imagenet_absent_without_download_does_not_fetch(tmp_path, no_network):
    with pytest.raises(DatasetError, match=r"no Tiny ImageNet at .*pass download=True to fetch http://cs231n"):
        load_dataset("tiny_imagenet_200", tmp_path)


def test_tiny_imagenet_download_fetches_the_zip_and_checks_it(tiny_root, tmp_path, monkeypatch):
    prepared = tmp_path / "prepared.zip"
    zip_folder(tiny_root, prepared)
    calls = []

    def fake_download(url, root, filename, md5_expected):
        calls.append((url, filename, md5_expected))
        shutil.copy(prepared, Path(root) / filename)

    monkeypatch.setattr(torchvision.datasets.utils, "download_url", fake_download)
    monkeypatch.setattr(tiny_imagenet, "ZIP_MD5", md5(prepared))
    target = tmp_path / "fresh"
    target.mkdir()
    dataset = load_dataset("tiny_imagenet_200", target, download=True)
    assert calls == [(tiny_imagenet.URL, "tiny-imagenet-200.zip", md5(prepared))]
    assert_tiny_contents(dataset)


def test_tiny_imagenet_download_replaces_a_damaged_zip(tiny_root, tmp_path, monkeypatch):
    prepared = tmp_path / "prepared.zip"
    zip_folder(tiny_root, prepared)
    monkeypatch.setattr(tiny_imagenet, "ZIP_MD5", md5(prepared))
    target = tmp_path / "damaged"
    target.mkdir()
    (target / "tiny-imagenet-200.zip").write_bytes(prepared.read_bytes()[:1000])

    def fake_download(url, root, filename, md5_expected):  # like torchvision's: keeps an intact file
        if md5(Path(root) / filename) != md5_expected:
            shutil.copy(prepared, Path(root) / filename)

    monkeypatch.setattr(torchvision.datasets.utils, "download_url", fake_download)
    assert_tiny_contents(load_dataset("tiny_imagenet_200", target, download=True))


def test_tiny_imagenet_failed_download_is_a_dataset_error(tmp_path, offline):
    with pytest.raises(DatasetError, match=r"could not download http://cs231n.stanford.edu/tiny-imagenet-200.zip"):
        load_dataset("tiny_imagenet_200", tmp_path, download=True)


def test_tiny_imagenet_missing_annotations_is_an_error(tiny_root):
    (tiny_root / "val" / "val_annotations.txt").unlink()
    with pytest.raises(DatasetError, match=r"val/val_annotations.txt is missing; re-extract"):
        load_dataset("tiny_imagenet_200", tiny_root)


def test_tiny_imagenet_annotation_naming_a_missing_image_is_an_error(tiny_root):
    (tiny_root / "val" / "images" / "val_2.JPEG").unlink()
    with pytest.raises(DatasetError, match=r"line 3 names val_2.JPEG, which .*val/images lacks"):
        load_dataset("tiny_imagenet_200", tiny_root)


def test_tiny_imagenet_unannotated_val_image_is_an_error(tiny_root):
    lines = (tiny_root / "val" / "val_annotations.txt").read_text().splitlines(keepends=True)
    (tiny_root / "val" / "val_annotations.txt").write_text("".join(lines[:-1]))
    with pytest.raises(DatasetError, match=r"1 images in .*val/images have no line"):
        load_dataset("tiny_imagenet_200", tiny_root)


def test_tiny_imagenet_empty_or_missing_class_folder_is_an_error(tiny_root):
    images = tiny_root / "train" / "n02000003" / "images"
    for path in images.iterdir():
        path.unlink()
    with pytest.raises(DatasetError, match=r"train/n02000003/images holds no images"):
        load_dataset("tiny_imagenet_200", tiny_root)
    shutil.rmtree(tiny_root / "train" / "n02000003")
    with pytest.raises(DatasetError, match=r"does not match wnids.txt \(class folders missing: n02000003\)"):
        load_dataset("tiny_imagenet_200", tiny_root)


def test_tiny_imagenet_missing_description_or_class_list_is_an_error(tiny_root):
    (tiny_root / "words.txt").write_text("n01000001\tgoldfish\n")
    with pytest.raises(DatasetError, match=r"words.txt has no description for n02000003, n03000002"):
        load_dataset("tiny_imagenet_200", tiny_root)
    (tiny_root / "wnids.txt").unlink()
    with pytest.raises(DatasetError, match=r"wnids.txt is missing"):
        load_dataset("tiny_imagenet_200", tiny_root)


def test_tiny_imagenet_truncated_jpeg_is_an_error_naming_it(tiny_root):
    truncate(tiny_root / "val" / "images" / "val_1.JPEG")
    with pytest.raises(DatasetError, match=r"cannot decode image .*val/images/val_1.JPEG .*re-extract"):
        load_dataset("tiny_imagenet_200", tiny_root)


def test_tiny_imagenet_damaged_zip_member_is_an_error_naming_it(tiny_root, tmp_path, monkeypatch):
    zip_path = tmp_path / "tiny-imagenet-200.zip"
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_STORED) as archive:  # stored: member bytes are findable
        for path in sorted(tiny_root.rglob("*")):
            if path.is_file():
                archive.write(path, f"tiny-imagenet-200/{path.relative_to(tiny_root).as_posix()}")
    member = (tiny_root / "train" / "n01000001" / "images" / "n01000001_1.JPEG").read_bytes()
    data = bytearray(zip_path.read_bytes())
    start = data.find(member)
    data[start + len(member) // 2] ^= 0xFF  # breaks the member's CRC-32, not the directory
    zip_path.write_bytes(bytes(data))
    monkeypatch.setattr(tiny_imagenet, "ZIP_MD5", md5(zip_path))
    with pytest.raises(DatasetError, match=r"n01000001_1.JPEG .*delete .*tiny-imagenet-200.zip and download it again"):
        load_dataset("tiny_imagenet_200", tmp_path)


def test_decode_errors_name_the_file_and_the_remedy():
    encoded = io.BytesIO()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(encoded, format="JPEG")
    for broken in (encoded.getvalue()[:100], b"", b"not an image at all"):
        with pytest.raises(DatasetError, match=r"cannot decode image x.jpg .*replace it"):
            decode.decode_images(["x.jpg"], {"x.jpg": broken}.__getitem__, advice="replace it")


def test_sixteen_bit_png_is_scaled_not_clipped(tmp_path):
    values = (np.arange(64, dtype=np.uint16) * 1028).reshape(8, 8)  # 0 .. 64764
    Image.fromarray(values).save(tmp_path / "deep.png")
    pixels = decode.decode_bytes((tmp_path / "deep.png").read_bytes())
    assert pixels.shape == (3, 8, 8)
    assert np.array_equal(pixels[0], np.round(values / 257).astype(np.uint8))
    assert np.array_equal(pixels[0], pixels[2])


def toy_dataset() -> ImageDataset:
    images = torch.arange(2 * 3 * 2 * 2, dtype=torch.uint8).reshape(2, 3, 2, 2)
    split = Split(images, torch.tensor([0, 1]))
    return ImageDataset("toy", split, split, ("a", "b"), (2, 2), "toy-source")


def test_concurrent_loads_of_one_data_set_decode_it_once(monkeypatch):
    """The second loader waits for the first one's entry instead of decoding too."""
    real_read_entry = cache._read_entry
    second_loader_reads = []
    second_loader_checked_again = threading.Event()

    def read_entry(entry, warn=True):
        if threading.current_thread().name == "second":
            second_loader_reads.append(entry)
            if len(second_loader_reads) == 2:  # its re-check, which happens under the lock
                second_loader_checked_again.set()
        return real_read_entry(entry, warn)

    builds, results = [], {}

    def build():
        builds.append(threading.current_thread().name)
        if threading.current_thread().name == "first":
            second.start()
            # Without the lock the second loader re-checks at once, finds nothing and builds too;
            # with it, it is blocked until this build is written, so this wait times out.
            second_loader_checked_again.wait(timeout=1.0)
        return toy_dataset()

    def load():
        results[threading.current_thread().name] = cache.load_cached("toy", cache.Fingerprint("toy"), build)

    monkeypatch.setattr(cache, "_read_entry", read_entry)
    first = threading.Thread(target=load, name="first")
    second = threading.Thread(target=load, name="second")
    first.start()
    first.join()
    second.join()
    assert builds == ["first"]
    assert results["first"].extra["cache"] == "miss" and results["second"].extra["cache"] == "hit"
    assert torch.equal(results["second"].train.images, toy_dataset().train.images)
