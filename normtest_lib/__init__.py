"""normtest: a reproducible notebook book about normalization in deep learning.

For JupyterLab users, one call runs an experiment::

    from normtest_lib import run_experiment, load_run
    summary = run_experiment("runs/try", dataset="synthetic-dim", epochs=3)
"""

__version__ = "0.1.0"
__all__ = ["load_run", "pretrain", "run_experiment"]


def __getattr__(name: str):
    # Lazy, so that importing normtest_lib (the CLI, config validation) does not import torch.
    if name in __all__:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'normtest_lib' has no attribute {name!r}")
