"""Retrieval, metric-learning and multi-label ranking metrics (numpy).

Two kinds of input:

* ranking metrics (``input="ranking"``) take ``(scores, relevant)``: an (n_queries, n_items) score matrix in
  which excluded items (the query itself in leave-one-out retrieval) are ``-inf``, and a boolean relevance matrix
  of the same shape.
  Items are ranked by descending score, ties broken by item index (a stable sort). Queries without any relevant
  item are left out (PML excludes such "lone" queries too).
* representation metrics (``input="embeddings"``) take ``(embeddings, labels)`` on unit-normalised embeddings.

Definitions follow ``KevinMusgrave/pytorch-metric-learning`` ``utils/accuracy_calculator.py`` (MAP@R, R@1 =
precision_at_1), the deep-metric-learning Recall@K (at least one relevant item in the top K), trec_eval-style
NDCG@k with binary gains, MRR@10, a pooled AUROC over all query–item scores (the MW protocol of Sheikholeslami
et al. 2025 pools all queries; our corpora are small, so every negative is pooled instead of the top 500), RankMe
(Garrido et al., ICML 2023) and uniformity/tolerance (Wang & Isola 2020; Wang & Liu 2021).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.stats import rankdata

from lossbench.metrics.base import register_metric

RET = frozenset({"embedding", "query-document", "multilabel"})
EMB = frozenset({"embedding", "query-document"})
UNIFORMITY_SAMPLE = 2000


_LAST: list[tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]]] = []


def ranked_relevance(scores: np.ndarray, relevant: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(relevance in rank order, number of relevant items) for the queries that have a relevant item.

    The last result is kept: an evaluation computes several metrics from the same two arrays, and the sort
    dominates their cost.
    """
    if _LAST and _LAST[0][0] is scores and _LAST[0][1] is relevant:
        return _LAST[0][2]
    result = _rank(scores, relevant)
    _LAST[:] = [(scores, relevant, result)]
    return result


