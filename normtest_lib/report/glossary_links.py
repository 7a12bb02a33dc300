"""Links from any page to the glossary section that defines the names a table, legend or sentence uses.

The glossary page (``notebooks/glossary.ipynb``, tables from :mod:`normtest_lib.report.glossary`) has one
section per kind of name, each with a MyST label (``(glossary-norm-layers)=``): :data:`SECTIONS`. Pages link
to them in one of two forms, by where the text is rendered:

- a chapter's Markdown cells and figure captions are MyST, and link with a cross-reference,
  :func:`myst_ref` (``{ref}`normalization layers <glossary-norm-layers>```), which Sphinx resolves (and
  fails the build on a label that does not exist);
- a table's caption is HTML and a sentence a chapter displays is plain Markdown (myst-nb renders a cell's
  ``text/markdown`` output as CommonMark, whose links are never resolved as cross-references), so they
  link by address: :func:`href` (``glossary.html#glossary-norm-layers``), the glossary page beside the
  chapter in ``book/chapters/`` (``_toc.yml``) and the label's anchor on it.

A table's caption names the sections of the names it lists without a link typed per table:
:func:`caption_note` reads which columns and index levels the table has (``norm_layer``, ``setting``,
``variant``, ...: :data:`COLUMN_KINDS`) and links the section of each. ``tests/test_glossary_links.py``
checks that every label here is on the glossary page and that every chapter links the glossary.
"""

from __future__ import annotations

import html
from typing import Any, Iterable, Sequence

import pandas as pd

from .findings import and_list

GLOSSARY_LABEL = "glossary"  # the page's own label
# The glossary page as the chapters' pages link it: a chapter beside it in book/chapters/ (_toc.yml).
GLOSSARY_PAGE = "glossary.html"
# Each kind of name (glossary.KINDS' keys): the label of its section on the glossary page, and its name in words.
SECTIONS: dict[str, tuple[str, str]] = {
    "norm_layer": ("glossary-norm-layers", "normalization layers"),
    "conv_layer": ("glossary-conv-layers", "convolution layers"),
    "dataset": ("glossary-datasets", "data sets"),
    "model": ("glossary-models", "models"),
    "input_norm": ("glossary-input-settings", "input settings"),
    "study_labels": ("glossary-study-labels", "study labels"),
    "parameters": ("glossary-run-parameters", "run parameters"),
}
# The columns (or index levels) tables name things by, and the kinds of name their values are: a run parameter's
# own column, or a study's label built from one (study 1's ``setting`` is an input setting or a label such as
# ``from scratch``; study 3's ``variant`` a label; ``data`` a data set as tables name it).
COLUMN_KINDS: dict[str, tuple[str, ...]] = {
    "norm_layer": ("norm_layer",),
    "conv_layer": ("conv_layer",),
    "dataset": ("dataset",),
    "data": ("dataset",),
    "model": ("model",),
    "input_norm": ("input_norm",),
    "statistics": ("input_norm",),
    "setting": ("input_norm", "study_labels"),
    "variant": ("study_labels",),
    "source": ("study_labels",),
    "parameter": ("parameters",),
}


def label(kind: str) -> str:
    """The MyST label of ``kind``'s section of the glossary; KeyError naming the kinds for another."""
    try:
        return SECTIONS[kind][0]
    except KeyError:
        raise KeyError(f"no glossary section {kind!r}; known: {', '.join(SECTIONS)}") from None


def words(kind: str) -> str:
    """``kind``'s section in words: ``normalization layers``."""
    label(kind)
    return SECTIONS[kind][1]


def myst_ref(kind: str, text: str | None = None) -> str:
    """A MyST cross-reference to ``kind``'s section: ``{ref}`normalization layers <glossary-norm-layers>```."""
    return f"{{ref}}`{text or words(kind)} <{label(kind)}>`"


def href(kind: str) -> str:
    """The address of ``kind``'s section from a chapter's page: ``glossary.html#glossary-norm-layers``."""
    return f"{GLOSSARY_PAGE}#{label(kind)}"


def html_link(kind: str, text: str | None = None) -> str:
    """An HTML link to ``kind``'s section, for a table's caption: ``<a href="glossary.html#...">...</a>``."""
    return f'<a href="{href(kind)}">{html.escape(text or words(kind), quote=False)}</a>'


def markdown_link(kind: str, text: str | None = None) -> str:
    """A Markdown link to ``kind``'s section by address, for a sentence a chapter displays (CommonMark)."""
    return f"[{text or words(kind)}]({href(kind)})"


def kinds_of(names: Iterable[Any]) -> list[str]:
    """The kinds of name the columns or index levels ``names`` hold (:data:`COLUMN_KINDS`), each once, in
    :data:`SECTIONS`' order; names that are no such column are ignored."""
    found = {kind for name in names if isinstance(name, str) for kind in COLUMN_KINDS.get(name, ())}
    return [kind for kind in SECTIONS if kind in found]


def table_kinds(table: pd.DataFrame | Any) -> list[str]:
    """The kinds of name a table (a frame or a pandas Styler) lists: by the names of its index levels (its rows
    are named by ``norm_layer``, ``setting``, ...), the name of its innermost column level (a table of paired
    differences has one column per ``variant``) and its columns' own labels (a long table has a column
    ``setting``). The outer column levels are not read: they group the columns (study 2's ``source``: ours or
    published), and name none of the names the table lists."""
    frame = getattr(table, "data", table)
    if not isinstance(frame, pd.DataFrame):
        return []
    names = [*frame.index.names, frame.columns.names[-1]]
    names += [part for column in frame.columns for part in (column if isinstance(column, tuple) else (column,))]
    return kinds_of(names)


def caption_note(kinds: Sequence[str]) -> str:
    """``Names: see the glossary's <a>normalization layers</a>.`` for a table's caption (HTML); empty for no kind."""
    if not kinds:
        return ""
    return f"Names: see the glossary's {and_list([html_link(kind) for kind in kinds])}."


def markdown_note(kinds: Sequence[str]) -> str:
    """:func:`caption_note` as Markdown links by address, for a legend line or a sentence a chapter displays."""
    if not kinds:
        return ""
    return f"Names: see the glossary's {and_list([markdown_link(kind) for kind in kinds])}."


def with_caption_note(caption: str, table: pd.DataFrame | Any, kinds: Sequence[str] | None = None) -> str:
    """``caption`` followed by :func:`caption_note` of ``kinds`` (default: :func:`table_kinds` of ``table``)."""
    note = caption_note(table_kinds(table) if kinds is None else list(kinds))
    if not note:
        return caption
    caption = caption.rstrip()
    return f"{caption}{'' if not caption or caption.endswith('.') else '.'} {note}".strip()
