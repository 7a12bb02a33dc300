"""The references page and the book's links to every work it restates or uses.

Each earlier work (the three repositories the studies restate and the official ConvNorm code) is
linked from the errata chapter and from a study chapter; every method and data set is linked from
some page; every entry is on the references page with its address and a target that `{ref}` links
resolve to; and the page is written by the book build and listed in the table of contents.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
import yaml

from normtest_lib.report import book
from normtest_lib.report.references import (
    EARLIER_WORKS,
    MAX_NAMED_AUTHORS,
    NOT_GIVEN,
    REFERENCES,
    entry_markdown,
    link,
    reference,
    references_markdown,
    target,
)

REPO = Path(__file__).resolve().parents[1]
STUDY_CHAPTERS = ("input_normalization", "normalization_layers", "convnorm_label_noise")
REF_ROLE = re.compile(r"\{ref\}`(?:[^`<]*<)?(ref-[a-z0-9-]+)>?`")


def markdown_of(chapter: str) -> str:
    notebook = nbformat.read(REPO / "notebooks" / f"{chapter}.ipynb", as_version=4)
    return "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "markdown")


def all_templates() -> dict[str, str]:
    return {path.stem: markdown_of(path.stem) for path in sorted((REPO / "notebooks").glob("*.ipynb"))}


def test_every_entry_is_on_the_page_with_its_address_and_its_target():
    page = references_markdown()
    for entry in REFERENCES:
        assert f"({target(entry.key)})=" in page, entry.key
        assert f"<{entry.url}>" in page and entry.title in page and entry.year in page, entry.key
        assert entry.url.startswith(("https://", "http://")), entry.key
    assert len({entry.key for entry in REFERENCES}) == len(REFERENCES)  # one target each
    for key, arxiv in (("liu2021", "2103.00673"), ("nam2018", "1805.07925"), ("wu2018", "1803.08494"),
                       ("ioffe2015", "1502.03167"), ("ulyanov2016", "1607.08022"), ("ba2016", "1607.06450"),
                       ("he2016", "1512.03385")):
        assert reference(key).url == f"https://arxiv.org/abs/{arxiv}" and reference(key).arxiv == arxiv
        assert f"arXiv:{arxiv}" in entry_markdown(reference(key))


def test_every_entry_has_authors_year_title_venue_and_address():
    for entry in REFERENCES:
        # Authors: family names, or "not given" with the repository's account where the work names none.
        authors = entry.author_text()
        assert authors and (entry.authors or (NOT_GIVEN in authors and entry.account in authors)), entry.key
        assert all(name and name[0].isupper() or name.startswith("van ") for name in entry.authors), entry.key
        if len(entry.authors) > MAX_NAMED_AUTHORS or entry.et_al:
            assert authors == f"{entry.authors[0]} et al.", entry.key
        else:
            assert all(name in authors for name in entry.authors) and "et al." not in authors, entry.key
        assert re.fullmatch(r"(19|20)\d\d", entry.year) or entry.year == NOT_GIVEN, entry.key
        assert entry.title and (entry.venue or entry.arxiv), entry.key
        assert entry.url.startswith(("https://", "http://")), entry.key
        line = entry_markdown(entry)
        for part in (authors, entry.year_text(), entry.title, entry.where_text(), f"<{entry.url}>"):
            assert part in line, (entry.key, part)
    # Where a detail is not known it says so, and nothing is filled in: the earlier repositories name no person.
    for key in ("normalization-test", "normalizations-in-dl", "convnorm-course-paper"):
        assert reference(key).authors == () and NOT_GIVEN in reference(key).author_text(), key
    assert reference("he2016").author_text() == "He et al."  # four authors
    assert reference("ba2016").author_text() == "Ba, Kiros and Hinton"
    assert reference("tiny-imagenet").author_text() == "Le and Yang" and reference("tiny-imagenet").year == "2015"


@pytest.mark.parametrize("entry", REFERENCES, ids=lambda entry: entry.key)
def test_each_work_is_cited_in_every_chapter_that_uses_it(entry):
    assert entry.cited_in, entry.key
    for chapter in entry.cited_in:
        text = markdown_of(chapter)
        assert f"]({entry.url})" in text or f"<{target(entry.key)}>" in text, (entry.key, chapter)


def test_the_earlier_works_are_the_four_repositories():
    urls = {reference(key).url for key in EARLIER_WORKS}
    assert urls == {
        "https://github.com/TooTouch/Normalization-Test",
        "https://github.com/HarmanDotpy/Normalizations-in-Deep-Learning",
        "https://github.com/yashika-batra/convnorm",
        "https://github.com/shengliu66/ConvNorm",
    }
    assert link("liu2021") == "[Liu et al. 2021](https://arxiv.org/abs/2103.00673)"
    with pytest.raises(KeyError, match="known: normalization-test"):
        reference("nobody2020")


@pytest.mark.parametrize("key", EARLIER_WORKS)
def test_each_earlier_work_is_linked_from_the_errata_chapter_and_a_study_chapter(key):
    url = reference(key).url
    assert f"]({url})" in markdown_of("errata"), key
    assert any(f"]({url})" in markdown_of(chapter) for chapter in STUDY_CHAPTERS), key


def test_every_work_is_linked_from_some_chapter_and_every_ref_resolves():
    templates = all_templates()
    text = "\n".join(templates.values())
    for entry in REFERENCES:
        assert f"]({entry.url})" in text or f"<{target(entry.key)}>" in text, entry.key
    targets = {target(entry.key) for entry in REFERENCES}
    cited = {label for page in templates.values() for label in REF_ROLE.findall(page)}
    assert cited and cited <= targets, cited - targets  # Sphinx would fail the build on any other


def test_each_study_chapter_names_its_earlier_work_in_its_opening():
    openings = {chapter: markdown_of(chapter).split("\n## ")[0] for chapter in STUDY_CHAPTERS}
    assert reference("normalization-test").url in openings["input_normalization"]
    assert reference("normalizations-in-dl").url in openings["normalization_layers"]
    for key in ("convnorm-course-paper", "convnorm-official", "liu2021"):
        assert reference(key).url in openings["convnorm_label_noise"], key
    for key in ("nam2018", "wu2018", "ioffe2015", "ulyanov2016", "ba2016"):
        assert reference(key).url in openings["normalization_layers"], key


def test_the_build_writes_the_page_and_the_toc_lists_it(tmp_path):
    page = book.write_references_page(tmp_path)
    assert page == tmp_path / "chapters" / book.REFERENCES_PAGE
    assert page.read_text() == references_markdown()
    toc = yaml.safe_load((REPO / "_toc.yml").read_text())
    assert "book/chapters/references" in [chapter["file"] for chapter in toc["chapters"]]
