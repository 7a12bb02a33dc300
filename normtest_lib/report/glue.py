"""``glue(name, value)`` for notebooks, in myst-nb's format, without importing myst-nb.

Importing ``myst_nb.glue`` pulls in Sphinx and docutils (about 1.5 s), which is
most of papermill's overhead on a short run. This writes the same display
payload as ``myst_nb.ext.glue.glue`` (the mime bundle under the
``application/papermill.record/`` prefix, with ``scrapbook`` metadata), which
the book build reads back. ``tests/test_glue.py`` compares the two payloads, so
a change of format in myst-nb fails the tests instead of the book.
"""

from __future__ import annotations

from typing import Any

GLUE_PREFIX = "application/papermill.record/"


def glue(name: str, variable: Any, display: bool = False) -> None:
    """Store ``variable``'s display forms under ``name`` for ``{glue:}`` in the book."""
    from IPython.core.formatters import format_display_data
    from IPython.display import display as ipy_display

    mimebundle, metadata = format_display_data(variable)
    mime_prefix = "" if display else GLUE_PREFIX
    metadata["scrapbook"] = dict(name=name, mime_prefix=mime_prefix)
    ipy_display({mime_prefix + k: v for k, v in mimebundle.items()}, raw=True, metadata=metadata)
