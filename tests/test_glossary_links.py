"""Every chapter links the glossary, and every glossary link, typed or generated, names a label the glossary has.

A chapter's Markdown links a section with ``{ref}`text <glossary-...>``` (Sphinx fails the build on an unknown
label, but only when the book is built); a table's caption and a displayed sentence link it by address
(``glossary.html#glossary-...``), which no build checks: both are checked here against the labels the glossary
notebook defines.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from normtest_lib.report import findings, glossary, glossary_links, protocol, speed, stats_tables

REPO = Path(__file__).resolve().parents[1]
# The chapters whose tables and sentences use the names the glossary defines.
CHAPTERS = ("findings", "dataset_statistics", "input_normalization", "normalization_layers", "convnorm_label_noise",
            "errata")
LABEL = re.compile(r"^\(([\w-]+)\)=\s*$", re.M)
REF = re.compile(r"\{ref\}`(?:[^`<]*<)?([\w-]+)>?`")
DOC = re.compile(r"\{doc\}`(?:[^`<]*<)?([\w/-]+)>?`")
HREF = re.compile(r"glossary\.html#([\w-]+)")


def markdown_of(name: str) -> str:
    notebook = nbformat.read(REPO / "notebooks" / f"{name}.ipynb", as_version=4)
    return "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "markdown")


def glossary_labels() -> set[str]:
    return set(LABEL.findall(markdown_of("glossary")))


def glossary_refs(text: str) -> list[str]:
    return [label for label in REF.findall(text) if label.startswith(glossary_links.GLOSSARY_LABEL)]


def test_every_section_label_is_on_the_glossary_page_and_every_kind_has_one():
    labels = glossary_labels()
    assert glossary_links.GLOSSARY_LABEL in labels
    assert {glossary_links.label(kind) for kind in glossary_links.SECTIONS} <= labels
    assert list(glossary_links.SECTIONS) == list(glossary.KINDS)  # a section per kind of the glossary's tables
    assert set(kind for kinds in glossary_links.COLUMN_KINDS.values() for kind in kinds) <= set(glossary_links.SECTIONS)
    with pytest.raises(KeyError, match="known: norm_layer"):
        glossary_links.label("layers")


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_every_chapter_links_the_glossary_and_every_label_it_links_exists(chapter):
    text = markdown_of(chapter)
    refs = glossary_refs(text)
    docs = [doc for doc in DOC.findall(text) if doc.rsplit("/", 1)[-1] == "glossary"]
    assert refs or docs, f"{chapter} never links the glossary"
    assert set(refs) <= glossary_labels(), set(refs) - glossary_labels()


@pytest.mark.parametrize("chapter", [c for c in CHAPTERS if c not in ("findings", "errata")])
def test_the_opening_of_each_chapter_links_a_glossary_section(chapter):
    opening = markdown_of(chapter).split("\n## ")[0]
    assert glossary_refs(opening), f"{chapter}: the first mention of its names links no glossary section"


def frame(index: str, values=("bn", "torch_bn")) -> pd.DataFrame:
    return pd.DataFrame({"test acc.": [0.5] * len(values)}, index=pd.Index(list(values), name=index))


@pytest.mark.parametrize(("column", "kinds"), [
    ("norm_layer", ["norm_layer"]), ("setting", ["input_norm", "study_labels"]), ("variant", ["study_labels"]),
    ("data", ["dataset"]), ("parameter", ["parameters"]),
])
def test_a_results_caption_links_the_sections_of_the_names_its_table_lists(column, kinds):
    runs = pd.DataFrame({"run_id": ["a"], "dataset": ["imagefolder"], "converged": [True]})
    caption = findings.labelled(frame(column), runs, "accuracy").caption
    assert caption.startswith("Real data: accuracy (runs converged: 1 of 1). Names: see the glossary's ")
    assert HREF.findall(caption) == [glossary_links.label(kind) for kind in kinds]
    assert set(HREF.findall(caption)) <= glossary_labels()


def test_a_caption_finds_names_in_its_columns_and_column_levels_and_takes_them_when_given():
    # Study 2's metrics table: rows by norm_layer, columns grouped by a level named source (ours or published),
    # which is no name the table lists (study 1's source column is).
    wide = pd.DataFrame([[1.0, 2.0]], index=pd.Index(["bn"], name="norm_layer"),
                        columns=pd.MultiIndex.from_tuples([("ours", "test acc."), ("published", "test acc.")],
                                                          names=["source", "metric"]))
    assert glossary_links.table_kinds(wide) == ["norm_layer"]
    assert glossary_links.table_kinds(pd.DataFrame({"x": [1]}, index=pd.Index(["a"], name="source"))) == ["study_labels"]
    # A table of paired differences: one column per variant, the rows by noise level.
    paired = pd.DataFrame([["+1.0", "-2.0"]], index=pd.Index(["20 %"], name="label noise"),
                          columns=pd.Index(["convnorm", "convnorm+bn"], name="variant"))
    assert glossary_links.table_kinds(paired) == ["study_labels"]
    long = pd.DataFrame({"model": ["small"], "data": ["cifar10-jpeg"], "setting": ["finetune"]})
    assert glossary_links.table_kinds(long.style) == ["dataset", "model", "input_norm", "study_labels"]
    runs = pd.DataFrame({"run_id": ["a"], "dataset": ["synthetic"]})
    caption = findings.labelled(pd.DataFrame({"x": [1]}), runs, "accuracy", names=["conv_layer"]).caption
    assert HREF.findall(caption) == ["glossary-conv-layers"]
    assert findings.labelled(pd.DataFrame({"x": [1]}), runs, "accuracy").caption == "Synthetic data: accuracy"


def test_generated_legends_and_sentences_link_sections_the_glossary_has():
    texts = {
        "settings legend": stats_tables.settings_legend(["finetune", "pretrain"]),
        "reductions": protocol.reductions_sentence(protocol.protocol_table([{"epochs": 9}], [{"epochs": 3}],
                                                                           keys=("epochs",)), "local"),
        "speed caption": speed.style_speed_table(pd.DataFrame({"images/s": [1.0]}, index=["bn"])).caption,
        "data caption": stats_tables.data_caption(
            pd.DataFrame({"mean": [0.1]}, index=pd.MultiIndex.from_tuples([("real data", "cifar10-jpeg", "finetune")],
                                                                           names=["data", "dataset", "setting"])),
            "Table 1"),
    }
    expected = {"settings legend": ["glossary-input-settings"], "reductions": ["glossary-run-parameters"],
                "speed caption": ["glossary-norm-layers", "glossary-study-labels"],
                "data caption": ["glossary-datasets", "glossary-input-settings"]}
    for name, text in texts.items():
        assert HREF.findall(text) == expected[name], name
        assert set(HREF.findall(text)) <= glossary_labels(), name
    assert "[input settings](glossary.html#glossary-input-settings)" in texts["settings legend"]  # Markdown, by address
    distances = pd.DataFrame({"pretrain": [0.1], "finetune": [0.0]},  # one column per setting (the distances table)
                             index=pd.MultiIndex.from_tuples([("real data", "cifar10-jpeg")], names=["data", "dataset"]))
    assert HREF.findall(stats_tables.data_caption(distances, "distance")) == ["glossary-datasets", "glossary-input-settings"]
    assert '<a href="glossary.html#glossary-datasets">data sets</a>' in texts["data caption"]  # HTML, in a caption
