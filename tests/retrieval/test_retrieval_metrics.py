"""Retrieval metrics agree with brute-force per-query loops on small random cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from lossbench.metrics import METRICS
from lossbench.metrics.retrieval import reranked_scores


def case(seed: int, n: int = 24, k: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    emb = rng.normal(size=(n, 4))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    labels = rng.integers(0, k, n)
    scores = emb @ emb.T
    np.fill_diagonal(scores, -np.inf)
    relevant = labels[:, None] == labels[None, :]
    np.fill_diagonal(relevant, False)
    return emb, labels, scores, relevant


def ranked(scores_row: np.ndarray, rel_row: np.ndarray) -> list[bool]:
    items = sorted(range(len(scores_row)), key=lambda j: (-scores_row[j], j))
    return [bool(rel_row[j]) for j in items if np.isfinite(scores_row[j])]


def brute(scores: np.ndarray, relevant: np.ndarray, fn) -> float:
    vals = [fn(ranked(scores[i], relevant[i]), int(relevant[i].sum())) for i in range(len(scores)) if relevant[i].any()]
    return float(np.mean(vals))


def ap_at_r(rel: list[bool], r: int) -> float:
    hits, total = 0, 0.0
    for i, is_rel in enumerate(rel[:r], start=1):
        if is_rel:
            hits += 1
            total += hits / i
    return total / r


def ndcg10(rel: list[bool], r: int) -> float:
    dcg = sum(1 / math.log2(i + 2) for i, x in enumerate(rel[:10]) if x)
    return dcg / sum(1 / math.log2(i + 2) for i in range(min(r, 10)))


def mrr10(rel: list[bool], r: int) -> float:
    return next((1 / (i + 1) for i, x in enumerate(rel[:10]) if x), 0.0)


@pytest.mark.parametrize("seed", range(5))
def test_ranking_metrics_match_brute_force(seed: int) -> None:
    _, _, scores, relevant = case(seed)
    for k in (1, 5, 10, 20):
        assert METRICS.get(f"recall_at_{k}")(scores, relevant) == pytest.approx(
            brute(scores, relevant, lambda rel, r, k=k: float(any(rel[:k]))))
    for k in (1, 3, 5):
        assert METRICS.get(f"precision_at_{k}")(scores, relevant) == pytest.approx(
            brute(scores, relevant, lambda rel, r, k=k: sum(rel[:k]) / k))
    assert METRICS.get("map_at_r")(scores, relevant) == pytest.approx(brute(scores, relevant, ap_at_r))
    assert METRICS.get("ndcg_at_10")(scores, relevant) == pytest.approx(brute(scores, relevant, ndcg10))
    assert METRICS.get("mrr_at_10")(scores, relevant) == pytest.approx(brute(scores, relevant, mrr10))
    finite = np.isfinite(scores)
    assert METRICS.get("global_auroc")(scores, relevant) == pytest.approx(roc_auc_score(relevant[finite], scores[finite]))


def test_global_auroc_handles_ties_like_sklearn() -> None:
    scores = np.array([[0.5, 0.5, 0.1], [0.5, 0.2, 0.2]])
    relevant = np.array([[True, False, False], [False, True, False]])
    assert METRICS.get("global_auroc")(scores, relevant) == pytest.approx(roc_auc_score(relevant.ravel(), scores.ravel()))


def test_perfect_ranking_scores_one() -> None:
    labels = np.repeat(np.arange(3), 4)
    emb = np.eye(3)[labels] + 1e-3 * np.random.default_rng(0).normal(size=(12, 3))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    scores = emb @ emb.T
    np.fill_diagonal(scores, -np.inf)
    relevant = (labels[:, None] == labels[None, :]) & ~np.eye(12, dtype=bool)
    for name in ("recall_at_1", "map_at_r", "ndcg_at_10", "mrr_at_10", "global_auroc"):
        assert METRICS.get(name)(scores, relevant) == pytest.approx(1.0), name


def test_representation_metrics_match_brute_force() -> None:
    emb, labels, _, _ = case(3, n=10)
    pairs = [(i, j) for i in range(10) for j in range(10) if i != j]
    unif = -math.log(np.mean([math.exp(-2 * np.sum((emb[i] - emb[j]) ** 2)) for i, j in pairs]))
    assert METRICS.get("uniformity")(emb, labels) == pytest.approx(unif)
    same = [emb[i] @ emb[j] for i, j in pairs if labels[i] == labels[j]]
    assert METRICS.get("tolerance")(emb, labels) == pytest.approx(np.mean(same))
    sv = np.linalg.svd(emb, compute_uv=False)
    p = sv / sv.sum() + 1e-7
    assert METRICS.get("rankme")(emb, labels) == pytest.approx(math.exp(-(p * np.log(p)).sum()))


def test_rankme_counts_dimensions() -> None:
    rng = np.random.default_rng(0)
    low = rng.normal(size=(200, 2)) @ rng.normal(size=(2, 16))
    full = rng.normal(size=(200, 16))
    assert METRICS.get("rankme")(low) < 2.5 < 12 < METRICS.get("rankme")(full)


def test_recall_at_20_by_hand() -> None:
    # 30 items; the relevant one of query 0 is 20th, of query 1 21st, of query 2 1st
    scores = np.tile(np.arange(30, 0, -1, dtype=float), (3, 1))
    relevant = np.zeros((3, 30), dtype=bool)
    relevant[0, 19], relevant[1, 20], relevant[2, 0] = True, True, True
    assert METRICS.get("recall_at_20")(scores, relevant) == pytest.approx(2 / 3)
    assert METRICS.get("recall_at_5")(scores, relevant) == pytest.approx(1 / 3)


def test_reranked_scores_put_candidates_first_in_ranker_order() -> None:
    # retriever order of the 6 items: 0, 1, 2, 3, 4, 5 (item 5 excluded); it retrieved the top 3
    scores = np.array([[0.9, 0.8, 0.7, 0.6, 0.5, -np.inf]])
    candidates = np.array([[0, 1, 2]])
    out = reranked_scores(scores, candidates, np.array([[0.1, 0.3, 0.2]]))
    assert list(np.argsort(-out[0], kind="stable")) == [1, 2, 0, 3, 4, 5]
    assert out[0, 5] == -np.inf
    assert scores[0, 0] == 0.9  # the input is not modified
    # the gold item 2 is third for the retriever and second after reranking: MRR@10 1/3 → 1/2, R@1 unchanged
    relevant = np.array([[False, False, True, False, False, False]])
    assert METRICS.get("mrr_at_10")(scores, relevant) == pytest.approx(1 / 3)
    assert METRICS.get("mrr_at_10")(out, relevant) == pytest.approx(1 / 2)
    # a gold item outside the candidates keeps its retriever rank behind all k candidates
    relevant = np.array([[False, False, False, False, True, False]])
    assert METRICS.get("mrr_at_10")(out, relevant) == pytest.approx(1 / 5)


def test_reranked_scores_ties_keep_retrieval_order() -> None:
    scores = np.array([[0.5, 0.9, 0.1, 0.7]])
    candidates = np.array([[1, 3, 0]])  # the retriever's top 3 in its order
    out = reranked_scores(scores, candidates, np.zeros((1, 3)))
    assert list(np.argsort(-out[0], kind="stable")) == [1, 3, 0, 2]
