import pandas as pd
import pytest

import normtest_lib.report.glue as ours


@pytest.mark.parametrize("value", [0.875, "complete", pd.DataFrame({"a": [1, 2]})])
@pytest.mark.parametrize("display", [False, True])
def test_payload_equals_myst_nb_glue(monkeypatch, value, display):
    import IPython.display
    import myst_nb.ext.glue as theirs

    calls = []
    monkeypatch.setattr(theirs, "ipy_display", lambda *a, **k: calls.append((a, k)))
    monkeypatch.setattr(IPython.display, "display", lambda *a, **k: calls.append((a, k)))
    theirs.glue("key", value, display=display)
    ours.glue("key", value, display=display)
    assert len(calls) == 2 and calls[0] == calls[1]
    assert calls[1][1]["metadata"]["scrapbook"]["name"] == "key"
