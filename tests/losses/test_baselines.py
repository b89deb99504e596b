"""Hand-computed values for the classification baselines."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from lossbench.errors import LossInputError, SpecError
from lossbench.losses import make_loss
from lossbench.objectives import parse_objective

# two classes, p = (1/4, 3/4): every value below is written out from these numbers
X = torch.tensor([[0.0, math.log(3.0)]])
Y = torch.tensor([1])
LN = math.log


def value(name: str, params: dict | None = None, x: torch.Tensor = X, y: torch.Tensor = Y, **ctx) -> float:
    loss = make_loss(name, params, **ctx)
    extras = {"epoch": ctx.pop("epoch")} if "epoch" in ctx else {}
    return float(loss(x, y, **extras))


def test_ce() -> None:
    assert value("ce") == pytest.approx(-LN(0.75))


def test_focal() -> None:
    assert value("focal", {"gamma": 2.0}) == pytest.approx(-(0.25**2) * LN(0.75))
    assert value("focal", {"gamma": 0.0}) == pytest.approx(-LN(0.75))


def test_weighted_ce_uses_balanced_weights() -> None:
    # counts (3, 1): w = n / (K n_k) = (4/6, 4/2)
    assert value("weighted-ce", class_counts=[3, 1]) == pytest.approx(2 * -LN(0.75))


def test_class_balanced_ce_and_focal() -> None:
    # beta = 0.5, counts (1, 2): raw (0.5/0.5, 0.5/0.75) = (1, 2/3), rescaled to sum 2: (1.2, 0.8)
    assert value("cb-ce", {"beta": 0.5}, class_counts=[1, 2]) == pytest.approx(0.8 * -LN(0.75))
    assert value("cb-focal", {"beta": 0.5, "gamma": 2.0}, class_counts=[1, 2]) == pytest.approx(
        0.8 * -(0.25**2) * LN(0.75)
    )
    # beta = 0 gives uniform weights, i.e. plain CE
    assert value("cb-ce", {"beta": 0.0}, class_counts=[1, 2]) == pytest.approx(-LN(0.75))


def test_ldam_margin_and_scale() -> None:
    # counts (1, 16): n^-1/4 = (1, 1/2), rescaled so the largest is 0.5: margins (0.5, 0.25)
    z1 = LN(3.0) - 0.25
    for s in (1.0, 2.0):
        expected = -(s * z1 - LN(1 + math.exp(s * z1)))
        got = value("ldam", {"s": s}, class_counts=[1, 16], epoch=0)
        assert got == pytest.approx(expected)


def test_ldam_deferred_reweighting_switches_at_drw_epoch() -> None:
    params = {"s": 1.0, "drw_epoch": 5}
    before = value("ldam", params, class_counts=[1, 16], epoch=4)
    after = value("ldam", params, class_counts=[1, 16], epoch=5)
    # class-balanced weights (beta = 0.9999) for counts (1, 16), normalised to sum 2
    raw = [(1 - 0.9999) / (1 - 0.9999**n) for n in (1, 16)]
    w1 = raw[1] / sum(raw) * 2
    assert after == pytest.approx(w1 * before, rel=1e-5)


def test_ldam_needs_the_epoch() -> None:
    loss = make_loss("ldam", class_counts=[1, 16])
    with pytest.raises(LossInputError, match="epoch"):
        loss(X, Y)


def test_label_smoothing() -> None:
    # eps = 0.2, K = 2: target (0.1, 0.9)
    assert value("label-smoothing", {"epsilon": 0.2}) == pytest.approx(-0.9 * LN(0.75) - 0.1 * LN(0.25))


def test_logit_adjust() -> None:
    # priors (3/4, 1/4): z + log pi = (log 3/4, log 3 + log 1/4) = equal logits, so the loss is log 2
    assert value("logit-adjust", {"tau": 1.0}, class_counts=[3, 1]) == pytest.approx(LN(2.0))
    assert value("logit-adjust", {"tau": 0.0}, class_counts=[3, 1]) == pytest.approx(-LN(0.75))


def test_balanced_softmax_equals_logit_adjust_at_tau_one() -> None:
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(16, 5, generator=g), torch.randint(0, 5, (16,), generator=g)
    counts = [50, 20, 10, 5, 1]
    a = make_loss("balanced-softmax", class_counts=counts)(x, y)
    b = make_loss("logit-adjust", {"tau": 1.0}, class_counts=counts)(x, y)
    torch.testing.assert_close(a, b)


def test_mse_onehot() -> None:
    x = torch.tensor([[1.0, 2.0, 3.0]])
    assert value("mse-onehot", x=x, y=torch.tensor([0])) == pytest.approx((0 + 4 + 9) / 2)


def test_brier() -> None:
    assert value("brier") == pytest.approx(0.25**2 + 0.25**2)


def test_reductions() -> None:
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(8, 3, generator=g), torch.randint(0, 3, (8,), generator=g)
    none = make_loss("focal", {"reduction": "none"})(x, y)
    assert none.shape == (8,)
    torch.testing.assert_close(make_loss("focal", {"reduction": "sum"})(x, y), none.sum())
    torch.testing.assert_close(make_loss("ce")(x, y), F.cross_entropy(x, y))


def test_input_guards() -> None:
    ce = make_loss("ce")
    with pytest.raises(LossInputError, match="labels outside"):
        ce(X, torch.tensor([2]))
    with pytest.raises(LossInputError, match="integer class labels"):
        ce(X, torch.tensor([1.0]))


def test_bad_parameters_are_spec_errors() -> None:
    with pytest.raises(SpecError, match="gamma"):
        make_loss("focal", {"gamma": -1.0})
    with pytest.raises(SpecError, match="class_counts"):
        make_loss("cb-ce")
    assert str(parse_objective("cb-focal:gamma=2")) == "cb-focal:gamma=2"


@pytest.mark.parametrize("name", ["focal", "cb-focal"])
def test_focal_gradient_is_finite_when_p_y_rounds_to_one(name: str) -> None:
    # float32: p_y of row 0 rounds to 1, where (1 - p)^gamma has an infinite derivative for gamma < 1
    y = torch.tensor([0, 1])
    loss = make_loss(name, {"gamma": 0.5}, class_counts=[3, 1, 2])
    grads = []
    for dtype in (torch.float32, torch.float64):
        x = torch.tensor([[20.0, 0.0, 0.0], [0.3, 0.1, -0.2]], dtype=dtype, requires_grad=True)
        loss(x, y).backward()
        grads.append(x.grad)
    assert torch.isfinite(grads[0]).all()
    # the true gradient of row 0 is about 1e-13 (it tends to 0 as p_y -> 1); row 1 is ordinary
    torch.testing.assert_close(grads[0], grads[1].float(), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("gamma", [0.5, 1.0, 2.0])
def test_focal_values_and_gradients_are_those_of_the_plain_formula(gamma: float) -> None:
    # away from p_y = 1 the NaN guard changes nothing, bit for bit (the golden results rely on it)
    g = torch.Generator().manual_seed(3)
    x = torch.randn(16, 4, generator=g, requires_grad=True)
    y = torch.randint(0, 4, (16,), generator=g)
    got = make_loss("focal", {"gamma": gamma, "reduction": "none"})(x, y)
    logp = x.gather(1, y[:, None])[:, 0] - torch.logsumexp(x, 1)
    plain = -((-torch.expm1(logp)).clamp_min(0) ** gamma) * logp
    assert torch.equal(got, plain)
    (g_got,) = torch.autograd.grad(got.sum(), x)
    (g_plain,) = torch.autograd.grad(plain.sum(), x)
    assert torch.equal(g_got, g_plain)
