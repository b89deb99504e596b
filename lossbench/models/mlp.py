"""A configurable multi-layer perceptron for tabular data."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from lossbench.models.registry import MODELS


class MLP(nn.Sequential):
    """Linear → [BatchNorm] → ReLU → [Dropout] blocks, then a linear head.

    ``penultimate`` (the head's input) is what embedding diagnostics read.
    """

    def __init__(
        self,
        n_in: int,
        n_out: int,
        hidden: Sequence[int] = (64, 64),
        dropout: float = 0.0,
        batch_norm: bool = False,
    ) -> None:
        layers: list[nn.Module] = []
        width = n_in
        for h in hidden:
            layers.append(nn.Linear(width, h))
            if batch_norm:
                layers.append(nn.BatchNorm1d(h))
            layers.append(nn.ReLU())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = h
        layers.append(nn.Linear(width, n_out))
        super().__init__(*layers)


MODELS.register("mlp", MLP, params={"hidden": [64, 64], "dropout": 0.0, "batch_norm": False})
