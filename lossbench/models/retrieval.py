"""Embedding models for retrieval: a two-tower encoder for query–document pairs and a dual encoder for labels."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from lossbench.models.mlp import MLP
from lossbench.models.registry import MODELS


class Tower(nn.Module):
    """A linear random projection plus a residual MLP whose last layer starts at zero.

    At initialisation the tower is the projection alone, which approximately preserves cosine similarity of
    the sparse n-gram inputs (Johnson–Lindenstrauss), so training starts from lexical matching instead of noise.

    ``skip = "orthogonal"`` starts the projection (semi-)orthogonal instead, the identity when ``n_in == n_out``:
    on dense unit inputs such as frozen sentence embeddings the initial scores are then exactly the encoder's
    cosines, so a trained head is measured against the frozen model rather than a random rotation of it.
    """

    def __init__(self, n_in: int, n_out: int, hidden: Sequence[int] = (256,), dropout: float = 0.0,
                 batch_norm: bool = False, skip: str = "random") -> None:
        super().__init__()
        self.projection = nn.Linear(n_in, n_out, bias=False)
        if skip == "orthogonal" and n_in == n_out:
            nn.init.eye_(self.projection.weight)
        elif skip == "orthogonal":
            nn.init.orthogonal_(self.projection.weight)
        elif skip == "random":
            nn.init.normal_(self.projection.weight, std=n_out**-0.5)
        else:
            raise ValueError(f"unknown skip {skip!r}")
        self.residual = MLP(n_in, n_out, hidden, dropout, batch_norm)
        nn.init.zeros_(self.residual[-1].weight)
        nn.init.zeros_(self.residual[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.projection(x) + self.residual(x)


class DualEncoder(nn.Module):
    """Separate query and document towers (:class:`Tower`) over the same input features.

    Input (B, S, F): slot 0 is the query, slots 1.. are documents; output (B, S, d). Rows are flattened through
    the towers, so batch norm sees a (rows, features) matrix. Both towers start with the same weights.
    """

    def __init__(self, n_in: int, n_out: int, hidden: Sequence[int] = (256,), dropout: float = 0.0,
                 batch_norm: bool = False, skip: str = "random") -> None:
        super().__init__()
        self.query = Tower(n_in, n_out, hidden, dropout, batch_norm, skip)
        self.document = Tower(n_in, n_out, hidden, dropout, batch_norm, skip)
        self.document.load_state_dict(self.query.state_dict())

    def encode_documents(self, x: torch.Tensor) -> torch.Tensor:
        return self.document(x)

    def encode_queries(self, x: torch.Tensor) -> torch.Tensor:
        return self.query(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, s, f = x.shape
        q = self.query(x[:, 0])
        d = self.document(x[:, 1:].reshape(-1, f)).reshape(b, s - 1, -1)
        return torch.cat([q[:, None], d], dim=1)


class LabelDualEncoder(nn.Module):
    """An MLP query encoder and a learnable label-embedding table; outputs (B, L) cosine scores.

    The DEXML setting with label embeddings learnt directly (our labels have no text).
    """

    def __init__(self, n_in: int, n_labels: int, embedding_dim: int = 64, hidden: Sequence[int] = (128,),
                 dropout: float = 0.0, batch_norm: bool = False) -> None:
        super().__init__()
        self.encoder = MLP(n_in, embedding_dim, hidden, dropout, batch_norm)
        self.labels = nn.Parameter(torch.randn(n_labels, embedding_dim) / embedding_dim**0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.encoder(x), dim=-1) @ F.normalize(self.labels, dim=-1).T


def minilm_head(n_in: int, n_out: int, hidden: Sequence[int] = (256,), dropout: float = 0.0,
                batch_norm: bool = False) -> DualEncoder:
    """A trainable two-tower head over frozen sentence embeddings (``encoder = "minilm"``): it starts as the
    frozen encoder itself (orthogonal skip, zero residual), so training can only move away from that baseline."""
    return DualEncoder(n_in, n_out, hidden, dropout, batch_norm, skip="orthogonal")


# pairs=True: the family takes (B, 2 + H, F) query-document rows; the retrieval task uses dual-mlp otherwise
MODELS.register("dual-mlp", DualEncoder, params={"hidden": [256], "dropout": 0.0, "batch_norm": False}, pairs=True)
MODELS.register("minilm-head", minilm_head, params={"hidden": [256], "dropout": 0.0, "batch_norm": False},
                pairs=True)
