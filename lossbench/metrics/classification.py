"""Classification metrics on predicted class probabilities.

Every function takes ``(y_true, proba)`` with ``proba`` of shape (n, K); those on hard labels (``input="labels"``)
also take the ``threshold`` of the binary decision rule. Binary metrics are about class 1, the positive
(minority) class; multi-class ones are macro-averaged.
"""

from __future__ import annotations

import numpy as np
from sklearn import metrics as skm

from lossbench.metrics.base import register_metric

CLS = frozenset({"binary", "multiclass"})
BIN = frozenset({"binary"})


def predict(proba: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    if proba.shape[1] == 2:
        return (proba[:, 1] >= threshold).astype(np.int64)
    return proba.argmax(axis=1)


def _labels(proba: np.ndarray) -> list[int]:
    return list(range(proba.shape[1]))


# Vectorised binary forms on confusion counts, used by the threshold sweep; each matches its sklearn version.
def _safe_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return np.divide(a, b, out=np.zeros(np.broadcast(a, b).shape), where=b != 0)


def _accuracy_counts(tp: np.ndarray, fp: np.ndarray, tn: np.ndarray, fn: np.ndarray) -> np.ndarray:
    return _safe_div(tp + tn, tp + fp + tn + fn)


def _balanced_accuracy_counts(tp: np.ndarray, fp: np.ndarray, tn: np.ndarray, fn: np.ndarray) -> np.ndarray:
    # like sklearn: the mean over the classes present in y (a split with one class gives that class's recall)
    present = (np.asarray(tp + fn) > 0).astype(np.float64) + (np.asarray(tn + fp) > 0).astype(np.float64)
    return _safe_div(_safe_div(tp, tp + fn) + _safe_div(tn, tn + fp), present)


def _f1_counts(tp: np.ndarray, fp: np.ndarray, tn: np.ndarray, fn: np.ndarray) -> np.ndarray:
    return _safe_div(2 * tp, 2 * tp + fp + fn)


def _mcc_counts(tp: np.ndarray, fp: np.ndarray, tn: np.ndarray, fn: np.ndarray) -> np.ndarray:
    tp, fp, tn, fn = (np.asarray(v, dtype=np.float64) for v in (tp, fp, tn, fn))
    return _safe_div(tp * tn - fp * fn, np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)))


def _gmean_counts(tp: np.ndarray, fp: np.ndarray, tn: np.ndarray, fn: np.ndarray) -> np.ndarray:
    return np.sqrt(_safe_div(tp, tp + fn) * _safe_div(tn, tn + fp))


@register_metric("accuracy", greater_is_better=True, tasks=CLS, input="labels", from_counts=_accuracy_counts)
def accuracy(y: np.ndarray, proba: np.ndarray, threshold: float = 0.5) -> float:
    """Share of correct predictions."""
    return skm.accuracy_score(y, predict(proba, threshold))


@register_metric("balanced_accuracy", greater_is_better=True, tasks=CLS, input="labels",
                 from_counts=_balanced_accuracy_counts)
def balanced_accuracy(y: np.ndarray, proba: np.ndarray, threshold: float = 0.5) -> float:
    """Mean recall over classes."""
    return skm.balanced_accuracy_score(y, predict(proba, threshold))


@register_metric("f1", greater_is_better=True, tasks=CLS, input="labels", from_counts=_f1_counts)
def f1(y: np.ndarray, proba: np.ndarray, threshold: float = 0.5) -> float:
    """F1 of the positive (minority) class; macro F1 for multi-class."""
    avg = "binary" if proba.shape[1] == 2 else "macro"
    return skm.f1_score(y, predict(proba, threshold), average=avg, labels=_labels(proba) if avg == "macro" else None,
                        zero_division=0)


@register_metric("mcc", greater_is_better=True, tasks=CLS, bounded=False, input="labels", from_counts=_mcc_counts,
                 limits=(-1.0, 1.0))
def mcc(y: np.ndarray, proba: np.ndarray, threshold: float = 0.5) -> float:
    """Matthews correlation coefficient, in [-1, 1]."""
    return skm.matthews_corrcoef(y, predict(proba, threshold))


@register_metric("gmean", greater_is_better=True, tasks=CLS, input="labels", from_counts=_gmean_counts)
def gmean(y: np.ndarray, proba: np.ndarray, threshold: float = 0.5) -> float:
    """Geometric mean of per-class recalls."""
    recalls = skm.recall_score(y, predict(proba, threshold), average=None, labels=_labels(proba), zero_division=0)
    return float(np.prod(recalls) ** (1 / len(recalls)))


@register_metric("auroc", greater_is_better=True, tasks=CLS)
def auroc(y: np.ndarray, proba: np.ndarray) -> float:
    """Area under the ROC curve (one-vs-rest macro for multi-class)."""
    if len(np.unique(y)) < 2:
        return float("nan")
    if proba.shape[1] == 2:
        return skm.roc_auc_score(y, proba[:, 1])
    if len(np.unique(y)) < proba.shape[1]:
        return float("nan")
    return skm.roc_auc_score(y, _renormalised(proba), multi_class="ovr", average="macro")


@register_metric("auprc", greater_is_better=True, tasks=CLS)
def auprc(y: np.ndarray, proba: np.ndarray) -> float:
    """Average precision of the positive class (macro one-vs-rest for multi-class)."""
    if proba.shape[1] == 2:
        return skm.average_precision_score(y, proba[:, 1])
    onehot = np.eye(proba.shape[1])[y]
    return skm.average_precision_score(onehot, proba, average="macro")


@register_metric("brier", greater_is_better=False, tasks=CLS, bounded=False, limits=(0.0, 2.0))
def brier(y: np.ndarray, proba: np.ndarray) -> float:
    """Multi-class Brier score: mean squared distance to the one-hot label (0 is best)."""
    onehot = np.eye(proba.shape[1])[y]
    return float(np.mean(np.sum((proba - onehot) ** 2, axis=1)))


@register_metric("ece", greater_is_better=False, tasks=CLS)
def ece(y: np.ndarray, proba: np.ndarray, n_bins: int = 15) -> float:
    """Expected calibration error of the top-class confidence, 15 equal-width bins."""
    conf = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == y).astype(float)
    bins = np.minimum((conf * n_bins).astype(int), n_bins - 1)
    total = 0.0
    for b in range(n_bins):
        mask = bins == b
        if mask.any():
            total += mask.mean() * abs(correct[mask].mean() - conf[mask].mean())
    return total


@register_metric("log_loss", greater_is_better=False, tasks=CLS, bounded=False, limits=(0.0, float("inf")))
def log_loss(y: np.ndarray, proba: np.ndarray) -> float:
    """Negative log-likelihood of the labels."""
    return skm.log_loss(y, _renormalised(proba), labels=_labels(proba))


def _renormalised(proba: np.ndarray) -> np.ndarray:
    # float32 softmax rows can sum to 1 ± 1e-7, which sklearn rejects
    p = np.clip(proba.astype(np.float64), 1e-15, 1)
    return p / p.sum(axis=1, keepdims=True)
