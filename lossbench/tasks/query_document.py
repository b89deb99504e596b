"""Query–document retrieval with positives and hard negatives (the ``query-document`` loss task).

Data: a pair :class:`~lossbench.sources.base.Dataset` (X columns ``query`` and ``document``, ``meta["kind"] ==
"pairs"``), for example ``bundled:stdlib-docs``. Texts become fixed features (:mod:`lossbench.text_features`):
hashed character 3–4-gram bags, encoded by a two-tower MLP (:class:`~lossbench.models.retrieval.DualEncoder`), or
with ``encoder = "minilm"`` the frozen MiniLM sentence embeddings (384-d, cached on disk), with only a head on top
trained (model family ``minilm-head``).

Rows (pairs) are split at random by the trial seed. Each training row carries H hard negatives: the training
documents other than its own whose n-gram bag is most similar to the query (lexical hard negatives, as BM25
negatives are in DPR). Training tensors are (n, 2 + H, F) [query, positive, negatives] with the positive
document's id as target: the ``pairs`` loss contract. Evaluation ranks the whole corpus (every document of
every split) for each held-out query; exactly one document is relevant.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from lossbench import streams
from lossbench.sources.base import Dataset
from lossbench.specs import TrialSpec
from lossbench.tasks.base import Prepared, TensorSplit
from lossbench.text_features import text_features


def hard_negatives(q: np.ndarray, docs: np.ndarray, own: np.ndarray, pool: np.ndarray, h: int) -> np.ndarray:
    """For each query, the ``h`` documents of ``pool`` (excluding its own) with the highest feature cosine."""
    sim = q @ docs[pool].T
    sim[pool[None, :] == own[:, None]] = -np.inf
    top = np.argsort(-sim, axis=1, kind="stable")[:, :h]
    return pool[top]


def prepare_pairs(data: Dataset, spec: TrialSpec, encoder: str, width: int, h: int, dim: int) -> Prepared:
    """Texts as ``encoder`` features (``width`` wide for n-grams), ``h`` hard negatives per query; ``dim``-d towers."""
    split = spec.config.split
    queries = text_features(data.X["query"].astype(str).tolist(), encoder, width)
    docs = text_features(data.X["document"].astype(str).tolist(), encoder, width)
    n_feat = int(docs.shape[1])
    n = len(docs)
    order = streams.rng(spec.seed, "split", "order").permutation(n)
    n_test = max(1, round(split.test * n))
    n_val = round(split.val * n)
    test_idx, val_idx, train_idx = order[:n_test], order[n_test:n_test + n_val], order[n_test + n_val:]
    negs = hard_negatives(queries[train_idx], docs, train_idx, np.sort(train_idx), h)
    train_x = np.concatenate([queries[train_idx, None], docs[train_idx, None], docs[negs]], axis=1)

    def held_out(idx: np.ndarray) -> TensorSplit:
        x = np.stack([queries[idx], docs[idx]], axis=1)
        return TensorSplit(torch.as_tensor(x), torch.as_tensor(idx, dtype=torch.long))

    return Prepared(
        train=TensorSplit(torch.as_tensor(train_x), torch.as_tensor(train_idx, dtype=torch.long)),
        val=held_out(val_idx) if len(val_idx) else None,
        test=held_out(test_idx),
        n_features=n_feat,
        n_classes=n,
        kind="query-document",
        info={"n_train": len(train_idx), "n_val": len(val_idx), "n_test": len(test_idx), "n_corpus": n,
              "corpus": torch.as_tensor(docs), "corpus_groups": data.y.copy()},
        embedding_dim=dim,
    )


@torch.no_grad()
def embed_pairs(model: torch.nn.Module, prepared: Prepared, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(unit query embeddings of the split, unit embeddings of the whole corpus)."""
    part = prepared.split(split)
    was = model.training
    model.eval()
    q = F.normalize(model(part.X)[:, 0], dim=-1)
    corpus = prepared.info["corpus"].to(part.X.device)
    d = F.normalize(model.encode_documents(corpus), dim=-1)
    model.train(was)
    return q.cpu().double().numpy(), d.cpu().double().numpy()


def pair_relevance(prepared: Prepared, split: str) -> np.ndarray:
    ids = prepared.split(split).y.cpu().numpy()
    rel = np.zeros((len(ids), prepared.info["n_corpus"]), dtype=bool)
    rel[np.arange(len(ids)), ids] = True
    return rel
