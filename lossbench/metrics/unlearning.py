"""Unlearning metrics: accuracy per split, a loss-threshold membership attack, KLoM, gaps to the oracle.

Pure functions of arrays (numpy or anything ``np.asarray`` accepts). ``logits`` are (n, K) scores, ``y`` integer
labels. The row metrics of the ``unlearning`` task are registered at the end of this module: they consume the
``unlearning`` prediction kind, a :class:`lossbench.tasks.unlearning.UnlearningView` (the model's outputs on the
forget, retain and test rows beside the oracles'), which only that task makes, so no other suite is offered them.

Sources: KLoM follows Georgiev, Rinberg, Park, Garg, Ilyas, Madry & Neel, "Attribute-to-Delete: Machine Unlearning
via Datamodel Matching" (ICLR 2025, arXiv 2410.23232, appendix E.1) as implemented in the authors' benchmark
``RoyRin/data-unlearning-bench`` (module ``unlearning_bench.eval``: margins, ``compute_binned_KL_div``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from scipy import special, stats
from sklearn.metrics import roc_auc_score

from lossbench.errors import UserError
from lossbench.metrics.base import register_metric


def _logits_labels(logits: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    z = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(y).astype(np.int64)
    if z.ndim < 2 or z.shape[-2] != len(labels):
        raise ValueError(f"logits of shape {z.shape} do not match {len(labels)} labels")
    return z, labels


def margins(logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``z_y − log Σ_{k≠y} exp(z_k)`` per row: the log-odds of the true class (KLoM's margin).

    ``logits`` is (n, K) or a stack (m, n, K) of m models' outputs on the same rows; the result drops the K axis.
    """
    z, labels = _logits_labels(logits, y)
    rows = np.arange(len(labels))
    correct = z[..., rows, labels]
    others = z.copy()
    others[..., rows, labels] = -np.inf
    return correct - special.logsumexp(others, axis=-1)


def accuracy(logits: np.ndarray, y: np.ndarray) -> float:
    """Share of rows whose arg-max is the label (NaN on no rows)."""
    z, labels = _logits_labels(logits, y)
    return float(np.mean(z.argmax(axis=-1) == labels)) if len(labels) else float("nan")


