"""Detection metrics for one-class (real vs attack / in vs out) evaluation.

``proba[:, 1]`` is the score of the real (positive) class. AUROC is the classification ``auroc``.
"""

from __future__ import annotations

import numpy as np
from sklearn import metrics as skm

from lossbench.metrics.base import register_metric

DETECTION = frozenset({"binary", "one-class"})


@register_metric("eer", greater_is_better=False, tasks=DETECTION)
def eer(y: np.ndarray, proba: np.ndarray) -> float:
    """Equal error rate: the rate where false acceptance (FPR) equals false rejection (FNR), 0 is best."""
    if len(np.unique(y)) < 2:
        return float("nan")
    fpr, tpr, _ = skm.roc_curve(y, proba[:, 1])
    fnr = 1 - tpr
    # linear interpolation between the two ROC points that bracket FPR = FNR
    i = int(np.flatnonzero(fnr <= fpr)[0])
    if i == 0:
        return float(fpr[0])
    d0, d1 = fpr[i - 1] - fnr[i - 1], fpr[i] - fnr[i]
    t = d0 / (d0 - d1) if d0 != d1 else 0.0
    return float(fpr[i - 1] + t * (fpr[i] - fpr[i - 1]))
