"""Z-loss: hand value, invariances and the K = 2 refusal."""

from __future__ import annotations

import math

import pytest
import torch

from lossbench.errors import LossInputError
from lossbench.losses import make_loss


def test_hand_value() -> None:
    # o = (1, 2, 3), y = 2: mean 2, population std sqrt(2/3), z_y = 1 / sqrt(2/3)
    z_y = 1 / math.sqrt(2 / 3)
    got = float(make_loss("z-loss")(torch.tensor([[1.0, 2.0, 3.0]]), torch.tensor([2])))
    assert got == pytest.approx(math.log1p(math.exp(-z_y)))
    a, b = 2.0, 1.0
    got = float(make_loss("z-loss", {"a": a, "b": b})(torch.tensor([[1.0, 2.0, 3.0]]), torch.tensor([2])))
    assert got == pytest.approx(math.log1p(math.exp(a * (b - z_y))) / a)


def test_shift_and_scale_invariant() -> None:
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(10, 4, generator=g), torch.randint(0, 4, (10,), generator=g)
    loss = make_loss("z-loss", {"reduction": "none"})
    torch.testing.assert_close(loss(3 * x + 5, y), loss(x, y), rtol=1e-4, atol=1e-5)


def test_refuses_binary_and_names_the_fix() -> None:
    with pytest.raises(LossInputError, match="use ce for binary"):
        make_loss("z-loss")(torch.randn(4, 2), torch.tensor([0, 1, 0, 1]))


def test_equal_logits_give_finite_value_and_gradient() -> None:
    x = torch.zeros(3, 5, requires_grad=True)
    value = make_loss("z-loss")(x, torch.tensor([0, 1, 2]))
    value.backward()
    assert float(value.detach()) == pytest.approx(math.log(2.0))  # z_y = 0
    assert torch.isfinite(x.grad).all()