def cross_entropy(logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-row ``−log softmax(z)_y``."""
    z, labels = _logits_labels(logits, y)
    return special.logsumexp(z, axis=-1) - z[..., np.arange(len(labels)), labels]


def mia_auc(forget_losses: np.ndarray, test_losses: np.ndarray) -> float:
    """AUC of the loss-threshold membership attack: how well a low loss tells forget rows from unseen test rows.

    The attack scores a row by ``−loss`` and calls high scores members; 0.5 means the forget rows look unseen.
    For a random forget set the oracle's value (near 0.5, but not exactly) is the target, not 0.5 itself.
    """
    forget_losses = np.asarray(forget_losses, dtype=np.float64)
    test_losses = np.asarray(test_losses, dtype=np.float64)
    if len(forget_losses) == 0 or len(test_losses) == 0:
        return float("nan")
    member = np.r_[np.ones(len(forget_losses)), np.zeros(len(test_losses))]
    return float(roc_auc_score(member, -np.r_[forget_losses, test_losses]))


def _stack(values: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[0] < 1:
        raise ValueError(f"{name} must be (models, points) margins, got shape {arr.shape}")
    return arr


def klom_binned(unlearned: np.ndarray, oracle: np.ndarray, bins: int = 20, eps: float = 1e-5,
                clip: float = 100.0) -> np.ndarray:
    """Per-point KLoM as in the authors' benchmark: ``KL(hist(unlearned margins) ‖ hist(oracle margins))``.

    ``unlearned`` is (U, n) and ``oracle`` (R, n): the margins of U unlearned and R retrained models on the same n
    points. Per point, both samples are clipped to ±``clip`` and binned on ``bins`` equal bins spanning their common
    range; empty oracle bins where the unlearned histogram has mass are floored at ``eps`` (then renormalised, as
    ``scipy.stats.entropy`` does). The paper uses about 100 models per side; with a handful the histograms are
    mostly empty bins and the value saturates near ``−log eps`` (see :func:`klom_gaussian`).

    Deviation: the reference bins with ``np.digitize`` and so drops samples equal to the largest value; here
    ``np.histogram`` counts them in the last bin.
    """
    u, o = _stack(unlearned, "unlearned"), _stack(oracle, "oracle")
    if u.shape[1] != o.shape[1]:
        raise ValueError(f"unlearned margins cover {u.shape[1]} points, oracle margins {o.shape[1]}")
    u, o = np.clip(u, -clip, clip), np.clip(o, -clip, clip)
    out = np.empty(u.shape[1])
    for i in range(u.shape[1]):
        lo = min(u[:, i].min(), o[:, i].min())
        hi = max(u[:, i].max(), o[:, i].max())
        edges = np.linspace(lo, hi if hi > lo else lo + 1.0, bins + 1)
        p = np.histogram(u[:, i], edges)[0] / u.shape[0]
        q = np.histogram(o[:, i], edges)[0] / o.shape[0]
        out[i] = stats.entropy(p, np.where(p > 0, np.maximum(q, eps), q))
    return out


def klom_gaussian(unlearned: np.ndarray, oracle: np.ndarray, min_std: float = 0.25) -> np.ndarray:
    """Per-point KLoM with a Gaussian fit on each side: ``KL(N(μ_u, σ_u²) ‖ N(μ_o, σ_o²))``.

    ``= log(σ_o/σ_u) + (σ_u² + (μ_u − μ_o)²)/(2σ_o²) − ½``, with standard deviations (ddof 1) floored at
    ``min_std``. With a single unlearned model (U = 1) its spread is taken to be the oracle's, so the value is
    ``(μ_u − μ_o)²/(2σ_o²)``: half the squared z-score of the model's margin among the oracles'. This is the estimator
    lossbench uses with the few models per side it can afford; :func:`klom_binned` is the paper's.
    """
    u, o = _stack(unlearned, "unlearned"), _stack(oracle, "oracle")
    if u.shape[1] != o.shape[1]:
        raise ValueError(f"unlearned margins cover {u.shape[1]} points, oracle margins {o.shape[1]}")
    if o.shape[0] < 2:
        raise ValueError("a Gaussian fit needs at least two oracle models")
    mu_o, sd_o = o.mean(axis=0), np.maximum(o.std(axis=0, ddof=1), min_std)
    mu_u = u.mean(axis=0)
    sd_u = np.maximum(u.std(axis=0, ddof=1), min_std) if u.shape[0] > 1 else sd_o
    return np.log(sd_o / sd_u) + (sd_u**2 + (mu_u - mu_o) ** 2) / (2 * sd_o**2) - 0.5


def klom(per_point: np.ndarray, quantile: float = 0.95) -> float:
    """A distribution of per-point KLoM values summarised by a quantile (0.95 by default; 0.5 is the median)."""
    values = np.asarray(per_point, dtype=np.float64)
    if not 0.0 <= quantile <= 1.0:
        raise UserError(f"A KLoM quantile must lie in [0, 1]. Got {quantile!r}.", "Use 0.95 or 0.99.")
    return float(np.quantile(values, quantile)) if len(values) else float("nan")


def accuracy_gap(accuracies: Mapping[str, float], oracle: Mapping[str, float]) -> float:
    """Mean over the splits both sides report (forget, retain, test) of ``|accuracy − oracle accuracy|``."""
    shared = sorted(set(accuracies) & set(oracle))
    if not shared:
        raise ValueError("no split in common with the oracle's accuracies")
    return float(np.mean([abs(accuracies[s] - oracle[s]) for s in shared]))


def relative_cost(seconds: float, retrain_seconds: float) -> float:
    """Wall time of an unlearning run as a fraction of retraining from scratch (below 1: cheaper than retraining)."""
    if not retrain_seconds > 0:
        return float("nan")
    return float(seconds / retrain_seconds)


# -- the unlearning task's row metrics ---------------------------------------------------------------------------

TASKS = frozenset({"unlearning"})
UNBOUNDED = (0.0, float("inf"))


def _register(name: str, fn: Callable[[Any], float], greater_is_better: bool, description: str,
              limits: tuple[float, float] | None = None) -> None:
    register_metric(name, greater_is_better=greater_is_better, tasks=TASKS, input="unlearning",
                    bounded=limits is None, description=description, limits=limits)(fn)


for _part in ("forget", "retain", "test"):
    _register(f"{_part}_accuracy", lambda v, p=_part: v.accuracy[p], greater_is_better=_part != "forget",
              description=f"Accuracy on the {_part} rows (read against the retrain oracle's).")
    _register(f"klom_{_part}", lambda v, p=_part: v.klom(p), greater_is_better=False, limits=UNBOUNDED,
              description=f"KLoM on the {_part} rows: 95th percentile of the per-row Gaussian KL between the model's "
                          "margin and the oracle replicas' margins.")
_register("accuracy_gap", lambda v: accuracy_gap(v.accuracy, v.ref.oracle_accuracy), greater_is_better=False,
          description="Mean |accuracy - oracle accuracy| over the forget, retain and test rows.")
_register("mia_auc", lambda v: v.mia_auc, greater_is_better=False,
          description="AUC of the loss-threshold membership attack, forget rows vs test rows (oracle's: the target).")
_register("mia_gap", lambda v: abs(v.mia_auc - v.ref.oracle_mia), greater_is_better=False,
          description="|mia_auc - the retrain oracle's mia_auc|.")
_register("forget_accuracy_pgd", lambda v: v.forget_accuracy_pgd, greater_is_better=False,
          description="Forget accuracy after a PGD attack toward the true label (pgd_epsilon, pgd_steps).")
_register("relative_cost", lambda v: v.relative_cost, greater_is_better=False, limits=UNBOUNDED,
          description="Wall time of the method's unlearning over that of retraining from scratch.")
