"""Aggregate-label losses: bagging, the ρ interpolation and the squared-loss identity."""

from __future__ import annotations

import pytest
import torch

from lossbench.losses import make_loss
from lossbench.methods.aggregate import AggBag, AggInstance, AggInterp, bag_level, bag_targets, instance_level, make_bags
from lossbench.methods.base import Batch, StepState
from lossbench.tasks.base import Prepared, TensorSplit

PROB = torch.tensor([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.3, 0.7]])
BAG = torch.tensor([0, 0, 1, 1])
TARGET = torch.tensor([[0.5, 0.5], [0.0, 1.0]])


def test_squared_loss_identity_on_a_hand_case() -> None:
    # bag means: (0.75, 0.25) and (0.25, 0.75)
    l_bag = bag_level(PROB, BAG, TARGET, "squared").item()
    assert l_bag == pytest.approx(((0.25**2 + 0.25**2) + (0.25**2 + 0.25**2)) / 2)
    l_inst = instance_level(PROB, BAG, TARGET, "squared").item()
    within = sum(((PROB[i] - PROB[BAG[i] == BAG].mean(0)) ** 2).sum().item() for i in range(4)) / 4
    assert within == pytest.approx((2 * 0.15**2 * 2 + 2 * 0.05**2 * 2) / 4)
    assert l_inst == pytest.approx(l_bag + within)


def test_bag_ce_on_a_hand_case() -> None:
    expected = (-(0.5 * torch.log(torch.tensor(0.75)) + 0.5 * torch.log(torch.tensor(0.25))) * 2
                - torch.log(torch.tensor(0.75)) * 2) / 4
    assert bag_level(PROB, BAG, TARGET, "ce").item() == pytest.approx(expected.item())


def test_bags_are_seeded_and_hide_instance_labels() -> None:
    a = make_bags(10, 3, torch.Generator().manual_seed(1))
    b = make_bags(10, 3, torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    assert sorted(torch.bincount(a).tolist()) == [1, 3, 3, 3]
    y = torch.tensor([0, 1, 1, 0, 1, 0, 0, 1, 1, 1])
    t = bag_targets(y, a, 2)
    assert torch.allclose(t.sum(1), torch.ones(len(t)))
    # permuting labels within each bag leaves every bag target unchanged
    y2 = y.clone()
    for bag in range(int(a.max()) + 1):
        rows = torch.nonzero(a == bag)[:, 0]
        y2[rows] = y[rows.flip(0)]
    assert torch.equal(bag_targets(y2, a, 2), t)


def _step_value(method_cls, **params) -> float:  # type: ignore[no-untyped-def]
    g = torch.Generator().manual_seed(0)
    X, y = torch.randn(24, 3, generator=g), torch.randint(0, 3, (24,), generator=g)
    split = TensorSplit(X, y)
    prepared = Prepared(train=split, val=split, test=split, n_features=3, n_classes=3, kind="multiclass")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 3))
    method = method_cls(**params)
    state = StepState(generator=torch.Generator().manual_seed(7))
    loss = make_loss("ce")
    method.setup(model, prepared, loss, state)
    idx = torch.arange(24)
    # labels passed in the batch are scrambled: the methods must never read them
    return method.step(model, Batch(X, torch.zeros_like(y), idx), loss, state).item()


@pytest.mark.parametrize("kind", ["ce", "squared"])
def test_interp_endpoints_equal_bag_and_instance(kind: str) -> None:
    bag = _step_value(AggBag, bag_size=4, loss=kind)
    inst = _step_value(AggInstance, bag_size=4, loss=kind)
    assert _step_value(AggInterp, bag_size=4, loss=kind, rho=0.0) == pytest.approx(bag)
    assert _step_value(AggInterp, bag_size=4, loss=kind, rho=1.0) == pytest.approx(inst)
    mid = _step_value(AggInterp, bag_size=4, loss=kind, rho=0.25)
    assert mid == pytest.approx(0.75 * bag + 0.25 * inst)
    assert inst >= bag - 1e-6  # Jensen: the bag mean fits a bag-mean label at least as well
