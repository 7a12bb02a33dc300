"""The errata chapter: every entry in four parts, linked from its study chapter, executed on fabricated results.

The entries were the study chapters' errata sections; what those chapters' tests asserted about
them is asserted here, on the same fabricated results of all three studies (their fixtures,
imported), with the CIFAR-10 JPEG copy's images present, a committed statistics record standing for
Tiny ImageNet's, and SVHN missing.
"""

from __future__ import annotations

import ast
import re

import nbformat
import pytest

from test_convnorm_label_noise_chapter import fabricate as fabricate_convnorm_label_noise
from test_input_normalization_chapter import REPO, execute_chapter, fabricate_local_profile, write_imagefolder
from test_normalization_layers_chapter import fabricate as fabricate_normalization_layers

from normtest_lib.report.references import EARLIER_WORKS, reference
from normtest_lib.stats.record import compute_record, statistics_folder, write_record

TEMPLATE = REPO / "notebooks" / "errata.ipynb"
GLUE_PREFIX = "application/papermill.record/"
# Each study chapter and the label prefixes of its entries in the errata chapter.
STUDY_ENTRIES = {
    "input_normalization": ("errata-input-",),
    "normalization_layers": ("errata-layers-",),
    "convnorm_label_noise": ("errata-convnorm-port", "errata-noise-"),
}
PARTS = ("**What the earlier work did.**", "**Where in the earlier code.**", "**Why it matters.**",
         "**What this project does instead.**")
EVIDENCE = "**Evidence computed here.**"
ENTRY = re.compile(r"^\((errata-[a-z0-9-]+)\)=\n### ", re.MULTILINE)
LABEL = re.compile(r"^\((errata-[a-z0-9-]+)\)=$", re.MULTILINE)
REF = re.compile(r"\{ref\}`(?:[^`<]*<)?(errata-[a-z0-9-]+)>?`")
GLUE_ROLE = re.compile(r"\{glue(?::[a-z]*)?\}`([^`]+)`")
GLUE_DIRECTIVE = re.compile(r"^```\{glue(?::[a-z]*)?\} *(\S+)", re.MULTILINE)


def markdown_sources(path) -> list[str]:
    return [cell.source for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "markdown"]


def entry_labels() -> list[str]:
    return [label for text in markdown_sources(TEMPLATE) for label in ENTRY.findall(text)]


def glue_references(texts: list[str]) -> set[str]:
    """The glue keys ``texts`` paste (a role's ``key:format`` counts as ``key``)."""
    return {key.split(":")[0] for text in texts for key in GLUE_ROLE.findall(text) + GLUE_DIRECTIVE.findall(text)}


def test_every_entry_has_the_four_parts_and_glued_evidence():
    sources = markdown_sources(TEMPLATE)
    entries = [i for i, text in enumerate(sources) if ENTRY.search(text)]
    assert len(entries) == len(set(entry_labels())) >= 10 + 3 + 2  # at least one per bullet of STUDIES.md
    earlier = [reference(key).url for key in EARLIER_WORKS]
    for i in entries:
        assert all(part in sources[i] for part in PARTS), sources[i][:80]
        # The earlier code's repository, linked, in the paragraph that names its file.
        where = next(p for p in sources[i].split("\n\n") if p.startswith("**Where in the earlier code.**"))
        assert any(f"]({url})" in where for url in earlier), sources[i][:80]
        assert "`" in where, sources[i][:80]  # a file (and function) named
        evidence = sources[i + 1]  # the next markdown cell, after the entry's code
        assert evidence.startswith(EVIDENCE) and glue_references([evidence]), sources[i][:80]


def test_each_study_chapter_links_to_every_entry_of_its_study_and_repeats_none():
    labels = {label for text in markdown_sources(TEMPLATE) for label in LABEL.findall(text)}
    for study, prefixes in STUDY_ENTRIES.items():
        chapter = REPO / "notebooks" / f"{study}.ipynb"
        texts = markdown_sources(chapter)
        links = {label for text in texts for label in REF.findall(text)}
        assert links <= labels, links - labels  # Sphinx would warn on any other
        own = {label for label in entry_labels() if label.startswith(prefixes)}
        assert own and own <= links, own - links
        code = [cell.source for cell in nbformat.read(chapter, as_version=4).cells if cell.cell_type == "code"]
        assert not [source for source in code if 'glue("errata_' in source], study  # no errata evidence left behind


