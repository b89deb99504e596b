"""DMM's datamodels: the fold design, and exact recovery on outputs that are linear in the training set."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from lossbench.errors import UserError
from lossbench.unlearning.attribution import (
    class_influence,
    design_for,
    estimate_row_datamodel,
    fold_design,
    hadamard_design,
    predict_class_forget,
)

N, K = 40, 3
RNG = np.random.default_rng(0)
A = torch.tensor(RNG.normal(size=(N, K)))  # base logits of each row
B = torch.tensor(RNG.normal(size=(N, K)))  # each row's effect on itself
G = torch.tensor(RNG.normal(size=(N, K)))  # effect of the data size: logits + G·|S|/N
X = torch.arange(N, dtype=torch.float64).unsqueeze(1)  # a row's input is its id


class Lookup(nn.Module):
    """A 'trained model' whose logits on row i are A_i + B_i·[i ∈ S] + G_i·|S|/N (linear in the training set S)."""

    def __init__(self, table: torch.Tensor) -> None:
        super().__init__()
        self.table = table

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.table[x[:, 0].long()]


def linear_fit(rows: np.ndarray) -> nn.Module:
    inside = torch.zeros(N, 1, dtype=torch.float64)
    inside[torch.as_tensor(rows)] = 1.0
    return Lookup(A + B * inside + G * len(rows) / N)


def test_fold_design_leaves_every_group_out_equally() -> None:
    masks = fold_design(10, 5, 3, seed=0)
    assert masks.shape == (15, 10)
    assert ((~masks).sum(0) == 3).all()  # each group left out once per repeat
    halves = fold_design(10, 2, 2, seed=0)
    assert (halves[0] == ~halves[1]).all() and (halves[2] == ~halves[3]).all()
    assert np.array_equal(fold_design(10, 5, 3, seed=0), masks)
    with pytest.raises(UserError):
        fold_design(10, 1, 1, 0)
    with pytest.raises(UserError):
        fold_design(3, 5, 1, 0)


@pytest.mark.parametrize("groups", [3, 10, 26])
def test_hadamard_design_is_balanced(groups: int) -> None:
    masks = hadamard_design(groups, seed=2).astype(int)
    m = masks.shape[0]
    assert m == 1 << int(np.ceil(np.log2(groups + 1)))
    assert (masks.sum(0) == m // 2).all()
    both = masks.T @ masks  # fits where two groups are both in
    off = both[~np.eye(groups, dtype=bool)]
    assert (off == m // 4).all()


def test_design_follows_the_forget_fraction() -> None:
    assert design_for(0.1) == (10, 1)
    assert design_for(0.5) == (2, 4)
    assert design_for(0.3) == (3, 3)
    assert design_for(0.9) == (2, 4)
    with pytest.raises(UserError):
        design_for(1.0)


@pytest.mark.parametrize("fraction", [0.1, 0.2, 0.5])
def test_row_datamodel_is_exact_on_linear_outputs(fraction: float) -> None:
    dm = estimate_row_datamodel(linear_fit, X, fraction, n_fits=8, seed=0)
    forget = np.sort(RNG.choice(N, size=round(fraction * N), replace=False))
    reference = linear_fit(np.arange(N))(X)
    predicted = dm.predict(reference, forget)
    oracle = linear_fit(np.setdiff1d(np.arange(N), forget))(X)
    assert torch.allclose(predicted, oracle, atol=1e-10)


def test_row_datamodel_extrapolates_when_folds_do_not_match() -> None:
    # fits see 3/4 of the rows (4 folds) but the forget set is 10 %: the size term is rescaled linearly
    dm = estimate_row_datamodel(linear_fit, X, 0.25, n_fits=4, seed=1)
    forget = np.arange(4)
    oracle = linear_fit(np.arange(4, N))(X)
    assert torch.allclose(dm.predict(linear_fit(np.arange(N))(X), forget), oracle, atol=1e-10)


def test_class_influence_is_exact_on_linear_outputs() -> None:
    y = np.arange(N) % K
    effect = torch.tensor(RNG.normal(size=(K, N, K)))  # class c's effect on every row's logits

    def class_fit(rows: np.ndarray) -> nn.Module:
        present = torch.zeros(K, 1, 1, dtype=torch.float64)
        present[torch.as_tensor(np.unique(y[rows]))] = 1.0
        return Lookup(A + (present * effect).sum(0))

    influence = class_influence(class_fit, y, X, seed=0)
    assert torch.allclose(influence, effect, atol=1e-10)
    full = class_fit(np.arange(N))(X)
    for c in range(K):
        oracle = class_fit(np.flatnonzero(y != c))(X)
        assert torch.allclose(predict_class_forget(full, influence, c), oracle, atol=1e-10)
