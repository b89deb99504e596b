"""Choosing a binary decision threshold: the one that maximises a metric on one split (validation).

The sweep considers every distinct score of that split, placing each candidate
midway between neighbouring scores so that the rule generalises to unseen
scores; ties prefer the threshold closest to 0.5.
"""

from __future__ import annotations

import numpy as np

from lossbench.metrics.base import Metric

#: Metrics without a vectorised form are swept over this many score quantiles.
FALLBACK_CANDIDATES = 101


def candidates(score: np.ndarray) -> np.ndarray:
    """Thresholds between consecutive distinct scores, plus one below and one above all of them."""
    u = np.unique(score)
    mids = (u[:-1] + u[1:]) / 2
    return np.concatenate([[min(0.0, u[0] - 1e-12)], mids, [np.nextafter(u[-1], np.inf)]])


def confusion_at(y: np.ndarray, score: np.ndarray, thresholds: np.ndarray) -> tuple[np.ndarray, ...]:
    """tp, fp, tn, fn for the rule ``score >= t``, for every t at once (sorting, not a loop)."""
    order = np.argsort(score, kind="stable")
    s, pos = score[order], (y[order] == 1).astype(np.int64)
    # rows with score < t are predicted negative: count them with a search over the sorted scores
    below = np.searchsorted(s, thresholds, side="left")
    cum_pos = np.concatenate([[0], np.cumsum(pos)])
    fn = cum_pos[below]
    tn = below - fn
    p, n = int(pos.sum()), len(pos) - int(pos.sum())
    return p - fn, n - tn, tn, fn


def best_threshold(metric: Metric, y: np.ndarray, proba: np.ndarray) -> tuple[float, float]:
    """(threshold, value) maximising ``metric`` (or minimising it when lower is better) on ``(y, proba)``."""
    score = np.asarray(proba, dtype=np.float64)[:, 1]
    y = np.asarray(y)
    if metric.from_counts is not None:
        ts = candidates(score)
        with np.errstate(divide="ignore", invalid="ignore"):
            values = np.asarray(metric.from_counts(*confusion_at(y, score, ts)), dtype=np.float64)
    else:
        ts = np.unique(np.quantile(score, np.linspace(0, 1, FALLBACK_CANDIDATES)))
        values = np.array([metric(y, proba, threshold=float(t)) for t in ts])
    values = np.where(np.isfinite(values), values, -np.inf if metric.greater_is_better else np.inf)
    best = values.max() if metric.greater_is_better else values.min()
    if not np.isfinite(best):
        return 0.5, float("nan")
    tied = np.flatnonzero(np.isclose(values, best, rtol=0, atol=1e-12))
    i = tied[np.argmin(np.abs(ts[tied] - 0.5))]
    return float(ts[i]), float(values[i])
