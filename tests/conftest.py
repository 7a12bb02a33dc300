"""Shared fixtures: a data set cache folder for every test, and the real data archives.

The real archives (``cifar10-jpeg.tar.gz``, ``tiny-imagenet-200.tar.gz``) sit in
``<repo>/../shared/data``. Each is extracted once into
``<repo>/.cache/test-data/<sha256 prefix>/`` (git-ignored) and reused by later
sessions; a ``.complete`` marker, written last, tells a finished extraction from
an interrupted one, which is redone. Tests that need an archive that is absent
are skipped, saying which file is missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from normtest_lib.data import ImageDataset, load_dataset
from normtest_lib.data.cache import CACHE_ENV
from normtest_lib.models.factory import file_sha256

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"
EXTRACT_ROOT = REPO / ".cache" / "test-data"
COMPLETE_MARKER = ".complete"
REAL_DATA_ROOTS = frozenset({"cifar10_jpeg_root", "tiny_imagenet_root"})


@pytest.fixture(autouse=True)
def isolated_dataset_cache(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Point NORMTEST_CACHE_DIR at a cache folder for this test; nothing reaches ~/.cache.

    Tests on small written files get a fresh folder each, so nothing leaks between
    them. Tests that use a real data set (they request ``cifar10_jpeg_root`` or
    ``tiny_imagenet_root``) share the session's real-data cache, so each real data
    set is decoded once per session whichever test loads it first.
    """
    if REAL_DATA_ROOTS & set(request.fixturenames):
        folder = request.getfixturevalue("real_data_cache_dir")
    else:
        folder = tmp_path_factory.mktemp("normtest-cache")
    monkeypatch.setenv(CACHE_ENV, str(folder))
    return folder


# --- real data ----------------------------------------------------------------



def extract_once(archive: Path) -> Path:
    """Extract ``archive`` into ``.cache/test-data/<sha256[:16]>/`` unless a complete extraction is there."""
    destination = EXTRACT_ROOT / file_sha256(archive)[:16]
    if (destination / COMPLETE_MARKER).is_file():
        return destination
    EXTRACT_ROOT.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", dir=EXTRACT_ROOT))
    try:
        if shutil.which("tar"):  # GNU tar is several times faster than tarfile on 120,000 small files
            subprocess.run(["tar", "-xzf", str(archive), "-C", str(staging)], check=True)
        else:
            with tarfile.open(archive) as tar:
                tar.extractall(staging, filter="data")
        (staging / COMPLETE_MARKER).write_text(f"{archive.name}\n")
        if (destination / COMPLETE_MARKER).is_file():  # a concurrent session finished first
            return destination
        if destination.exists():  # an interrupted extraction from an earlier session
            shutil.rmtree(destination)
        os.replace(staging, destination)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return destination


def _real_folder(archive_name: str, folder_name: str) -> Path:
    archive = SHARED_DATA / archive_name
    if not archive.is_file():
        pytest.skip(f"real data archive {archive} is absent (see ../shared/data/README.md)")
    return extract_once(archive) / folder_name


@pytest.fixture(scope="session")
def cifar10_jpeg_root() -> Path:
    """The extracted ``cifar10-jpeg`` folder (``{train,test}/<class>/NNNN.jpg``)."""
    return _real_folder("cifar10-jpeg.tar.gz", "cifar10-jpeg")


@pytest.fixture(scope="session")
def tiny_imagenet_root() -> Path:
    """The extracted ``tiny-imagenet-200`` folder in its official layout."""
    return _real_folder("tiny-imagenet-200.tar.gz", "tiny-imagenet-200")


@pytest.fixture(scope="session")
def real_data_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The session's cache of decoded real data sets (about 1.5 GB); removed at the end of the session."""
    folder = tmp_path_factory.mktemp("real-data-cache")
    yield folder
    shutil.rmtree(folder, ignore_errors=True)  # ~1.5 GB; pytest would keep it around for three sessions


def _load_into_session_cache(name: str, root: Path, cache: Path) -> ImageDataset:
    with pytest.MonkeyPatch.context() as patch:  # session scope: the per-test setting may not be active
        patch.setenv(CACHE_ENV, str(cache))
        return load_dataset(name, root)


@pytest.fixture(scope="session")
def cifar10_jpeg(cifar10_jpeg_root: Path, real_data_cache_dir: Path) -> ImageDataset:
    """The CIFAR-10 JPEG copy as an ImageDataset, decoded once per session."""
    return _load_into_session_cache("imagefolder", cifar10_jpeg_root, real_data_cache_dir)


@pytest.fixture(scope="session")
def tiny_imagenet(tiny_imagenet_root: Path, real_data_cache_dir: Path) -> ImageDataset:
    """Tiny ImageNet-200 as an ImageDataset, decoded once per session (about 1.4 GB in memory)."""
    return _load_into_session_cache("tiny_imagenet_200", tiny_imagenet_root, real_data_cache_dir)


# --- CUDA -----------------------------------------------------------------------


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``cuda`` need a CUDA device: skipped without one (``make device-check`` runs them)."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (make device-check runs these on one)")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)
