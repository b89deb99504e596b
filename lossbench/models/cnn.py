"""A small CNN family for images, and the feature/head split that embedding diagnostics and methods read.

``cnn`` takes the input shape: (C, H, W) images get conv blocks (3×3 conv → [BatchNorm] → ReLU, 2×2 max-pool
while the map is at least 4 px) then global average pooling, an optional hidden layer and a linear head;
a 1-D input (an int, or a shape of length 1, such as MNIST-1D's 40 samples) gets the MLP of ``mlp_hidden``,
so one suite can mix 2-D images and 1-D signals.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from lossbench.errors import UserError
from lossbench.models.mlp import MLP
from lossbench.models.registry import MODELS


class SmallCNN(nn.Module):
    """``features`` (the penultimate representation) followed by a linear ``head``."""

    def __init__(
        self,
        shape: Sequence[int],
        n_out: int,
        channels: Sequence[int] = (32, 64),
        hidden: int = 0,
        dropout: float = 0.0,
        batch_norm: bool = True,
    ) -> None:
        super().__init__()
        c, h, w = (int(s) for s in shape)
        layers: list[nn.Module] = []
        for width in channels:
            layers += [nn.Conv2d(c, width, 3, padding=1)]
            if batch_norm:
                layers.append(nn.BatchNorm2d(width))
            layers.append(nn.ReLU())
            if min(h, w) >= 4:  # 8×8 digits: two poolings, then global pooling of the 2×2 map
                layers.append(nn.MaxPool2d(2))
                h, w = h // 2, w // 2
            c = width
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        if hidden:
            layers += [nn.Linear(c, hidden), nn.ReLU()]
            c = hidden
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(c, n_out)
        self.feature_dim = c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def cnn(
    shape: int | Sequence[int],
    n_out: int,
    channels: Sequence[int] = (32, 64),
    hidden: int = 0,
    dropout: float = 0.0,
    batch_norm: bool = True,
    mlp_hidden: Sequence[int] = (128, 128),
) -> nn.Module:
    dims = [shape] if isinstance(shape, int) else list(shape)
    if len(dims) == 1:
        return MLP(int(dims[0]), n_out, hidden=tuple(mlp_hidden), dropout=dropout, batch_norm=batch_norm)
    if len(dims) == 2:
        dims = [1, *dims]
    return SmallCNN(dims, n_out, channels=tuple(channels), hidden=hidden, dropout=dropout, batch_norm=batch_norm)


def split_features(model: nn.Module) -> tuple[nn.Module, nn.Linear] | None:
    """(feature extractor, linear head) of a SmallCNN or an MLP; None for a model without that split.

    None too when a method rerouted the model's forward (NoProp, Hyp-OC): the head is then not what predicts.
    """
    if "forward" in vars(model):
        return None
    if isinstance(model, SmallCNN):
        return model.features, model.head
    if isinstance(model, nn.Sequential) and len(model) > 1 and isinstance(model[-1], nn.Linear):
        return nn.Sequential(*list(model)[:-1]), model[-1]
    return None


def require_features(model: nn.Module, method: str, families: str) -> tuple[nn.Module, nn.Linear]:
    """``split_features`` for a method that cannot run without the split; a clear error otherwise."""
    parts = split_features(model)
    if parts is None:
        raise UserError(f"{method} needs a model with a feature extractor and a linear head ({families}).")
    return parts


MODELS.register("cnn", cnn, params={"channels": [32, 64], "hidden": 0, "dropout": 0.0, "batch_norm": True,
                                    "mlp_hidden": [128, 128]})
