"""Multi-layer perceptrons for tabular data: the configurable ``mlp`` and the LDR paper's ``ffnn``."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from lossbench.models.registry import MODELS

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh}
INITS = ("default", "xavier-normal")


class MLP(nn.Sequential):
    """Linear → [BatchNorm] → activation → [Dropout] blocks, then a linear head.

    ``penultimate`` (the head's input) is what embedding diagnostics read. ``init = "xavier-normal"`` draws every
    weight matrix Xavier-normal (biases keep PyTorch's default), as the LDR reference code's ``_weights_init``.
    """

    def __init__(
        self,
        n_in: int,
        n_out: int,
        hidden: Sequence[int] = (64, 64),
        dropout: float = 0.0,
        batch_norm: bool = False,
        activation: str = "relu",
        init: str = "default",
    ) -> None:
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; use one of {', '.join(ACTIVATIONS)}")
        if init not in INITS:
            raise ValueError(f"unknown init {init!r}; use one of {', '.join(INITS)}")
        layers: list[nn.Module] = []
        width = n_in
        for h in hidden:
            layers.append(nn.Linear(width, h))
            if batch_norm:
                layers.append(nn.BatchNorm1d(h))
            layers.append(ACTIVATIONS[activation]())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = h
        layers.append(nn.Linear(width, n_out))
        super().__init__(*layers)
        self.activation = activation
        if init == "xavier-normal":
            for layer in self:
                if isinstance(layer, nn.Linear):
                    nn.init.xavier_normal_(layer.weight)


def ffnn(n_in: int, n_out: int, depth: int = 2) -> MLP:
    """The LDR/ALDR paper's tabular model (Zhu et al., ICML 2023; ``Optimization-AI/ICML2023_LDR`` ``models.py``
    ``MLP``): ``depth`` tanh layers of width min(d, K), Xavier-normal weights, a linear head."""
    if depth < 1:
        raise ValueError(f"ffnn needs depth >= 1; got {depth}")
    return MLP(n_in, n_out, hidden=[min(n_in, n_out)] * depth, activation="tanh", init="xavier-normal")


MODELS.register("mlp", MLP, params={"hidden": [64, 64], "dropout": 0.0, "batch_norm": False, "activation": "relu",
                                    "init": "default"})
MODELS.register("ffnn", ffnn, params={"depth": 2},
                description="The LDR paper's tabular model: 2 tanh layers of width min(d, K), Xavier-normal init")
