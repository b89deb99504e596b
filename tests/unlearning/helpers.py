"""A tiny unlearning problem: a small MLP trained on separable 3-class data, its forget and retain rows."""

from __future__ import annotations

import copy
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from lossbench.models.mlp import MLP
from lossbench.unlearning.forget import select_forget
from lossbench.unlearning.loop import make_data
from lossbench.unlearning.objectives import Rows, UnlearningData, rows


def problem(seed: int = 0, n: int = 90, fraction: float = 0.2) -> tuple[MLP, Rows, Rows]:
    """Fresh copies (callers mutate them) of one cached pre-trained model and its rows."""
    model, forget, retain = _problem(seed, n, fraction)
    return (copy.deepcopy(model), Rows(forget.x.clone(), forget.y.clone(), forget.index.clone()),
            Rows(retain.x.clone(), retain.y.clone(), retain.index.clone()))


@lru_cache(maxsize=4)
def _problem(seed: int, n: int, fraction: float) -> tuple[MLP, Rows, Rows]:
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    x = torch.randn(n, 4, generator=g) + 2.0 * F.one_hot(y, 4).float()
    torch.manual_seed(seed)
    model = MLP(4, 3, hidden=(16,))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(60):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    model.eval()
    forget = select_forget(y.numpy(), seed, {"fraction": fraction})
    keep = np.setdiff1d(np.arange(n), forget)
    return model, rows(x[forget], y[forget]), rows(x[keep], y[keep])


def data_for(model: MLP, forget: Rows, retain: Rows, budget: int = 4, seed: int = 0,
             predicted: bool = True) -> UnlearningData:
    predicted_oracle = None
    if predicted:
        with torch.no_grad():
            predicted_oracle = {"forget": model(forget.x) * 0.5, "retain": model(retain.x) * 0.5}
    return make_data(model, forget, retain, budget, seed, predicted_oracle)


def copy_model(model: MLP) -> MLP:
    return copy.deepcopy(model)
