"""Shared pieces of the embedding, pair and score losses: similarity matrices, masks, proxies."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from lossbench import streams
from lossbench.errors import LossInputError
from lossbench.losses.base import outside

#: A large finite negative: masked logits stay finite, so gradients never meet inf - inf.
NEG = -1e9


def cosine_matrix(x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
    """Cosine similarities of the rows of x (and y): (B, B) or (B, M)."""
    a = F.normalize(x, dim=-1)
    b = a if y is None else F.normalize(y.to(a.dtype), dim=-1)  # float32 proxies meet float64 checks
    return a @ b.T


def euclidean_from_cosine(sim: torch.Tensor) -> torch.Tensor:
    """Euclidean distance of unit vectors, sqrt(2 - 2 cos); clamped so the gradient at 0 stays finite."""
    return torch.sqrt((2.0 - 2.0 * sim).clamp_min(1e-12))


def pair_masks(y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(positives, negatives): same-label pairs without the diagonal, and different-label pairs."""
    same = y[:, None] == y[None, :]
    eye = torch.eye(len(y), dtype=torch.bool, device=y.device)
    return same & ~eye, ~same


def log1p_sum_exp(a: torch.Tensor, mask: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """log(1 + sum_{mask} exp(a)) along ``dim``, stably (logsumexp with a zero appended)."""
    a = a.masked_fill(~mask, NEG)
    zero = torch.zeros_like(a.select(dim, 0)).unsqueeze(dim)
    return torch.logsumexp(torch.cat([zero, a], dim=dim), dim=dim)


def zero_like_graph(x: torch.Tensor) -> torch.Tensor:
    """A 0 that keeps the graph (batches with no valid pair still backpropagate a finite zero)."""
    return x.sum() * 0.0


class Proxies(nn.Module):
    """K learnable class vectors (proxies or cosine-classifier weights), seeded and device-agnostic.

    ``lr_scale`` multiplies the effective learning rate under Adam: the stored parameter is
    ``proxies / lr_scale`` and the forward pass multiplies it back, so Adam's scale-free steps on the
    stored tensor move the proxies ``lr_scale`` times further (Proxy Anchor trains proxies at 100x the lr).
    """

    def __init__(self, n: int, dim: int, seed: int, lr_scale: float = 1.0) -> None:
        super().__init__()
        g = streams.generator(int(seed), "loss", "proxies")
        init = torch.randn(n, dim, generator=g) / math.sqrt(dim)
        self.lr_scale = float(lr_scale)
        self.raw = nn.Parameter(init / self.lr_scale)

    def forward(self) -> torch.Tensor:
        return self.raw * self.lr_scale


def check_labels(name: str, y: torch.Tensor, n_classes: int) -> None:
    if outside(y, 0, n_classes - 1):
        raise LossInputError(
            f"Loss {name!r} has {n_classes} class proxies but got labels in [{int(y.min())}, {int(y.max())}].",
            "Build it with n_classes = the number of training classes (labels 0..K-1).",
        )
