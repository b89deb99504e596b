"""A cross-encoder ranker for query–document pairs: scores one (query, document) pair jointly.

AR2 (Zhang et al., ICLR 2022) pairs the dual-encoder retriever with a cross-encoder ranker (ERNIE-2.0-large over the
concatenated query and passage tokens in ``microsoft/AR2``). Our texts are hashed character n-gram bags or frozen
sentence embeddings, not token sequences, so the ranker here is an *interaction model over the two feature
vectors*: besides each text's own projection it reads their element-wise product ``q ⊙ d``, whose entries are the
per-bucket n-gram overlaps. A linear read-out of ``q ⊙ d`` is a learnt term weighting ``Σ_i w_i q_i d_i`` of full
rank, which no dual encoder with d-dimensional towers can express (its score is ``qᵀ A d`` with rank A ≤ d).

Like :class:`~lossbench.models.retrieval.Tower`, the ranker starts from lexical matching: its score is
``s·cos(q, d) + MLP(...)`` with the MLP's last layer at zero and ``s = 1/τ``, so before training it ranks by feature
cosine (the raw n-gram cosine reaches test R@1 ≈ 0.40 on ``bundled:stdlib-docs``, the untrained retriever ≈ 0.33).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from lossbench.models.mlp import MLP


class CrossEncoderRanker(nn.Module):
    """Joint (query, document) scorer over unit-norm text features.

    Input (B, 1 + C, F): slot 0 is the query, slots 1.. are C candidate documents (the pair contract of
    :class:`~lossbench.models.retrieval.DualEncoder`); output (B, C) relevance logits. :meth:`score` takes
    broadcastable (..., F) query and document features.

    With F = 2 048 n-gram features and the defaults (``width = 128``, ``hidden = (256,)``) it has 655 874
    parameters; scoring one pair costs about 2·F·width multiply-adds for the overlap projection (the query's and
    the document's own projections are computed once per text).
    """

    def __init__(self, n_in: int, width: int = 128, hidden: Sequence[int] = (256,), dropout: float = 0.1,
                 temperature: float = 0.05) -> None:
        super().__init__()
        self.text = nn.Linear(n_in, width, bias=False)  # one projection for queries and documents
        self.overlap = nn.Linear(n_in, width, bias=False)
        self.mlp = MLP(4 * width, 1, hidden, dropout)
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)
        self.log_scale = nn.Parameter(torch.tensor(math.log(1.0 / temperature)))
        self.overlap_gain = math.sqrt(n_in)  # q ⊙ d of unit vectors has entries ~1/F: bring them to unit scale

    def score(self, query: torch.Tensor, document: torch.Tensor) -> torch.Tensor:
        """Relevance logits of broadcastable (..., F) query and document features → (...)."""
        q, d = F.normalize(query, dim=-1), F.normalize(document, dim=-1)
        eq, ed = torch.broadcast_tensors(self.text(q), self.text(d))  # each text projected once, then paired
        x = torch.cat([eq, ed, eq * ed, self.overlap(q * d * self.overlap_gain)], dim=-1)
        interaction = self.mlp(x.reshape(-1, x.shape[-1])).reshape(x.shape[:-1])
        return self.log_scale.exp() * (q * d).sum(-1) + interaction

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.shape[1] < 2:
            raise ValueError(f"the ranker takes (B, 1 + C, F) rows [query, C documents]; got shape {tuple(x.shape)}")
        return self.score(x[:, :1], x[:, 1:])


@torch.no_grad()
def score_candidates(ranker: nn.Module, queries: torch.Tensor, corpus: torch.Tensor, candidates: torch.Tensor,
                     batch: int = 256) -> torch.Tensor:
    """The ranker's (n_queries, k) logits for each query's k candidate documents (ids into ``corpus``), in eval
    mode, ``batch`` queries at a time (the reranking pass of evaluation)."""
    was = ranker.training
    ranker.eval()
    out = [ranker(torch.cat([queries[i:i + batch, None], corpus[candidates[i:i + batch]]], dim=1))
           for i in range(0, len(queries), batch)]
    ranker.train(was)
    return torch.cat(out) if out else torch.zeros(candidates.shape, dtype=corpus.dtype, device=corpus.device)
