"""Progress bars: where ``progress=None`` shows them, and what a Jupyter kernel gets."""

from __future__ import annotations

import io
import sys
import types

import pytest

from normtest_lib.engine.environment import in_jupyter_kernel, show_progress


class Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def fake_ipython(monkeypatch, config: dict | None) -> None:
    """Make ``IPython.get_ipython()`` return a shell with ``config`` (None: no shell running)."""
    shell = None if config is None else types.SimpleNamespace(config=config)
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: shell))


def test_an_explicit_choice_wins(monkeypatch):
    fake_ipython(monkeypatch, {"IPKernelApp": {}})
    monkeypatch.setattr(sys, "stderr", Stream(tty=True))
    assert show_progress(False) is False  # what `normtest run` passes its papermill runs
    monkeypatch.setattr(sys, "stderr", Stream(tty=False))
    assert show_progress(True) is True


def test_none_in_a_jupyter_kernel_shows_bars_although_stderr_is_no_terminal(monkeypatch):
    fake_ipython(monkeypatch, {"IPKernelApp": {"connection_file": "kernel-1.json"}})
    monkeypatch.setattr(sys, "stderr", Stream(tty=False))
    assert in_jupyter_kernel() and show_progress(None) is True


@pytest.mark.parametrize("config", [None, {"TerminalInteractiveShell": {}}], ids=["no shell", "terminal IPython"])
def test_none_outside_a_kernel_follows_the_terminal(monkeypatch, config):
    fake_ipython(monkeypatch, config)
    assert not in_jupyter_kernel()
    monkeypatch.setattr(sys, "stderr", Stream(tty=True))
    assert show_progress(None) is True
    monkeypatch.setattr(sys, "stderr", Stream(tty=False))  # redirected output, a Dask worker
    assert show_progress(None) is False
    monkeypatch.setattr(sys, "stderr", None)
    assert show_progress(None) is False


def test_none_without_ipython_loaded(monkeypatch):
    monkeypatch.delitem(sys.modules, "IPython", raising=False)
    monkeypatch.setattr(sys, "stderr", Stream(tty=False))
    assert not in_jupyter_kernel() and show_progress(None) is False


KERNEL_CELL = """
import tqdm.notebook
from normtest_lib.engine import loop
from normtest_lib.engine.environment import show_progress
show = show_progress(None)
print(issubclass(loop.tqdm, tqdm.notebook.tqdm), show)
for _ in loop.tqdm(range(50), desc="epochs", disable=not show):
    pass
"""


@pytest.mark.slow
def test_a_jupyter_kernel_gets_one_live_notebook_bar_per_loop():
    """In a real kernel the training loop's tqdm is the widget bar: one display, no stderr lines."""
    pytest.importorskip("ipywidgets")
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(KERNEL_CELL)])
    NotebookClient(notebook, kernel_name="python3", timeout=120).execute()
    outputs = notebook.cells[0].outputs
    printed = "".join(o.get("text", "") for o in outputs if o.output_type == "stream" and o.name == "stdout")
    assert printed.split() == ["True", "True"]  # the notebook bar, shown
    widgets = [o for o in outputs if o.output_type == "display_data" and "application/vnd.jupyter.widget-view+json" in o.data]
    assert len(widgets) == 1
    assert not [o for o in outputs if o.output_type == "stream" and o.name == "stderr"]