def glued_outputs(notebook: nbformat.NotebookNode) -> dict[str, dict]:
    """Each glued name's mime bundle (the glue prefix taken off the mime types)."""
    glued = {}
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            name = output.get("metadata", {}).get("scrapbook", {}).get("name")
            if name is not None:
                glued[name] = {mime.removeprefix(GLUE_PREFIX): value for mime, value in output["data"].items()}
    return glued


def text_of(bundle: dict) -> str:
    """A glued value's text: its markdown, HTML and plain text, the plain text as the book shows it (no quotes)."""
    texts = [bundle[mime] for mime in ("text/markdown", "text/html") if mime in bundle]
    plain = bundle.get("text/plain", "")
    try:
        plain = str(ast.literal_eval(plain))
    except (ValueError, SyntaxError):
        pass
    return "\n".join([plain, *texts])


@pytest.fixture(scope="module")
def executed(tmp_path_factory) -> tuple[nbformat.NotebookNode, dict[str, str], dict[str, dict]]:
    project = tmp_path_factory.mktemp("errata")
    fabricate_local_profile(project / "results")
    fabricate_normalization_layers(project / "results")
    fabricate_convnorm_label_noise(project / "results")
    # CIFAR-10's images are here, without a record; Tiny ImageNet has a committed record (made from a synthetic
    # sample), without images; SVHN has neither.
    write_imagefolder(project / "data" / "cifar10-jpeg")
    tiny = compute_record("synthetic", name="tiny_imagenet_200", max_images=200)
    write_record(tiny, statistics_folder(project / "results"), project_root=project)
    data_roots = {"cifar10-jpeg": "data/cifar10-jpeg", "tiny_imagenet_200": "data/tiny-imagenet-200", "svhn": "data/svhn"}
    execute_chapter("errata", project, {"grids_dir": str(REPO / "params"), "tests_dir": str(REPO / "tests"),
                                        "data_roots": data_roots})
    notebook = nbformat.read(project / "chapter.ipynb", as_version=4)
    glued = glued_outputs(notebook)
    return notebook, {name: text_of(bundle) for name, bundle in glued.items()}, glued


@pytest.mark.slow
def test_every_glue_reference_of_the_chapter_is_glued(executed):
    notebook, text, _ = executed
    referenced = glue_references([cell.source for cell in notebook.cells if cell.cell_type == "markdown"])
    assert referenced and referenced <= set(text), referenced - set(text)
    errors = [output for cell in notebook.cells for output in cell.get("outputs", []) if output.output_type == "error"]
    assert not errors


@pytest.mark.slow
def test_the_runs_read_are_named_and_counted(executed):
    _, text, _ = executed
    # Study 1: the pretraining run and 9 fine-tuning cells x 3 seeds; studies 2 and 3: 27 runs each.
    # Counted as the chapters and the landing page count them (report/counts.py; tests/test_counts.py), of the grids'.
    assert ("`input_normalization`: 28 of the 92 runs in the `local` profile's grid are complete (1 pretraining run "
            "and 27 fine-tuning runs)") in text["input_runs_text"]
    assert "`normalization_layers`: 27 of the 30 runs in the `local` profile's grid are complete" in text["layers_runs_text"]
    assert "`convnorm_label_noise`: 27 of the 27 runs in the `local` profile's grid are complete" in text["noise_runs_text"]
    assert [text[key] for key in ("errata_minmax_n", "errata_instance_n", "errata_noisy_n")] == ["6", "3", "18"]


