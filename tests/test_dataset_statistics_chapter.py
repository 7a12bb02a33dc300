"""The dataset statistics chapter executes on fabricated committed statistics, and without any.

The fabricated project has no data/ folder (a fresh clone): the chapter must take the real data
from results/dataset_statistics/ alone, and say so plainly when that is absent too.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import papermill
import pytest

from normtest_lib.report import stats_tables
from normtest_lib.stats.record import compute_record, read_records, statistics_folder, write_record
from normtest_lib.stats.reference import PUBLISHED_TABLE1

from test_dataset_statistics import BLUE, RED, write_image_folder

REPO = Path(__file__).resolve().parents[1]
FAST = {"datasets": ["synthetic-dim"], "gallery_images": 1, "histogram_images": 100}


def fabricate_statistics(project: Path) -> dict:
    """Two records computed from fabricated image folders, under the real data sets' names; the images then go."""
    sources = project / "sources"
    write_image_folder(sources / "a", {"a": RED, "b": BLUE})
    write_image_folder(sources / "b", {"a": BLUE, "b": (10, 200, 90)})
    folder = statistics_folder(project / "results")
    for source, name, published in (("a", "cifar10-jpeg", "cifar10"), ("b", "tiny_imagenet_200", "tiny_imagenet_200")):
        record = compute_record("imagefolder", sources / source, name=name, published_as=published, project_root=project)
        write_record(record, folder, project_root=project)
    # The underexposed copy, as `make dataset-stats` writes it: no published statistics.
    write_record(compute_record("imagefolder+dim", sources / "a", name="cifar10-jpeg+dim", project_root=project), folder,
                 project_root=project)
    shutil.rmtree(sources)
    return read_records(folder)


def execute(project: Path) -> tuple[str, dict[str, dict]]:
    """Run the template in ``project``; the executed cells as JSON text and the glued outputs by key."""
    output = project / "chapter.ipynb"
    papermill.execute_notebook(
        str(REPO / "notebooks" / "dataset_statistics.ipynb"), str(output), cwd=str(project), progress_bar=False,
        kernel_name="python3", parameters=FAST,
    )
    cells = nbformat.read(output, as_version=4).cells
    glued = {
        o.metadata["scrapbook"]["name"]: o.data
        for cell in cells if cell.cell_type == "code" for o in cell.outputs if "scrapbook" in o.get("metadata", {})
    }
    return json.dumps(cells), glued


@pytest.mark.slow
def test_the_chapter_shows_committed_real_statistics_beside_live_synthetic_ones(tmp_path, monkeypatch):
    monkeypatch.setenv("NORMTEST_CACHE_DIR", str(tmp_path / "cache"))
    records = fabricate_statistics(tmp_path)
    assert not (tmp_path / "data").exists() and not (tmp_path / "sources").exists()
    text, glued = execute(tmp_path)
    assert '"output_type": "error"' not in text
    assert "Real data and synthetic data: channel statistics of each training split" in glued["channel_stats_table"]["application/papermill.record/text/html"]
    real = glued["table1_real"]["application/papermill.record/text/html"]
    assert "Real data: the earlier work" in real and "difference" in real
    assert f"{PUBLISHED_TABLE1['tiny_imagenet_200'].mean[0]:.3f}" in real  # the published row, from the library
    assert "Synthetic data: the earlier work" in glued["table1"]["application/papermill.record/text/html"]
    # The sentences come from the records, through the same library functions.
    table1 = stats_tables.records_table1_frame(records)
    comparison = stats_tables.table1_comparison(table1, stats_tables.records_published_table1(records))
    assert stats_tables.published_difference_sentence(comparison) in glued["published_difference"]["application/papermill.record/text/markdown"]
    assert stats_tables.table1_summary(table1, "real data, from the committed statistics") in text
    # The shifted copy is a row of its own in each real-data table, after its base, with every setting.
    assert list(records) == ["cifar10-jpeg", "cifar10-jpeg+dim", "tiny_imagenet_200"]
    assert "cifar10-jpeg+dim" in glued["real_provenance"]["application/papermill.record/text/html"]
    assert "cifar10-jpeg+dim" in glued["channel_stats_table"]["application/papermill.record/text/html"]
    assert f"{records['cifar10-jpeg+dim'].table1['pretrain'].mean[0]:.3f}" in real
    assert len(table1.xs("cifar10-jpeg+dim", level="dataset")) == len(table1.xs("cifar10-jpeg", level="dataset"))
    for key in ("histograms_unit_real", "histograms_pretrain_real", "histograms_unit", "gallery", "gallery_real"):
        assert "application/papermill.record/image/png" in glued[key], key
    assert str(tmp_path) not in text  # the chapter names the results folder relative to the project
    # Real images beside the synthetic ones: the committed gallery of each record, with what the display shows.
    real_sentence = glued["gallery_real_sentence"]["application/papermill.record/text/markdown"]
    assert real_sentence.startswith("Displayed this way, ") and "`pretrain`" in real_sentence
    synthetic_sentence = glued["gallery_sentence"]["application/papermill.record/text/markdown"]
    assert "`none` looks exactly like `unit`" in synthetic_sentence and "differ from it visibly" in synthetic_sentence
    # Where the published rows come from, from the records through the library.
    source = glued["published_source"]["application/papermill.record/text/markdown"]
    assert source == stats_tables.published_source_sentence(records) and "`stats.py`" in source


@pytest.mark.slow
def test_without_committed_statistics_the_chapter_says_so_and_shows_synthetic_data(tmp_path, monkeypatch):
    monkeypatch.setenv("NORMTEST_CACHE_DIR", str(tmp_path / "cache"))
    text, glued = execute(tmp_path)
    assert '"output_type": "error"' not in text
    assert "No committed real-data statistics" in glued["real_data_status"]["application/papermill.record/text/markdown"]
    assert "results/dataset_statistics/local" in text
    assert "Synthetic data: channel statistics" in glued["channel_stats_table"]["application/papermill.record/text/html"]
    assert "no committed statistics" in glued["table1_real"]["application/papermill.record/text/markdown"]
    assert "application/papermill.record/image/png" in glued["histograms_unit_real"]  # a message figure
    assert "No committed gallery images" in glued["gallery_real_sentence"]["application/papermill.record/text/markdown"]
