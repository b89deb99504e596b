"""Comp-sum identities: tau = 0, 1, 1 + q, 2 give sum-exp, CE, GCE, MAE."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from lossbench.losses import make_loss

X = torch.tensor([[0.0, math.log(3.0)]])  # p = (1/4, 3/4)
Y = torch.tensor([1])


def random_batch(seed: int = 0, b: int = 32, k: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return 3 * torch.randn(b, k, generator=g), torch.randint(0, k, (b,), generator=g)


def test_comp_sum_at_tau_one_equals_ce_exactly() -> None:
    x, y = random_batch()
    assert torch.equal(make_loss("comp-sum", {"tau": 1.0})(x, y), make_loss("ce")(x, y))
    per_sample = make_loss("comp-sum", {"tau": 1.0, "reduction": "none"})(x, y)
    assert torch.equal(per_sample, F.cross_entropy(x, y, reduction="none"))


def test_hand_values() -> None:
    assert float(make_loss("sum-exp")(X, Y)) == pytest.approx(1 / 0.75 - 1)  # u = e^0 / 3
    assert float(make_loss("comp-sum", {"tau": 0.0})(X, Y)) == pytest.approx(1 / 3)
    assert float(make_loss("comp-sum", {"tau": 0.5})(X, Y)) == pytest.approx((0.75**-0.5 - 1) / 0.5)
    assert float(make_loss("gce", {"q": 0.5})(X, Y)) == pytest.approx((1 - 0.75**0.5) / 0.5)
    assert float(make_loss("mae")(X, Y)) == pytest.approx(0.25)


def test_named_members_match_comp_sum() -> None:
    x, y = random_batch(1)
    cs = lambda tau: make_loss("comp-sum", {"tau": tau})(x, y)  # noqa: E731
    torch.testing.assert_close(cs(0.0), make_loss("sum-exp")(x, y))
    torch.testing.assert_close(cs(1.7), make_loss("gce", {"q": 0.7})(x, y))
    torch.testing.assert_close(cs(2.0), make_loss("mae")(x, y))


def test_gce_approaches_ce_as_q_goes_to_zero() -> None:
    x, y = random_batch(2)
    ce = F.cross_entropy(x, y, reduction="none")
    gaps = [
        float((make_loss("gce", {"q": q, "reduction": "none"})(x, y) - ce).abs().max())
        for q in (0.1, 0.01, 1e-4)
    ]
    assert gaps[0] > gaps[1] > gaps[2]
    assert gaps[2] < 1e-3 * float(ce.max())


def test_sum_exp_stays_finite_at_extreme_logits() -> None:
    x = torch.tensor([[1e4, -1e4, 0.0]], requires_grad=True)
    loss = make_loss("sum-exp")(x, torch.tensor([1]))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(x.grad).all()


@settings(max_examples=30, deadline=None)
@given(
    tau=st.floats(0.0, 3.0),
    scale=st.floats(0.0, 30.0),
    seed=st.integers(0, 1000),
    b=st.integers(1, 9),
    k=st.integers(2, 6),
)
def test_comp_sum_is_finite_nonnegative_and_monotone_in_p(
    tau: float, scale: float, seed: int, b: int, k: int
) -> None:
    x, y = random_batch(seed, b, k)
    x = x * scale / 3
    values = make_loss("comp-sum", {"tau": tau, "reduction": "none"})(x, y)
    assert values.shape == (b,)
    assert torch.isfinite(values).all() and (values >= -1e-6).all()
    # the loss is a decreasing function of p_y: order of values reverses the order of p_y
    p_y = torch.softmax(x.double(), 1).gather(1, y[:, None]).squeeze(1)
    order = p_y.argsort()
    assert (values[order].diff() <= 1e-5 * (1 + values.abs().max())).all()