def _rank(scores: np.ndarray, relevant: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keep = relevant.any(1)
    scores, relevant = scores[keep], relevant[keep]
    order = np.argsort(-scores, axis=1, kind="stable")
    return np.take_along_axis(relevant, order, axis=1), relevant.sum(1)


def _ranking(name: str, description: str) -> Callable[[Callable[..., float]], Callable[..., float]]:
    return register_metric(name, greater_is_better=True, tasks=RET, input="ranking", description=description)


def recall_at(k: int) -> Callable[[np.ndarray, np.ndarray], float]:
    def fn(scores: np.ndarray, relevant: np.ndarray) -> float:
        rel, _ = ranked_relevance(scores, relevant)
        return float(rel[:, :k].any(1).mean()) if len(rel) else float("nan")

    return fn


def precision_at(k: int) -> Callable[[np.ndarray, np.ndarray], float]:
    def fn(scores: np.ndarray, relevant: np.ndarray) -> float:
        rel, _ = ranked_relevance(scores, relevant)
        return float(rel[:, :k].sum(1).mean() / k) if len(rel) else float("nan")

    return fn


def ndcg_at(k: int) -> Callable[[np.ndarray, np.ndarray], float]:
    def fn(scores: np.ndarray, relevant: np.ndarray) -> float:
        rel, n_rel = ranked_relevance(scores, relevant)
        if not len(rel):
            return float("nan")
        discount = 1.0 / np.log2(np.arange(2, k + 2))
        top = rel[:, :k].astype(float)
        dcg = (top * discount[: top.shape[1]]).sum(1)
        ideal = np.array([discount[: min(int(r), k)].sum() for r in n_rel])
        return float((dcg / ideal).mean())

    return fn


for _k in (1, 5, 10, 20):
    _ranking(f"recall_at_{_k}", f"Share of queries with a relevant item in the top {_k}")(recall_at(_k))
for _k in (1, 3, 5):
    _ranking(f"precision_at_{_k}", f"Mean share of relevant items in the top {_k}")(precision_at(_k))
for _k in (5, 10):
    _ranking(f"ndcg_at_{_k}", f"NDCG@{_k} with binary gains")(ndcg_at(_k))


@_ranking("map_at_r", "Mean average precision at R (R = number of relevant items), Musgrave et al. 2020")
def map_at_r(scores: np.ndarray, relevant: np.ndarray) -> float:
    rel, n_rel = ranked_relevance(scores, relevant)
    if not len(rel):
        return float("nan")
    r_max = int(n_rel.max())
    top = rel[:, :r_max].astype(float)
    ranks = np.arange(1, r_max + 1)
    precision = np.cumsum(top, axis=1) / ranks
    within_r = ranks[None, :] <= n_rel[:, None]
    return float(((precision * top * within_r).sum(1) / n_rel).mean())


@_ranking("mrr_at_10", "Mean reciprocal rank of the first relevant item within the top 10 (else 0)")
def mrr_at_10(scores: np.ndarray, relevant: np.ndarray) -> float:
    rel, _ = ranked_relevance(scores, relevant)
    if not len(rel):
        return float("nan")
    top = rel[:, :10]
    first = top.argmax(1)
    return float(np.where(top.any(1), 1.0 / (first + 1), 0.0).mean())


def reranked_scores(scores: np.ndarray, candidates: np.ndarray, candidate_scores: np.ndarray) -> np.ndarray:
    """The score matrix of a retrieve-then-rerank pipeline, for any ranking metric above.

    ``candidates`` (n_queries, k) are the item ids the retriever returned for each query and ``candidate_scores``
    (n_queries, k) a ranker's scores of them. The candidates come first, in the ranker's order (ties keep their
    retrieval order); every other item follows in the retriever's order; excluded (``-inf``) items stay excluded.
    So R@k for k ≤ the candidate count is the reranked recall, and R@k beyond it is the retriever's.
    """
    out = np.asarray(scores, dtype=np.float64).copy()
    excluded = ~np.isfinite(out)
    k = candidates.shape[1]
    # lexsort: the last key is the primary one (ranker score, descending), then the retrieval position
    order = np.lexsort((np.broadcast_to(np.arange(k), candidates.shape), -np.asarray(candidate_scores)), axis=1)
    ranked = np.take_along_axis(np.asarray(candidates), order, axis=1)
    top = out[~excluded].max() + 1.0 if (~excluded).any() else 0.0
    out[np.arange(len(out))[:, None], ranked] = top + np.arange(k, 0, -1)[None, :]  # above every other score
    out[excluded] = -np.inf
    return out


@_ranking("global_auroc", "AUROC of all query–item scores pooled over queries (relevant = positive)")
def global_auroc(scores: np.ndarray, relevant: np.ndarray) -> float:
    valid = np.isfinite(scores)
    y, s = relevant[valid], scores[valid]
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    # Mann–Whitney U with average ranks for ties: equals roc_auc_score, several times faster on millions of pairs
    ranks = rankdata(s)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


@register_metric("rankme", greater_is_better=True, tasks=EMB, input="embeddings", bounded=False, limits=(1.0,
                 float("inf")),
                 description="RankMe effective rank exp(entropy of normalised singular values), Garrido et al. 2023")
def rankme(embeddings: np.ndarray, labels: np.ndarray | None = None) -> float:
    sv = np.linalg.svd(np.asarray(embeddings, dtype=np.float64), compute_uv=False)
    p = sv / max(sv.sum(), 1e-12) + 1e-7
    return float(np.exp(-(p * np.log(p)).sum()))


def _subsample(embeddings: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if len(embeddings) <= UNIFORMITY_SAMPLE:
        return embeddings, labels
    idx = np.random.default_rng(0).choice(len(embeddings), UNIFORMITY_SAMPLE, replace=False)
    return embeddings[idx], labels[idx]


@register_metric("uniformity", greater_is_better=True, tasks=EMB, input="embeddings", bounded=False, limits=(0.0, 8.0),
                 description="−log E exp(−2‖f(x) − f(y)‖²) over distinct pairs (Wang & Isola 2020); higher = more uniform")
def uniformity(embeddings: np.ndarray, labels: np.ndarray) -> float:
    z, _ = _subsample(np.asarray(embeddings, dtype=np.float64), np.asarray(labels))
    sq = np.clip(2.0 - 2.0 * (z @ z.T), 0.0, None)  # unit vectors: ‖a − b‖² = 2 − 2 aᵀb
    off = ~np.eye(len(z), dtype=bool)
    vals = -2.0 * sq[off]
    return float(-(np.log(np.mean(np.exp(vals - vals.max()))) + vals.max()))


@register_metric("tolerance", greater_is_better=True, tasks=EMB, input="embeddings", bounded=False, limits=(-1.0, 1.0),
                 description="Mean cosine similarity of distinct same-class pairs (Wang & Liu 2021, practical variant)")
def tolerance(embeddings: np.ndarray, labels: np.ndarray) -> float:
    z, y = _subsample(np.asarray(embeddings, dtype=np.float64), np.asarray(labels))
    same = (y[:, None] == y[None, :]) & ~np.eye(len(y), dtype=bool)
    if not same.any():
        return float("nan")
    return float((z @ z.T)[same].mean())
