"""The retriever's index of the corpus: exact cosine top-k per query, rebuilt from the current retriever.

ANCE (Xiong et al., ICLR 2021) and AR2 (Zhang et al., ICLR 2022) draw hard negatives from an approximate
nearest-neighbour index of the whole corpus, re-encoded with a recent checkpoint of the retriever (faiss over 21 M
passages in ``microsoft/ANCE`` and ``microsoft/AR2``). Our corpora have hundreds of documents, so the index is the
exact cosine matrix: embedding 685 documents and 411 queries and ranking them takes milliseconds.

Ranking is deterministic: descending cosine in float64, ties broken by document id. Negatives are drawn from a
query's top k (its own positive excluded) with a seeded generator, so a refresh and the draws after it are a
function of the retriever's weights and the trial seed only.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def top_k(queries: np.ndarray, documents: np.ndarray, k: int, doc_ids: np.ndarray | None = None,
          exclude: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(ids, cosines), each (n_queries, k): the ``k`` documents most cosine-similar to each query.

    ``doc_ids`` names the rows of ``documents`` (default 0..n-1); ``exclude`` (n_queries,) is one document id
    per query to leave out (its positive). Order: descending cosine, ties by ascending document id.
    """
    q = queries / np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-12)
    d = documents / np.maximum(np.linalg.norm(documents, axis=1, keepdims=True), 1e-12)
    sim = q.astype(np.float64) @ d.astype(np.float64).T
    ids = np.arange(len(documents)) if doc_ids is None else np.asarray(doc_ids)
    if exclude is not None:
        sim[ids[None, :] == np.asarray(exclude)[:, None]] = -np.inf
    k = min(k, len(ids) - (exclude is not None))
    if k < 1:
        raise ValueError("the index needs at least one document besides each query's own")
    # lexsort's last key is the primary one: descending cosine, then ascending id
    order = np.lexsort((np.broadcast_to(ids, sim.shape), -sim), axis=1)[:, :k]
    return ids[order], np.take_along_axis(sim, order, axis=1)


def sample_negatives(candidates: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` of each row's candidate ids, uniformly without replacement (ANCE and AR2 shuffle a query's
    retrieved negatives and take the first ones); rows with fewer than ``n`` candidates repeat them."""
    b, k = candidates.shape
    picks = torch.rand(b, k, generator=generator).argsort(dim=1)
    if k < n:
        picks = picks.repeat(1, -(-n // k))
    return torch.gather(candidates, 1, picks[:, :n].to(candidates.device))


@dataclass
class CorpusIndex:
    """The training queries' top ``k`` documents under the current retriever, and what the refreshes cost.

    ``corpus`` (n_docs, F) are the documents' input features; ``queries`` (n_queries, F) and ``own``
    (n_queries,) the training queries and their positive document ids; ``pool`` the document ids negatives may
    come from (the training documents, as for the task's lexical negatives: documents of held-out pairs stay out
    of training). ``retriever`` must have ``encode_queries`` and ``encode_documents``
    (:class:`~lossbench.models.retrieval.DualEncoder`).
    """

    corpus: torch.Tensor
    queries: torch.Tensor
    own: torch.Tensor
    pool: np.ndarray
    k: int
    ids: torch.Tensor | None = None  # (n_queries, k) after the first refresh
    refreshes: int = 0
    seconds: float = 0.0

    @torch.no_grad()
    def refresh(self, retriever: nn.Module) -> torch.Tensor:
        """Re-embed the pool and the queries with ``retriever`` (in eval mode) and rebuild every query's top k."""
        start = time.perf_counter()
        was = retriever.training
        retriever.eval()
        pool = torch.as_tensor(self.pool, device=self.corpus.device)
        docs = F.normalize(retriever.encode_documents(self.corpus[pool]), dim=-1)
        queries = F.normalize(retriever.encode_queries(self.queries), dim=-1)
        retriever.train(was)
        ids, _ = top_k(queries.double().cpu().numpy(), docs.double().cpu().numpy(), self.k, self.pool,
                       self.own.cpu().numpy())
        self.ids = torch.as_tensor(ids, dtype=torch.long, device=self.own.device)
        self.refreshes += 1
        self.seconds += time.perf_counter() - start
        return self.ids

    def negatives(self, rows: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
        """``n`` hard negatives (document ids) for the training rows ``rows``, drawn from their top k."""
        if self.ids is None:
            raise RuntimeError("refresh the index before drawing negatives")
        return sample_negatives(self.ids[rows.to(self.ids.device)], n, generator)