@pytest.mark.slow
def test_study_1_entries_compute_from_runs_and_say_when_data_is_missing(executed):
    _, text, _ = executed
    data_text = text["input_data_text"]
    assert "committed in `results/dataset_statistics/local`: `tiny_imagenet_200` (200 images" in data_text
    assert "Computed now from the training splits on this machine: `cifar10-jpeg`" in data_text
    assert "Neither recorded nor on this machine (run `make data`): `svhn` (`data/svhn`)" in data_text
    # Tiny ImageNet's rows come from its record alone: its images are not here.
    assert "BGR (the earlier work's loading)" in text["errata_bgr"] and "Not computed here" not in text["errata_bgr"]
    # The computed rows are ranked among themselves: CIFAR-10's and Tiny ImageNet's, never a published row.
    assert "Among the 2 rows computed here in RGB (`cifar10` and `tiny_imagenet_200`)" in text["errata_bgr_rank"]
    assert "`cifar100` and `svhn` are not on this machine" in text["errata_bgr_rank"]
    for name in ("cifar10-jpeg", "tiny_imagenet_200"):
        assert name in text["errata_minmax"] and name in text["errata_instance_eps"]
    assert "share spanning 0..255" in text["errata_minmax"] and "svhn" not in text["errata_minmax"]
    assert "over its crops (padded by 4" in text["errata_padding"] and "zero-padded by 4" not in text["errata_padding"]
    assert "0.234" in text["errata_crop_black"] and "0.134" in text["errata_crop_black"]  # CIFAR's crops: most, mean
    assert "13.4 % black on average and at most 23.4 %" in text["errata_crop_sentence"]
    # What the typo computed: the `instance` name reaches torchvision's Normalize without statistics, which fails.
    assert "TypeError" in text["errata_instance_typo"] and "misspelt" in text["errata_instance_typo"]
    # instance is 10 points under finetune in every seed of the fixture
    assert "`instance` -10.0 [-10.0, -10.0]" in text["errata_instance_paired"]
    assert "one constant image made here" in text["errata_instance_eps"] and text["errata_eps"] == "1e-05"
    assert "Over 18 runs" in text["errata_selection_sentence"]
    assert "published |difference to finetune| (pp)" in text["errata_spread"] and text["errata_seeds"] == "3"
    assert "ResNet50_Weights.IMAGENET1K_V1" in text["errata_pinning_weights"]
    assert "extended" in text["errata_resolution_grid"] and int(text["errata_preprocessing_runs"]) > 0


@pytest.mark.slow
def test_study_2_entries_reproduce_each_defect_beside_ours(executed):
    _, text, _ = executed
    # Asserted by study 2's chapter test before the errata moved here.
    assert "the earlier work's BIN (gate re-created in forward)" in text["errata_gate_demo"]
    assert "no-such-run" in text["errata_predict"] and "normtest: error:" in text["errata_predict"]
    assert "`bin` -1.0 [-1.0, -1.0]" in text["errata_bin_paired"]  # bin 0.69 against bn 0.70 in every seed
    assert "batch 32" in text["errata_batch_sizes"] and "69.0 ± 1.0 (n=3)" in text["errata_batch_sizes"]
    assert "the earlier work's bn (history kept)" in text["errata_bn_history"]
    assert "refused: flip" in text["errata_flags"] and "text != False" in text["errata_flags"]
    assert "./dataset/c" in text["errata_data_dir"]  # the data folder cut one character short
    assert text["errata_path_edits"] == "0" and int(text["errata_tests_n"]) > 100


@pytest.mark.slow
def test_study_3_entries_read_the_noisy_runs_and_the_published_values(executed):
    _, text, glued = executed
    assert (text["errata_published_bn"], text["errata_published_convnorm"]) == ("94.5", "73")
    assert "`convnorm` -4.0 [-4.0, -4.0]" in text["errata_convnorm_paired"]  # 0.76 against bn's 0.80, no noise
    assert "image/png" in glued["errata_spectra"]
    assert "official-style validation: wrong labels (%)" in text["errata_validation"]
    assert "18.00" in text["errata_rates"]  # 20 % symmetric noise on 10 classes
    saved = glued["errata_saved"]["text/html"]
    assert re.search(r"<th>20 %</th>(\s*<td>9</td>){3}", saved), saved  # 9 noisy runs, all saved, all give back their rate
    files = re.findall(r"<td>(\d+)</td>\s*</tr>", glued["errata_seed_runs"]["text/html"])  # the last column
    assert len(files) == 6 and set(files) == {"1"}  # 2 levels x 3 noise seeds, one noisy-label file each


CORRECTION_PARTS = ("**What the first edition computed.**", "**Which numbers it affected.**",
                    "**What replaced them.**", "**Evidence computed here.**")


def test_the_book_corrects_its_own_convnorm_in_the_open():
    sources = markdown_sources(TEMPLATE)
    corrections = [text for text in sources if text.startswith("(errata-corrections)=\n## Corrections to this book")]
    assert len(corrections) == 1
    section = corrections[0]
    assert "(correction-convnorm-fft)=\n### ConvNorm's FFT size" in section
    assert all(part in section for part in CORRECTION_PARTS)
    assert {"correction_convnorm_runs", "correction_convnorm_table"} <= glue_references([section])
    # The study 3 chapter and the port's entry point readers to it.
    chapter = "\n".join(markdown_sources(REPO / "notebooks" / "convnorm_label_noise.ipynb"))
    assert "<errata-corrections>" in chapter
    assert any("<errata-corrections>" in text and "(errata-convnorm-port)=" in text for text in sources)
