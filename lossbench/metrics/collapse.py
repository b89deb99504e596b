"""Neural-collapse diagnostics on penultimate features (Papyan, Han & Donoho, PNAS 2020, "Prevalence of neural
collapse during the terminal phase of deep learning training"; definitions as in their §3 and Fig. 6-7).

These metrics take ``(y, features)`` with features of shape (n, d), not class probabilities (``input="features"``):
task types that can read penultimate features predict them. Lower is "more collapsed" for both.
"""

from __future__ import annotations

import numpy as np

from lossbench.metrics.base import register_metric

CLS = frozenset({"binary", "multiclass"})


def _class_means(y: np.ndarray, h: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    classes = np.unique(y)
    mu_g = h.mean(axis=0)
    means = np.stack([h[y == c].mean(axis=0) for c in classes])
    return classes, means, mu_g


@register_metric("nc1", greater_is_better=False, tasks=CLS, input="features", bounded=False, limits=(0.0, float("inf")))
def nc1(y: np.ndarray, h: np.ndarray) -> float:
    """NC1 = tr(Σ_W Σ_B⁺)/K: within-class variability relative to the spread of class means (0 = collapsed)."""
    h = np.asarray(h, dtype=np.float64)
    classes, means, mu_g = _class_means(y, h)
    if len(classes) < 2:
        return float("nan")
    centred = h - means[np.searchsorted(classes, y)]
    sigma_w = centred.T @ centred / len(h)
    m = means - mu_g
    sigma_b = m.T @ m / len(classes)
    return float(np.trace(sigma_w @ np.linalg.pinv(sigma_b, rcond=1e-10)) / len(classes))


@register_metric("nc2", greater_is_better=False, tasks=CLS, input="features", bounded=False, limits=(0.0, float("inf")))
def nc2(y: np.ndarray, h: np.ndarray) -> float:
    """NC2 (equiangularity): std of the pairwise cosines of centred class means; a simplex ETF has every cosine
    −1/(K−1) and so 0. (The equinorm part, the coefficient of variation of their norms, is ``nc2_norm``.)"""
    classes, means, mu_g = _class_means(y, np.asarray(h, dtype=np.float64))
    if len(classes) < 3:
        return float("nan")
    m = means - mu_g
    m = m / np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-12)
    cos = m @ m.T
    return float(np.std(cos[np.triu_indices(len(classes), k=1)]))


def nc2_norm(y: np.ndarray, h: np.ndarray) -> float:
    """Equinorm: std/mean of the norms of the centred class means."""
    _, means, mu_g = _class_means(y, np.asarray(h, dtype=np.float64))
    norms = np.linalg.norm(means - mu_g, axis=1)
    return float(norms.std() / max(norms.mean(), 1e-12))
