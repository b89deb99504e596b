"""Embedding models for retrieval: a two-tower encoder for query–document pairs and a dual encoder for labels."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from lossbench.models.mlp import MLP
from lossbench.models.registry import MODELS


class DualEncoder(nn.Module):
    """Separate query and document MLP towers over the same input features.

    Input (B, S, F): slot 0 is the query, slots 1.. are documents; output (B, S, d). Rows are flattened through
    the towers, so batch norm sees a (rows, features) matrix.
    """

    def __init__(self, n_in: int, n_out: int, hidden: Sequence[int] = (256,), dropout: float = 0.0,
                 batch_norm: bool = False) -> None:
        super().__init__()
        self.query = MLP(n_in, n_out, hidden, dropout, batch_norm)
        self.document = MLP(n_in, n_out, hidden, dropout, batch_norm)
        # Siamese start: both towers begin as the same random projection, so initial scores track lexical
        # n-gram overlap; training then lets them specialise.
        self.document.load_state_dict(self.query.state_dict())

    def encode_documents(self, x: torch.Tensor) -> torch.Tensor:
        return self.document(x)

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


MODELS.register("dual-mlp", DualEncoder, params={"hidden": [256], "dropout": 0.0, "batch_norm": False})
