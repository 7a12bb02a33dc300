"""Classification metrics shared by ``normtest predict``, the engine's summary and the book's tables.

scikit-learn's, as the earlier work computed them, so that a published F1 and
ours mean the same thing.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch


def classification_metrics(
    labels: Sequence[int] | torch.Tensor, predictions: Sequence[int] | torch.Tensor
) -> dict[str, Any]:
    """``{"n", "accuracy", "micro_f1", "macro_f1"}`` of ``predictions`` against ``labels`` (scikit-learn's).

    Macro-F1 averages over the classes present in either labels or predictions; a class
    never predicted counts with F1 0 (scikit-learn's zero_division=0, without its warning).
    """
    from sklearn.metrics import accuracy_score, f1_score

    y_true, y_pred = np.asarray(labels).ravel(), np.asarray(predictions).ravel()
    if len(y_true) != len(y_pred) or len(y_true) == 0:
        raise ValueError(f"{len(y_true)} labels for {len(y_pred)} predictions: equal, non-zero counts are needed")
    return {
        "n": int(len(y_true)),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "micro_f1": float(f1_score(y_true, y_pred, average="micro", zero_division=0.0)),
        "macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0.0)),
    }
