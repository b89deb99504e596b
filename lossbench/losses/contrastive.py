"""Contrastive (InfoNCE-family) and AUC losses.

``nt-xent`` works on (B, d) embeddings with labels (same label = positive pair; with two views per sample and the
sample index as label it is SimCLR's NT-Xent). ``infonce`` and ``mw-auc`` work on the query–document pair contract:
input (B, 2 + H, d) rows [query, positive, H hard negatives], target (B,) positive-document ids. Every query is
scored against every document in the batch (all positives and all hard negatives); a positive of another row
with the same document id is masked (not a negative).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from lossbench.losses._embedding import NEG, cosine_matrix, pair_masks, zero_like_graph
from lossbench.losses.base import LossBase, LossInfo, Param
from lossbench.losses.registry import register_loss

QD = frozenset({"query-document"})


@register_loss
class NTXent(LossBase):
    """NT-Xent / supervised InfoNCE on labelled embeddings (PML ``NTXentLoss``).

    For each positive pair (a, p): −log(e^{s_ap/τ} / (e^{s_ap/τ} + Σ_{n: y_n ≠ y_a} e^{s_an/τ})), mean over pairs.
    """

    info = LossInfo(
        name="nt-xent",
        family="contrastive",
        tasks=frozenset({"embedding"}),
        input="embeddings",
        params={"temperature": Param(0.1, "τ", low=0.0, low_open=True)},
        citation="Chen, Kornblith, Norouzi, Hinton, A Simple Framework for Contrastive Learning of Visual "
        "Representations, ICML 2020; van den Oord, Li, Vinyals, arXiv 1807.03748",
        summary="Softmax of each positive pair against the anchor's negatives",
        batch_dependent=True,
        batch_level=True,
    )

    def per_sample(self, input: torch.Tensor, target: torch.Tensor, **_: Any) -> torch.Tensor:
        pos, neg = pair_masks(target)
        if not bool(pos.any()):
            return zero_like_graph(input)
        s = cosine_matrix(input) / self.temperature
        neg_lse = torch.logsumexp(s.masked_fill(~neg, NEG), dim=1, keepdim=True)  # (B, 1)
        per_pair = torch.logaddexp(s, neg_lse) - s  # −log softmax of the positive against the negatives
        return (per_pair * pos).sum() / pos.sum()


def pair_scores(input: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(S, valid): S[i, j] = cos(query_i, doc_j) over the batch's B positives then B·H hard negatives.

    ``valid`` is False where doc j is a positive of another row with query i's document id (a false negative).
    Column i is query i's own positive.
    """
    b = input.shape[0]
    queries = input[:, 0]
    docs = torch.cat([input[:, 1], input[:, 2:].reshape(-1, input.shape[-1])], dim=0)
    s = cosine_matrix(queries, docs)
    valid = torch.ones_like(s, dtype=torch.bool)
    dup = (target[:, None] == target[None, :]) & ~torch.eye(b, dtype=torch.bool, device=s.device)
    valid[:, :b] = ~dup
    return s, valid


@register_loss
class InfoNCE(LossBase):
    """InfoNCE with in-batch and hard negatives: −log(e^{s_i+/τ} / (e^{s_i+/τ} + Σ_{s∈S_i−} e^{s/τ})).

    The contrastive baseline ("CL") of Sheikholeslami et al. 2025 (arXiv 2510.00137, §3), which reads only its own
    row of the similarity matrix, so its scores are calibrated per query, not across queries.
    """

    info = LossInfo(
        name="infonce",
        family="contrastive",
        tasks=QD,
        input="pairs",
        params={"temperature": Param(0.05, "τ", low=0.0, low_open=True)},
        citation="van den Oord, Li, Vinyals, Representation Learning with Contrastive Predictive Coding, "
        "arXiv 1807.03748; Karpukhin et al., Dense Passage Retrieval, EMNLP 2020",
        summary="Softmax of each query's positive against in-batch and hard negatives",
        batch_dependent=True,
    )

    def per_sample(self, input: torch.Tensor, target: torch.Tensor, **_: Any) -> torch.Tensor:
        s, valid = pair_scores(input, target)
        logits = (s / self.temperature).masked_fill(~valid, NEG)
        return F.cross_entropy(logits, torch.arange(len(target), device=s.device), reduction="none")


@register_loss
class MannWhitney(LossBase):
    """MW (Mann–Whitney) loss: every positive score against the pooled negative scores of all queries.

    Sheikholeslami et al., "Optimizing What Matters: AUC-Driven Learning for Robust Neural Retrieval",
    arXiv 2510.00137, eq. 3: L = −(1/B) Σ_i Σ_{s∈S−} log σ((s_i+ − s)/τ), S− = all off-positive cells of the
    batch's query × document matrix. Positives are compared with negatives across queries, which makes scores
    globally thresholdable (AoC ≤ L/log 2, Lemma 2). ``scale="mean"`` averages over S− (comparable across batch sizes),
    ``"paper"`` sums as in eq. 3. Computed as softplus(−x), never log(sigmoid(x)).
    """

    info = LossInfo(
        name="mw-auc",
        family="contrastive",
        tasks=QD,
        input="pairs",
        params={
            "temperature": Param(0.05, "τ", low=0.0, low_open=True),
            "scale": Param("mean", "mean or sum over the negative pool", choices=("mean", "paper")),
        },
        citation="Sheikholeslami et al., Optimizing What Matters: AUC-Driven Learning for Robust Neural Retrieval, "
        "arXiv 2510.00137",
        summary="Pairwise logistic AUC surrogate over positives and negatives of all queries",
        batch_dependent=True,
    )

    def per_sample(self, input: torch.Tensor, target: torch.Tensor, **_: Any) -> torch.Tensor:
        s, valid = pair_scores(input, target)
        b = len(target)
        eye = torch.zeros_like(valid)
        eye[:, :b] = torch.eye(b, dtype=torch.bool, device=s.device)
        negatives = s[valid & ~eye]  # the pooled S− of all queries
        positives = s[eye]  # s_i+, in row order
        if negatives.numel() == 0:
            return positives * 0.0
        values = F.softplus(-(positives[:, None] - negatives[None, :]) / self.temperature)
        return values.mean(1) if self.scale == "mean" else values.sum(1)
